// End-to-end specs for server/modules/pep: XEP-0163 1.2 (Personal Eventing Protocol) with the
// XEP-0060 1.26.0 subset it uses, driven by real clients: an OMEMO-style (XEP-0384) flow of device
// lists and bundles under access_model=open, publish-options preconditions, access models,
// retrieval, retract, delete, and notifications filtered by XEP-0115 caps (+notify).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startTestServer, type TestServer } from "../../support/server.ts";
import { accountsOn } from "../../support/accounts.ts";
import { assertError, isPresence } from "../../support/stanzas.ts";
import { xml, type Element } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import { capsVer } from "../../../protocol/caps.ts";
import { parseStanzaError } from "../../../protocol/errors.ts";
import type { XmppClient } from "../../../conformance/client/client.ts";
import roster from "../../../server/modules/roster/index.ts";
import presence from "../../../server/modules/presence/index.ts";
import message from "../../../server/modules/message/index.ts";
import disco from "../../../server/modules/disco/index.ts";
import pep from "../../../server/modules/pep/index.ts";

let t: TestServer;
before(async () => {
  t = await startTestServer({ modules: [roster, presence, message, disco, pep] });
});
after(async () => {
  await t.stop();
});

const { account, bare, connected, setSubscription } = accountsOn(() => t);

const DEVICES = "eu.siacs.conversations.axolotl.devicelist";
const BUNDLE = (id: number) => `eu.siacs.conversations.axolotl.bundles:${id}`;
const OMEMO2_DEVICES = "urn:xmpp:omemo:2:devices";
const CAPS_NODE = "https://parley.test/client";
const IDENTITY = [{ category: "client", type: "pc", name: "Spec" }];

/** Answers the server's disco#info about our caps node, as a client must (XEP-0115 §6.2). */
function answerDisco(c: XmppClient, features: string[]): void {
  void (async () => {
    for (let i = 0; i < 1000 && !c.closed; i++) {
      let iq: Element;
      try {
        iq = await c.next((el) => el.name === "iq" && el.attrs.type === "get" && el.getChild("query", NS.discoInfo) !== undefined, 60_000);
      } catch {
        return;
      }
      const node = iq.getChild("query", NS.discoInfo)!.attrs.node;
      c.send(
        xml("iq", { type: "result", id: iq.attrs.id, to: iq.attrs.from }, xml("query", { xmlns: NS.discoInfo, node },
          ...IDENTITY.map((id) => xml("identity", id)),
          ...features.map((f) => xml("feature", { var: f })))),
      );
    }
  })();
}

/** Logged in, interested, answering disco, and available with caps announcing `features`. */
async function onlineWithCaps(user: string, resource: string, notifyNodes: string[]): Promise<XmppClient> {
  const features = [NS.discoInfo, NS.caps, ...notifyNodes.map((n) => `${n}+notify`)];
  const c = await connected(user, resource);
  answerDisco(c, features);
  const ver = capsVer({ identities: IDENTITY, features });
  c.send(xml("presence", {}, xml("c", { xmlns: NS.caps, hash: "sha-1", node: CAPS_NODE, ver })));
  await c.next(isPresence(c.jid!, undefined));
  return c;
}

function publishOptions(fields: Record<string, string>): Element {
  return xml("publish-options", {}, xml("x", { xmlns: NS.dataForms, type: "submit" },
    xml("field", { var: "FORM_TYPE", type: "hidden" }, xml("value", {}, NS.pubsubPublishOptions)),
    ...Object.entries(fields).map(([k, v]) => xml("field", { var: k }, xml("value", {}, v)))));
}

async function publish(c: XmppClient, node: string, payload: Element, opts?: { id?: string; options?: Record<string, string> }): Promise<Element> {
  return c.iq(xml("iq", { type: "set" }, xml("pubsub", { xmlns: NS.pubsub },
    xml("publish", { node }, xml("item", { id: opts?.id }, payload)),
    opts?.options ? publishOptions(opts.options) : null)));
}

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

function isEvent(from: string, node: string) {
  return (el: Element) => el.name === "message" && el.attrs.from === from && el.getChild("event", NS.pubsubEvent)?.getChild("items")?.attrs.node === node;
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
    const stored = (await t.server.storage.kv.get("pep", t.domain, juliet, "nodes")) as Record<string, unknown>;
    assert.ok(stored && "urn:example:visible" in stored);
  });
});
