// Interop, RFC 6121 §8.5 (message delivery to local accounts) and RFC 6120 §8.3 (stanza errors):
// chat between a slixmpp user (alice) and an @xmpp/client user (bob), to bare and full JIDs,
// offline storage (XEP-0160) for a contact who is not online, and the <service-unavailable/>
// each library reports for an account that does not exist.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { dirname } from "node:path";
import { startTestServer, type TestServer } from "../support/server.ts";
import { Slix, slixmppAvailable, writeCaFile, type SlixEvent } from "./support/slixmpp.ts";
import { Xjs, xml } from "./support/xmppjs.ts";
import type { Element } from "../../protocol/xml/element.ts";

const NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas";

let t: TestServer;
let caFile: string;
let alice: Slix;
let bob: Xjs;

before(async () => {
  // carol exists but never logs in; nobody@localhost does not exist.
  t = await startTestServer({ users: ["alice", "bob", "carol"] });
  caFile = writeCaFile(t);
});
after(async () => {
  await bob?.stop();
  await alice?.stop();
  await t?.stop();
  if (caFile) rmSync(dirname(caFile), { recursive: true, force: true });
});

const slixMessage = (body: string) => (e: SlixEvent) => e.event === "message" && e.body === body;
const xjsMessage = (body: string) => (el: Element) => el.is("message") && el.getChildText("body") === body;

/** The defined condition of a stanza error as @xmpp/client hands it over. */
function errorCondition(stanza: Element): { type: string | undefined; condition: string | undefined } {
  const error = stanza.getChild("error");
  const condition = error?.children.find((c): c is Element => typeof c !== "string" && c.attrs.xmlns === NS_STANZAS);
  return { type: error?.attrs.type, condition: condition?.name };
}

describe("messages between slixmpp and @xmpp/client", { skip: !slixmppAvailable && "no /usr/bin/python3 with slixmpp" }, () => {
  before(async () => {
    alice = await Slix.online(t, caFile, "alice@localhost/slix");
    bob = await Xjs.online(t, "bob", { resource: "xmppjs" });
    // Bare-JID messages go to available resources only (RFC 6121 §8.5.2.1.1).
    await alice.ok("presence");
    await bob.send(xml("presence"));
    await bob.waitForStanza((el) => el.is("presence") && el.attrs.from === "bob@localhost/xmppjs", "bob's own presence");
    await alice.waitFor((e) => e.event === "presence" && e.frm === "alice@localhost/slix", "alice's own presence");
  });

  test("slixmpp to bob's bare JID, then to his full JID", async () => {
    await alice.ok("message", { to: "bob@localhost", body: "hello bare bob" });
    const bare = await bob.waitForStanza(xjsMessage("hello bare bob"), "the bare-JID message");
    assert.equal(bare.attrs.from, "alice@localhost/slix");
    assert.equal(bare.attrs.type, "chat");
    assert.equal(bare.attrs.to, "bob@localhost");

    await alice.ok("message", { to: "bob@localhost/xmppjs", body: "hello full bob" });
    const full = await bob.waitForStanza(xjsMessage("hello full bob"), "the full-JID message");
    assert.equal(full.attrs.from, "alice@localhost/slix");
    assert.equal(full.attrs.to, "bob@localhost/xmppjs");
  });

  test("@xmpp/client to alice's bare JID, then to her full JID", async () => {
    await bob.send(xml("message", { to: "alice@localhost", type: "chat" }, xml("body", {}, "hi bare alice")));
    const bare = await alice.waitFor(slixMessage("hi bare alice"), "the bare-JID message");
    assert.equal(bare.frm, "bob@localhost/xmppjs");
    assert.equal(bare.type, "chat");

    await bob.send(xml("message", { to: "alice@localhost/slix", type: "chat" }, xml("body", {}, "hi full alice")));
    const full = await alice.waitFor(slixMessage("hi full alice"), "the full-JID message");
    assert.equal(full.frm, "bob@localhost/xmppjs");
    assert.equal(full.to, "alice@localhost/slix");
  });

  test("a chat to a resource that is gone reaches the account's available resource (RFC 6121 §8.5.3.2.1)", async () => {
    await alice.ok("message", { to: "bob@localhost/no-such-resource", body: "anyone there?" });
    const got = await bob.waitForStanza(xjsMessage("anyone there?"), "the redirected chat");
    assert.equal(got.attrs.from, "alice@localhost/slix");
  });

  test("to an offline contact: kept, no error, and delivered in order with a delay stamp when she logs in (XEP-0160)", async () => {
    const a = alice.mark();
    await alice.ok("message", { to: "carol@localhost", body: "are you there, carol?" });
    // Two connections race; let alice's message be stored before bob sends, so order is defined.
    for (let i = 0; i < 100 && (await t.server.storage.offline.count("localhost", "carol")) < 1; i++) await new Promise((r) => setTimeout(r, 50));
    await bob.send(xml("message", { to: "carol@localhost", type: "chat", id: "to-carol" }, xml("body", {}, "carol?")));
    const b = bob.mark();
    const carol = await Xjs.online(t, "carol", { resource: "later" });
    try {
      // Stored messages come with the initial presence (RFC 6121 §4.2, XEP-0160 §3).
      await carol.send(xml("presence", {}));
      const first = await carol.waitForStanza((el) => el.is("message") && el.getChildText("body") === "are you there, carol?", "alice's stored message");
      const second = await carol.waitForStanza((el) => el.is("message") && el.getChildText("body") === "carol?", "bob's stored message");
      assert.equal(first.attrs.from, "alice@localhost/slix");
      assert.equal(second.attrs.from, "bob@localhost/xmppjs");
      for (const m of [first, second]) {
        const delay = m.getChild("delay", "urn:xmpp:delay");
        assert.ok(delay, "stored messages carry a delay stamp");
        assert.equal(delay.attrs.from, "localhost");
        assert.ok(Date.parse(delay.attrs.stamp) <= Date.now());
      }
      assert.equal(carol.stanzas.indexOf(first) < carol.stanzas.indexOf(second), true, "in the order they were sent");
    } finally {
      await carol.stop();
    }
    assert.ok(!alice.events.slice(a).some((e) => e.event === "message" && e.type === "error"), "alice got no error");
    assert.ok(!bob.stanzas.slice(b).some((el) => el.attrs.type === "error" && el.attrs.id === "to-carol"), "bob got no error");
  });

  test("to an account that does not exist: both libraries get service-unavailable", async () => {
    const a = alice.mark();
    await alice.ok("message", { to: "nobody@localhost", body: "hello nobody" });
    const slixError = await alice.waitFor((e) => e.event === "message" && e.type === "error" && e.frm === "nobody@localhost", "slixmpp's error", a);
    assert.equal(slixError.error?.condition, "service-unavailable");

    const b = bob.mark();
    await bob.send(xml("message", { to: "nobody@localhost/res", type: "chat", id: "to-nobody" }, xml("body", {}, "hello?")));
    const xjsError = await bob.waitForStanza((el) => el.is("message") && el.attrs.type === "error" && el.attrs.id === "to-nobody", "@xmpp/client's error", b);
    assert.equal(xjsError.attrs.from, "nobody@localhost/res");
    assert.deepEqual(errorCondition(xjsError), { type: "cancel", condition: "service-unavailable" });
  });
});
