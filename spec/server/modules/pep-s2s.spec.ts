// PEP (XEP-0163 1.2) and PubSub (XEP-0060 1.26.0) across federation: two Parley servers on
// loopback (127.0.0.61-62, static routes, no DNS) with users on each side. What a user of
// pa.localhost sees of a contact on pb.localhost: notifications filtered by the caps (XEP-0115)
// of each of her resources, resolved by pb.localhost over s2s; the last items when she comes
// online or her subscription is approved; OMEMO bundles (XEP-0384) fetched with an IQ across
// s2s; the access models' errors, with their pubsub#errors conditions, after the s2s hop; and
// a node of pb.localhost's pubsub.pb.localhost service she subscribes to from her server.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { xml, type Element } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import { parseStanzaError } from "../../../protocol/errors.ts";
import type { XmppClient } from "../../../conformance/client/client.ts";
import type { TestServer } from "../../support/server.ts";
import { accountsOn } from "../../support/accounts.ts";
import { acknowledgedPush, assertError, isPresence } from "../../support/stanzas.ts";
import { TestRoutes, startFederated } from "../transports/s2s-support.ts";
import { eventItem, fetchItems, isEvent, onlineWithCaps, publish } from "./pep-helpers.ts";

const A = "pa.localhost";
const B = "pb.localhost";
const SERVICE = `pubsub.${B}`;
const DEVICES = "eu.siacs.conversations.axolotl.devicelist";
const BUNDLE = (id: number) => `eu.siacs.conversations.axolotl.bundles:${id}`;
const OPEN = { "pubsub#access_model": "open" };

const routes = new TestRoutes();
let a: TestServer;
let b: TestServer;
before(async () => {
  a = await startFederated(routes, { domain: A, address: "127.0.0.61" });
  b = await startFederated(routes, { domain: B, address: "127.0.0.62", toml: "\n[modules.pep]\npubsub_service = true\n" });
});
after(async () => {
  await a?.stop();
  await b?.stop();
});
const onA = accountsOn(() => a);
const onB = accountsOn(() => b);

function deviceList(...ids: number[]): Element {
  return xml("list", { xmlns: NS.omemoLegacy }, ...ids.map((id) => xml("device", { id: String(id) })));
}

function avatarMetadata(id: string): Element {
  return xml("metadata", { xmlns: NS.avatarMetadata }, xml("info", { id, bytes: "3", type: "image/png" }));
}

/** `from` asks `to` for a presence subscription and `to` approves it, over s2s (RFC 6121 §3.1). */
async function subscribe(from: XmppClient, to: XmppClient): Promise<void> {
  const fromBare = from.jid!.split("/")[0]!;
  const toBare = to.jid!.split("/")[0]!;
  from.send(xml("presence", { to: toBare, type: "subscribe" }));
  await acknowledgedPush(from, toBare);
  await to.next((el) => el.name === "presence" && el.attrs.type === "subscribe" && el.attrs.from === fromBare);
  to.send(xml("presence", { to: fromBare, type: "subscribed" }));
  await acknowledgedPush(to, fromBare);
  // §3.1.6: the approval reaches the subscriber's server, which pushes the new state.
  const approved = await acknowledgedPush(from, toBare);
  assert.equal(approved.getChild("query", NS.roster)!.getChild("item")!.attrs.subscription === "none", false);
}

function errorOf(reply: Element): { condition: string | undefined; app: string | undefined } {
  const e = parseStanzaError(reply);
  return { condition: e?.condition, app: e?.appSpecific?.getNS() === NS.pubsubErrors ? e.appSpecific.getName() : undefined };
}

function items(c: XmppClient, owner: string, node: string, ids: string[] = []): Promise<Element> {
  return c.iq(xml("iq", { type: "get", to: owner }, xml("pubsub", { xmlns: NS.pubsub }, xml("items", { node }, ...ids.map((id) => xml("item", { id }))))));
}

describe("PEP between a contact on pa.localhost and an account on pb.localhost", () => {
  test("after a mutual subscription over s2s, each resource gets only the nodes its caps ask for", async () => {
    const alice = await onA.account("alice");
    const bob = await onB.account("bob");
    const aliceJid = `${alice}@${A}`;
    const bobJid = `${bob}@${B}`;
    const bobPhone = await onlineWithCaps(onB, bob, "phone", []);
    const omemo = await onlineWithCaps(onA, alice, "omemo", [DEVICES]);
    const avatars = await onlineWithCaps(onA, alice, "avatars", [NS.avatarMetadata]);
    await subscribe(omemo, bobPhone);
    await subscribe(bobPhone, omemo);
    // pb.localhost has alice's presence, with the caps of each of her resources.
    await bobPhone.next(isPresence(`${aliceJid}/omemo`, undefined));
    await bobPhone.next(isPresence(`${aliceJid}/avatars`, undefined));

    assert.equal((await publish(bobPhone, DEVICES, deviceList(11), { id: "current", options: OPEN })).attrs.type, "result");
    const devices = await omemo.next(isEvent(bobJid, DEVICES), 10_000);
    assert.equal(eventItem(devices)?.getChild("list", NS.omemoLegacy)?.getChild("device")?.attrs.id, "11");
    assert.equal(devices.attrs.to, `${aliceJid}/omemo`);

    assert.equal((await publish(bobPhone, NS.avatarMetadata, avatarMetadata("abc"), { id: "abc" })).attrs.type, "result");
    const avatar = await avatars.next(isEvent(bobJid, NS.avatarMetadata), 10_000);
    assert.equal(eventItem(avatar)?.attrs.id, "abc");

    // Neither resource got what its caps did not ask for.
    assert.ok(await avatars.nothing(isEvent(bobJid, DEVICES), 500));
    assert.ok(await omemo.nothing(isEvent(bobJid, NS.avatarMetadata), 500));
  });

  test("a remote resource that comes online later gets the last item of each node it wants", async () => {
    const alice = await onA.account("alice");
    const bob = await onB.account("bob");
    const bobJid = `${bob}@${B}`;
    const bobPhone = await onlineWithCaps(onB, bob, "phone", []);
    const first = await onlineWithCaps(onA, alice, "first", []);
    await subscribe(first, bobPhone);
    await subscribe(bobPhone, first);
    await publish(bobPhone, DEVICES, deviceList(1), { id: "current", options: OPEN });
    await publish(bobPhone, DEVICES, deviceList(1, 2), { id: "current", options: OPEN });
    await publish(bobPhone, NS.nick, xml("nick", { xmlns: NS.nick }, "Bobby"), { id: "current" });

    const late = await onlineWithCaps(onA, alice, "late", [DEVICES, NS.nick]);
    const list = await late.next(isEvent(bobJid, DEVICES), 10_000);
    assert.equal(eventItem(list)?.getChild("list", NS.omemoLegacy)?.getChildren("device").length, 2);
    const nick = await late.next(isEvent(bobJid, NS.nick), 10_000);
    assert.equal(eventItem(nick)?.getChildText("nick"), "Bobby");
  });

  test("approving a remote contact's subscription sends her +notify resources the last items", async () => {
    const carol = await onA.account("carol");
    const bob = await onB.account("bob");
    const bobJid = `${bob}@${B}`;
    const bobPhone = await onlineWithCaps(onB, bob, "phone", []);
    await publish(bobPhone, DEVICES, deviceList(7), { id: "current", options: OPEN });
    const c = await onlineWithCaps(onA, carol, "c", [DEVICES]);
    // Bob subscribes to carol first: pb.localhost learns her caps, but she may not see his nodes yet.
    await subscribe(bobPhone, c);
    await bobPhone.next(isPresence(`${carol}@${A}/c`, undefined));
    assert.ok(await c.nothing(isEvent(bobJid, DEVICES), 500));
    // Her own subscription, approved: the approval is followed by the last item.
    await subscribe(c, bobPhone);
    const event = await c.next(isEvent(bobJid, DEVICES), 10_000);
    assert.equal(eventItem(event)?.getChild("list", NS.omemoLegacy)?.getChild("device")?.attrs.id, "7");
  });

  test("OMEMO bundles are fetched with an IQ across s2s, by a contact and by a stranger", async () => {
    const alice = await onA.account("alice");
    const stranger = await onA.account("stranger");
    const bob = await onB.account("bob");
    const bobJid = `${bob}@${B}`;
    await onB.setSubscription(bob, `${alice}@${A}`, "both");
    await onA.setSubscription(alice, bobJid, "both");
    const bobPhone = await onB.connected(bob, "phone");
    await publish(bobPhone, DEVICES, deviceList(31, 32), { id: "current", options: OPEN });
    await publish(bobPhone, BUNDLE(31), xml("bundle", { xmlns: NS.omemoLegacy }, xml("identityKey", {}, "key-31")), { id: "current", options: OPEN });
    await publish(bobPhone, BUNDLE(32), xml("bundle", { xmlns: NS.omemoLegacy }, xml("identityKey", {}, "key-32")), { id: "current", options: OPEN });

    for (const user of [alice, stranger]) {
      const c = await onA.connected(user, "fetch");
      const list = await fetchItems(c, bobJid, DEVICES);
      const ids = list[0]!.getChild("list", NS.omemoLegacy)!.getChildren("device").map((d) => d.attrs.id);
      assert.deepEqual(ids, ["31", "32"]);
      for (const id of ids) {
        const reply = await items(c, bobJid, BUNDLE(Number(id)), ["current"]);
        assert.equal(reply.attrs.type, "result");
        assert.equal(reply.attrs.from, bobJid);
        const item = reply.getChild("pubsub", NS.pubsub)!.getChild("items")!.getChild("item")!;
        assert.equal(item.getChild("bundle", NS.omemoLegacy)?.getChildText("identityKey"), `key-${id}`);
      }
    }
  });

  test("the access models answer remote requesters with the XEP-0060 errors, conditions intact", async () => {
    const alice = await onA.account("alice");
    const stranger = await onA.account("stranger");
    const bob = await onB.account("bob");
    const bobJid = `${bob}@${B}`;
    const aliceJid = `${alice}@${A}`;
    await onB.setSubscription(bob, aliceJid, "both");
    await onA.setSubscription(alice, bobJid, "both");
    const bobPhone = await onB.connected(bob, "phone");
    await publish(bobPhone, NS.nick, xml("nick", { xmlns: NS.nick }, "Bobby"), { id: "current" });
    await publish(bobPhone, "urn:example:secret", xml("s", { xmlns: "urn:example" }), { id: "s", options: { "pubsub#access_model": "whitelist" } });
    await publish(bobPhone, "urn:example:friends", xml("f", { xmlns: "urn:example" }), { id: "f", options: { "pubsub#access_model": "roster", "pubsub#roster_groups_allowed": "Friends" } });

    const s = await onA.connected(stranger, "s");
    assert.deepEqual(errorOf(await items(s, bobJid, NS.nick)), { condition: "not-authorized", app: "presence-subscription-required" });
    assert.deepEqual(errorOf(await items(s, bobJid, "urn:example:secret")), { condition: "not-allowed", app: "closed-node" });
    assertError(await items(s, bobJid, "urn:example:nothing-here"), "item-not-found");

    const c = await onA.connected(alice, "a");
    assert.equal((await fetchItems(c, bobJid, NS.nick)).length, 1, "a presence subscriber reads the presence node");
    assert.deepEqual(errorOf(await items(c, bobJid, "urn:example:secret")), { condition: "not-allowed", app: "closed-node" });
    assert.deepEqual(errorOf(await items(c, bobJid, "urn:example:friends")), { condition: "not-authorized", app: "not-in-roster-group" });
    // Only the owner publishes, whoever asks from elsewhere.
    const foreign = await c.iq(xml("iq", { type: "set", to: bobJid }, xml("pubsub", { xmlns: NS.pubsub }, xml("publish", { node: NS.nick }, xml("item", {}, xml("nick", { xmlns: NS.nick }, "Mallory"))))));
    assertError(foreign, "forbidden");

    // Whitelisted (a member affiliation) and put in the group, she reads both.
    const set = await bobPhone.iq(xml("iq", { type: "set" }, xml("pubsub", { xmlns: NS.pubsubOwner }, xml("affiliations", { node: "urn:example:secret" }, xml("affiliation", { jid: aliceJid, affiliation: "member" })))));
    assert.equal(set.attrs.type, "result");
    const grouped = await bobPhone.iq(xml("iq", { type: "set" }, xml("query", { xmlns: NS.roster }, xml("item", { jid: aliceJid }, xml("group", {}, "Friends")))));
    assert.equal(grouped.attrs.type, "result");
    assert.equal((await fetchItems(c, bobJid, "urn:example:secret"))[0]?.attrs.id, "s");
    assert.equal((await fetchItems(c, bobJid, "urn:example:friends"))[0]?.attrs.id, "f");
  });

  test("a remote user without presence subscription subscribes explicitly to an open node", async () => {
    const dave = await onA.account("dave");
    const bob = await onB.account("bob");
    const bobJid = `${bob}@${B}`;
    const daveJid = `${dave}@${A}`;
    const bobPhone = await onB.connected(bob, "phone");
    await publish(bobPhone, DEVICES, deviceList(5), { id: "current", options: OPEN });
    await publish(bobPhone, NS.nick, xml("nick", { xmlns: NS.nick }, "Bobby"));
    // Available: a notification to a bare JID goes to available resources (RFC 6121 §8.5.2.1.1).
    const d = await onA.online(dave, "d");
    const refused = await d.iq(xml("iq", { type: "set", to: bobJid }, xml("pubsub", { xmlns: NS.pubsub }, xml("subscribe", { node: NS.nick, jid: daveJid }))));
    assert.deepEqual(errorOf(refused), { condition: "not-authorized", app: "presence-subscription-required" });

    const ok = await d.iq(xml("iq", { type: "set", to: bobJid }, xml("pubsub", { xmlns: NS.pubsub }, xml("subscribe", { node: DEVICES, jid: daveJid }))));
    assert.equal(ok.attrs.type, "result");
    assert.equal(ok.getChild("pubsub", NS.pubsub)?.getChild("subscription")?.attrs.subscription, "subscribed");
    // §6.1.7: the last item, then each new one.
    const last = await d.next(isEvent(bobJid, DEVICES), 10_000);
    assert.equal(eventItem(last)?.getChild("list", NS.omemoLegacy)?.getChild("device")?.attrs.id, "5");
    await publish(bobPhone, DEVICES, deviceList(5, 6), { id: "current", options: OPEN });
    const next = await d.next(isEvent(bobJid, DEVICES), 10_000);
    assert.equal(eventItem(next)?.getChild("list", NS.omemoLegacy)?.getChildren("device").length, 2);
  });
});

describe("pubsub.pb.localhost used from pa.localhost", () => {
  test("a remote user discovers the service, subscribes to a node and gets its publications", async () => {
    const alice = await onA.account("alice");
    const bob = await onB.account("bob");
    const aliceJid = `${alice}@${A}`;
    const bobPhone = await onB.connected(bob, "phone");
    const c = await onA.online(alice, "a");

    const services = await c.iq(xml("iq", { type: "get", to: B }, xml("query", { xmlns: NS.discoItems })));
    assert.ok(services.getChild("query", NS.discoItems)!.getChildren("item").some((i) => i.attrs.jid === SERVICE), "pb.localhost lists its pubsub service");
    const info = await c.iq(xml("iq", { type: "get", to: SERVICE }, xml("query", { xmlns: NS.discoInfo })));
    assert.ok(info.getChild("query", NS.discoInfo)!.getChildren("identity").some((i) => i.attrs.category === "pubsub" && i.attrs.type === "service"));

    const node = `news-${bob}`;
    const created = await bobPhone.iq(xml("iq", { type: "set", to: SERVICE }, xml("pubsub", { xmlns: NS.pubsub }, xml("create", { node }))));
    assert.equal(created.attrs.type, "result");
    const subscribed = await c.iq(xml("iq", { type: "set", to: SERVICE }, xml("pubsub", { xmlns: NS.pubsub }, xml("subscribe", { node, jid: aliceJid }))));
    assert.equal(subscribed.attrs.type, "result");
    assert.equal(subscribed.attrs.from, SERVICE);

    const published = await bobPhone.iq(xml("iq", { type: "set", to: SERVICE }, xml("pubsub", { xmlns: NS.pubsub }, xml("publish", { node }, xml("item", { id: "first" }, xml("entry", { xmlns: "http://www.w3.org/2005/Atom" }, xml("title", {}, "Hello")))))));
    assert.equal(published.attrs.type, "result");
    const event = await c.next(isEvent(SERVICE, node), 10_000);
    assert.equal(eventItem(event)?.attrs.id, "first");
    assert.equal(eventItem(event)?.getChild("entry", "http://www.w3.org/2005/Atom")?.getChildText("title"), "Hello");
    // And she reads the items with an IQ.
    assert.deepEqual((await fetchItems(c, SERVICE, node)).map((i) => i.attrs.id), ["first"]);
  });

  test("remote users may not create nodes, publish without affiliation, or read a whitelist node", async () => {
    const alice = await onA.account("alice");
    const bob = await onB.account("bob");
    const aliceJid = `${alice}@${A}`;
    const bobPhone = await onB.connected(bob, "phone");
    const c = await onA.connected(alice, "a");
    const mine = `mine-${alice}`;
    assertError(await c.iq(xml("iq", { type: "set", to: SERVICE }, xml("pubsub", { xmlns: NS.pubsub }, xml("create", { node: mine })))), "forbidden");
    // Publishing to a node that does not exist does not create it for her.
    assertError(await c.iq(xml("iq", { type: "set", to: SERVICE }, xml("pubsub", { xmlns: NS.pubsub }, xml("publish", { node: mine }, xml("item", {}, xml("x", { xmlns: "urn:example" })))))), "item-not-found");

    const closed = `closed-${bob}`;
    const config = xml("configure", {}, xml("x", { xmlns: NS.dataForms, type: "submit" },
      xml("field", { var: "FORM_TYPE", type: "hidden" }, xml("value", {}, NS.pubsubNodeConfig)),
      xml("field", { var: "pubsub#access_model" }, xml("value", {}, "whitelist"))));
    assert.equal((await bobPhone.iq(xml("iq", { type: "set", to: SERVICE }, xml("pubsub", { xmlns: NS.pubsub }, xml("create", { node: closed }), config)))).attrs.type, "result");
    await bobPhone.iq(xml("iq", { type: "set", to: SERVICE }, xml("pubsub", { xmlns: NS.pubsub }, xml("publish", { node: closed }, xml("item", { id: "x" }, xml("x", { xmlns: "urn:example" }))))));
    assert.deepEqual(errorOf(await items(c, SERVICE, closed)), { condition: "not-allowed", app: "closed-node" });
    assert.deepEqual(errorOf(await c.iq(xml("iq", { type: "set", to: SERVICE }, xml("pubsub", { xmlns: NS.pubsub }, xml("subscribe", { node: closed, jid: aliceJid }))))), { condition: "not-allowed", app: "closed-node" });
    assertError(await c.iq(xml("iq", { type: "set", to: SERVICE }, xml("pubsub", { xmlns: NS.pubsub }, xml("publish", { node: closed }, xml("item", {}, xml("x", { xmlns: "urn:example" })))))), "forbidden");

    // As a publisher of the node she may publish, and read it.
    const made = await bobPhone.iq(xml("iq", { type: "set", to: SERVICE }, xml("pubsub", { xmlns: NS.pubsubOwner }, xml("affiliations", { node: closed }, xml("affiliation", { jid: aliceJid, affiliation: "publisher" })))));
    assert.equal(made.attrs.type, "result");
    const hers = await c.iq(xml("iq", { type: "set", to: SERVICE }, xml("pubsub", { xmlns: NS.pubsub }, xml("publish", { node: closed }, xml("item", { id: "from-a" }, xml("x", { xmlns: "urn:example" }))))));
    assert.equal(hers.attrs.type, "result");
    assert.deepEqual((await fetchItems(c, SERVICE, closed)).map((i) => i.attrs.id).sort(), ["from-a", "x"]);
  });
});
