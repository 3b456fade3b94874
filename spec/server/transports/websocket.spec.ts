// RFC 7395 XMPP over WebSocket, end to end: the subprotocol handshake, <open/>/<close/>
// framing, login and messaging with a TCP client, the message-size limit, XEP-0198 resumption
// after a dropped WebSocket, WSS with the server's certificate, and the connection metrics.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { xml, type Element } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import { startTestServer, type TestServer } from "../../support/server.ts";
import { request } from "../http/request.ts";
import roster from "../../../server/modules/roster/index.ts";
import presence from "../../../server/modules/presence/index.ts";
import message from "../../../server/modules/message/index.ts";
import sm from "../../../server/modules/sm/index.ts";
import { FRAMING_NS, WsClient } from "./web-clients.ts";
import type { TLSSocket } from "node:tls";
import { createScramClient } from "../../../protocol/sasl/client.ts";
import { channelBindingData } from "../../../server/core/tls.ts";

let t: TestServer;
let url: string;
before(async () => {
  t = await startTestServer({
    users: ["alice", "bob"],
    modules: [roster, presence, message, sm],
    toml: "[modules.sm]\nresume_timeout_s = 5\n",
  });
  url = `ws://127.0.0.1:${t.httpPort}/xmpp-websocket`;
});
after(async () => {
  await t.stop();
});

const isBody = (body: string) => (el: Element) => el.name === "message" && el.getChildText("body") === body;
const isSm = (name: string) => (el: Element) => el.getNS() === NS.sm && el.name === name;

describe("the opening handshake", () => {
  test("a handshake without the xmpp subprotocol is refused", async () => {
    await assert.rejects(WsClient.connect(url, { protocols: ["chat"] }), /HTTP 400/);
    await assert.rejects(WsClient.connect(url, { protocols: [] }), /HTTP 400/);
  });

  test("only /xmpp-websocket upgrades", async () => {
    await assert.rejects(WsClient.connect(`ws://127.0.0.1:${t.httpPort}/elsewhere`), /HTTP 404/);
  });

  test("the server answers <open/> with its own <open/> and stream features, and agrees on xmpp", async () => {
    const c = await WsClient.connect(url);
    assert.equal(c.ws.protocol, "xmpp");
    c.open("localhost");
    const open = await c.next((e) => e.name === "open");
    assert.equal(open.getNS(), FRAMING_NS);
    assert.equal(open.attrs.from, "localhost");
    assert.equal(open.attrs.version, "1.0");
    assert.ok(open.attrs.id);
    const features = await c.next((e) => e.name === "stream:features");
    // RFC 7395 §3.6: no STARTTLS; loopback counts as confidential, so SASL is on offer.
    assert.equal(features.getChild("starttls", NS.tls), undefined);
    assert.ok(features.getChild("mechanisms", NS.sasl));
    c.close();
    const close = await c.next((e) => e.name === "close");
    assert.equal(close.getNS(), FRAMING_NS);
    await c.waitClosed();
  });

  test("a stream to a domain the server does not serve ends with <host-unknown/>", async () => {
    const c = await WsClient.connect(url);
    c.open("elsewhere.example");
    const error = await c.next((e) => e.name === "stream:error");
    assert.ok(error.getChild("host-unknown", NS.streams));
    await c.next((e) => e.name === "close");
    await c.waitClosed();
  });
});

describe("a session over WebSocket", () => {
  test("logs in, binds and exchanges messages with a TCP client", async () => {
    const alice = await WsClient.connect(url);
    const jid = await alice.login("alice", "localhost", "web");
    assert.equal(jid, "alice@localhost/web");
    const bob = await t.login("bob");
    alice.send(xml("message", { xmlns: "jabber:client", to: bob.jid!, type: "chat" }, xml("body", {}, "over a websocket")));
    const got = await bob.next(isBody("over a websocket"));
    assert.equal(got.attrs.from, "alice@localhost/web");
    bob.send(xml("message", { to: "alice@localhost/web", type: "chat" }, xml("body", {}, "back over TCP")));
    const back = await alice.next(isBody("back over TCP"));
    // RFC 7395 §3.3.3: every stanza names its namespace.
    assert.equal(back.attrs.xmlns, "jabber:client");
    alice.close();
    await alice.waitClosed();
    await bob.close();
  });

  test("a message over the stanza size limit ends the stream with <policy-violation/>", async () => {
    const c = await WsClient.connect(url);
    await c.login("alice", "localhost", "big");
    const big = `<message xmlns='jabber:client' to='bob@localhost'><body>${"x".repeat(t.config.limits.maxStanzaSize)}</body></message>`;
    c.raw(big);
    const error = await c.next((e) => e.name === "stream:error");
    assert.ok(error.getChild("policy-violation", NS.streams));
    await c.waitClosed();
  });

  test("two elements in one message break the framing", async () => {
    const c = await WsClient.connect(url);
    c.open("localhost");
    await c.next((e) => e.name === "stream:features");
    c.raw("<r xmlns='urn:xmpp:sm:3'/><r xmlns='urn:xmpp:sm:3'/>");
    const error = await c.next((e) => e.name === "stream:error");
    assert.ok(error.getChild("not-well-formed", NS.streams));
    await c.waitClosed();
  });

  test("XEP-0198: a dropped WebSocket is resumed on a new one without losing a message", async () => {
    const alice = await WsClient.connect(url);
    await alice.login("alice", "localhost", "phone");
    alice.send(xml("enable", { xmlns: NS.sm, resume: "true" }));
    const enabled = await alice.next(isSm("enabled"));
    assert.equal(enabled.attrs.resume, "true");
    const bob = await t.login("bob");
    bob.send(xml("message", { to: "alice@localhost/phone", type: "chat" }, xml("body", {}, "one")));
    await alice.next(isBody("one"));
    alice.ws.terminate(); // no <close/>: the connection is simply lost
    await alice.waitClosed();
    bob.send(xml("message", { to: "alice@localhost/phone", type: "chat" }, xml("body", {}, "two")));
    await new Promise((r) => setTimeout(r, 200));
    const again = await WsClient.connect(url);
    await again.authenticateOnly("alice");
    await again.next((e) => e.name === "stream:features");
    again.send(xml("resume", { xmlns: NS.sm, previd: enabled.attrs.id, h: "0" }));
    const resumed = await again.next((e) => e.getNS() === NS.sm && (e.name === "resumed" || e.name === "failed"));
    assert.equal(resumed.name, "resumed");
    // "one" was never acknowledged, so it comes again; "two" arrived while the session slept.
    await again.next(isBody("one"));
    await again.next(isBody("two"));
    again.send(xml("message", { xmlns: "jabber:client", to: bob.jid!, type: "chat" }, xml("body", {}, "resumed")));
    const got = await bob.next(isBody("resumed"));
    assert.equal(got.attrs.from, "alice@localhost/phone");
    again.close();
    await again.waitClosed();
    await bob.close();
  });

  test("WSS on the HTTPS port, with the server's certificate, offers channel binding", async () => {
    const c = await WsClient.connect(`wss://127.0.0.1:${t.httpsPort}/xmpp-websocket`, { ca: t.ca });
    c.open("localhost");
    const features = await c.next((e) => e.name === "stream:features");
    const mechanisms = features.getChild("mechanisms", NS.sasl)!.getChildren("mechanism").map((m) => m.getText());
    assert.ok(mechanisms.includes("SCRAM-SHA-256-PLUS"), mechanisms.join(" "));
    c.close();
    await c.waitClosed();
  });

  for (const type of ["tls-exporter", "tls-server-end-point"] as const) {
    test(`WSS: SCRAM-SHA-256-PLUS with ${type} binds to the connection the client sees`, async () => {
      const c = await WsClient.connect(`wss://127.0.0.1:${t.httpsPort}/xmpp-websocket`, { ca: t.ca });
      // ws keeps the TLS socket it connected over; the client derives its own side of the binding.
      const socket = (c.ws as unknown as { _socket: TLSSocket })._socket;
      c.open("localhost");
      await c.next((e) => e.name === "stream:features");
      const scram = createScramClient("SHA-256", { username: "alice", password: "pass-alice", channelBinding: { type, data: channelBindingData(socket, "client")[type]! } });
      c.send(xml("auth", { xmlns: NS.sasl, mechanism: scram.mechanism }, scram.first().toString("base64")));
      const challenge = await c.next((e) => e.getNS() === NS.sasl);
      assert.equal(challenge.name, "challenge");
      c.send(xml("response", { xmlns: NS.sasl }, scram.final(Buffer.from(challenge.getText(), "base64")).toString("base64")));
      const outcome = await c.next((e) => e.getNS() === NS.sasl);
      assert.equal(outcome.name, "success");
      assert.ok(scram.verify(Buffer.from(outcome.getText(), "base64")), "the server's signature covers the same binding");
      c.close();
      await c.waitClosed();
    });
  }

  test("/metrics counts WebSocket connections", async () => {
    const c = await WsClient.connect(url);
    await c.login("bob", "localhost", "metrics");
    const res = await request(`http://127.0.0.1:${t.httpPort}/metrics`);
    assert.match(res.body.toString(), /parley_connections\{transport="websocket"\} 1\b/);
    assert.match(res.body.toString(), /parley_connections\{transport="bosh"\} 0\b/);
    c.close();
    await c.waitClosed();
  });
});
