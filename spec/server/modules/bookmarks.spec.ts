// End-to-end specs for server/modules/private (XEP-0049 1.2 Private XML Storage) and
// server/modules/bookmarks (XEP-0402 1.2.0 PEP Native Bookmarks with #compat and #compat-pep, and
// XEP-0048 1.2 Bookmarks in both of its stores): a 0402 client, a 0048 client using private
// storage and a 0048 client using PEP see the same bookmarks.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startTestServer, type TestServer } from "../../support/server.ts";
import { accountsOn } from "../../support/accounts.ts";
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
import privateStorage from "../../../server/modules/private/index.ts";
import bookmarks from "../../../server/modules/bookmarks/index.ts";
import { eventItem, fetchItems, isEvent, onlineWithCaps, publish, retract } from "./pep-helpers.ts";

let t: TestServer;
before(async () => {
  t = await startTestServer({ modules: [roster, presence, message, disco, pep, privateStorage, bookmarks] });
});
after(async () => {
  await t.stop();
});

const accounts = accountsOn(() => t);
const { account, bare, connected } = accounts;

const NATIVE = "urn:xmpp:bookmarks:1";
const LEGACY = "storage:bookmarks";
const NATIVE_OPTIONS = {
  "pubsub#persist_items": "true",
  "pubsub#max_items": "max",
  "pubsub#send_last_published_item": "never",
  "pubsub#access_model": "whitelist",
};

function privateGet(c: XmppClient, child: Element, to?: string): Promise<Element> {
  return c.iq(xml("iq", { type: "get", to }, xml("query", { xmlns: NS.privateStorage }, child)));
}

function privateSet(c: XmppClient, child: Element, to?: string): Promise<Element> {
  return c.iq(xml("iq", { type: "set", to }, xml("query", { xmlns: NS.privateStorage }, child)));
}

async function legacyPrivate(c: XmppClient): Promise<Element> {
  const reply = await privateGet(c, xml("storage", { xmlns: LEGACY }));
  assert.equal(reply.attrs.type, "result");
  return reply.getChild("query", NS.privateStorage)!.getChild("storage", LEGACY)!;
}

function conferences(storage: Element): Record<string, Record<string, string | undefined>> {
  return Object.fromEntries(storage.getChildren("conference").map((c) => [c.attrs.jid, { name: c.attrs.name, autojoin: c.attrs.autojoin, nick: c.getChildText("nick") ?? undefined }]));
}

describe("XEP-0049 private XML storage", () => {
  test("a fragment per namespace, returned as stored; a namespace never stored comes back empty", async () => {
    const c = await connected(await account("romeo"));
    const prefs = xml("prefs", { xmlns: "urn:example:prefs" }, xml("theme", {}, "dark"));
    assert.equal((await privateSet(c, prefs)).attrs.type, "result");
    const got = await privateGet(c, xml("prefs", { xmlns: "urn:example:prefs" }));
    assert.equal(got.getChild("query", NS.privateStorage)!.getChild("prefs", "urn:example:prefs")!.getChildText("theme"), "dark");
    const empty = await privateGet(c, xml("other", { xmlns: "urn:example:other" }));
    const fragment = empty.getChild("query", NS.privateStorage)!.getChild("other", "urn:example:other")!;
    assert.equal(fragment.children.length, 0);
    // Replaced, not merged.
    await privateSet(c, xml("prefs", { xmlns: "urn:example:prefs" }, xml("lang", {}, "fr")));
    const replaced = (await privateGet(c, xml("prefs", { xmlns: "urn:example:prefs" }))).getChild("query", NS.privateStorage)!.getChild("prefs", "urn:example:prefs")!;
    assert.equal(replaced.getChild("theme"), undefined);
    assert.equal(replaced.getChildText("lang"), "fr");
  });

  test("another account's storage is forbidden; jabber:* namespaces and several children are not acceptable", async () => {
    const romeo = await account("romeo");
    const c = await connected(romeo);
    const other = await connected(await account("mercutio"));
    await privateSet(c, xml("secret", { xmlns: "urn:example:secret" }, "x"));
    assertError(await privateGet(other, xml("secret", { xmlns: "urn:example:secret" }), bare(romeo)), "forbidden");
    assertError(await privateSet(other, xml("secret", { xmlns: "urn:example:secret" }), bare(romeo)), "forbidden");
    assertError(await privateSet(c, xml("query", { xmlns: "jabber:iq:roster" })), "not-acceptable");
    assertError(await privateGet(c, xml("x", { xmlns: "jabber:x:data" })), "not-acceptable");
    assertError(await c.iq(xml("iq", { type: "set" }, xml("query", { xmlns: NS.privateStorage }, xml("a", { xmlns: "urn:a" }), xml("b", { xmlns: "urn:b" })))), "not-acceptable");
  });
});

describe("XEP-0402 bookmarks with XEP-0048 compatibility", () => {
  test("the account advertises #compat and #compat-pep", async () => {
    const c = await connected(await account("romeo"));
    const info = await c.iq(xml("iq", { type: "get", to: c.jid!.split("/")[0] }, xml("query", { xmlns: NS.discoInfo })));
    const features = info.getChild("query", NS.discoInfo)!.getChildren("feature").map((f) => f.attrs.var);
    assert.ok(features.includes(NS.bookmarksCompat));
    assert.ok(features.includes(`${NATIVE}#compat-pep`));
    assert.ok(features.includes(NS.privateStorage));
  });

  test("a XEP-0402 bookmark shows in private storage and in the legacy PEP node, retracts too", async () => {
    const romeo = await account("romeo");
    const modern = await onlineWithCaps(accounts, romeo, "modern", [NATIVE]);
    const legacyPep = await onlineWithCaps(accounts, romeo, "legacy-pep", [LEGACY]);
    const conference = xml("conference", { xmlns: NATIVE, name: "The Orchard", autojoin: "true" }, xml("nick", {}, "Romeo"), xml("extensions", {}, xml("x", { xmlns: "urn:example:ext" })));
    assert.equal((await publish(modern, NATIVE, conference, { id: "orchard@conference.localhost", options: NATIVE_OPTIONS })).attrs.type, "result");
    await modern.next(isEvent(bare(romeo), NATIVE));

    assert.deepEqual(conferences(await legacyPrivate(modern)), { "orchard@conference.localhost": { name: "The Orchard", autojoin: "true", nick: "Romeo" } });
    // The 0048-over-PEP client is notified with the whole <storage/>.
    const event = await legacyPep.next(isEvent(bare(romeo), LEGACY));
    assert.deepEqual(conferences(eventItem(event)!.getChild("storage", LEGACY)!), { "orchard@conference.localhost": { name: "The Orchard", autojoin: "true", nick: "Romeo" } });
    // The legacy node is private (XEP-0223): a contact cannot read it.
    const other = await connected(await account("tybalt"));
    const refused = await other.iq(xml("iq", { type: "get", to: bare(romeo) }, xml("pubsub", { xmlns: NS.pubsub }, xml("items", { node: LEGACY }))));
    assert.ok(parseStanzaError(refused));

    await retract(modern, NATIVE, "orchard@conference.localhost");
    const emptied = await legacyPep.next(isEvent(bare(romeo), LEGACY));
    assert.equal(eventItem(emptied)!.getChild("storage", LEGACY)!.getChildren("conference").length, 0);
    assert.deepEqual(conferences(await legacyPrivate(modern)), {});
  });

  test("a XEP-0048 private-storage write becomes one XEP-0402 item per room; urls and extensions survive", async () => {
    const romeo = await account("romeo");
    const modern = await onlineWithCaps(accounts, romeo, "modern", [NATIVE]);
    const old = await connected(romeo, "old");
    // A 0402 bookmark with extensions the 0048 client does not know.
    await publish(modern, NATIVE, xml("conference", { xmlns: NATIVE, name: "Kept" }, xml("extensions", {}, xml("x", { xmlns: "urn:example:ext" }))), { id: "kept@conference.localhost", options: NATIVE_OPTIONS });
    await modern.next(isEvent(bare(romeo), NATIVE));

    const storage = xml("storage", { xmlns: LEGACY },
      xml("conference", { jid: "kept@conference.localhost", name: "Kept", autojoin: "false" }),
      xml("conference", { jid: "new@conference.localhost", name: "New", autojoin: "true" }, xml("nick", {}, "R"), xml("password", {}, "pw")),
      xml("url", { name: "Site", url: "https://example.org/" }));
    assert.equal((await privateSet(old, storage)).attrs.type, "result");

    // Only the changed room is published to 0402 subscribers.
    const added = await modern.next(isEvent(bare(romeo), NATIVE));
    assert.equal(eventItem(added)!.attrs.id, "new@conference.localhost");
    const items = await fetchItems(modern, undefined, NATIVE);
    const byId = new Map(items.map((i) => [i.attrs.id, i.getChild("conference", NATIVE)!]));
    assert.deepEqual([...byId.keys()].sort(), ["kept@conference.localhost", "new@conference.localhost"]);
    assert.equal(byId.get("new@conference.localhost")!.attrs.autojoin, "true");
    assert.equal(byId.get("new@conference.localhost")!.getChildText("nick"), "R");
    assert.equal(byId.get("new@conference.localhost")!.getChildText("password"), "pw");
    assert.ok(byId.get("kept@conference.localhost")!.getChild("extensions")?.getChild("x", "urn:example:ext"));

    const back = await legacyPrivate(old);
    assert.equal(back.getChild("url")?.attrs.url, "https://example.org/");
    assert.deepEqual(Object.keys(conferences(back)).sort(), ["kept@conference.localhost", "new@conference.localhost"]);

    // Dropping a room in 0048 retracts its 0402 item.
    await privateSet(old, xml("storage", { xmlns: LEGACY }, xml("conference", { jid: "new@conference.localhost", name: "New", autojoin: "true" }, xml("nick", {}, "R"), xml("password", {}, "pw"))));
    const gone = await modern.next((el) => isEvent(bare(romeo), NATIVE)(el) && el.getChild("event", NS.pubsubEvent)!.getChild("items")!.getChild("retract") !== undefined);
    assert.equal(gone.getChild("event", NS.pubsubEvent)!.getChild("items")!.getChild("retract")!.attrs.id, "kept@conference.localhost");
    assert.deepEqual((await fetchItems(modern, undefined, NATIVE)).map((i) => i.attrs.id), ["new@conference.localhost"]);
  });

  test("a XEP-0048 client publishing storage:bookmarks on PEP updates the XEP-0402 node", async () => {
    const romeo = await account("romeo");
    const modern = await onlineWithCaps(accounts, romeo, "modern", [NATIVE]);
    const oldPep = await connected(romeo, "old-pep");
    const storage = xml("storage", { xmlns: LEGACY }, xml("conference", { jid: "balcony@conference.localhost", name: "Balcony", autojoin: "true" }, xml("nick", {}, "Romeo")));
    const reply = await publish(oldPep, LEGACY, storage, { id: "current", options: { "pubsub#persist_items": "true", "pubsub#access_model": "whitelist" } });
    assert.equal(reply.attrs.type, "result");
    const event = await modern.next(isEvent(bare(romeo), NATIVE));
    assert.equal(eventItem(event)!.attrs.id, "balcony@conference.localhost");
    assert.equal(eventItem(event)!.getChild("conference", NATIVE)!.attrs.autojoin, "true");
    assert.deepEqual(conferences(await legacyPrivate(modern)), { "balcony@conference.localhost": { name: "Balcony", autojoin: "true", nick: "Romeo" } });
  });
});
