// XEP-0124 / XEP-0206 BOSH, end to end with a small BOSH client: session creation, login with a
// stream restart, messaging with a TCP client, held requests answered when there is something to
// say, rid order and window, resent requests, terminate, stream errors, inactivity, CORS.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { xml, type Element } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import { serialize } from "../../../protocol/xml/serialize.ts";
import { parseJid } from "../../../protocol/jid.ts";
import { startTestServer, type TestServer } from "../../support/server.ts";
import roster from "../../../server/modules/roster/index.ts";
import presence from "../../../server/modules/presence/index.ts";
import message from "../../../server/modules/message/index.ts";
import sm from "../../../server/modules/sm/index.ts";
import { BoshClient, boshPost } from "./web-clients.ts";

const HTTPBIND = "http://jabber.org/protocol/httpbind";

let t: TestServer;
let url: string;
before(async () => {
  t = await startTestServer({
    users: ["alice", "bob"],
    modules: [roster, presence, message, sm],
    toml: "[http]\nbosh_max_wait = 5\nbosh_inactivity = 2\n",
  });
  url = `http://127.0.0.1:${t.httpPort}/http-bind`;
});
after(async () => {
  await t.stop();
});

const isBody = (body: string) => (el: Element) => el.name === "message" && el.getChildText("body") === body;
const body = (attrs: Record<string, string>, ...children: Element[]) => serialize(xml("body", { xmlns: HTTPBIND, ...attrs }, ...children));

describe("session creation", () => {
  test("the response carries sid, the granted wait and hold, and the stream features", async () => {
    const c = new BoshClient(url, "localhost", 60);
    const created = await c.create();
    assert.ok(created.attrs.sid);
    assert.equal(created.attrs.wait, "5", "wait is capped at bosh_max_wait");
    assert.equal(created.attrs.hold, "1");
    assert.equal(created.attrs.requests, "2");
    assert.equal(created.attrs.inactivity, "2");
    assert.equal(created.attrs["xmpp:version"], "1.0");
    assert.equal(created.attrs.from, "localhost");
    assert.ok(created.attrs.authid);
    const features = await c.next((e) => e.name === "stream:features");
    assert.ok(features.getChild("mechanisms", NS.sasl));
    assert.equal(features.getChild("starttls", NS.tls), undefined);
    await c.end();
  });

  test("a request for an unknown sid is answered with item-not-found", async () => {
    const res = await boshPost(url, body({ sid: "nope", rid: "5" }));
    assert.equal(res.body?.attrs.type, "terminate");
    assert.equal(res.body?.attrs.condition, "item-not-found");
  });

  test("a body that is not XML gets 400, a wrong root a bad-request terminate", async () => {
    assert.equal((await boshPost(url, "<body")).status, 400);
    const res = await boshPost(url, "<stream xmlns='jabber:client' rid='1'/>");
    assert.equal(res.body?.attrs.condition, "bad-request");
  });

  test("CORS: a preflight is answered and responses allow any origin", async () => {
    const pre = await boshPost(url, "", { method: "OPTIONS", headers: { Origin: "http://127.0.0.1:1", "Access-Control-Request-Method": "POST" } });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers["access-control-allow-origin"], "*");
    assert.match(String(pre.headers["access-control-allow-methods"]), /POST/);
    const res = await boshPost(url, body({ sid: "nope", rid: "5" }), { headers: { Origin: "http://127.0.0.1:1" } });
    assert.equal(res.headers["access-control-allow-origin"], "*");
  });

  test("a stream to an unknown domain ends the session with remote-stream-error", async () => {
    const res = await boshPost(url, body({ rid: "10", to: "elsewhere.example", wait: "5", hold: "1", "xmpp:version": "1.0", "xmlns:xmpp": "urn:xmpp:xbosh" }));
    assert.equal(res.body?.attrs.type, "terminate");
    assert.equal(res.body?.attrs.condition, "remote-stream-error");
    assert.ok(res.body?.getChild("error", NS.stream)?.getChild("host-unknown", NS.streams), res.text);
  });
});

describe("a session over BOSH", () => {
  test("logs in with a stream restart and exchanges messages with a TCP client", async () => {
    const alice = new BoshClient(url);
    assert.equal(await alice.login("alice", "bosh"), "alice@localhost/bosh");
    const bob = await t.login("bob");
    alice.send(xml("message", { xmlns: "jabber:client", to: bob.jid!, type: "chat" }, xml("body", {}, "over BOSH")));
    const got = await bob.next(isBody("over BOSH"));
    assert.equal(got.attrs.from, "alice@localhost/bosh");
    // Pushed to the request the client keeps waiting at the server.
    bob.send(xml("message", { to: "alice@localhost/bosh", type: "chat" }, xml("body", {}, "back over TCP")));
    const back = await alice.next(isBody("back over TCP"));
    assert.equal(back.attrs.xmlns, "jabber:client");
    const end = await alice.end();
    assert.equal(end?.attrs.type, "terminate");
    assert.equal(t.server.sessions.resources(parseJid("alice@localhost")).length, 0);
    await bob.close();
  });

  test("requests are handled in rid order, a resent rid gets the same answer, one beyond the window ends the session", async () => {
    const c = new BoshClient(url);
    const created = await c.create();
    const sid = created.attrs.sid;
    await c.next((e) => e.name === "stream:features");
    const r = c.rid;
    // r+1 (a PLAIN auth) arrives before r (empty): it waits for r, then both are handled.
    const auth = xml("auth", { xmlns: NS.sasl, mechanism: "PLAIN" }, Buffer.from("\0alice\0pass-alice").toString("base64"));
    const second = boshPost(url, body({ sid, rid: String(r + 1) }, auth));
    await new Promise((resolve) => setTimeout(resolve, 100));
    const first = await boshPost(url, body({ sid, rid: String(r) }));
    assert.equal(first.body?.attrs.type, undefined);
    const answered = await second;
    assert.ok(answered.body?.getChild("success", NS.sasl), answered.text);
    const again = await boshPost(url, body({ sid, rid: String(r + 1) }, auth));
    assert.equal(again.text, answered.text, "a resent request is answered from the cache");
    const beyond = await boshPost(url, body({ sid, rid: String(r + 10) }));
    assert.equal(beyond.body?.attrs.condition, "item-not-found");
    const after = await boshPost(url, body({ sid, rid: String(r + 2) }));
    assert.equal(after.body?.attrs.condition, "item-not-found");
  });

  test("a held request comes back empty after 'wait' seconds", async () => {
    const c = new BoshClient(url, "localhost", 1);
    await c.create();
    await c.next((e) => e.name === "stream:features");
    const held = await c.post();
    assert.equal(held?.attrs.type, undefined);
    assert.equal(held?.children.length, 0);
    await c.end();
  });

  test("hold='0' is polling: every request is answered at once", async () => {
    const created = await boshPost(url, body({ rid: "100", to: "localhost", wait: "5", hold: "0", "xmpp:version": "1.0", "xmlns:xmpp": "urn:xmpp:xbosh" }));
    assert.equal(created.body?.attrs.hold, "0");
    assert.equal(created.body?.attrs.requests, "1");
    const sid = created.body!.attrs.sid;
    const polled = await boshPost(url, body({ sid, rid: "101" }));
    assert.equal(polled.status, 200);
    assert.equal(polled.body?.children.length, 0);
    const end = await boshPost(url, body({ sid, rid: "102", type: "terminate" }));
    assert.equal(end.body?.attrs.type, "terminate");
  });

  test("a session without requests for 'inactivity' seconds is gone", async () => {
    const c = new BoshClient(url);
    await c.login("alice", "idle");
    c.startPolling = () => {};
    // Stop polling: let the held request come back and send nothing more.
    (c as unknown as { polling: boolean }).polling = false;
    await new Promise((resolve) => setTimeout(resolve, 5000 + 2000 + 1000));
    const res = await boshPost(url, body({ sid: c.sid, rid: String(c.rid) }));
    assert.equal(res.body?.attrs.condition, "item-not-found");
  });
});
