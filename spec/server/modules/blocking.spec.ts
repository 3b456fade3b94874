// End-to-end specs for server/modules/blocking: XEP-0191 1.3 (Blocking Command) as two users'
// clients see it: the blocklist and its pushes, and what happens to stanzas either way.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startTestServer, type TestServer } from "../../support/server.ts";
import { accountsOn } from "../../support/accounts.ts";
import { assertError, isPresence } from "../../support/stanzas.ts";
import { xml, type Element } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import { parseStanzaError } from "../../../protocol/errors.ts";
import type { XmppClient } from "../../../conformance/client/client.ts";
import roster from "../../../server/modules/roster/index.ts";
import presence from "../../../server/modules/presence/index.ts";
import message from "../../../server/modules/message/index.ts";
import disco from "../../../server/modules/disco/index.ts";
import ping from "../../../server/modules/ping/index.ts";
import blocking from "../../../server/modules/blocking/index.ts";

let t: TestServer;
before(async () => {
  t = await startTestServer({ modules: [ping, roster, presence, message, disco, blocking] });
});
after(async () => {
  await t.stop();
});

const { account, bare, online, connected, setSubscription, settle } = accountsOn(() => t);

async function blocklist(c: XmppClient): Promise<string[]> {
  const r = await c.iq(xml("iq", { type: "get" }, xml("blocklist", { xmlns: NS.blocking })));
  assert.equal(r.attrs.type, "result");
  return r.getChild("blocklist", NS.blocking)!.getChildren("item").map((i) => i.attrs.jid).sort();
}

async function block(c: XmppClient, ...jids: string[]): Promise<Element> {
  return c.iq(xml("iq", { type: "set" }, xml("block", { xmlns: NS.blocking }, ...jids.map((jid) => xml("item", { jid })))));
}

async function unblock(c: XmppClient, ...jids: string[]): Promise<Element> {
  return c.iq(xml("iq", { type: "set" }, xml("unblock", { xmlns: NS.blocking }, ...jids.map((jid) => xml("item", { jid })))));
}

function isBlockingPush(name: "block" | "unblock") {
  return (el: Element) => el.name === "iq" && el.attrs.type === "set" && el.getChild(name, NS.blocking) !== undefined;
}

function pushedJids(push: Element): string[] {
  return push.getChildElements()[0]!.getChildren("item").map((i) => i.attrs.jid).sort();
}

/** Two accounts with a mutual subscription, each with one available resource. */
async function friends(): Promise<{ romeo: string; juliet: string; r: XmppClient; j: XmppClient }> {
  const romeo = await account("romeo");
  const juliet = await account("juliet");
  await setSubscription(romeo, juliet, "both");
  await setSubscription(juliet, romeo, "both");
  const r = await online(romeo, "phone");
  const j = await online(juliet, "balcony");
  await r.next(isPresence(j.jid!, undefined));
  await j.next(isPresence(r.jid!, undefined));
  return { romeo, juliet, r, j };
}

describe("the blocklist (XEP-0191 §3.1-§3.5)", () => {
  test("the server advertises urn:xmpp:blocking", async () => {
    const c = await t.login(await account("disco"));
    const r = await c.iq(xml("iq", { type: "get", to: t.domain }, xml("query", { xmlns: NS.discoInfo })));
    const features = r.getChild("query", NS.discoInfo)!.getChildren("feature").map((f) => f.attrs.var);
    assert.ok(features.includes(NS.blocking));
  });

  test("blocking, listing and unblocking, with pushes to every resource that asked", async () => {
    const juliet = await account("juliet");
    const a = await connected(juliet, "a");
    const b = await connected(juliet, "b");
    assert.deepEqual(await blocklist(a), []);

    const r = await block(a, "romeo@example.net", "tybalt@localhost/sword");
    assert.equal(r.attrs.type, "result");
    for (const c of [a, b]) assert.deepEqual(pushedJids(await c.next(isBlockingPush("block"))), ["romeo@example.net", "tybalt@localhost/sword"]);
    assert.deepEqual(await blocklist(b), ["romeo@example.net", "tybalt@localhost/sword"]);

    // Blocking what is already blocked changes nothing and pushes nothing.
    assert.equal((await block(a, "romeo@example.net")).attrs.type, "result");
    assert.ok(await b.nothing(isBlockingPush("block")));

    assert.equal((await unblock(b, "romeo@example.net")).attrs.type, "result");
    for (const c of [a, b]) assert.deepEqual(pushedJids(await c.next(isBlockingPush("unblock"))), ["romeo@example.net"]);
    assert.deepEqual(await blocklist(a), ["tybalt@localhost/sword"]);
  });

  test("an unblock with no items empties the list and is pushed with no items (§3.5)", async () => {
    const juliet = await account("juliet");
    const a = await connected(juliet);
    await block(a, "a@example.net", "b@example.net");
    await a.next(isBlockingPush("block"));
    assert.equal((await unblock(a)).attrs.type, "result");
    const push = await a.next(isBlockingPush("unblock"));
    assert.deepEqual(pushedJids(push), []);
    assert.deepEqual(await blocklist(a), []);
  });

  test("the blocklist is kept across sessions and in the module store", async () => {
    const juliet = await account("juliet");
    const a = await connected(juliet);
    await block(a, "romeo@example.net");
    await a.close();
    const again = await connected(juliet);
    assert.deepEqual(await blocklist(again), ["romeo@example.net"]);
    assert.deepEqual(await t.server.storage.kv.get("blocking", t.domain, juliet, "blocklist"), ["romeo@example.net"]);
  });

  test("a block with no items is a bad request; a bad JID is jid-malformed", async () => {
    const a = await connected(await account("juliet"));
    assertError(await block(a), "bad-request");
    assertError(await block(a, "@@bad"), "jid-malformed");
    assert.deepEqual(await blocklist(a), []);
  });

  test("nobody else can read an account's blocklist", async () => {
    const juliet = await account("juliet");
    const romeo = await connected(await account("romeo"));
    const r = await romeo.iq(xml("iq", { type: "get", to: bare(juliet) }, xml("blocklist", { xmlns: NS.blocking })));
    assertError(r, "service-unavailable");
  });
});

describe("enforcement (XEP-0191 §3.3, §6)", () => {
  test("a blocked contact's messages and IQs bounce with service-unavailable, presence vanishes", async () => {
    const { juliet, r, j } = await friends();
    await block(j, r.jid!.split("/")[0]!);
    await j.next(isBlockingPush("block"));

    r.send(xml("message", { to: bare(juliet), type: "chat", id: "m1" }, xml("body", {}, "hello?")));
    const bounced = await r.next((el) => el.name === "message" && el.attrs.id === "m1");
    assertError(bounced, "service-unavailable");

    const iq = await r.iq(xml("iq", { type: "get", to: j.jid! }, xml("ping", { xmlns: NS.ping })));
    assertError(iq, "service-unavailable");

    r.send(xml("presence", { to: j.jid! }, xml("status", {}, "directed")));
    r.send(xml("presence", {}, xml("status", {}, "broadcast")));
    await settle(r);
    assert.ok(await j.nothing((el) => el.name === "message" || el.name === "iq" || (el.name === "presence" && el.attrs.from?.startsWith("romeo") === true)));
    // Romeo sees no error for his presence (§3.3: presence is never answered).
    assert.ok(await r.nothing((el) => el.name === "presence" && el.attrs.type === "error"));
  });

  test("the blocker's own stanzas to a blocked JID get not-acceptable with <blocked/>", async () => {
    const { romeo, r, j } = await friends();
    await block(j, bare(romeo));
    j.send(xml("message", { to: bare(romeo), type: "chat", id: "m2" }, xml("body", {}, "sorry")));
    const reply = await j.next((el) => el.name === "message" && el.attrs.id === "m2");
    const error = parseStanzaError(reply);
    assert.equal(error?.condition, "not-acceptable");
    assert.equal(error?.appSpecific?.getName(), "blocked");
    assert.equal(error?.appSpecific?.getNS(), NS.blockingErrors);

    const iq = await j.iq(xml("iq", { type: "get", to: r.jid! }, xml("ping", { xmlns: NS.ping })));
    assert.equal(parseStanzaError(iq)?.condition, "not-acceptable");
    assert.ok(await r.nothing((el) => el.name === "message" || el.name === "iq"));
  });

  test("blocking sends unavailable to the contact; while blocked nothing passes; unblocking restores presence both ways", async () => {
    const { romeo, r, j } = await friends();
    await block(j, bare(romeo));
    // §3.3: the contact sees the user go offline.
    await r.next(isPresence(j.jid!, "unavailable"));

    // Neither side's presence reaches the other while the block stands.
    j.send(xml("presence", {}, xml("status", {}, "hidden")));
    r.send(xml("presence", {}, xml("status", {}, "invisible to juliet")));
    await settle(j);
    await settle(r);
    assert.ok(await r.nothing((el) => el.name === "presence" && el.attrs.from === j.jid));
    assert.ok(await j.nothing((el) => el.name === "presence" && el.attrs.from === r.jid));

    // §3.4: on unblock the contact gets the current presence, and the user learns the contact's.
    await unblock(j, bare(romeo));
    const back = await r.next(isPresence(j.jid!, undefined));
    assert.equal(back.getChildText("status"), "hidden");
    const contact = await j.next(isPresence(r.jid!, undefined));
    assert.equal(contact.getChildText("status"), "invisible to juliet");
  });

  test("a full-JID item blocks that resource only (§6)", async () => {
    const { juliet, romeo, j } = await friends();
    const laptop = await online(romeo, "laptop");
    const phoneJid = `${bare(romeo)}/phone`;
    await block(j, phoneJid);
    const phone = await t.login(romeo, { resource: "phone" }).catch(() => null);
    assert.ok(phone);

    laptop.send(xml("message", { to: bare(juliet), type: "chat", id: "ok" }, xml("body", {}, "from the laptop")));
    const got = await j.next((el) => el.name === "message" && el.attrs.id === "ok");
    assert.equal(got.getChildText("body"), "from the laptop");

    phone.send(xml("message", { to: bare(juliet), type: "chat", id: "no" }, xml("body", {}, "from the phone")));
    assertError(await phone.next((el) => el.name === "message" && el.attrs.id === "no"), "service-unavailable");
  });

  test("a domain item blocks every JID at that domain (§6)", async () => {
    const { juliet, r, j } = await friends();
    await block(j, "example.org");
    // A JID at another domain still works: Romeo's own server is not blocked.
    r.send(xml("message", { to: bare(juliet), type: "chat", id: "d1" }, xml("body", {}, "still here")));
    await j.next((el) => el.name === "message" && el.attrs.id === "d1");
    j.send(xml("message", { to: "someone@example.org", type: "chat", id: "d2" }, xml("body", {}, "hi")));
    const reply = await j.next((el) => el.name === "message" && el.attrs.id === "d2");
    assert.equal(parseStanzaError(reply)?.condition, "not-acceptable");
  });
});
