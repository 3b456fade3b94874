// End-to-end specs for server/modules/pep: XEP-0163 1.2 (Personal Eventing Protocol) with the
// XEP-0060 1.26.0 subset it uses, driven by real clients: an OMEMO-style (XEP-0384) flow of device
// lists and bundles under access_model=open, publish-options preconditions, access models,
// retrieval, retract, delete, and notifications filtered by XEP-0115 caps (+notify).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startTestServer, type TestServer } from "../../support/server.ts";
import { accountsOn } from "../../support/accounts.ts";
import { isEvent, onlineWithCaps as sharedOnlineWithCaps, publish } from "./pep-helpers.ts";
import { assertError } from "../../support/stanzas.ts";
import { xml, type Element } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import { parseStanzaError } from "../../../protocol/errors.ts";
import type { XmppClient } from "../../../conformance/client/client.ts";
import roster from "../../../server/modules/roster/index.ts";
import presence from "../../../server/modules/presence/index.ts";
import message from "../../../server/modules/message/index.ts";
import disco from "../../../server/modules/disco/index.ts";
import pep from "../../../server/modules/pep/index.ts";
import register from "../../../server/modules/register/index.ts";
import type { PubSubTables } from "../../../server/modules/pep/store.ts";

let t: TestServer;
before(async () => {
  t = await startTestServer({ modules: [roster, presence, message, disco, pep, register] });
});
after(async () => {
  await t.stop();
});

const accounts = accountsOn(() => t);
const { account, bare, connected, setSubscription, settle } = accounts;

const DEVICES = "eu.siacs.conversations.axolotl.devicelist";
const BUNDLE = (id: number) => `eu.siacs.conversations.axolotl.bundles:${id}`;
const OMEMO2_DEVICES = "urn:xmpp:omemo:2:devices";
const onlineWithCaps = (user: string, resource: string, notifyNodes: string[]) => sharedOnlineWithCaps(accounts, user, resource, notifyNodes);

async function items(c: XmppClient, owner: string, node: string, attrs: Record<string, string> = {}, ids: string[] = []): Promise<Element> {
  return c.iq(xml("iq", { type: "get", to: owner || undefined }, xml("pubsub", { xmlns: NS.pubsub }, xml("items", { node, ...attrs }, ...ids.map((id) => xml("item", { id }))))));
}

function itemIds(reply: Element): string[] {
  return reply.getChild("pubsub", NS.pubsub)!.getChild("items")!.getChildren("item").map((i) => i.attrs.id);
}

function deviceList(...ids: number[]): Element {
  return xml("list", { xmlns: NS.omemoLegacy }, ...ids.map((id) => xml("device", { id: String(id) })));
}

function bundle(key: string): Element {
  return xml("bundle", { xmlns: NS.omemoLegacy }, xml("identityKey", {}, key));
}

const OPEN = { "pubsub#access_model": "open" };

async function pair(): Promise<{ romeo: string; juliet: string }> {
  const romeo = await account("romeo");
  const juliet = await account("juliet");
  await setSubscription(romeo, juliet, "both");
  await setSubscription(juliet, romeo, "both");
  return { romeo, juliet };
}

describe("an OMEMO-style flow over PEP (XEP-0163, XEP-0384 passthrough)", () => {
  test("device lists and bundles with access_model=open: notified by +notify, fetched by contacts and strangers", async () => {
    const { romeo, juliet } = await pair();
    const r1 = await onlineWithCaps(romeo, "notify", [DEVICES, OMEMO2_DEVICES]);
    const r2 = await onlineWithCaps(romeo, "quiet", []);
    const j1 = await onlineWithCaps(juliet, "phone", [DEVICES]);

    const pub = await publish(j1, DEVICES, deviceList(1001), { id: "current", options: OPEN });
    assert.equal(pub.attrs.type, "result");
    assert.equal(pub.getChild("pubsub", NS.pubsub)?.getChild("publish")?.getChild("item")?.attrs.id, "current");

    // The contact's resource with +notify gets the event; the one without does not.
    const event = await r1.next(isEvent(bare(juliet), DEVICES));
    const item = event.getChild("event", NS.pubsubEvent)!.getChild("items")!.getChild("item")!;
    assert.equal(item.attrs.id, "current");
    assert.equal(item.getChild("list", NS.omemoLegacy)?.getChild("device")?.attrs.id, "1001");
    // The owner's own resource with +notify sees its publication too.
    await j1.next(isEvent(bare(juliet), DEVICES));
    assert.ok(await r2.nothing(isEvent(bare(juliet), DEVICES)));

    assert.equal((await publish(j1, BUNDLE(1001), bundle("juliet-key"), { id: "current", options: OPEN })).attrs.type, "result");
    assert.equal((await publish(r1, DEVICES, deviceList(2002), { id: "current", options: OPEN })).attrs.type, "result");
    assert.equal((await publish(r1, BUNDLE(2002), bundle("romeo-key"), { id: "current", options: OPEN })).attrs.type, "result");
    await j1.next(isEvent(bare(romeo), DEVICES));

    // Each fetches the other's bundle.
    const julietsBundle = await items(r1, bare(juliet), BUNDLE(1001));
    assert.equal(julietsBundle.getChild("pubsub", NS.pubsub)!.getChild("items")!.getChild("item")!.getChild("bundle", NS.omemoLegacy)?.getChildText("identityKey"), "juliet-key");
    const romeosBundle = await items(j1, bare(romeo), BUNDLE(2002));
    assert.equal(romeosBundle.getChild("pubsub", NS.pubsub)!.getChild("items")!.getChild("item")!.getChild("bundle", NS.omemoLegacy)?.getChildText("identityKey"), "romeo-key");

    // A stranger reads the open bundle but not a node with the default (presence) access model.
    const stranger = await connected(await account("stranger"));
    assert.deepEqual(itemIds(await items(stranger, bare(juliet), BUNDLE(1001))), ["current"]);
    await publish(j1, NS.nick, xml("nick", { xmlns: NS.nick }, "Jules"));
    const refused = await items(stranger, bare(juliet), NS.nick);
    const error = parseStanzaError(refused);
    assert.equal(error?.condition, "not-authorized");
    assert.equal(error?.appSpecific?.getName(), "presence-subscription-required");
    // The subscribed contact may read it.
    assert.equal(itemIds(await items(r1, bare(juliet), NS.nick)).length, 1);
  });

  test("OMEMO 2 nodes work the same way", async () => {
    const { romeo, juliet } = await pair();
    const r = await onlineWithCaps(romeo, "a", [OMEMO2_DEVICES]);
    const j = await onlineWithCaps(juliet, "a", []);
    const devices = xml("devices", { xmlns: NS.omemo }, xml("device", { id: "7" }));
    assert.equal((await publish(j, OMEMO2_DEVICES, devices, { id: "current", options: { ...OPEN, "pubsub#max_items": "max" } })).attrs.type, "result");
    await r.next(isEvent(bare(juliet), OMEMO2_DEVICES));
    const b = xml("bundle", { xmlns: NS.omemo }, xml("ik", {}, "key7"));
    await publish(j, "urn:xmpp:omemo:2:bundles", b, { id: "7", options: { ...OPEN, "pubsub#max_items": "max" } });
    const got = await items(r, bare(juliet), "urn:xmpp:omemo:2:bundles", {}, ["7"]);
    assert.deepEqual(itemIds(got), ["7"]);
  });

  test("a resource that comes online with +notify gets the last published item", async () => {
    const { romeo, juliet } = await pair();
    const j = await onlineWithCaps(juliet, "a", []);
    await publish(j, DEVICES, deviceList(1), { id: "current", options: OPEN });
    await publish(j, DEVICES, deviceList(1, 2), { id: "current", options: OPEN });
    const r = await onlineWithCaps(romeo, "late", [DEVICES]);
    const event = await r.next(isEvent(bare(juliet), DEVICES));
    assert.equal(event.getChild("event", NS.pubsubEvent)!.getChild("items")!.getChild("item")!.getChild("list", NS.omemoLegacy)!.getChildren("device").length, 2);
    // The owner's own new resource too.
    const j2 = await onlineWithCaps(juliet, "b", [DEVICES]);
    await j2.next(isEvent(bare(juliet), DEVICES));
  });
});

describe("last published item on subscription approval (XEP-0163 §4.3.1)", () => {
  test("a contact whose subscription is approved gets the last item at its +notify resources", async () => {
    const romeo = await account("romeo");
    const juliet = await account("juliet");
    const j = await onlineWithCaps(juliet, "a", []);
    await publish(j, NS.nick, xml("nick", { xmlns: NS.nick }, "Jules"), { id: "current" });
    const r = await onlineWithCaps(romeo, "a", [NS.nick]);
    assert.ok(await r.nothing(isEvent(bare(juliet), NS.nick)));
    r.send(xml("presence", { type: "subscribe", to: bare(juliet) }));
    await j.next((el) => el.name === "presence" && el.attrs.type === "subscribe");
    j.send(xml("presence", { type: "subscribed", to: bare(romeo) }));
    const event = await r.next(isEvent(bare(juliet), NS.nick));
    assert.equal(event.getChild("event", NS.pubsubEvent)!.getChild("items")!.getChild("item")!.getChildText("nick"), "Jules");
  });
});

describe("publish-options, items, retract, configure, delete (XEP-0060 §6.5, §7, §8)", () => {
  test("preconditions that do not match the node are <conflict/><precondition-not-met/>", async () => {
    const j = await onlineWithCaps(await account("juliet"), "a", []);
    await publish(j, "urn:example:n", xml("x", { xmlns: "urn:example" }));
    const reply = await publish(j, "urn:example:n", xml("x", { xmlns: "urn:example" }), { options: OPEN });
    const error = parseStanzaError(reply);
    assert.equal(error?.condition, "conflict");
    assert.equal(error?.appSpecific?.getName(), "precondition-not-met");
    assert.equal(error?.appSpecific?.getNS(), NS.pubsubErrors);
    // A matching precondition publishes.
    assert.equal((await publish(j, "urn:example:n", xml("x", { xmlns: "urn:example" }), { options: { "pubsub#access_model": "presence" } })).attrs.type, "result");
  });

  test("an auto-created node takes its publish-options as configuration", async () => {
    const j = await onlineWithCaps(await account("juliet"), "a", []);
    await publish(j, "urn:example:cfg", xml("x", { xmlns: "urn:example" }), { options: { ...OPEN, "pubsub#max_items": "max" } });
    const r = await j.iq(xml("iq", { type: "get" }, xml("pubsub", { xmlns: NS.pubsubOwner }, xml("configure", { node: "urn:example:cfg" }))));
    const fields = new Map(r.getChild("pubsub", NS.pubsubOwner)!.getChild("configure")!.getChild("x", NS.dataForms)!.getChildren("field").map((f) => [f.attrs.var, f.getChildText("value")]));
    assert.equal(fields.get("pubsub#access_model"), "open");
    assert.equal(fields.get("pubsub#max_items"), "max");
  });

  test("items: all, by id, max_items; the default node keeps one item, max keeps many; generated ids", async () => {
    const j = await onlineWithCaps(await account("juliet"), "a", []);
    for (const id of ["a", "b", "c"]) await publish(j, "urn:example:one", xml("x", { xmlns: "urn:example" }, id), { id });
    assert.deepEqual(itemIds(await items(j, "", "urn:example:one")), ["c"]);
    for (const id of ["a", "b", "c"]) await publish(j, "urn:example:many", xml("x", { xmlns: "urn:example" }, id), { id, options: { "pubsub#max_items": "max" } });
    assert.deepEqual(itemIds(await items(j, "", "urn:example:many")), ["a", "b", "c"]);
    assert.deepEqual(itemIds(await items(j, "", "urn:example:many", { max_items: "2" })), ["b", "c"]);
    assert.deepEqual(itemIds(await items(j, "", "urn:example:many", {}, ["a"])), ["a"]);
    const generated = await publish(j, "urn:example:many", xml("x", { xmlns: "urn:example" }));
    const id = generated.getChild("pubsub", NS.pubsub)!.getChild("publish")!.getChild("item")!.attrs.id;
    assert.ok(id && id.length > 0);
    assert.ok(itemIds(await items(j, "", "urn:example:many")).includes(id));
    assertError(await items(j, "", "urn:example:none"), "item-not-found");
  });

  test("retract with notify tells +notify resources; delete removes the node", async () => {
    const { romeo, juliet } = await pair();
    const j = await onlineWithCaps(juliet, "a", []);
    const r = await onlineWithCaps(romeo, "a", ["urn:example:r"]);
    await publish(j, "urn:example:r", xml("x", { xmlns: "urn:example" }), { id: "gone", options: { "pubsub#max_items": "10" } });
    await r.next(isEvent(bare(juliet), "urn:example:r"));
    const retracted = await j.iq(xml("iq", { type: "set" }, xml("pubsub", { xmlns: NS.pubsub }, xml("retract", { node: "urn:example:r", notify: "true" }, xml("item", { id: "gone" })))));
    assert.equal(retracted.attrs.type, "result");
    const event = await r.next(isEvent(bare(juliet), "urn:example:r"));
    assert.equal(event.getChild("event", NS.pubsubEvent)!.getChild("items")!.getChild("retract")?.attrs.id, "gone");
    assert.deepEqual(itemIds(await items(r, bare(juliet), "urn:example:r")), []);

    // Only the owner changes its nodes.
    const foreign = await r.iq(xml("iq", { type: "set", to: bare(juliet) }, xml("pubsub", { xmlns: NS.pubsub }, xml("publish", { node: "urn:example:r" }, xml("item", {}, xml("x", { xmlns: "urn:example" }))))));
    assertError(foreign, "forbidden");

    const deleted = await j.iq(xml("iq", { type: "set" }, xml("pubsub", { xmlns: NS.pubsubOwner }, xml("delete", { node: "urn:example:r" }))));
    assert.equal(deleted.attrs.type, "result");
    const del = await r.next((el) => el.name === "message" && el.getChild("event", NS.pubsubEvent)?.getChild("delete")?.attrs.node === "urn:example:r");
    assert.equal(del.attrs.from, bare(juliet));
    assertError(await items(r, bare(juliet), "urn:example:r"), "item-not-found");
  });

  test("whitelist: only members read; roster: only allowed groups read", async () => {
    const { romeo, juliet } = await pair();
    const j = await onlineWithCaps(juliet, "a", []);
    const r = await connected(romeo);
    await publish(j, "urn:example:w", xml("x", { xmlns: "urn:example" }), { options: { "pubsub#access_model": "whitelist" } });
    const refused = parseStanzaError(await items(r, bare(juliet), "urn:example:w"));
    assert.equal(refused?.condition, "not-allowed");
    assert.equal(refused?.appSpecific?.getName(), "closed-node");
    await j.iq(xml("iq", { type: "set" }, xml("pubsub", { xmlns: NS.pubsubOwner }, xml("affiliations", { node: "urn:example:w" }, xml("affiliation", { jid: bare(romeo), affiliation: "member" })))));
    assert.equal(itemIds(await items(r, bare(juliet), "urn:example:w")).length, 1);

    await publish(j, "urn:example:g", xml("x", { xmlns: "urn:example" }), { options: { "pubsub#access_model": "roster" } });
    assert.equal(parseStanzaError(await items(r, bare(juliet), "urn:example:g"))?.appSpecific?.getName(), "not-in-roster-group");
  });
});

describe("discovery and storage", () => {
  test("the account shows pubsub/pep and the PEP features, and lists nodes a subscriber may see", async () => {
    const { romeo, juliet } = await pair();
    const j = await onlineWithCaps(juliet, "a", []);
    await publish(j, "urn:example:visible", xml("x", { xmlns: "urn:example" }));
    await publish(j, "urn:example:secret", xml("x", { xmlns: "urn:example" }), { options: { "pubsub#access_model": "whitelist" } });
    const r = await connected(romeo);
    const info = await r.iq(xml("iq", { type: "get", to: bare(juliet) }, xml("query", { xmlns: NS.discoInfo })));
    const query = info.getChild("query", NS.discoInfo)!;
    assert.ok(query.getChildren("identity").some((i) => i.attrs.category === "pubsub" && i.attrs.type === "pep"));
    const features = query.getChildren("feature").map((f) => f.attrs.var);
    for (const f of ["publish", "auto-create", "publish-options", "access-open", "access-whitelist", "last-published"]) assert.ok(features.includes(`${NS.pubsub}#${f}`), f);
    const listing = await r.iq(xml("iq", { type: "get", to: bare(juliet) }, xml("query", { xmlns: NS.discoItems })));
    const nodes = listing.getChild("query", NS.discoItems)!.getChildren("item").map((i) => i.attrs.node);
    assert.ok(nodes.includes("urn:example:visible"));
    assert.ok(!nodes.includes("urn:example:secret"));
    // Nodes and items live in the pubsub tables, not in the key-value store.
    const rows = await t.server.storage.db.withTables<PubSubTables>().selectFrom("pubsub_items").select(["node", "payload"]).where("host", "=", t.domain).where("username", "=", juliet).execute();
    assert.ok(rows.some((r) => r.node === "urn:example:visible" && r.payload.includes("urn:example")));
    assert.equal(await t.server.storage.kv.get("pep", t.domain, juliet, "nodes"), undefined);
  });
});

function owner(c: XmppClient, child: Element): Promise<Element> {
  return c.iq(xml("iq", { type: "set" }, xml("pubsub", { xmlns: NS.pubsubOwner }, child)));
}

function configureForm(fields: Record<string, string>): Element {
  return xml("x", { xmlns: NS.dataForms, type: "submit" },
    xml("field", { var: "FORM_TYPE", type: "hidden" }, xml("value", {}, NS.pubsubNodeConfig)),
    ...Object.entries(fields).map(([k, v]) => xml("field", { var: k }, xml("value", {}, v))));
}

function rsmSet(children: Record<string, string>): Element {
  return xml("set", { xmlns: NS.rsm }, ...Object.entries(children).map(([k, v]) => xml(k, {}, v)));
}

async function page(c: XmppClient, to: string, node: string, set: Element): Promise<{ ids: string[]; first?: string; last?: string; count?: string; index?: string }> {
  const reply = await c.iq(xml("iq", { type: "get", to }, xml("pubsub", { xmlns: NS.pubsub }, xml("items", { node }), set)));
  const rsm = reply.getChild("pubsub", NS.pubsub)!.getChild("set", NS.rsm);
  return {
    ids: itemIds(reply),
    first: rsm?.getChildText("first") ?? undefined,
    last: rsm?.getChildText("last") ?? undefined,
    count: rsm?.getChildText("count") ?? undefined,
    index: rsm?.getChild("first")?.attrs.index,
  };
}

describe("RSM, subscriptions, configure, purge (XEP-0060 §6.1, §6.2, §6.5.4, §8.2, §8.5; XEP-0059)", () => {
  test("items are paged with RSM in publication order, forwards and backwards", async () => {
    const { romeo, juliet } = await pair();
    const j = await connected(juliet);
    const r = await connected(romeo);
    const ids = ["i1", "i2", "i3", "i4", "i5"];
    for (const id of ids) await publish(j, "urn:example:paged", xml("x", { xmlns: "urn:example" }, id), { id, options: { "pubsub#max_items": "max" } });
    // Republishing an id moves it to the end.
    await publish(j, "urn:example:paged", xml("x", { xmlns: "urn:example" }, "again"), { id: "i2" });
    const first = await page(r, bare(juliet), "urn:example:paged", rsmSet({ max: "2" }));
    assert.deepEqual(first, { ids: ["i1", "i3"], first: "i1", last: "i3", count: "5", index: "0" });
    const second = await page(r, bare(juliet), "urn:example:paged", rsmSet({ max: "2", after: "i3" }));
    assert.deepEqual(second.ids, ["i4", "i5"]);
    const third = await page(r, bare(juliet), "urn:example:paged", rsmSet({ max: "2", after: "i5" }));
    assert.deepEqual(third.ids, ["i2"]);
    const lastPage = await r.iq(xml("iq", { type: "get", to: bare(juliet) }, xml("pubsub", { xmlns: NS.pubsub }, xml("items", { node: "urn:example:paged" }), xml("set", { xmlns: NS.rsm }, xml("max", {}, "2"), xml("before")))));
    assert.deepEqual(itemIds(lastPage), ["i5", "i2"]);
    const byIndex = await page(r, bare(juliet), "urn:example:paged", rsmSet({ max: "1", index: "3" }));
    assert.deepEqual(byIndex.ids, ["i5"]);
    assertError(await r.iq(xml("iq", { type: "get", to: bare(juliet) }, xml("pubsub", { xmlns: NS.pubsub }, xml("items", { node: "urn:example:paged" }), rsmSet({ after: "nope" })))), "item-not-found");
  });

  test("an explicit subscriber gets the last item, then every notification without caps, until it unsubscribes", async () => {
    const j = await connected(await account("juliet"));
    const stranger = await connected(await account("stranger"));
    const owner_ = bare(j.jid!.split("/")[0]!.split("@")[0]!);
    await publish(j, "urn:example:feed", xml("x", { xmlns: "urn:example" }, "one"), { id: "one", options: { ...OPEN, "pubsub#max_items": "10" } });
    const sub = await stranger.iq(xml("iq", { type: "set", to: owner_ }, xml("pubsub", { xmlns: NS.pubsub }, xml("subscribe", { node: "urn:example:feed", jid: stranger.jid! }))));
    const subscription = sub.getChild("pubsub", NS.pubsub)!.getChild("subscription")!;
    assert.equal(subscription.attrs.subscription, "subscribed");
    assert.equal(subscription.attrs.jid, stranger.jid);
    assert.ok(subscription.attrs.subid);
    const last = await stranger.next(isEvent(owner_, "urn:example:feed"));
    assert.equal(last.getChild("event", NS.pubsubEvent)!.getChild("items")!.getChild("item")!.attrs.id, "one");
    await publish(j, "urn:example:feed", xml("x", { xmlns: "urn:example" }, "two"), { id: "two" });
    const live = await stranger.next(isEvent(owner_, "urn:example:feed"));
    assert.equal(live.getChild("event", NS.pubsubEvent)!.getChild("items")!.getChild("item")!.attrs.id, "two");

    const mine = await stranger.iq(xml("iq", { type: "get", to: owner_ }, xml("pubsub", { xmlns: NS.pubsub }, xml("subscriptions"))));
    assert.deepEqual(mine.getChild("pubsub", NS.pubsub)!.getChild("subscriptions")!.getChildren("subscription").map((s) => s.attrs.node), ["urn:example:feed"]);
    const listed = await j.iq(xml("iq", { type: "get" }, xml("pubsub", { xmlns: NS.pubsubOwner }, xml("subscriptions", { node: "urn:example:feed" }))));
    assert.deepEqual(listed.getChild("pubsub", NS.pubsubOwner)!.getChild("subscriptions")!.getChildren("subscription").map((s) => s.attrs.jid), [stranger.jid]);

    // Another's JID cannot be subscribed.
    const forged = await stranger.iq(xml("iq", { type: "set", to: owner_ }, xml("pubsub", { xmlns: NS.pubsub }, xml("subscribe", { node: "urn:example:feed", jid: owner_ }))));
    assert.equal(parseStanzaError(forged)?.appSpecific?.getName(), "invalid-jid");

    const unsub = await stranger.iq(xml("iq", { type: "set", to: owner_ }, xml("pubsub", { xmlns: NS.pubsub }, xml("unsubscribe", { node: "urn:example:feed", jid: stranger.jid! }))));
    assert.equal(unsub.attrs.type, "result");
    await publish(j, "urn:example:feed", xml("x", { xmlns: "urn:example" }, "three"), { id: "three" });
    await settle(j);
    assert.ok(await stranger.nothing(isEvent(owner_, "urn:example:feed")));
    const again = await stranger.iq(xml("iq", { type: "set", to: owner_ }, xml("pubsub", { xmlns: NS.pubsub }, xml("unsubscribe", { node: "urn:example:feed", jid: stranger.jid! }))));
    assert.equal(parseStanzaError(again)?.appSpecific?.getName(), "not-subscribed");
  });

  test("subscribing needs read access: presence nodes refuse strangers", async () => {
    const j = await connected(await account("juliet"));
    const stranger = await connected(await account("stranger"));
    const owner_ = j.jid!.split("/")[0]!;
    await publish(j, "urn:example:private", xml("x", { xmlns: "urn:example" }));
    const reply = await stranger.iq(xml("iq", { type: "set", to: owner_ }, xml("pubsub", { xmlns: NS.pubsub }, xml("subscribe", { node: "urn:example:private", jid: stranger.jid! }))));
    assertError(reply, "not-authorized");
  });

  test("configure changes the access model and trims to a lower max_items; purge empties; delete forgets", async () => {
    const { romeo, juliet } = await pair();
    const j = await connected(juliet);
    const stranger = await connected(await account("stranger"));
    for (const id of ["a", "b", "c"]) await publish(j, "urn:example:cfg2", xml("x", { xmlns: "urn:example" }, id), { id, options: { "pubsub#max_items": "5" } });
    assertError(await items(stranger, bare(juliet), "urn:example:cfg2"), "not-authorized");
    assert.equal((await owner(j, xml("configure", { node: "urn:example:cfg2" }, configureForm({ "pubsub#access_model": "open", "pubsub#max_items": "2" })))).attrs.type, "result");
    assert.deepEqual(itemIds(await items(stranger, bare(juliet), "urn:example:cfg2")), ["b", "c"]);
    assertError(await owner(j, xml("configure", { node: "urn:example:cfg2" }, configureForm({ "pubsub#access_model": "everyone" }))), "not-acceptable");
    // Another account cannot configure it.
    assertError(await stranger.iq(xml("iq", { type: "set", to: bare(juliet) }, xml("pubsub", { xmlns: NS.pubsubOwner }, xml("configure", { node: "urn:example:cfg2" }, configureForm(OPEN))))), "forbidden");

    const r = await onlineWithCaps(romeo, "p", ["urn:example:cfg2"]);
    assert.equal((await owner(j, xml("purge", { node: "urn:example:cfg2" }))).attrs.type, "result");
    await r.next((el) => el.getChild("event", NS.pubsubEvent)?.getChild("purge")?.attrs.node === "urn:example:cfg2");
    assert.deepEqual(itemIds(await items(stranger, bare(juliet), "urn:example:cfg2")), []);

    assert.equal((await owner(j, xml("delete", { node: "urn:example:cfg2" }))).attrs.type, "result");
    assertError(await items(stranger, bare(juliet), "urn:example:cfg2"), "item-not-found");
    // A node of the same name created afterwards starts with the defaults again.
    await publish(j, "urn:example:cfg2", xml("x", { xmlns: "urn:example" }));
    assertError(await items(stranger, bare(juliet), "urn:example:cfg2"), "not-authorized");
  });

  test("XEP-0223: a private node (whitelist, persistent) is read by the owner only, and publish-options guard it", async () => {
    const { romeo, juliet } = await pair();
    const j = await connected(juliet);
    const r = await connected(romeo);
    const PRIVATE = { "pubsub#persist_items": "true", "pubsub#access_model": "whitelist" };
    assert.equal((await publish(j, "urn:example:secrets", xml("s", { xmlns: "urn:example" }, "mine"), { id: "current", options: PRIVATE })).attrs.type, "result");
    assert.equal(parseStanzaError(await items(r, bare(juliet), "urn:example:secrets"))?.appSpecific?.getName(), "closed-node");
    assert.deepEqual(itemIds(await items(j, "", "urn:example:secrets")), ["current"]);
    // A node that is not private fails the precondition instead of leaking the data.
    await publish(j, "urn:example:public", xml("s", { xmlns: "urn:example" }));
    assert.equal(parseStanzaError(await publish(j, "urn:example:public", xml("s", { xmlns: "urn:example" }, "secret"), { options: PRIVATE }))?.appSpecific?.getName(), "precondition-not-met");
  });

  test("deleting the account in-band removes its nodes, items and affiliations from the tables", async () => {
    const user = await account("ghost");
    const c = await connected(user);
    await publish(c, "urn:example:gone", xml("x", { xmlns: "urn:example" }), { options: { "pubsub#access_model": "whitelist" } });
    await owner(c, xml("affiliations", { node: "urn:example:gone" }, xml("affiliation", { jid: "friend@example.org", affiliation: "member" })));
    const db = t.server.storage.db.withTables<PubSubTables>();
    const count = async (table: "pubsub_nodes" | "pubsub_items" | "pubsub_affiliations") =>
      (await db.selectFrom(table).select("node").where("host", "=", t.domain).where("username", "=", user).execute()).length;
    assert.equal(await count("pubsub_items"), 1);
    const removed = await c.iq(xml("iq", { type: "set" }, xml("query", { xmlns: NS.register }, xml("remove"))));
    assert.equal(removed.attrs.type, "result");
    for (const table of ["pubsub_nodes", "pubsub_items", "pubsub_affiliations"] as const) assert.equal(await count(table), 0, table);
  });
});
