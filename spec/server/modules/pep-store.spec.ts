// server/modules/pep/store.ts on SQLite and PostgreSQL: the XEP-0060 1.26.0 node, item,
// affiliation and subscription tables of migration 0004_pubsub answer alike on both.
import { test } from "node:test";
import assert from "node:assert/strict";
import { forEachDatabase, uniqueName } from "../core/storage/both.ts";
import { PubSubStore, type Service } from "../../../server/modules/pep/store.ts";
import { PEP_DEFAULT_CONFIG } from "../../../protocol/pubsub.ts";

forEachDatabase("PubSubStore", (db) => {
  const service = (): Service => ({ host: uniqueName("host"), username: uniqueName("user") });
  const item = (id: string, payload = `<x xmlns='urn:example'>${id}</x>`) => ({ id, publisher: "owner@example.test", payload });

  test("nodes keep their configuration and affiliations; another service sees none of them", async () => {
    const store = new PubSubStore(db.storage);
    const s = service();
    await store.createNode(s, "urn:example:a", { ...PEP_DEFAULT_CONFIG, accessModel: "whitelist", maxItems: "max", rosterGroupsAllowed: ["friends"] });
    await store.createNode(s, "urn:example:b", { ...PEP_DEFAULT_CONFIG });
    await store.setAffiliation(s, "urn:example:a", "romeo@example.test", "member");
    await store.setAffiliation(s, "urn:example:a", "tybalt@example.test", "outcast");
    await store.setAffiliation(s, "urn:example:a", "tybalt@example.test", null);
    const nodes = await store.nodes(s);
    assert.deepEqual([...nodes.keys()].sort(), ["urn:example:a", "urn:example:b"]);
    const a = nodes.get("urn:example:a")!;
    assert.equal(a.config.accessModel, "whitelist");
    assert.equal(a.config.maxItems, "max");
    assert.deepEqual(a.config.rosterGroupsAllowed, ["friends"]);
    assert.deepEqual([...a.affiliations], [["romeo@example.test", "member"]]);
    await store.setConfig(s, "urn:example:b", { ...PEP_DEFAULT_CONFIG, accessModel: "open" });
    assert.equal((await store.nodes(s)).get("urn:example:b")!.config.accessModel, "open");
    assert.equal((await store.nodes(service())).size, 0);
    await assert.rejects(store.createNode(s, "urn:example:a", { ...PEP_DEFAULT_CONFIG }));
  });

  test("items: publication order, republish moves to the end, trimming to the limit, by id, retract", async () => {
    const store = new PubSubStore(db.storage);
    const s = service();
    await store.createNode(s, "n", { ...PEP_DEFAULT_CONFIG, maxItems: 3 });
    for (const id of ["a", "b", "c"]) assert.deepEqual(await store.publish(s, "n", item(id), 3), []);
    assert.deepEqual(await store.publish(s, "n", item("a", "<x xmlns='urn:example'>new</x>"), 3), []);
    assert.deepEqual((await store.items(s, "n")).map((i) => i.id), ["b", "c", "a"]);
    assert.equal((await store.lastItem(s, "n"))?.payload, "<x xmlns='urn:example'>new</x>");
    assert.deepEqual(await store.publish(s, "n", item("d"), 3), ["b"]);
    assert.deepEqual((await store.items(s, "n")).map((i) => i.id), ["c", "a", "d"]);
    assert.deepEqual((await store.items(s, "n", ["d", "zz", "c"])).map((i) => i.id), ["c", "d"]);
    assert.deepEqual(await store.trim(s, "n", 1), ["a", "c"]);
    assert.deepEqual(await store.retract(s, "n", ["d", "missing"]), ["d"]);
    assert.deepEqual(await store.items(s, "n"), []);
    assert.equal(await store.lastItem(s, "n"), undefined);
  });

  test("subscriptions: idempotent subscribe, listing by node and by JID, unsubscribe", async () => {
    const store = new PubSubStore(db.storage);
    const s = service();
    await store.createNode(s, "n", { ...PEP_DEFAULT_CONFIG });
    const subid = await store.subscribe(s, "n", "romeo@example.test/phone", "s1");
    assert.equal(subid, "s1");
    assert.equal(await store.subscribe(s, "n", "romeo@example.test/phone", "s2"), "s1");
    await store.subscribe(s, "n", "juliet@example.test", "s3");
    assert.deepEqual((await store.subscribers(s, "n")).map((x) => x.jid).sort(), ["juliet@example.test", "romeo@example.test/phone"]);
    assert.deepEqual((await store.subscriptionsOf(s, "romeo@example.test")).map((x) => [x.node, x.jid]), [["n", "romeo@example.test/phone"]]);
    assert.deepEqual(await store.subscriptionsOf(s, "romeo@example.tes"), []);
    assert.equal(await store.unsubscribe(s, "n", "romeo@example.test/phone"), true);
    assert.equal(await store.unsubscribe(s, "n", "romeo@example.test/phone"), false);
  });

  test("deleting a node or a whole service removes its items, affiliations and subscriptions", async () => {
    const store = new PubSubStore(db.storage);
    const s = service();
    for (const n of ["x", "y"]) {
      await store.createNode(s, n, { ...PEP_DEFAULT_CONFIG });
      await store.publish(s, n, item("1"), 1);
      await store.setAffiliation(s, n, "romeo@example.test", "member");
      await store.subscribe(s, n, "romeo@example.test", "s");
    }
    await store.deleteNode(s, "x");
    assert.deepEqual([...(await store.nodes(s)).keys()], ["y"]);
    assert.deepEqual(await store.items(s, "x"), []);
    assert.deepEqual(await store.subscribers(s, "x"), []);
    // A node re-created under the same name starts empty.
    await store.createNode(s, "x", { ...PEP_DEFAULT_CONFIG });
    assert.equal((await store.nodes(s)).get("x")!.affiliations.size, 0);
    await store.deleteService(s);
    assert.equal((await store.nodes(s)).size, 0);
    assert.deepEqual(await store.items(s, "y"), []);
    assert.deepEqual(await store.subscriptionsOf(s, "romeo@example.test"), []);
  });
});
