// End-to-end specs for XEP-0013 v1.2 (Flexible Offline Message Retrieval) in
// server/modules/offline, as a client sees it: the count and headers through disco, viewing,
// removing, fetching and purging, no flood once a session has used it (§2.2), and the plain
// XEP-0160 flood for clients that do not use it.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { startTestServer, type TestServer } from "../../support/server.ts";
import { accountsOn } from "../../support/accounts.ts";
import { assertError } from "../../support/stanzas.ts";
import { xml, type Element } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import { parseDelay } from "../../../protocol/delay.ts";
import { getValue, parseForm } from "../../../protocol/forms.ts";
import type { XmppClient } from "../../../conformance/client/client.ts";
import roster from "../../../server/modules/roster/index.ts";
import presence from "../../../server/modules/presence/index.ts";
import message from "../../../server/modules/message/index.ts";
import offline from "../../../server/modules/offline/index.ts";
import disco from "../../../server/modules/disco/index.ts";

const NODE = "http://jabber.org/protocol/offline";

let t: TestServer;
before(async () => {
  t = await startTestServer({ modules: [roster, presence, message, offline, disco] });
});
after(async () => {
  await t.stop();
});

const { account, bare, connected, online, settle } = accountsOn(() => t);

const withBody = (el: Element) => el.name === "message" && el.getChild("body") !== undefined;

async function stored(user: string): Promise<number> {
  await t.server.storage.writer.sync();
  return t.server.storage.offline.count(t.domain, user);
}

/** Romeo, online, has left `bodies` for an offline Juliet; returns both account names and Romeo's client. */
async function waiting(...bodies: string[]): Promise<{ romeo: string; juliet: string; r: XmppClient }> {
  const romeo = await account("romeo");
  const juliet = await account("juliet");
  const r = await online(romeo, "orchard");
  for (const body of bodies) r.send(xml("message", { to: bare(juliet), type: "chat" }, xml("body", {}, body)));
  await settle(r);
  assert.equal(await stored(juliet), bodies.length);
  return { romeo, juliet, r };
}

async function countOf(c: XmppClient): Promise<number> {
  const reply = await c.iq(xml("iq", { type: "get" }, xml("query", { xmlns: NS.discoInfo, node: NODE })));
  assert.equal(reply.attrs.type, "result");
  const query = reply.getChild("query", NS.discoInfo)!;
  assert.equal(query.attrs.node, NODE);
  const identity = query.getChild("identity")!;
  assert.deepEqual([identity.attrs.category, identity.attrs.type], ["automation", "message-list"]);
  const form = parseForm(query.getChild("x", NS.dataForms)!);
  assert.equal(getValue(form, "FORM_TYPE"), NODE);
  return Number(getValue(form, "number_of_messages"));
}

async function headers(c: XmppClient): Promise<Element[]> {
  const reply = await c.iq(xml("iq", { type: "get" }, xml("query", { xmlns: NS.discoItems, node: NODE })));
  assert.equal(reply.attrs.type, "result");
  return reply.getChild("query", NS.discoItems)!.getChildren("item");
}

function offlineIq(type: "get" | "set", ...children: Element[]): Element {
  return xml("iq", { type }, xml("offline", { xmlns: NODE }, ...children));
}

const nodeOf = (m: Element) => m.getChild("offline", NODE)?.getChild("item")?.attrs.node;

test("the server advertises flexible offline retrieval, and the account's node counts what waits", async () => {
  const { juliet } = await waiting("one", "two", "three");
  const j = await connected(juliet, "balcony");
  const info = await j.iq(xml("iq", { type: "get", to: t.domain }, xml("query", { xmlns: NS.discoInfo })));
  const features = info.getChild("query", NS.discoInfo)!.getChildren("feature").map((f) => f.attrs.var);
  assert.ok(features.includes(NODE), features.join(" "));
  assert.equal(await countOf(j), 3);

  const nobody = await connected(await account("nurse"));
  assert.equal(await countOf(nobody), 0);

  // Other nodes of the account are still the disco module's: unknown ones are item-not-found.
  const other = await j.iq(xml("iq", { type: "get" }, xml("query", { xmlns: NS.discoInfo, node: "urn:example:none" })));
  assertError(other, "item-not-found");
  const plain = await j.iq(xml("iq", { type: "get" }, xml("query", { xmlns: NS.discoInfo })));
  assert.equal(plain.attrs.type, "result");
});

test("headers name each message's sender and an ordered node; viewing one sends it and keeps it", async () => {
  const { juliet, r } = await waiting("one", "two", "three");
  const j = await connected(juliet, "balcony");
  const items = await headers(j);
  assert.equal(items.length, 3);
  for (const item of items) {
    assert.equal(item.attrs.jid, bare(juliet));
    assert.equal(item.attrs.name, r.jid!.toString());
  }
  const nodes = items.map((i) => i.attrs.node!);
  assert.equal(new Set(nodes).size, 3);
  assert.deepEqual([...nodes].sort(), nodes, "dictionary order is arrival order");

  const reply = await j.iq(offlineIq("get", xml("item", { action: "view", node: nodes[1] })));
  assert.equal(reply.attrs.type, "result");
  const viewed = await j.next(withBody);
  assert.equal(viewed.getChildText("body"), "two");
  assert.equal(nodeOf(viewed), nodes[1]);
  assert.equal(parseDelay(viewed)?.from, t.domain);
  assert.equal(await j.nothing(withBody, 100), true, "only the one asked for");
  assert.equal(await countOf(j), 3, "viewing does not delete");

  const unknown = await j.iq(offlineIq("get", xml("item", { action: "view", node: "no-such-node" })));
  assertError(unknown, "item-not-found");
});

test("removing one deletes only that one; an unknown node removes nothing", async () => {
  const { juliet } = await waiting("one", "two", "three");
  const j = await connected(juliet, "balcony");
  const nodes = (await headers(j)).map((i) => i.attrs.node!);

  const reply = await j.iq(offlineIq("set", xml("item", { action: "remove", node: nodes[0] })));
  assert.equal(reply.attrs.type, "result");
  assert.deepEqual((await headers(j)).map((i) => i.attrs.node), nodes.slice(1));

  const unknown = await j.iq(offlineIq("set", xml("item", { action: "remove", node: nodes[2] }), xml("item", { action: "remove", node: nodes[0] })));
  assertError(unknown, "item-not-found");
  assert.equal(await countOf(j), 2, "a request naming a missing node removes nothing");
});

test("fetch sends every message marked with its node and keeps them; purge deletes them all", async () => {
  const { juliet } = await waiting("one", "two", "three");
  const j = await connected(juliet, "balcony");
  const reply = await j.iq(offlineIq("get", xml("fetch")));
  assert.equal(reply.attrs.type, "result");
  const got = [await j.next(withBody), await j.next(withBody), await j.next(withBody)];
  assert.deepEqual(got.map((m) => m.getChildText("body")), ["one", "two", "three"]);
  assert.deepEqual(got.map(nodeOf), (await headers(j)).map((i) => i.attrs.node));
  assert.equal(await stored(juliet), 3, "fetching does not delete");

  const purged = await j.iq(offlineIq("set", xml("purge")));
  assert.equal(purged.attrs.type, "result");
  assert.equal(await stored(juliet), 0);
  assert.deepEqual(await headers(j), []);
});

test("a session that used it is not flooded on initial presence, nor is a second one while it is online", async () => {
  const { juliet, r } = await waiting("one", "two");
  const j = await connected(juliet, "balcony");
  assert.equal(await countOf(j), 2);
  j.send(xml("presence"));
  assert.equal(await j.nothing(withBody, 300), true, "no flood");

  const second = await online(juliet, "chamber");
  assert.equal(await second.nothing(withBody, 200), true, "no flood for another resource either");
  assert.equal(await stored(juliet), 2, "the messages are still there to read");

  // Live messages are delivered as usual.
  r.send(xml("message", { to: `${bare(juliet)}/balcony`, type: "chat" }, xml("body", {}, "live")));
  assert.equal((await j.next(withBody)).getChildText("body"), "live");
});

test("a client that does not use it still gets the XEP-0160 flood, even after one that did has gone", async () => {
  const { juliet } = await waiting("one", "two");
  const reader = await connected(juliet, "reader");
  assert.equal((await headers(reader)).length, 2);
  await reader.close();

  const j = await online(juliet, "plain");
  const got = [await j.next(withBody), await j.next(withBody)];
  assert.deepEqual(got.map((m) => m.getChildText("body")), ["one", "two"]);
  assert.equal(got.every((m) => nodeOf(m) === undefined), true, "flooded messages carry no node");
  assert.equal(await stored(juliet), 0);
});

test("another account may not read, count or delete someone's offline messages", async () => {
  const { juliet, r } = await waiting("secret");
  const to = bare(juliet);
  const info = await r.iq(xml("iq", { type: "get", to }, xml("query", { xmlns: NS.discoInfo, node: NODE })));
  assertError(info, "forbidden");
  const items = await r.iq(xml("iq", { type: "get", to }, xml("query", { xmlns: NS.discoItems, node: NODE })));
  assertError(items, "forbidden");
  const purge = await r.iq(xml("iq", { type: "set", to }, xml("offline", { xmlns: NODE }, xml("purge"))));
  assertError(purge, "forbidden");
  const fetch = await r.iq(xml("iq", { type: "get", to }, xml("offline", { xmlns: NODE }, xml("fetch"))));
  assertError(fetch, "forbidden");
  assert.equal(await r.nothing((el) => withBody(el) && el.getChildText("body") === "secret", 100), true);
  assert.equal(await stored(juliet), 1);
});
