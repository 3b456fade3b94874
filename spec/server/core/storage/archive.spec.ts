// Specs for server/core/storage/archive.ts: the XEP-0313 v0.7 message archive on SQLite and
// PostgreSQL — archive order, the with/start/end filters, paging from either end by id (RSM and
// the #extended before-id/after-id/ids fields), counts, and unknown ids.
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { UnknownArchiveIdError, type ArchiveEntry, type ArchiveFilter } from "../../../../server/core/storage/archive.ts";
import { ArchiveIdGenerator } from "../../../../server/core/storage/archive-ids.ts";
import { forEachDatabase, uniqueName } from "./both.ts";

const PEERS = ["romeo@montague.lit", "nurse@capulet.lit", "benvolio@montague.lit"];

function entry(host: string, username: string, id: string, ts: number, peer = PEERS[0]!, resource = ""): ArchiveEntry {
  return { host, username, id, with: peer, withResource: resource, direction: "in", xml: `<message id="${id}"/>`, ts };
}

/** The reference: every matching entry in archive order. */
function matching(all: ArchiveEntry[], filter: ArchiveFilter): ArchiveEntry[] {
  const key = (e: ArchiveEntry) => [e.ts, e.id] as const;
  const before = (a: readonly [number, string], b: readonly [number, string]) => a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);
  const byId = new Map(all.map((e) => [e.id, e]));
  return all
    .filter((e) => filter.with === undefined || e.with === filter.with)
    .filter((e) => filter.start === undefined || e.ts >= filter.start)
    .filter((e) => filter.end === undefined || e.ts <= filter.end)
    .filter((e) => (filter.afterIds ?? []).every((id) => before(key(byId.get(id)!), key(e))))
    .filter((e) => (filter.beforeIds ?? []).every((id) => before(key(e), key(byId.get(id)!))))
    .sort((a, b) => (before(key(a), key(b)) ? -1 : before(key(b), key(a)) ? 1 : 0));
}

forEachDatabase("ArchiveStore", (db) => {
  test("gives messages back in archive order, time first and then id within one millisecond", async () => {
    const host = uniqueName("host");
    const ids = new ArchiveIdGenerator(() => 1000);
    const sameMs = [ids.next(), ids.next(), ids.next()];
    await db.storage.archive.append([
      entry(host, "juliet", sameMs[2]!.id, 1000),
      entry(host, "juliet", "zz-later", 2000),
      entry(host, "juliet", sameMs[0]!.id, 1000),
      entry(host, "juliet", "aa-earlier", 500),
      entry(host, "juliet", sameMs[1]!.id, 1000),
    ]);
    const page = await db.storage.archive.query(host, "juliet", { limit: 10 });
    assert.deepEqual(
      page.messages.map((m) => m.id),
      ["aa-earlier", sameMs[0]!.id, sameMs[1]!.id, sameMs[2]!.id, "zz-later"],
    );
    assert.equal(page.complete, true);
  });

  test("keeps every field of an archived message", async () => {
    const host = uniqueName("host");
    const xml = `<message xmlns="jabber:client" from="romeo@montague.lit/orchard" to="juliet@capulet.lit" type="chat"><body>Wherefore art thou? ☀</body></message>`;
    await db.storage.archive.append([
      { host, username: "juliet", id: "m1", with: "romeo@montague.lit", withResource: "orchard", direction: "in", xml, ts: 1_700_000_000_123 },
      { host, username: "juliet", id: "m2", with: "romeo@montague.lit", direction: "out", xml: "<message/>", ts: 1_700_000_000_124 },
    ]);
    assert.deepEqual(await db.storage.archive.get(host, "juliet", "m1"), {
      id: "m1",
      with: "romeo@montague.lit",
      withResource: "orchard",
      direction: "in",
      xml,
      ts: 1_700_000_000_123,
    });
    assert.equal((await db.storage.archive.get(host, "juliet", "m2"))?.withResource, "");
    assert.equal(await db.storage.archive.get(host, "juliet", "nope"), null);
    assert.equal(await db.storage.archive.get(host, "romeo", "m1"), null, "another account's archive is another archive");
  });

  test("archiving an id the archive already holds changes nothing", async () => {
    const host = uniqueName("host");
    await db.storage.archive.append([entry(host, "juliet", "m1", 10)]);
    await db.storage.archive.append([{ ...entry(host, "juliet", "m1", 99), xml: "<message>changed</message>" }]);
    const stored = await db.storage.archive.get(host, "juliet", "m1");
    assert.equal(stored?.ts, 10);
    assert.equal(stored?.xml, `<message id="m1"/>`);
    assert.equal(await db.storage.archive.count(host, "juliet"), 1);
  });

  test("'with' matches a peer's bare JID, or one resource of it; start and end are inclusive", async () => {
    const host = uniqueName("host");
    await db.storage.archive.append([
      entry(host, "juliet", "a", 100, PEERS[0], "orchard"),
      entry(host, "juliet", "b", 200, PEERS[1]),
      entry(host, "juliet", "c", 300, PEERS[0], "balcony"),
      entry(host, "juliet", "d", 400, PEERS[0]),
    ]);
    const ids = async (filter: ArchiveFilter) => (await db.storage.archive.query(host, "juliet", { ...filter, limit: 10 })).messages.map((m) => m.id);
    assert.deepEqual(await ids({ with: PEERS[0] }), ["a", "c", "d"]);
    assert.deepEqual(await ids({ with: PEERS[0], withResource: "balcony" }), ["c"]);
    assert.deepEqual(await ids({ with: "tybalt@capulet.lit" }), []);
    assert.deepEqual(await ids({ start: 200, end: 300 }), ["b", "c"]);
    assert.deepEqual(await ids({ start: 201 }), ["c", "d"]);
    assert.deepEqual(await ids({ end: 100 }), ["a"]);
    assert.deepEqual(await ids({ start: 300, end: 200 }), []);
    assert.equal(await db.storage.archive.count(host, "juliet", { with: PEERS[0], start: 150 }), 2);
  });

  test("pages from the start or the end, and says whether more lie beyond", async () => {
    const host = uniqueName("host");
    await db.storage.archive.append(Array.from({ length: 7 }, (_, i) => entry(host, "juliet", `m${i}`, i)));
    const archive = db.storage.archive;
    const first = await archive.query(host, "juliet", { limit: 3 });
    assert.deepEqual(first.messages.map((m) => m.id), ["m0", "m1", "m2"]);
    assert.equal(first.complete, false);
    const next = await archive.query(host, "juliet", { limit: 3, afterIds: ["m2"] });
    assert.deepEqual(next.messages.map((m) => m.id), ["m3", "m4", "m5"]);
    const lastForward = await archive.query(host, "juliet", { limit: 3, afterIds: ["m5"] });
    assert.deepEqual(lastForward.messages.map((m) => m.id), ["m6"]);
    assert.equal(lastForward.complete, true);

    const end = await archive.query(host, "juliet", { limit: 3, fromEnd: true });
    assert.deepEqual(end.messages.map((m) => m.id), ["m4", "m5", "m6"], "the last page, still oldest first");
    assert.equal(end.complete, false);
    const earlier = await archive.query(host, "juliet", { limit: 3, fromEnd: true, beforeIds: ["m1"] });
    assert.deepEqual(earlier.messages.map((m) => m.id), ["m0"]);
    assert.equal(earlier.complete, true);

    const between = await archive.query(host, "juliet", { limit: 10, afterIds: ["m1"], beforeIds: ["m5"] });
    assert.deepEqual(between.messages.map((m) => m.id), ["m2", "m3", "m4"]);
    const exact = await archive.query(host, "juliet", { limit: 2, fromEnd: true, afterIds: ["m1"], beforeIds: ["m5"] });
    assert.deepEqual(exact.messages.map((m) => m.id), ["m3", "m4"]);
    assert.equal(exact.complete, false);

    const skipped = await archive.query(host, "juliet", { limit: 2, offset: 4 });
    assert.deepEqual(skipped.messages.map((m) => m.id), ["m4", "m5"]);

    assert.equal(await archive.count(host, "juliet", {}, { atMost: 7 }), 7);
    assert.equal(await archive.count(host, "juliet", {}, { atMost: 6 }), undefined, "past the cap, no answer");
    assert.equal(await archive.count(host, "juliet", { afterIds: ["m4"] }, { atMost: 2 }), 2);

    const countOnly = await archive.query(host, "juliet", { limit: 0 });
    assert.deepEqual(countOnly, { messages: [], complete: false });
    assert.equal(await archive.count(host, "juliet", { afterIds: ["m1"], beforeIds: ["m5"] }), 3);
  });

  test("fetches named ids, and refuses an id the archive does not hold wherever it is named", async () => {
    const host = uniqueName("host");
    await db.storage.archive.append([entry(host, "juliet", "a", 1), entry(host, "juliet", "b", 2), entry(host, "juliet", "c", 3)]);
    await db.storage.archive.append([entry(host, "romeo", "x", 1)]);
    const page = await db.storage.archive.query(host, "juliet", { ids: ["c", "a"], limit: 10 });
    assert.deepEqual(page.messages.map((m) => m.id), ["a", "c"]);
    for (const filter of [{ ids: ["a", "x"] }, { afterIds: ["x"] }, { beforeIds: ["nope"] }] satisfies ArchiveFilter[]) {
      await assert.rejects(db.storage.archive.query(host, "juliet", { ...filter, limit: 10 }), (e: unknown) => e instanceof UnknownArchiveIdError);
    }
    await assert.rejects(db.storage.archive.count(host, "juliet", { afterIds: ["x"] }), UnknownArchiveIdError);
  });

  test("knows the first and last message of an archive", async () => {
    const host = uniqueName("host");
    assert.equal(await db.storage.archive.bounds(host, "juliet"), null);
    await db.storage.archive.append([entry(host, "juliet", "b", 20), entry(host, "juliet", "a", 10), entry(host, "juliet", "c", 20)]);
    assert.deepEqual(await db.storage.archive.bounds(host, "juliet"), { first: { id: "a", ts: 10 }, last: { id: "c", ts: 20 } });
  });

  test("deleting an account removes its archive and offline messages, and nobody else's", async () => {
    const host = uniqueName("host");
    const storage = db.storage;
    const creds = { scramSha1: null, scramSha256: { salt: Buffer.alloc(16), iterations: 4096, storedKey: Buffer.alloc(32), serverKey: Buffer.alloc(32) } };
    await storage.users.create(host, "juliet", creds);
    await storage.archive.append([entry(host, "juliet", "a", 1), entry(host, "romeo", "b", 1)]);
    await storage.offline.append([
      { host, username: "juliet", xml: "<message/>", storedAt: 1 },
      { host, username: "romeo", xml: "<message/>", storedAt: 1 },
    ]);
    assert.equal(await storage.users.delete(host, "juliet"), true);
    assert.equal(await storage.archive.count(host, "juliet"), 0);
    assert.equal(await storage.offline.count(host, "juliet"), 0);
    assert.equal(await storage.archive.count(host, "romeo"), 1);
    assert.equal(await storage.offline.count(host, "romeo"), 1);
  });

  test("walking pages forwards or backwards with any filter yields exactly the matching messages, in order", async () => {
    const host = uniqueName("host");
    let user = 0;
    const entriesArb = fc.uniqueArray(
      fc.record({ id: fc.stringMatching(/^[0-9a-z]{1,6}$/), ts: fc.integer({ min: 0, max: 12 }), peer: fc.constantFrom(...PEERS) }),
      { minLength: 0, maxLength: 30, selector: (e) => e.id },
    );
    await fc.assert(
      fc.asyncProperty(
        entriesArb,
        fc.record({
          with: fc.option(fc.constantFrom(...PEERS), { nil: undefined }),
          start: fc.option(fc.integer({ min: 0, max: 12 }), { nil: undefined }),
          end: fc.option(fc.integer({ min: 0, max: 12 }), { nil: undefined }),
          afterIndex: fc.option(fc.nat(), { nil: undefined }),
          beforeIndex: fc.option(fc.nat(), { nil: undefined }),
        }),
        fc.integer({ min: 1, max: 7 }),
        async (specs, f, pageSize) => {
          const username = `user${user++}`;
          const all = specs.map((s) => entry(host, username, s.id, s.ts, s.peer));
          await db.storage.archive.append(all);
          const pick = (i: number | undefined) => (i === undefined || all.length === 0 ? undefined : [all[i % all.length]!.id]);
          const filter: ArchiveFilter = { with: f.with, start: f.start, end: f.end, afterIds: pick(f.afterIndex), beforeIds: pick(f.beforeIndex) };
          const expected = matching(all, filter).map((e) => e.id);

          const forward: string[] = [];
          for (let guard = 0; guard <= all.length + 1; guard++) {
            const last = forward.at(-1);
            const page = await db.storage.archive.query(host, username, {
              ...filter,
              afterIds: [...(filter.afterIds ?? []), ...(last ? [last] : [])],
              limit: pageSize,
            });
            forward.push(...page.messages.map((m) => m.id));
            if (page.complete) break;
          }
          assert.deepEqual(forward, expected);

          const backward: string[] = [];
          for (let guard = 0; guard <= all.length + 1; guard++) {
            const first = backward[0];
            const page = await db.storage.archive.query(host, username, {
              ...filter,
              beforeIds: [...(filter.beforeIds ?? []), ...(first ? [first] : [])],
              limit: pageSize,
              fromEnd: true,
            });
            backward.unshift(...page.messages.map((m) => m.id));
            if (page.complete) break;
          }
          assert.deepEqual(backward, expected);
          assert.equal(await db.storage.archive.count(host, username, filter), expected.length);
        },
      ),
      { numRuns: 25 },
    );
  });
});
