// Specs for server/core/storage/archive.ts: the XEP-0313 v0.7 message archive on SQLite and
// PostgreSQL — archive order, the with/start/end filters, paging from either end by id (RSM and
// the #extended before-id/after-id/ids fields), counts, unknown ids, the archive's contract
// (ids made by ArchiveIdGenerator, ts the id's millisecond), and the query plans behind a page.
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { CompiledQuery, type KyselyPlugin, type RootOperationNode } from "kysely";
import {
  ArchiveStore,
  insertArchiveEntries,
  InvalidArchiveEntryError,
  UnknownArchiveIdError,
  type ArchiveEntry,
  type ArchiveFilter,
  type ArchivePageRequest,
} from "../../../../server/core/storage/archive.ts";
import { ArchiveIdGenerator, timeOfArchiveId } from "../../../../server/core/storage/archive-ids.ts";
import { forEachDatabase, uniqueName } from "./both.ts";

const PEERS = ["romeo@montague.lit", "nurse@capulet.lit", "benvolio@montague.lit"];

/** An entry under an archive id; its ts is the id's millisecond, as the archive requires. */
function entry(host: string, username: string, id: string, peer = PEERS[0]!, resource = ""): ArchiveEntry {
  return { host, username, id, with: peer, withResource: resource, direction: "in", xml: `<message id="${id}"/>`, ts: timeOfArchiveId(id) };
}

/**
 * Archive ids made at these milliseconds (non-decreasing), by one generator: ids of one
 * millisecond sort in the order they are listed.
 */
function idsAt(...times: number[]): string[] {
  let now = 0;
  const ids = new ArchiveIdGenerator(() => now);
  return times.map((ms) => {
    now = ms;
    const stamp = ids.next();
    assert.equal(stamp.ts, ms, "idsAt wants its times in order");
    return stamp.id;
  });
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
    const [earlier, a, b, c, later] = idsAt(500, 1000, 1000, 1000, 2000) as [string, string, string, string, string];
    await db.storage.archive.append([entry(host, "juliet", c), entry(host, "juliet", later), entry(host, "juliet", a), entry(host, "juliet", earlier), entry(host, "juliet", b)]);
    const page = await db.storage.archive.query(host, "juliet", { limit: 10 });
    assert.deepEqual(page.messages.map((m) => m.id), [earlier, a, b, c, later]);
    assert.deepEqual(page.messages.map((m) => m.ts), [500, 1000, 1000, 1000, 2000]);
    assert.equal(page.complete, true);
  });

  test("pages through many messages of one millisecond in the order they were made, from either end", async () => {
    const host = uniqueName("host");
    const made = idsAt(...Array.from({ length: 12 }, (_, i) => (i < 2 ? 7 : i < 10 ? 8 : 9)));
    const shuffled = [...made].reverse();
    [shuffled[0], shuffled[5]] = [shuffled[5]!, shuffled[0]!];
    await db.storage.archive.append(shuffled.map((id) => entry(host, "juliet", id)));
    const archive = db.storage.archive;
    const first = await archive.query(host, "juliet", { limit: 4 });
    assert.deepEqual(first.messages.map((m) => m.id), made.slice(0, 4));
    const next = await archive.query(host, "juliet", { limit: 4, afterIds: [made[3]!] });
    assert.deepEqual(next.messages.map((m) => m.id), made.slice(4, 8), "after an id in the middle of a millisecond");
    const back = await archive.query(host, "juliet", { limit: 3, fromEnd: true, beforeIds: [made[6]!] });
    assert.deepEqual(back.messages.map((m) => m.id), made.slice(3, 6));
    assert.deepEqual((await archive.query(host, "juliet", { limit: 20, start: 8, end: 8 })).messages.map((m) => m.id), made.slice(2, 10));
    assert.equal(await archive.count(host, "juliet", { start: 8, end: 8, afterIds: [made[4]!], beforeIds: [made[9]!] }), 4);
    assert.deepEqual(await archive.bounds(host, "juliet"), { first: { id: made[0], ts: 7 }, last: { id: made[11], ts: 9 } });
  });

  test("keeps every field of an archived message", async () => {
    const host = uniqueName("host");
    const xml = `<message xmlns="jabber:client" from="romeo@montague.lit/orchard" to="juliet@capulet.lit" type="chat"><body>Wherefore art thou? ☀</body></message>`;
    const [m1, m2] = idsAt(1_700_000_000_123, 1_700_000_000_124) as [string, string];
    await db.storage.archive.append([
      { host, username: "juliet", id: m1, with: "romeo@montague.lit", withResource: "orchard", direction: "in", xml, ts: 1_700_000_000_123 },
      { host, username: "juliet", id: m2, with: "romeo@montague.lit", direction: "out", xml: "<message/>", ts: 1_700_000_000_124 },
    ]);
    assert.deepEqual(await db.storage.archive.get(host, "juliet", m1), {
      id: m1,
      with: "romeo@montague.lit",
      withResource: "orchard",
      direction: "in",
      xml,
      ts: 1_700_000_000_123,
    });
    assert.equal((await db.storage.archive.get(host, "juliet", m2))?.withResource, "");
    assert.equal(await db.storage.archive.get(host, "juliet", "nope"), null);
    assert.equal(await db.storage.archive.get(host, "juliet", idsAt(1_700_000_000_123)[0]!), null);
    assert.equal(await db.storage.archive.get(host, "romeo", m1), null, "another account's archive is another archive");
  });

  test("archiving an id the archive already holds changes nothing", async () => {
    const host = uniqueName("host");
    const [m1] = idsAt(10) as [string];
    await db.storage.archive.append([entry(host, "juliet", m1)]);
    await db.storage.archive.append([{ ...entry(host, "juliet", m1, PEERS[1]), direction: "out", xml: "<message>changed</message>" }]);
    await db.storage.writer.write({ kind: "archive", entries: [{ ...entry(host, "juliet", m1), xml: "<message>again</message>" }] });
    const stored = await db.storage.archive.get(host, "juliet", m1);
    assert.equal(stored?.ts, 10);
    assert.equal(stored?.xml, `<message id="${m1}"/>`);
    assert.equal(stored?.with, PEERS[0]);
    assert.equal(stored?.direction, "in");
    assert.equal(await db.storage.archive.count(host, "juliet"), 1);
  });

  test("refuses an id not made by ArchiveIdGenerator, or a ts other than its id's, and stores nothing of that batch", async () => {
    const host = uniqueName("host");
    const [good, other] = idsAt(1_700_000_000_000, 1_700_000_000_001) as [string, string];
    const refused: ArchiveEntry[] = [
      { ...entry(host, "juliet", good), id: "m1" },
      { ...entry(host, "juliet", good), id: good.toUpperCase() },
      { ...entry(host, "juliet", good), id: `${good}0` },
      { ...entry(host, "juliet", good), id: good.slice(1) },
      { ...entry(host, "juliet", good), ts: 1_700_000_000_001 },
      { ...entry(host, "juliet", good), ts: 1_700_000_000_000.5 },
      { ...entry(host, "juliet", good), ts: 1 },
    ];
    for (const bad of refused) {
      await assert.rejects(db.storage.archive.append([entry(host, "juliet", other), bad]), (e: unknown) => {
        assert.ok(e instanceof InvalidArchiveEntryError, String(e));
        assert.match(e.message, bad.id === good ? /has ts .* but its id says 1700000000000/ : /was not made by ArchiveIdGenerator/);
        return true;
      });
      await assert.rejects(db.storage.db.transaction().execute((trx) => insertArchiveEntries(trx, [bad])), InvalidArchiveEntryError);
      await assert.rejects(db.storage.writer.write({ kind: "archive", entries: [bad] }), InvalidArchiveEntryError);
    }
    assert.equal(await db.storage.archive.count(host, "juliet"), 0, "nothing of a refused batch is stored");
    // Refused writes fail alone: the writer and the store carry on.
    await db.storage.writer.write({ kind: "archive", entries: [entry(host, "juliet", good)] });
    await db.storage.archive.append([entry(host, "juliet", other)]);
    assert.equal(await db.storage.archive.count(host, "juliet"), 2);
  });

  test("'with' matches a peer's bare JID, or one resource of it; start and end are inclusive", async () => {
    const host = uniqueName("host");
    const [a, b, c, d] = idsAt(100, 200, 300, 400) as [string, string, string, string];
    await db.storage.archive.append([
      entry(host, "juliet", a, PEERS[0], "orchard"),
      entry(host, "juliet", b, PEERS[1]),
      entry(host, "juliet", c, PEERS[0], "balcony"),
      entry(host, "juliet", d, PEERS[0]),
    ]);
    const ids = async (filter: ArchiveFilter) => (await db.storage.archive.query(host, "juliet", { ...filter, limit: 10 })).messages.map((m) => m.id);
    assert.deepEqual(await ids({ with: PEERS[0] }), [a, c, d]);
    assert.deepEqual(await ids({ with: PEERS[0], withResource: "balcony" }), [c]);
    assert.deepEqual(await ids({ with: "tybalt@capulet.lit" }), []);
    assert.deepEqual(await ids({ start: 200, end: 300 }), [b, c]);
    assert.deepEqual(await ids({ start: 201 }), [c, d]);
    assert.deepEqual(await ids({ end: 100 }), [a]);
    assert.deepEqual(await ids({ start: 300, end: 200 }), []);
    assert.equal(await db.storage.archive.count(host, "juliet", { with: PEERS[0], start: 150 }), 2);
  });

  test("start and end take in every message of their own millisecond, and none of the next or previous one", async () => {
    const host = uniqueName("host");
    // Several ids in each boundary millisecond, the first and last ids of it as likely as any.
    const made = idsAt(199, 199, 200, 200, 200, 250, 300, 300, 300, 301, 301);
    await db.storage.archive.append(made.map((id, i) => entry(host, "juliet", id, PEERS[i % 2])));
    const archive = db.storage.archive;
    const ids = async (filter: ArchiveFilter, fromEnd = false) =>
      (await archive.query(host, "juliet", { ...filter, limit: 20, fromEnd })).messages.map((m) => m.id);
    const inside = made.slice(2, 9);
    assert.deepEqual(await ids({ start: 200, end: 300 }), inside);
    assert.deepEqual(await ids({ start: 200, end: 300 }, true), inside);
    assert.equal(await archive.count(host, "juliet", { start: 200, end: 300 }), 7);
    assert.deepEqual(await ids({ start: 200, end: 200 }), made.slice(2, 5));
    assert.deepEqual(await ids({ start: 300 }), made.slice(6));
    assert.deepEqual(await ids({ end: 199 }), made.slice(0, 2));
    assert.deepEqual(await ids({ start: 199.5, end: 300.5 }), inside, "a fraction of a millisecond admits no part of it");
    assert.deepEqual(await ids({ with: PEERS[0], start: 200, end: 300 }), inside.filter((_, i) => (i + 2) % 2 === 0));
    assert.deepEqual(await ids({ with: PEERS[1], start: 200, end: 300 }, true), inside.filter((_, i) => (i + 2) % 2 === 1));
    // With RSM ids on top: the stricter bound wins, on either side.
    assert.deepEqual(await ids({ start: 200, end: 300, afterIds: [made[0]!], beforeIds: [made[10]!] }), inside);
    assert.deepEqual(await ids({ start: 200, end: 300, afterIds: [made[3]!], beforeIds: [made[7]!] }), made.slice(4, 7));
    assert.deepEqual(await ids({ start: 300, afterIds: [made[7]!] }), made.slice(8));
    // Times before the first or after the last millisecond an id can name.
    assert.deepEqual(await ids({ start: -5_000_000_000_000 }), made);
    assert.deepEqual(await ids({ end: -1 }), []);
    assert.deepEqual(await ids({ end: 1e300 }), made);
    assert.deepEqual(await ids({ start: 1e300 }), []);
  });

  test("pages from the start or the end, and says whether more lie beyond", async () => {
    const host = uniqueName("host");
    const ids = idsAt(0, 1, 2, 3, 4, 5, 6);
    await db.storage.archive.append(ids.map((id) => entry(host, "juliet", id)));
    const archive = db.storage.archive;
    // Named as before: m<i> is the i-th message.
    const named = (...names: string[]) => names.map((name) => ids[Number(name.slice(1))]!);
    const first = await archive.query(host, "juliet", { limit: 3 });
    assert.deepEqual(first.messages.map((m) => m.id), named("m0", "m1", "m2"));
    assert.equal(first.complete, false);
    const next = await archive.query(host, "juliet", { limit: 3, afterIds: named("m2") });
    assert.deepEqual(next.messages.map((m) => m.id), named("m3", "m4", "m5"));
    const lastForward = await archive.query(host, "juliet", { limit: 3, afterIds: named("m5") });
    assert.deepEqual(lastForward.messages.map((m) => m.id), named("m6"));
    assert.equal(lastForward.complete, true);

    const end = await archive.query(host, "juliet", { limit: 3, fromEnd: true });
    assert.deepEqual(end.messages.map((m) => m.id), named("m4", "m5", "m6"), "the last page, still oldest first");
    assert.equal(end.complete, false);
    const earlier = await archive.query(host, "juliet", { limit: 3, fromEnd: true, beforeIds: named("m1") });
    assert.deepEqual(earlier.messages.map((m) => m.id), named("m0"));
    assert.equal(earlier.complete, true);

    const between = await archive.query(host, "juliet", { limit: 10, afterIds: named("m1"), beforeIds: named("m5") });
    assert.deepEqual(between.messages.map((m) => m.id), named("m2", "m3", "m4"));
    const exact = await archive.query(host, "juliet", { limit: 2, fromEnd: true, afterIds: named("m1"), beforeIds: named("m5") });
    assert.deepEqual(exact.messages.map((m) => m.id), named("m3", "m4"));
    assert.equal(exact.complete, false);

    const skipped = await archive.query(host, "juliet", { limit: 2, offset: 4 });
    assert.deepEqual(skipped.messages.map((m) => m.id), named("m4", "m5"));

    assert.equal(await archive.count(host, "juliet", {}, { atMost: 7 }), 7);
    assert.equal(await archive.count(host, "juliet", {}, { atMost: 6 }), undefined, "past the cap, no answer");
    assert.equal(await archive.count(host, "juliet", { afterIds: named("m4") }, { atMost: 2 }), 2);

    const countOnly = await archive.query(host, "juliet", { limit: 0 });
    assert.deepEqual(countOnly, { messages: [], complete: false });
    assert.equal(await archive.count(host, "juliet", { afterIds: named("m1"), beforeIds: named("m5") }), 3);
  });

  test("fetches named ids, and refuses an id the archive does not hold wherever it is named", async () => {
    const host = uniqueName("host");
    const [a, b, c, x, unknown] = idsAt(1, 2, 3, 3, 4) as [string, string, string, string, string];
    await db.storage.archive.append([entry(host, "juliet", a), entry(host, "juliet", b), entry(host, "juliet", c)]);
    await db.storage.archive.append([entry(host, "romeo", x)]);
    const page = await db.storage.archive.query(host, "juliet", { ids: [c, a], limit: 10 });
    assert.deepEqual(page.messages.map((m) => m.id), [a, c]);
    for (const filter of [{ ids: [a, x] }, { afterIds: [x] }, { beforeIds: [unknown] }, { beforeIds: ["nope"] }] satisfies ArchiveFilter[]) {
      await assert.rejects(db.storage.archive.query(host, "juliet", { ...filter, limit: 10 }), (e: unknown) => e instanceof UnknownArchiveIdError);
    }
    await assert.rejects(db.storage.archive.count(host, "juliet", { afterIds: [x] }), UnknownArchiveIdError);
  });

  test("knows the first and last message of an archive", async () => {
    const host = uniqueName("host");
    assert.equal(await db.storage.archive.bounds(host, "juliet"), null);
    const [a, b, c] = idsAt(10, 20, 20) as [string, string, string];
    await db.storage.archive.append([entry(host, "juliet", b), entry(host, "juliet", a), entry(host, "juliet", c)]);
    assert.deepEqual(await db.storage.archive.bounds(host, "juliet"), { first: { id: a, ts: 10 }, last: { id: c, ts: 20 } });
  });

  test("deleting an account removes its archive and offline messages, and nobody else's", async () => {
    const host = uniqueName("host");
    const storage = db.storage;
    const creds = { scramSha1: null, scramSha256: { salt: Buffer.alloc(16), iterations: 4096, storedKey: Buffer.alloc(32), serverKey: Buffer.alloc(32) } };
    await storage.users.create(host, "juliet", creds);
    const [a, b] = idsAt(1, 1) as [string, string];
    await storage.archive.append([entry(host, "juliet", a), entry(host, "romeo", b)]);
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
    // Messages in the order they were archived (several in one millisecond as often as not),
    // appended in any order.
    const entriesArb = fc
      .array(fc.record({ ts: fc.integer({ min: 0, max: 12 }), peer: fc.constantFrom(...PEERS) }), { minLength: 0, maxLength: 30 })
      .chain((specs) => fc.tuple(fc.constant(specs), fc.shuffledSubarray(specs.map((_, i) => i), { minLength: specs.length, maxLength: specs.length })));
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
        async ([specs, order], f, pageSize) => {
          const username = `user${user++}`;
          const sorted = [...specs].sort((x, y) => x.ts - y.ts);
          const ids = idsAt(...sorted.map((s) => s.ts));
          const all = order.map((i) => entry(host, username, ids[i]!, sorted[i]!.peer));
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

  test("every page is one index range scan in archive order, with no sort, on a large archive", async () => {
    const host = uniqueName("host");
    const storage = db.storage;
    // One message a second for 20,000 seconds with 20 contacts: enough rows that a scan of the
    // table or a sort of the matches would cost the planner more than the index, as at 1,000,000.
    const TOTAL = 20_000;
    const contact = (i: number) => `contact${i % 20}@elsewhere.example`;
    let now = 1_700_000_000_000;
    const generator = new ArchiveIdGenerator(() => (now += 1000));
    const all: ArchiveEntry[] = [];
    for (let i = 0; i < TOTAL; i++) {
      const { id, ts } = generator.next();
      all.push({ host, username: "juliet", id, with: contact(i), withResource: "", direction: "in", xml: "<message/>", ts });
    }
    await storage.archive.append(all);
    const middle = all[TOTAL / 2]!;

    // The store's own statements, captured as it runs them, then explained with their parameters.
    const captured: RootOperationNode[] = [];
    const capture: KyselyPlugin = {
      transformQuery: ({ node }) => {
        captured.push(node);
        return node;
      },
      transformResult: async ({ result }) => result,
    };
    const store = new ArchiveStore(storage.db.withPlugin(capture));
    const executor = storage.db.getExecutor();
    const plan = async (request: ArchivePageRequest): Promise<string> => {
      captured.length = 0;
      const page = await store.query(host, "juliet", request);
      assert.ok(page.messages.length > 0);
      const query = executor.compileQuery(captured.at(-1)!, { queryId: "plan" });
      const explain = storage.dialect === "sqlite" ? "explain query plan " : "explain ";
      const result = await storage.db.executeQuery<Record<string, unknown>>(CompiledQuery.raw(explain + query.sql, [...query.parameters]));
      return result.rows.map((row) => String(storage.dialect === "sqlite" ? row.detail : row["QUERY PLAN"])).join("\n");
    };
    const cases: Array<[string, ArchivePageRequest, "archive_pk" | "archive_by_peer"]> = [
      ["the first page", { limit: 50 }, "archive_pk"],
      ["the last page", { limit: 50, fromEnd: true }, "archive_pk"],
      ["a page after an id", { limit: 50, afterIds: [middle.id] }, "archive_pk"],
      ["a page before an id", { limit: 50, fromEnd: true, beforeIds: [middle.id] }, "archive_pk"],
      ["a page in a time range", { limit: 50, start: middle.ts, end: middle.ts + 3_600_000 }, "archive_pk"],
      ["a page with 'with'", { limit: 50, with: contact(3) }, "archive_by_peer"],
      ["the last page with 'with'", { limit: 50, with: contact(3), fromEnd: true }, "archive_by_peer"],
      ["a page with 'with' after an id", { limit: 50, with: middle.with, afterIds: [middle.id] }, "archive_by_peer"],
      ["a page with 'with' in a time range", { limit: 50, with: contact(3), start: middle.ts, end: middle.ts + 3_600_000 }, "archive_by_peer"],
    ];
    const check = async (when: string) => {
      for (const [name, request, index] of cases) {
        const text = await plan(request);
        if (storage.dialect === "sqlite") {
          // The primary key of a rowid table is SQLite's automatic index on it.
          const used = index === "archive_pk" ? "sqlite_autoindex_archive_1" : index;
          assert.match(text, new RegExp(`^SEARCH archive USING (COVERING )?INDEX ${used} \\(host=\\? AND username=\\?`, "m"), `${name} ${when}:\n${text}`);
          assert.doesNotMatch(text, /TEMP B-TREE|^SCAN/m, `${name} ${when}:\n${text}`);
        } else {
          assert.match(text, new RegExp(`Index (Only )?Scan (Backward )?using ${index} on archive`), `${name} ${when}:\n${text}`);
          assert.doesNotMatch(text, /Sort|Seq Scan|Bitmap/, `${name} ${when}:\n${text}`);
        }
      }
    };
    // A new SQLite database has no statistics (Parley never runs ANALYZE); PostgreSQL's
    // autovacuum gathers them soon after a load like this one.
    if (storage.dialect === "sqlite") await check("without statistics");
    await storage.db.executeQuery(CompiledQuery.raw(storage.dialect === "sqlite" ? "analyze" : "analyze archive"));
    await check("with statistics");
  });
});
