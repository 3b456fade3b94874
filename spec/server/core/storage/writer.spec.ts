// Specs for server/core/storage/writer.ts, the group-commit writer of DESIGN.md "Storage", on
// SQLite and PostgreSQL: many callers share a transaction; a caller hears "done" only once its
// write is committed; a failed batch fails every caller in it; a full offline queue refuses
// only the write that overflows it; closing commits what waits. On SQLite the writers commit
// through a worker thread with its own connection (sqlite-writer.ts), as openDatabase sets up
// for a database file, and the reads go through the main connection.
import assert from "node:assert/strict";
import { before, test } from "node:test";
import { GroupCommitWriter, WriterClosedError, type GroupCommitOptions } from "../../../../server/core/storage/writer.ts";
import { SqliteWorkerCommitter } from "../../../../server/core/storage/sqlite-writer.ts";
import type { Storage } from "../../../../server/core/storage/database.ts";
import { OfflineQuotaError } from "../../../../server/core/storage/offline.ts";
import { InvalidArchiveEntryError, type ArchiveEntry } from "../../../../server/core/storage/archive.ts";
import { ArchiveIdGenerator } from "../../../../server/core/storage/archive-ids.ts";
import { forEachDatabase, uniqueName, type TestLocation } from "./both.ts";
import { idOf } from "./archive-fixtures.ts";


function archived(host: string, username: string, name: string): ArchiveEntry {
  const id = idOf(host, name);
  return { host, username, id, with: "romeo@montague.lit", direction: "in", xml: `<message id="${id}"/>`, ts: 1 };
}

function offline(host: string, username: string, n: number) {
  return { host, username, xml: `<message id="o${n}"/>`, storedAt: n };
}

forEachDatabase("GroupCommitWriter", (harness) => {
  // The database the writers write to and the tests read from (a file, on SQLite).
  let db: { storage: Storage };
  let newWriter: (opts?: GroupCommitOptions) => GroupCommitWriter;
  let location: TestLocation;
  before(async () => {
    location = harness.createEmpty();
    const storage = await harness.open(location);
    await storage.migrate();
    db = { storage };
    newWriter = (opts) =>
      harness.dialect === "sqlite" ? new GroupCommitWriter(new SqliteWorkerCommitter(location.url), opts) : new GroupCommitWriter(storage.db, opts);
  });

  test("commits writes from many callers in a few transactions, each caller told only after its commit", async () => {
    const host = uniqueName("host");
    const batches: number[] = [];
    const writer = newWriter({ maxDelayMs: 20, onBatch: ({ operations }) => batches.push(operations) });
    const writes = Array.from({ length: 60 }, (_, i) =>
      writer.write({ kind: "archive", entries: [archived(host, "juliet", `m${i}`)] }).then(async () => {
        // Visible to any reader the moment its caller hears it is done.
        assert.notEqual(await db.storage.archive.get(host, "juliet", idOf(host, `m${i}`)), null);
      }),
    );
    await Promise.all(writes);
    assert.equal(batches.reduce((a, b) => a + b, 0), 60);
    assert.ok(batches.length < 60, `60 writes took ${batches.length} transactions`);
    await writer.close();
  });

  test("keeps one account's offline messages in the order they were written, across batches", async () => {
    const host = uniqueName("host");
    const writer = newWriter({ maxDelayMs: 1, maxBatch: 7 });
    await Promise.all(Array.from({ length: 50 }, (_, n) => writer.write({ kind: "offline", entries: [offline(host, "juliet", n)] })));
    const listed = await db.storage.offline.list(host, "juliet");
    assert.deepEqual(listed.map((m) => m.storedAt), Array.from({ length: 50 }, (_, n) => n));
    await writer.close();
  });

  test("a batch that fails fails every caller in it, and none of it is stored", async () => {
    const host = uniqueName("host");
    const writer = newWriter({ maxDelayMs: 50 });
    const good = writer.write({ kind: "archive", entries: [archived(host, "juliet", "good")] });
    const goodOffline = writer.write({ kind: "offline", entries: [offline(host, "juliet", 1)] });
    // A NOT NULL column left empty: the database refuses the whole transaction.
    const bad = writer.write({ kind: "archive", entries: [{ ...archived(host, "juliet", "bad"), xml: null as unknown as string }] });
    const synced = writer.sync();
    const outcomes = await Promise.allSettled([good, goodOffline, bad, synced]);
    assert.deepEqual(outcomes.map((o) => o.status), ["rejected", "rejected", "rejected", "rejected"]);
    // Every caller hears the database's own reason.
    for (const outcome of outcomes) assert.match(String((outcome as PromiseRejectedResult).reason), /not.?null/i);
    assert.equal(await db.storage.archive.get(host, "juliet", idOf(host, "good")), null);
    assert.equal(await db.storage.offline.count(host, "juliet"), 0);
    // The writer carries on with the next batch.
    await writer.write({ kind: "archive", entries: [archived(host, "juliet", "later")] });
    assert.notEqual(await db.storage.archive.get(host, "juliet", idOf(host, "later")), null);
    await writer.close();
  });

  test("an archive write that breaks the archive's contract is refused at once, alone; its batch commits", async () => {
    const host = uniqueName("host");
    const batches: number[] = [];
    const writer = newWriter({ maxDelayMs: 50, onBatch: ({ operations }) => batches.push(operations) });
    const earlier = writer.write({ kind: "archive", entries: [archived(host, "juliet", "before")] });
    const badId = writer.write({ kind: "archive", entries: [archived(host, "juliet", "fine"), { ...archived(host, "juliet", "x"), id: "m1" }] });
    const badTs = writer.write({ kind: "archive", entries: [{ ...archived(host, "juliet", "y"), ts: 2 }] });
    const later = writer.write({ kind: "offline", entries: [offline(host, "juliet", 1)] });
    const outcomes = await Promise.allSettled([earlier, badId, badTs, later]);
    assert.deepEqual(outcomes.map((o) => o.status), ["fulfilled", "rejected", "rejected", "fulfilled"]);
    assert.ok((outcomes[1] as PromiseRejectedResult).reason instanceof InvalidArchiveEntryError);
    assert.match(String((outcomes[2] as PromiseRejectedResult).reason), /has ts 2, but its id says 1/);
    assert.deepEqual(batches, [2], "the refused writes never joined a batch");
    assert.notEqual(await db.storage.archive.get(host, "juliet", idOf(host, "before")), null);
    assert.equal(await db.storage.archive.get(host, "juliet", idOf(host, "fine")), null, "nothing of a refused write is stored");
    assert.equal(await db.storage.archive.get(host, "juliet", idOf(host, "y")), null);
    await writer.close();
  });

  if (harness.dialect === "sqlite") {
    test("the writer thread itself refuses a batch with an entry that breaks the archive's contract", async () => {
      const host = uniqueName("host");
      const committer = new SqliteWorkerCommitter(location.url);
      try {
        const bad = { ...archived(host, "juliet", "bad"), ts: 5 };
        await assert.rejects(committer.commit([{ kind: "archive", entries: [archived(host, "juliet", "good"), bad] }]), /not an ArchiveIdGenerator id/);
        assert.equal(await db.storage.archive.get(host, "juliet", idOf(host, "good")), null);
        await committer.commit([{ kind: "archive", entries: [archived(host, "juliet", "good")] }]);
        assert.notEqual(await db.storage.archive.get(host, "juliet", idOf(host, "good")), null);
      } finally {
        await committer.close();
      }
    });
  }

  test("refuses only the offline write that would overflow the quota; the rest of its batch commits", async () => {
    const host = uniqueName("host");
    await db.storage.offline.append([offline(host, "juliet", 0)]);
    const writer = newWriter({ maxDelayMs: 50 });
    const limit = 3;
    const results = await Promise.allSettled([
      writer.write({ kind: "offline", entries: [offline(host, "juliet", 1)], limit }),
      writer.write({ kind: "offline", entries: [offline(host, "juliet", 2), offline(host, "juliet", 3)], limit }),
      writer.write({ kind: "offline", entries: [offline(host, "romeo", 4)], limit }),
      writer.write({ kind: "offline", entries: [offline(host, "juliet", 5)], limit }),
      writer.write({ kind: "archive", entries: [archived(host, "juliet", "a")] }),
      writer.write({ kind: "offline", entries: [offline(host, "juliet", 6)], limit }),
    ]);
    assert.deepEqual(results.map((r) => r.status), ["fulfilled", "rejected", "fulfilled", "fulfilled", "fulfilled", "rejected"]);
    const refusal = (results[1] as PromiseRejectedResult).reason;
    assert.ok(refusal instanceof OfflineQuotaError);
    assert.deepEqual((await db.storage.offline.list(host, "juliet")).map((m) => m.storedAt), [0, 1, 5]);
    assert.equal(await db.storage.offline.count(host, "romeo"), 1);
    assert.notEqual(await db.storage.archive.get(host, "juliet", idOf(host, "a")), null);
    await writer.close();
  });

  test("a deletion frees room for messages stored in the same batch", async () => {
    const host = uniqueName("host");
    await db.storage.offline.append([offline(host, "juliet", 0), offline(host, "juliet", 1)]);
    const seqs = (await db.storage.offline.list(host, "juliet")).map((m) => m.seq);
    const writer = newWriter({ maxDelayMs: 50 });
    await Promise.all([
      writer.write({ kind: "offline", entries: [offline(host, "juliet", 2), offline(host, "juliet", 3)], limit: 2 }),
      writer.write({ kind: "offline-delete", host, username: "juliet", seqs }),
    ]);
    assert.deepEqual((await db.storage.offline.list(host, "juliet")).map((m) => m.storedAt), [2, 3]);
    await writer.close();
  });

  test("a full batch starts without waiting for the delay; sync waits for what was written before it", async () => {
    const host = uniqueName("host");
    const writer = newWriter({ maxDelayMs: 60_000, maxBatch: 3 });
    await Promise.all([1, 2, 3].map((n) => writer.write({ kind: "offline", entries: [offline(host, "juliet", n)] })));
    assert.equal(await db.storage.offline.count(host, "juliet"), 3);

    const small = newWriter({ maxDelayMs: 1 });
    void small.write({ kind: "offline", entries: [offline(host, "romeo", 1)] });
    await small.sync();
    assert.equal(await db.storage.offline.count(host, "romeo"), 1);
    await small.sync(); // nothing pending: settles at once
    await Promise.all([writer.close(), small.close()]);
  });

  test("closing commits what waits at once, and refuses later writes", async () => {
    const host = uniqueName("host");
    const writer = newWriter({ maxDelayMs: 60_000 });
    const waiting = writer.write({ kind: "archive", entries: [archived(host, "juliet", "last")] });
    await writer.close();
    await waiting;
    assert.notEqual(await db.storage.archive.get(host, "juliet", idOf(host, "last")), null);
    await assert.rejects(writer.write({ kind: "archive", entries: [archived(host, "juliet", "late")] }), WriterClosedError);
    await writer.close();
  });

  test("writes that arrive while a batch commits all join the next one, past maxBatch", async () => {
    const host = uniqueName("host");
    const batches: number[] = [];
    const writer = newWriter({ maxDelayMs: 0, maxBatch: 10, onBatch: ({ operations }) => batches.push(operations) });
    const first = writer.write({ kind: "archive", entries: [archived(host, "juliet", "first")] });
    const rest = Array.from({ length: 100 }, (_, i) => writer.write({ kind: "archive", entries: [archived(host, "juliet", `m${i}`)] }));
    await Promise.all([first, ...rest]);
    assert.deepEqual(batches, [1, 100]);
    assert.equal(await db.storage.archive.count(host, "juliet"), 101);
    await writer.close();
  });

  test("a write before the tables exist fails; once migrated, the same writer stores", async () => {
    const storage = await harness.open(harness.createEmpty(), { writer: { maxDelayMs: 1 } });
    await assert.rejects(storage.writer.write({ kind: "archive", entries: [archived("example.org", "juliet", "early")] }));
    await storage.migrate();
    await storage.writer.write({ kind: "archive", entries: [archived("example.org", "juliet", "later")] });
    await storage.writer.write({ kind: "offline", entries: [offline("example.org", "juliet", 1)], limit: 5 });
    assert.notEqual(await storage.archive.get("example.org", "juliet", idOf("example.org", "later")), null);
    assert.equal(await storage.offline.count("example.org", "juliet"), 1);
    await storage.close();
  });

  test("Storage.close commits the writer's last batch before the database closes", async () => {
    const location = harness.createEmpty();
    const storage = await harness.open(location, { writer: { maxDelayMs: 60_000 } });
    await storage.migrate();
    const write = storage.writer.write({ kind: "offline", entries: [offline("example.org", "juliet", 7)] });
    await storage.close();
    await write;
    await assert.rejects(storage.writer.write({ kind: "offline", entries: [offline("example.org", "juliet", 8)] }), WriterClosedError);
    const again = await harness.open(location);
    assert.deepEqual((await again.offline.list("example.org", "juliet")).map((m) => m.storedAt), [7]);
  });
});
