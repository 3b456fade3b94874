// Specs for server/core/storage/offline.ts: XEP-0160 v1.0.1 offline messages on SQLite and
// PostgreSQL — arrival order, counting, deleting what was delivered, the quota, and popping.
import assert from "node:assert/strict";
import { test } from "node:test";
import { OfflineQuotaError, type OfflineEntry } from "../../../../server/core/storage/offline.ts";
import { forEachDatabase, uniqueName } from "./both.ts";

function message(host: string, username: string, n: number): OfflineEntry {
  return { host, username, xml: `<message id="m${n}"><body>${n}</body></message>`, storedAt: 1_700_000_000_000 + n };
}

forEachDatabase("OfflineStore", (db) => {
  test("lists an account's messages in the order they were stored, across appends", async () => {
    const host = uniqueName("host");
    const offline = db.storage.offline;
    await offline.append([message(host, "juliet", 1), message(host, "romeo", 2), message(host, "juliet", 3)]);
    await offline.append([message(host, "juliet", 4)]);
    const listed = await offline.list(host, "juliet");
    assert.deepEqual(listed.map((m) => m.xml), [1, 3, 4].map((n) => message(host, "juliet", n).xml));
    assert.deepEqual(listed.map((m) => m.storedAt), [1, 3, 4].map((n) => 1_700_000_000_000 + n));
    assert.ok(listed.every((m, i) => i === 0 || m.seq > listed[i - 1]!.seq));
    assert.deepEqual((await offline.list(host, "juliet", 2)).map((m) => m.seq), listed.slice(0, 2).map((m) => m.seq));
    assert.equal(await offline.count(host, "juliet"), 3);
    assert.equal(await offline.count(host, "romeo"), 1);
    assert.equal(await offline.count(host, "nobody"), 0);
  });

  test("deletes exactly the delivered messages, and only the account's own", async () => {
    const host = uniqueName("host");
    const offline = db.storage.offline;
    await offline.append([1, 2, 3].map((n) => message(host, "juliet", n)));
    await offline.append([message(host, "romeo", 9)]);
    const [first, , third] = await offline.list(host, "juliet");
    const romeos = await offline.list(host, "romeo");
    assert.equal(await offline.delete(host, "juliet", [first!.seq, third!.seq, romeos[0]!.seq]), 2);
    assert.deepEqual((await offline.list(host, "juliet")).map((m) => m.xml), [message(host, "juliet", 2).xml]);
    assert.equal(await offline.count(host, "romeo"), 1);
    assert.equal(await offline.delete(host, "juliet", [first!.seq]), 0);
  });

  test("refuses a store that would take the account past its quota, storing none of it", async () => {
    const host = uniqueName("host");
    const offline = db.storage.offline;
    await offline.append([1, 2].map((n) => message(host, "juliet", n)), 3);
    await assert.rejects(offline.append([3, 4].map((n) => message(host, "juliet", n)), 3), (e: unknown) => {
      assert.ok(e instanceof OfflineQuotaError);
      assert.equal(e.limit, 3);
      return true;
    });
    assert.equal(await offline.count(host, "juliet"), 2);
    await offline.append([message(host, "juliet", 3)], 3);
    assert.equal(await offline.count(host, "juliet"), 3);
  });

  test("pop hands every message over once, in order, even to sessions popping at the same time", async () => {
    const host = uniqueName("host");
    const offline = db.storage.offline;
    await offline.append(Array.from({ length: 20 }, (_, n) => message(host, "juliet", n)));
    const results = await Promise.all([offline.pop(host, "juliet"), offline.pop(host, "juliet"), offline.pop(host, "juliet")]);
    const all = results.flat().sort((a, b) => a.seq - b.seq);
    assert.deepEqual(all.map((m) => m.xml), Array.from({ length: 20 }, (_, n) => message(host, "juliet", n).xml));
    for (const popped of results) assert.ok(popped.every((m, i) => i === 0 || m.seq > popped[i - 1]!.seq));
    assert.equal(await offline.count(host, "juliet"), 0);
  });
});
