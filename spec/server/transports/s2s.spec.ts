// Federation between two Parley servers (RFC 6120 server-to-server streams, XEP-0220 dialback
// over STARTTLS with self-signed certificates): what users on either side see.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { xml, type Element } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import { capsVer } from "../../../protocol/caps.ts";
import { statusCodes } from "../../../protocol/muc.ts";
import type { XmppClient } from "../../../conformance/client/client.ts";
import type { TestServer } from "../../support/server.ts";
import { accountsOn } from "../../support/accounts.ts";
import { acknowledgedPush, assertError, isPresence, pushedItem } from "../../support/stanzas.ts";
import type { S2sTransport } from "../../../server/transports/s2s/index.ts";
import { TestRoutes, inboundMethods, startFederated } from "./s2s-support.ts";
import { alpnHandshake } from "../../support/tls.ts";

describe("two Parley servers federating with dialback", () => {
  const routes = new TestRoutes();
  let a: TestServer;
  let b: TestServer;
  before(async () => {
    // Without XEP-0288, each direction has its own stream and its own dialback.
    a = await startFederated(routes, { domain: "a.localhost", address: "127.0.0.11", users: ["alice"], s2s: "bidi = false" });
    b = await startFederated(routes, { domain: "b.localhost", address: "127.0.0.12", users: ["bob"], s2s: "bidi = false" });
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
  });
  const onA = accountsOn(() => a);
  const onB = accountsOn(() => b);

  test("a chat message goes from a.localhost to b.localhost and back", async () => {
    const alice = await a.login("alice", { resource: "r" });
    const bob = await b.login("bob", { resource: "r" });
    alice.send(xml("message", { to: "bob@b.localhost/r", type: "chat", id: "m1" }, xml("body", {}, "hello from a")));
    const got = await bob.next((el) => el.name === "message" && el.getChildText("body") === "hello from a");
    assert.equal(got.attrs.from, "alice@a.localhost/r");
    bob.send(xml("message", { to: "alice@a.localhost/r", type: "chat", id: "m2" }, xml("body", {}, "hello from b")));
    const back = await alice.next((el) => el.name === "message" && el.getChildText("body") === "hello from b");
    assert.equal(back.attrs.from, "bob@b.localhost/r");
    // Self-signed certificates: each side proved its domain with dialback (XEP-0220).
    assert.deepEqual(inboundMethods(b, "a.localhost"), ["dialback"]);
    assert.deepEqual(inboundMethods(a, "b.localhost"), ["dialback"]);
  });

  test("a presence subscription across servers: request, approval, roster pushes and presence", async () => {
    const romeo = await onA.account("romeo");
    const juliet = await onB.account("juliet");
    const r = await onA.online(romeo, "r");
    const j = await onB.online(juliet, "j");
    const romeoJid = `${romeo}@a.localhost`;
    const julietJid = `${juliet}@b.localhost`;
    r.send(xml("presence", { to: julietJid, type: "subscribe" }));
    const ask = await acknowledgedPush(r, julietJid);
    assert.equal(pushedItem(ask).attrs.ask, "subscribe");
    const request = await j.next((el) => el.name === "presence" && el.attrs.type === "subscribe");
    assert.equal(request.attrs.from, romeoJid);
    j.send(xml("presence", { to: romeoJid, type: "subscribed" }));
    const approved = await acknowledgedPush(r, julietJid);
    assert.equal(pushedItem(approved).attrs.subscription, "to");
    // RFC 6121 §3.1.5: the new subscriber gets the contact's current presence at once.
    await r.next(isPresence(`${julietJid}/j`, undefined));
    const fromRoster = (await onB.rosterOf(j)).get(romeoJid);
    assert.equal(fromRoster?.attrs.subscription, "from");
  });

  test("a user of a.localhost joins a room of conference.b.localhost and chats with a local occupant", async () => {
    const alice = await a.login("alice", { resource: "muc" });
    const bob = await b.login("bob", { resource: "muc" });
    const room = "federated@conference.b.localhost";
    alice.send(xml("presence", { to: `${room}/Alice` }, xml("x", { xmlns: NS.muc })));
    const created = await alice.next((el) => el.name === "presence" && el.attrs.from === `${room}/Alice`);
    assert.ok(statusCodes(created).includes(201), "the room was created for alice");
    await alice.next((el) => el.name === "message" && el.attrs.from === room && el.getChild("subject") !== undefined);
    const unlocked = await alice.iq(xml("iq", { type: "set", to: room }, xml("query", { xmlns: NS.mucOwner }, xml("x", { xmlns: NS.dataForms, type: "submit" }))));
    assert.equal(unlocked.attrs.type, "result");
    bob.send(xml("presence", { to: `${room}/Bob` }, xml("x", { xmlns: NS.muc })));
    await bob.next((el) => el.name === "presence" && el.attrs.from === `${room}/Bob` && statusCodes(el).includes(110));
    await alice.next((el) => el.name === "presence" && el.attrs.from === `${room}/Bob`);
    bob.send(xml("message", { to: room, type: "groupchat" }, xml("body", {}, "welcome across servers")));
    const said = await alice.next((el) => el.name === "message" && el.attrs.type === "groupchat" && el.getChildText("body") === "welcome across servers");
    // The room's domain was piggybacked (XEP-0220 §2.6) on the stream b.localhost already had to a.localhost.
    assert.deepEqual(inboundMethods(a, "conference.b.localhost"), ["dialback"]);
    assert.equal(said.attrs.from, `${room}/Bob`);
    alice.send(xml("message", { to: room, type: "groupchat" }, xml("body", {}, "thanks")));
    const echoed = await bob.next((el) => el.name === "message" && el.getChildText("body") === "thanks");
    assert.equal(echoed.attrs.from, `${room}/Alice`);
  });

  test("a PEP publication on a.localhost notifies a contact on b.localhost whose caps ask for it", async () => {
    const node = "urn:example:federated-mood";
    const romeo = await onA.account("romeo");
    const juliet = await onB.account("juliet");
    const romeoJid = `${romeo}@a.localhost`;
    const julietJid = `${juliet}@b.localhost`;
    await onA.setSubscription(romeo, julietJid, "both");
    await onB.setSubscription(juliet, romeoJid, "both");
    const r = await onA.online(romeo, "r");
    const j = await onB.connected(juliet, "j");
    const features = [NS.discoInfo, NS.caps, `${node}+notify`];
    answerDisco(j, features);
    const ver = capsVer({ identities: IDENTITY, features });
    j.send(xml("presence", {}, xml("c", { xmlns: NS.caps, hash: "sha-1", node: "https://parley.test/client", ver })));
    // Romeo's server learns juliet's presence (and, from her caps, her interest) over s2s.
    await r.next(isPresence(`${julietJid}/j`, undefined));
    let event: Element | undefined;
    for (let attempt = 0; attempt < 20 && !event; attempt++) {
      const published = await r.iq(xml("iq", { type: "set" }, xml("pubsub", { xmlns: NS.pubsub }, xml("publish", { node }, xml("item", { id: `v${attempt}` }, xml("mood", { xmlns: "urn:example:mood" }, "happy"))))));
      assert.equal(published.attrs.type, "result");
      event = await j.next((el) => el.name === "message" && el.attrs.from === romeoJid && el.getChild("event", NS.pubsubEvent) !== undefined, 1000).catch(() => undefined);
    }
    assert.ok(event, "juliet was notified");
    assert.equal(event.getChild("event", NS.pubsubEvent)!.getChild("items")!.attrs.node, node);
  });

  test("a chat message between servers is archived by MAM on both sides", async () => {
    const alice = await a.login("alice", { resource: "mam" });
    const bob = await b.login("bob", { resource: "mam" });
    const body = `archived ${Date.now()}`;
    alice.send(xml("message", { to: "bob@b.localhost/mam", type: "chat" }, xml("body", {}, body)));
    await bob.next((el) => el.name === "message" && el.getChildText("body") === body);
    assert.ok((await archivedBodies(alice)).includes(body), "the sender's archive has it");
    assert.ok((await archivedBodies(bob)).includes(body), "the recipient's archive has it");
  });

  test("a message to a domain nobody can reach bounces with remote-server-not-found", async () => {
    const alice = await a.login("alice", { resource: "bounce" });
    alice.send(xml("message", { to: "someone@nowhere.localhost", type: "chat", id: "lost" }, xml("body", {}, "anyone?")));
    const reply = await alice.next((el) => el.name === "message" && el.attrs.id === "lost");
    assertError(reply, "remote-server-not-found");
  });
});

const IDENTITY = [{ category: "client", type: "pc", name: "Spec" }];

/** Answers disco#info about our caps node, as a client must (XEP-0115 §6.2). */
function answerDisco(c: XmppClient, features: string[]): void {
  void (async () => {
    for (let i = 0; i < 100 && !c.closed; i++) {
      let iq: Element;
      try {
        iq = await c.next((el) => el.name === "iq" && el.attrs.type === "get" && el.getChild("query", NS.discoInfo) !== undefined, 60_000);
      } catch {
        return;
      }
      const node = iq.getChild("query", NS.discoInfo)!.attrs.node;
      c.send(xml("iq", { type: "result", id: iq.attrs.id, to: iq.attrs.from }, xml("query", { xmlns: NS.discoInfo, node },
        ...IDENTITY.map((id) => xml("identity", id)), ...features.map((f) => xml("feature", { var: f })))));
    }
  })();
}

/** The bodies of the last messages in the user's archive (XEP-0313). */
async function archivedBodies(c: XmppClient): Promise<string[]> {
  const queryid = `q${Math.random().toString(36).slice(2)}`;
  const fin = await c.iq(xml("iq", { type: "set" }, xml("query", { xmlns: NS.mam, queryid }, xml("set", { xmlns: NS.rsm }, xml("before", {}), xml("max", {}, "20")))));
  assert.equal(fin.attrs.type, "result");
  const bodies: string[] = [];
  for (let i = 0; i < 20; i++) {
    const result = c.inbox.findIndex((el) => el.getChild("result", NS.mam)?.attrs.queryid === queryid);
    if (result < 0) break;
    const [el] = c.inbox.splice(result, 1);
    const body = el.getChild("result", NS.mam)?.getChild("forwarded", NS.forward)?.getChild("message")?.getChildText("body");
    if (body) bodies.push(body);
  }
  return bodies;
}

function s2sOf(t: TestServer): S2sTransport {
  return t.server.transports.find((x): x is S2sTransport => x.name === "s2s")!;
}

describe("Direct TLS, several addresses, queued order and idle streams", () => {
  const routes = new TestRoutes();
  let p: TestServer;
  let q: TestServer;
  before(async () => {
    p = await startFederated(routes, { domain: "p.localhost", address: "127.0.0.31", users: ["pat"], s2s: "idle_timeout_s = 1" });
    q = await startFederated(routes, { domain: "q.localhost", address: "127.0.0.32", users: ["quinn"], s2s: "direct_tls_port = 5270" });
    // XEP-0368 first; an address that refuses connections comes before it and is skipped.
    routes.routes.set("q.localhost", [
      { host: "127.0.0.33", port: 1, directTls: false },
      { host: "127.0.0.32", port: q.s2sPorts[1], directTls: true },
    ]);
  });
  after(async () => {
    await p?.stop();
    await q?.stop();
  });

  test("stanzas sent while the first stream is being set up arrive in order over Direct TLS", async () => {
    const pat = await p.login("pat", { resource: "r" });
    const quinn = await q.login("quinn", { resource: "r" });
    for (let i = 0; i < 30; i++) pat.send(xml("message", { to: "quinn@q.localhost/r", type: "chat" }, xml("body", {}, `n${i}`)));
    const got: string[] = [];
    for (let i = 0; i < 30; i++) got.push((await quinn.next((el) => el.name === "message" && el.getChildText("body")?.startsWith("n") === true)).getChildText("body")!);
    assert.deepEqual(got, Array.from({ length: 30 }, (_, i) => `n${i}`));
    const inbound = [...s2sOf(q).inbound].find((st) => st.methods.has("p.localhost"));
    assert.ok(inbound?.secure, "the stream is encrypted");
  });

  test("the Direct TLS listener (XEP-0368) chooses ALPN xmpp-server when offered, serves a peer without ALPN, refuses one offering only others", async () => {
    const handshake = (protocols?: string[]) => alpnHandshake("127.0.0.32", q.s2sPorts[1]!, "q.localhost", protocols);
    assert.deepEqual(await handshake(["xmpp-client", "xmpp-server"]), { protocol: "xmpp-server" });
    assert.deepEqual(await handshake(), { protocol: false });
    const refused = await handshake(["xmpp-client"]);
    assert.ok("error" in refused && /NO_APPLICATION_PROTOCOL/i.test(refused.error), JSON.stringify(refused));
  });

  test("an idle stream is closed, and the next stanza opens a new one", async () => {
    const pat = await p.login("pat", { resource: "idle" });
    const quinn = await q.login("quinn", { resource: "idle" });
    pat.send(xml("message", { to: "quinn@q.localhost/idle", type: "chat" }, xml("body", {}, "before")));
    await quinn.next((el) => el.getChildText("body") === "before");
    const link = () => s2sOf(p).links.get("q.localhost");
    for (let i = 0; i < 50 && link()?.stream; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(link()?.stream ?? null, null, "the idle stream was closed");
    pat.send(xml("message", { to: "quinn@q.localhost/idle", type: "chat" }, xml("body", {}, "after")));
    await quinn.next((el) => el.getChildText("body") === "after");
  });
});

describe("bidirectional streams (XEP-0288)", () => {
  const routes = new TestRoutes();
  let x: TestServer;
  let y: TestServer;
  before(async () => {
    x = await startFederated(routes, { domain: "x.localhost", address: "127.0.0.35", users: ["xena"] });
    y = await startFederated(routes, { domain: "y.localhost", address: "127.0.0.36", users: ["yves"] });
  });
  after(async () => {
    await x?.stop();
    await y?.stop();
  });

  test("the answer travels back on the stream the first server opened", async () => {
    const xena = await x.login("xena", { resource: "r" });
    const yves = await y.login("yves", { resource: "r" });
    xena.send(xml("message", { to: "yves@y.localhost/r", type: "chat" }, xml("body", {}, "one stream")));
    await yves.next((el) => el.getChildText("body") === "one stream");
    yves.send(xml("message", { to: "xena@x.localhost/r", type: "chat" }, xml("body", {}, "both ways")));
    const back = await xena.next((el) => el.getChildText("body") === "both ways");
    assert.equal(back.attrs.from, "yves@y.localhost/r");
    assert.deepEqual(inboundMethods(y, "x.localhost"), ["dialback"]);
    // y.localhost never authenticated a stream of its own to x.localhost: its stanza used x's.
    assert.deepEqual(inboundMethods(x, "y.localhost"), []);
    assert.equal(s2sOf(y).links.get("x.localhost")?.hasBidi, true);
  });
});
