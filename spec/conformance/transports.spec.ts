// The conformance runner over RFC 7395 and XEP-0206: the client flags that choose a transport,
// scenarios skipped without an endpoint, and the WebSocket and BOSH clients (conformance/client/)
// against a real Parley: login, raw mode, what a refused handshake and an HTTP error look like.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { parseClients, parseScenario } from "../../conformance/scenario/format.ts";
import { ConformanceRunner } from "../../conformance/runner.ts";
import { WebSocketXmppClient } from "../../conformance/client/websocket.ts";
import { BoshXmppClient } from "../../conformance/client/bosh.ts";
import { xml } from "../../protocol/xml/element.ts";
import { NS } from "../../protocol/ns.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

describe("transport flags", () => {
  test("websocket, bosh and no-subprotocol are client flags", () => {
    const [a, b, c] = parseClients("romeo (websocket), juliet (connected, bosh), nurse = romeo (tcp, websocket, no-subprotocol)");
    assert.equal(a.transport, "websocket");
    assert.equal(a.start, "online");
    assert.equal(b.transport, "bosh");
    assert.equal(b.start, "connected");
    assert.equal(c.transport, "websocket");
    assert.equal(c.noSubprotocol, true);
    assert.equal(c.start, "tcp");
    assert.throws(() => parseClients("romeo (carrier-pigeon)"), /unknown client flag/);
  });

  test("a scenario over a transport whose URL was not given is skipped, saying which option is missing", async () => {
    const runner = new ConformanceRunner({ host: "127.0.0.1", port: 1, domain: "example.test", accounts: [{ username: "a", password: "b" }] }, []);
    for (const [flag, option] of [["websocket", "--websocket-url"], ["bosh", "--bosh-url"]]) {
      const s = parseScenario(`title: t\nspec: RFC 7395 §3.1\nclients: romeo (${flag})\n\nromeo syncs\n`, `x/${flag}`);
      const r = await runner.runOne(s, false);
      assert.equal(r.outcome, "skip");
      assert.match(r.reason ?? "", new RegExp(option));
    }
  });
});

describe("the WebSocket and BOSH clients against Parley", () => {
  let t: TestServer;
  let ws: string;
  let bosh: string;
  before(async () => {
    t = await startTestServer({ users: ["alice", "bob"] });
    ws = `ws://127.0.0.1:${t.httpPort}/xmpp-websocket`;
    bosh = `http://127.0.0.1:${t.httpPort}/http-bind`;
  });
  after(async () => {
    await t.stop();
  });
  const base = () => ({ host: "127.0.0.1", port: 0, domain: t.domain, timeout: 3000 });

  test("both log in and exchange a message", async () => {
    const a = await WebSocketXmppClient.connect({ ...base(), url: ws });
    const b = await BoshXmppClient.connect({ ...base(), url: bosh });
    assert.equal(b.created.ver, "1.11");
    const ja = await a.login({ username: "alice", password: "pass-alice", resource: "ws" });
    const jb = await b.login({ username: "bob", password: "pass-bob", resource: "bosh" });
    assert.equal(ja, "alice@localhost/ws");
    assert.equal(jb, "bob@localhost/bosh");
    a.send(xml("message", { to: jb, type: "chat" }, xml("body", {}, "to bosh")));
    const got = await b.next((el) => el.name === "message");
    assert.equal(got.getChildText("body"), "to bosh");
    assert.equal(got.attrs.from, ja);
    b.send(xml("message", { to: ja, type: "chat" }, xml("body", {}, "to websocket")));
    assert.equal((await a.next((el) => el.name === "message")).getChildText("body"), "to websocket");
    await a.close();
    await b.close();
    assert.ok(a.closed && b.closed);
    assert.equal(b.terminate?.attrs.type, "terminate");
  });

  test("a refused handshake throws, or in raw mode is queued as <handshake accepted='false'/>", async () => {
    await assert.rejects(WebSocketXmppClient.connect({ ...base(), url: ws, noSubprotocol: true }), /HTTP 400/);
    const raw = await WebSocketXmppClient.connect({ ...base(), url: ws, noSubprotocol: true, raw: true });
    const h = await raw.next();
    assert.equal(h.attrs.accepted, "false");
    assert.equal(h.attrs.status, "400");
  });

  test("raw BOSH: each write is one POST, each answer queued whole; an HTTP error becomes <http-error/>", async () => {
    const c = await BoshXmppClient.connect({ ...base(), url: bosh, raw: true });
    c.write(`<body xmlns='${NS.httpbind}' rid='10' to='localhost' wait='5' hold='1'/>`);
    const created = await c.next();
    assert.equal(created.getName(), "body");
    assert.ok(created.attrs.sid);
    c.write("<body");
    const error = await c.next();
    assert.equal(error.getName(), "http-error");
    assert.equal(error.attrs.status, "400");
    c.destroy();
  });

  test("a BOSH endpoint that answers with something else than <body/> is an error at connect", async () => {
    const other = http.createServer((_req, res) => res.writeHead(404).end("nothing here"));
    await new Promise<void>((resolve) => other.listen(0, "127.0.0.1", resolve));
    try {
      const port = (other.address() as AddressInfo).port;
      await assert.rejects(BoshXmppClient.connect({ ...base(), url: `http://127.0.0.1:${port}/http-bind` }), /HTTP 404/);
    } finally {
      other.close();
    }
  });
});
