// Specs for server/core/storage/last-activity.ts: XEP-0012 v2.0 logout time and status,
// on SQLite and PostgreSQL.
import assert from "node:assert/strict";
import { test } from "node:test";
import { forEachDatabase, uniqueName } from "./both.ts";

forEachDatabase("LastActivityStore", (db) => {
  test("nothing is known of a user who never logged out", async () => {
    assert.equal(await db.storage.lastActivity.get(uniqueName("host"), "romeo"), null);
  });

  test("the last logout replaces the one before, status included", async () => {
    const host = uniqueName("host");
    const store = db.storage.lastActivity;
    await store.set(host, "romeo", { logoutSeconds: 1_700_000_000, status: "Heading home" });
    assert.deepEqual(await store.get(host, "romeo"), { logoutSeconds: 1_700_000_000, status: "Heading home" });
    await store.set(host, "romeo", { logoutSeconds: 4_102_444_800, status: "" });
    assert.deepEqual(await store.get(host, "romeo"), { logoutSeconds: 4_102_444_800, status: "" });
  });

  test("logouts written together (one group commit) keep the latest, account by account", async () => {
    const host = uniqueName("host");
    const store = db.storage.lastActivity;
    await Promise.all([
      store.set(host, "romeo", { logoutSeconds: 100, status: "first" }),
      store.set(host, "juliet", { logoutSeconds: 150, status: "hers" }),
      store.set(host, "romeo", { logoutSeconds: 200, status: "second" }),
    ]);
    assert.deepEqual(await store.get(host, "romeo"), { logoutSeconds: 200, status: "second" });
    assert.deepEqual(await store.get(host, "juliet"), { logoutSeconds: 150, status: "hers" });
  });

  test("status text in any script comes back unchanged", async () => {
    const host = uniqueName("host");
    const status = "Parting is such sweet sorrow 🌙 — 別れはとても甘い悲しみ";
    await db.storage.lastActivity.set(host, "juliet", { logoutSeconds: 1, status });
    assert.equal((await db.storage.lastActivity.get(host, "juliet"))?.status, status);
  });

  test("refuses a logout time that is not whole seconds", async () => {
    const host = uniqueName("host");
    await assert.rejects(db.storage.lastActivity.set(host, "romeo", { logoutSeconds: 1.5, status: "" }), RangeError);
    assert.equal(await db.storage.lastActivity.get(host, "romeo"), null);
  });

  test("hosts are kept apart", async () => {
    const [a, b] = [uniqueName("a"), uniqueName("b")];
    await db.storage.lastActivity.set(a, "romeo", { logoutSeconds: 10, status: "a" });
    await db.storage.lastActivity.set(b, "romeo", { logoutSeconds: 20, status: "b" });
    assert.deepEqual(await db.storage.lastActivity.get(a, "romeo"), { logoutSeconds: 10, status: "a" });
    assert.deepEqual(await db.storage.lastActivity.get(b, "romeo"), { logoutSeconds: 20, status: "b" });
  });
});
