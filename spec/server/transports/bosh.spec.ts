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
import { XmppClient } from "../../../conformance/client/client.ts";

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

/** Creates a session with raw requests; resolves with its sid, the first rid and the creation response. */
async function rawSession(extra: Record<string, string> = {}, rid = 5000): Promise<{ sid: string; rid: number; created: Element }> {
  const res = await boshPost(url, body({ rid: String(rid), to: "localhost", wait: "5", hold: "1", ver: "1.6", "xmpp:version": "1.0", "xmlns:xmpp": "urn:xmpp:xbosh", ...extra }));
  assert.ok(res.body?.attrs.sid, res.text);
  return { sid: res.body.attrs.sid, rid, created: res.body };
}

/** A raw session logged in as alice (PLAIN, restart, bind), one request at a time; rid is the last one used. */
async function rawLogin(extra: Record<string, string> = {}, first = 6000): Promise<{ sid: string; rid: number; created: Element }> {
  const { sid, rid, created } = await rawSession(extra, first);
  const plain = xml("auth", { xmlns: NS.sasl, mechanism: "PLAIN" }, Buffer.from("\0alice\0pass-alice").toString("base64"));
  const auth = await boshPost(url, body({ sid, rid: String(rid + 1) }, plain));
  assert.ok(auth.body?.getChild("success", NS.sasl), auth.text);
  const restart = await boshPost(url, body({ sid, rid: String(rid + 2), "xmpp:restart": "true", "xmlns:xmpp": "urn:xmpp:xbosh" }));
  assert.ok(restart.body?.getChild("features", NS.stream), restart.text);
  const bind = await boshPost(url, body({ sid, rid: String(rid + 3) }, xml("iq", { xmlns: "jabber:client", type: "set", id: "b" }, xml("bind", { xmlns: NS.bind }))));
  assert.ok(bind.body?.getChild("iq"), bind.text);
  return { sid, rid: rid + 3, created };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const ping = (id: string) => xml("iq", { xmlns: "jabber:client", type: "get", id, to: "localhost" }, xml("ping", { xmlns: NS.ping }));

describe("overactivity (XEP-0124 §11, §12)", () => {
  test("more simultaneous requests than 'requests' end the session with policy-violation", async () => {
    const { sid, rid, created } = await rawSession();
    assert.equal(created.attrs.requests, "2");
    // rid+1 is held; rid+3 (within the window) waits for rid+2; rid+2 makes three unanswered.
    const held = boshPost(url, body({ sid, rid: String(rid + 1) }));
    await sleep(100);
    const early = boshPost(url, body({ sid, rid: String(rid + 3) }, ping("o1")));
    await sleep(100);
    const third = await boshPost(url, body({ sid, rid: String(rid + 2) }, ping("o2")));
    assert.equal(third.body?.attrs.type, "terminate", third.text);
    assert.equal(third.body?.attrs.condition, "policy-violation", third.text);
    assert.equal((await held).body?.attrs.type, "terminate");
    assert.equal((await early).body?.attrs.type, "terminate");
    const after = await boshPost(url, body({ sid, rid: String(rid + 4) }));
    assert.equal(after.body?.attrs.condition, "item-not-found", "the session is gone");
  });

  test("a pause or a terminate may be the one request too many", async () => {
    const { sid, rid } = await rawSession();
    const held = boshPost(url, body({ sid, rid: String(rid + 1) }));
    await sleep(100);
    const early = boshPost(url, body({ sid, rid: String(rid + 3) }, ping("t1")));
    await sleep(100);
    const end = await boshPost(url, body({ sid, rid: String(rid + 2), type: "terminate" }));
    assert.equal(end.body?.attrs.type, "terminate");
    assert.equal(end.body?.attrs.condition, undefined, end.text);
    await held;
    await early;
  });

  test("an empty request that fills the window sooner than 'polling' seconds after the last one is refused", async () => {
    const { sid, rid, created } = await rawSession();
    assert.equal(created.attrs.polling, "2");
    const held = boshPost(url, body({ sid, rid: String(rid + 1) }));
    await sleep(100);
    const second = await boshPost(url, body({ sid, rid: String(rid + 2) }));
    assert.equal(second.body?.attrs.condition, "policy-violation", second.text);
    assert.equal((await held).body?.attrs.type, "terminate");
  });

  test("the same two empty requests 'polling' seconds apart are fine", async () => {
    const { sid, rid } = await rawSession();
    const held = boshPost(url, body({ sid, rid: String(rid + 1) }));
    await sleep(2100);
    const second = boshPost(url, body({ sid, rid: String(rid + 2) }));
    const first = await held;
    assert.equal(first.body?.attrs.type, undefined, first.text);
    const end = await boshPost(url, body({ sid, rid: String(rid + 3), type: "terminate" }));
    assert.equal(end.body?.attrs.condition, undefined, end.text);
    await second;
  });

  test("a polling session (hold='0') that polls faster than 'polling' is ended; at the allowed pace it lives", async () => {
    const { sid, rid } = await rawSession({ hold: "0" });
    assert.equal((await boshPost(url, body({ sid, rid: String(rid + 1) }))).body?.attrs.type, undefined);
    await sleep(2100);
    assert.equal((await boshPost(url, body({ sid, rid: String(rid + 2) }))).body?.attrs.type, undefined, "one poll every 2 s is allowed");
    const tooSoon = await boshPost(url, body({ sid, rid: String(rid + 3) }));
    assert.equal(tooSoon.body?.attrs.condition, "policy-violation", tooSoon.text);
  });

});

describe("acknowledgements (XEP-0124 §9)", () => {
  test("without 'ack' in the creation request, responses carry none", async () => {
    const { sid, rid, created } = await rawSession();
    assert.equal(created.attrs.ack, undefined);
    const held = boshPost(url, body({ sid, rid: String(rid + 1) }));
    await sleep(100);
    const second = boshPost(url, body({ sid, rid: String(rid + 2) }, ping("a0")));
    assert.equal((await held).body?.attrs.ack, undefined);
    await second;
    await boshPost(url, body({ sid, rid: String(rid + 3), type: "terminate" }));
  });

  test("the creation response acknowledges its rid; a held request answered after a newer one arrived acknowledges that one", async () => {
    const { sid, rid, created } = await rawLogin({ ack: "1" });
    assert.equal(created.attrs.ack, String(rid - 3), "the creation request's rid");
    const held = boshPost(url, body({ sid, rid: String(rid + 1) }));
    await sleep(100);
    const second = boshPost(url, body({ sid, rid: String(rid + 2) }, ping("a1")));
    const first = await held;
    assert.equal(first.body?.attrs.ack, String(rid + 2), first.text);
    const answered = await second;
    assert.equal(answered.body?.attrs.ack, undefined, "no ack equal to the rid answered");
    assert.ok(answered.body?.getChild("iq"), answered.text);
    await boshPost(url, body({ sid, rid: String(rid + 3), type: "terminate" }));
  });

  test("an 'ack' that shows a lost response gets 'report' and 'time' at once; the lost response can be fetched again", async () => {
    const { sid, rid } = await rawLogin({ ack: "1" });
    const lost = await boshPost(url, body({ sid, rid: String(rid + 1) }, ping("a2")));
    assert.ok(lost.body?.getChild("iq"), lost.text);
    await sleep(50);
    // The client says it has only the creation response: rid+1's answer went missing.
    const started = Date.now();
    const reported = await boshPost(url, body({ sid, rid: String(rid + 2), ack: String(rid) }));
    assert.ok(Date.now() - started < 2000, "answered at once, not after 'wait'");
    assert.equal(reported.body?.attrs.report, String(rid + 1), reported.text);
    assert.ok(Number(reported.body?.attrs.time) >= 50, reported.text);
    const again = await boshPost(url, body({ sid, rid: String(rid + 1) }, ping("a2")));
    assert.equal(again.text, lost.text, "the missing response is resent");
    // An ack of everything trims the cache: no report, and a resend of rid+1 is no longer possible.
    const held = boshPost(url, body({ sid, rid: String(rid + 3), ack: String(rid + 2) }));
    await sleep(100);
    const next = boshPost(url, body({ sid, rid: String(rid + 4) }, ping("a3")));
    assert.equal((await held).body?.attrs.report, undefined);
    await next;
    const gone = await boshPost(url, body({ sid, rid: String(rid + 1) }));
    assert.equal(gone.body?.attrs.condition, "item-not-found", gone.text);
  });
});

describe("pause (XEP-0124 §10)", () => {
  test("maxpause is advertised; a pause answers every held request at once, its own without payloads", async () => {
    const { sid, rid, created } = await rawLogin();
    assert.equal(created.attrs.maxpause, "120");
    const held = boshPost(url, body({ sid, rid: String(rid + 1) }));
    await sleep(100);
    const started = Date.now();
    const paused = await boshPost(url, body({ sid, rid: String(rid + 2), pause: "4" }));
    const first = await held;
    assert.ok(Date.now() - started < 1500, "both answered at once, not after 'wait'");
    assert.equal(paused.body?.attrs.type, undefined, paused.text);
    assert.equal(paused.body?.getChildElements().length, 0);
    assert.equal(first.body?.attrs.type, undefined);
    // inactivity is 2 s; the pause keeps the session for 4.
    await sleep(3000);
    const back = boshPost(url, body({ sid, rid: String(rid + 3) }, ping("z1")));
    const res = await back;
    assert.equal(res.body?.attrs.type, undefined, res.text);
    assert.ok(res.body?.getChild("iq"), res.text);
    // The next request ended the pause: 2 s of silence now lose the session.
    await sleep(2600);
    const lost = await boshPost(url, body({ sid, rid: String(rid + 4) }));
    assert.equal(lost.body?.attrs.condition, "item-not-found", lost.text);
  });

  test("a pause longer than maxpause ends the session with policy-violation", async () => {
    const { sid, rid } = await rawSession();
    const res = await boshPost(url, body({ sid, rid: String(rid + 1), pause: "121" }));
    assert.equal(res.body?.attrs.condition, "policy-violation", res.text);
  });
});

describe("channel binding over BOSH", () => {
  test("over HTTPS no SCRAM-*-PLUS is offered and a -PLUS attempt fails: the TLS connection is not the session's", async () => {
    const https = `https://127.0.0.1:${t.httpsPort}/http-bind`;
    const res = await boshPost(https, body({ rid: "7000", to: "localhost", wait: "5", hold: "1", ver: "1.6", "xmpp:version": "1.0", "xmlns:xmpp": "urn:xmpp:xbosh" }), { ca: t.ca });
    assert.equal(res.body?.attrs.secure, "true");
    const features = res.body?.getChild("features", NS.stream);
    const mechanisms = features?.getChild("mechanisms", NS.sasl)?.getChildren("mechanism").map((m) => m.getText()) ?? [];
    assert.ok(mechanisms.includes("SCRAM-SHA-256"), mechanisms.join(" "));
    assert.deepEqual(mechanisms.filter((m) => m.endsWith("-PLUS")), []);
    assert.equal(features?.getChild("sasl-channel-binding", NS.saslChannelBinding), undefined);
    const sid = res.body!.attrs.sid;
    // A client that binds anyway (gs2 header p=tls-exporter) is refused.
    const first = Buffer.from("p=tls-exporter,,n=alice,r=abcdefghijklmnop").toString("base64");
    const auth = await boshPost(https, body({ sid, rid: "7001" }, xml("auth", { xmlns: NS.sasl, mechanism: "SCRAM-SHA-256-PLUS" }, first)), { ca: t.ca });
    const failure = auth.body?.getChild("failure", NS.sasl);
    assert.ok(failure, auth.text);
    // Over the c2s port with Direct TLS they are offered: there the channel is the stream's own.
    const tcp = await XmppClient.connect({ host: t.host, port: t.directTlsPort, domain: t.domain, ca: t.ca, directTls: true });
    assert.ok(tcp.mechanisms().some((m) => m.endsWith("-PLUS")), tcp.mechanisms().join(" "));
    await tcp.close();
  });
});

describe("polling sessions", () => {
  test("wait='0' asks for polling as hold='0' does: requests are answered at once", async () => {
    const res = await boshPost(url, body({ rid: "8000", to: "localhost", wait: "0", hold: "1", ver: "1.6", "xmpp:version": "1.0", "xmlns:xmpp": "urn:xmpp:xbosh" }));
    assert.equal(res.body?.attrs.hold, "0", res.text);
    assert.equal(res.body?.attrs.requests, "1");
    assert.equal(res.body?.attrs.inactivity, "6", "a polling session gets 2 × 'polling' more inactivity");
    const sid = res.body!.attrs.sid;
    const started = Date.now();
    const polled = await boshPost(url, body({ sid, rid: "8001" }));
    assert.ok(Date.now() - started < 1000);
    assert.equal(polled.body?.attrs.type, undefined, polled.text);
  });
});
