// Specs for server/core/storage/kv.ts: modules' small JSON data (DESIGN.md "Modules", m.store),
// on SQLite and PostgreSQL.
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import type { JsonValue } from "../../../../server/core/storage/kv.ts";
import { forEachDatabase, uniqueName } from "./both.ts";

forEachDatabase("KeyValueStore", (db) => {
  test("an absent key is undefined, while a stored JSON null is null", async () => {
    const host = uniqueName("host");
    const kv = db.storage.kv;
    assert.equal(await kv.get("mam", host, "romeo", "prefs"), undefined);
    await kv.set("mam", host, "romeo", "prefs", null);
    assert.equal(await kv.get("mam", host, "romeo", "prefs"), null);
  });

  test("any JSON value comes back equal", async () => {
    const host = uniqueName("host");
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.jsonValue(), async (value) => {
        const key = `k${n++}`;
        await db.storage.kv.set("test", host, "romeo", key, value as JsonValue);
        // JSON has no -0, and fast-check's records have a null prototype: compare as JSON would.
        assert.deepEqual(await db.storage.kv.get("test", host, "romeo", key), JSON.parse(JSON.stringify(value)));
      }),
      { numRuns: 60 },
    );
  });

  test("set replaces the value and its timestamp; delete removes it and says whether it was there", async () => {
    let clock = 5_000;
    const storage = await db.fresh({ now: () => clock });
    await storage.kv.set("push", "example.com", "romeo", "device", { token: "a" });
    clock = 6_000;
    await storage.kv.set("push", "example.com", "romeo", "device", { token: "b" });
    assert.deepEqual(await storage.kv.list("push", "example.com", "romeo"), [
      { key: "device", value: { token: "b" }, updatedAt: 6_000 },
    ]);
    assert.equal(await storage.kv.delete("push", "example.com", "romeo", "device"), true);
    assert.equal(await storage.kv.get("push", "example.com", "romeo", "device"), undefined);
    assert.equal(await storage.kv.delete("push", "example.com", "romeo", "device"), false);
  });

  test("list is one module's entries for one owner, sorted by key", async () => {
    const host = uniqueName("host");
    const other = uniqueName("other");
    const kv = db.storage.kv;
    for (const key of ["zeta", "Alpha", "beta", "ünï", "alpha"]) await kv.set("private", host, "romeo", key, key);
    await kv.set("privacy", host, "romeo", "lists", []);
    await kv.set("private", host, "juliet", "mine", 1);
    await kv.set("private", host, "", "host-wide", true);
    await kv.set("private", other, "romeo", "elsewhere", 2);
    const entries = await kv.list("private", host, "romeo");
    assert.deepEqual(
      entries.map((e) => [e.key, e.value]),
      [["Alpha", "Alpha"], ["alpha", "alpha"], ["beta", "beta"], ["zeta", "zeta"], ["ünï", "ünï"]],
    );
    assert.deepEqual((await kv.list("private", host, "")).map((e) => e.key), ["host-wide"]);
    assert.deepEqual(await kv.list("nothing", host, "romeo"), []);
  });

  test("the same key under another module, host or user is a different entry", async () => {
    const [a, b] = [uniqueName("a"), uniqueName("b")];
    const kv = db.storage.kv;
    await kv.set("m1", a, "romeo", "k", "m1/a/romeo");
    await kv.set("m2", a, "romeo", "k", "m2/a/romeo");
    await kv.set("m1", b, "romeo", "k", "m1/b/romeo");
    await kv.set("m1", a, "juliet", "k", "m1/a/juliet");
    await kv.delete("m1", a, "romeo", "k");
    assert.equal(await kv.get("m1", a, "romeo", "k"), undefined);
    assert.equal(await kv.get("m2", a, "romeo", "k"), "m2/a/romeo");
    assert.equal(await kv.get("m1", b, "romeo", "k"), "m1/b/romeo");
    assert.equal(await kv.get("m1", a, "juliet", "k"), "m1/a/juliet");
  });

  test("refuses a value JSON cannot hold, and stores nothing", async () => {
    const host = uniqueName("host");
    await assert.rejects(db.storage.kv.set("m", host, "romeo", "k", undefined as unknown as JsonValue), TypeError);
    assert.equal(await db.storage.kv.get("m", host, "romeo", "k"), undefined);
  });
});
