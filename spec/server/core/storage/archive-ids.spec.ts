// Specs for server/core/storage/archive-ids.ts: XEP-0313 v0.7 archive UIDs (XEP-0359 stanza-ids)
// that are unique, unpredictable, and sort in the order they were made, whatever the clock does.
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import {
  ARCHIVE_ID_PATTERN,
  ArchiveIdGenerator,
  firstArchiveIdOf,
  lastArchiveIdOf,
  MAX_ARCHIVE_ID_TIME,
  timeOfArchiveId,
} from "../../../../server/core/storage/archive-ids.ts";

test("ids made one after another sort in that order, even within one millisecond", () => {
  const ids = new ArchiveIdGenerator(() => 1_700_000_000_000);
  const made = Array.from({ length: 2000 }, () => ids.next());
  for (let i = 1; i < made.length; i++) assert.ok(made[i - 1]!.id < made[i]!.id, `${made[i - 1]!.id} !< ${made[i]!.id}`);
  assert.equal(new Set(made.map((m) => m.id)).size, made.length);
  assert.ok(made.every((m) => ARCHIVE_ID_PATTERN.test(m.id) && m.ts === 1_700_000_000_000));
});

test("whatever the clock does, stamps never go back and ids keep growing", () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: 2 ** 45 }), { minLength: 1, maxLength: 200 }), (readings) => {
      let i = 0;
      const ids = new ArchiveIdGenerator(() => readings[i++ % readings.length]!);
      const made = readings.map(() => ids.next());
      for (let k = 1; k < made.length; k++) {
        assert.ok(made[k]!.ts >= made[k - 1]!.ts);
        assert.ok(made[k]!.ts >= readings[k]!);
        assert.ok(made[k - 1]!.id < made[k]!.id);
      }
    }),
  );
});

test("two generators at the same moment do not make the same id, nor one that follows from another", () => {
  const a = new ArchiveIdGenerator(() => 5);
  const b = new ArchiveIdGenerator(() => 5);
  const first = a.next().id;
  const second = a.next().id;
  assert.notEqual(first, b.next().id);
  // The random part moves by an unpredictable step, not by one.
  assert.notEqual(BigInt(`0x${Buffer.from(second).toString("hex")}`) - BigInt(`0x${Buffer.from(first).toString("hex")}`), 1n);
});

test("an id's first 10 characters give back the millisecond handed out with it", () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: MAX_ARCHIVE_ID_TIME }), fc.integer({ min: 1, max: 5 }), (ms, n) => {
      const ids = new ArchiveIdGenerator(() => ms);
      for (let i = 0; i < n; i++) {
        const { id, ts } = ids.next();
        assert.equal(timeOfArchiveId(id), ts);
      }
    }),
  );
  assert.equal(timeOfArchiveId(new ArchiveIdGenerator(() => 1_700_000_000_123).next().id), 1_700_000_000_123);
  for (const bad of ["", "m1", "0".repeat(25), "0".repeat(27), "I".repeat(26), "0000000000000000000000000u"]) {
    assert.ok(Number.isNaN(timeOfArchiveId(bad)), bad);
  }
});

test("a string is read as an archive id exactly when it matches ARCHIVE_ID_PATTERN", () => {
  // Strings of 26 characters near the alphabet (its letters, the four left out, upper case and
  // beyond ASCII), so that both answers come up often.
  const near = fc.constantFrom(..."0123456789abcdefghjkmnpqrstvwxyzilouAZ-\u00e9\u0430");
  fc.assert(
    fc.property(fc.array(near, { minLength: 24, maxLength: 28 }), fc.boolean(), (chars, clean) => {
      const id = (clean ? chars.filter((c) => /[0-9a-hjkmnp-tv-z]/.test(c)) : chars).join("").padEnd(26, "0").slice(0, clean ? 26 : undefined);
      assert.equal(Number.isNaN(timeOfArchiveId(id)), !ARCHIVE_ID_PATTERN.test(id), id);
    }),
    { numRuns: 2000 },
  );
});

test("the first and last ids of a millisecond bound every id made in it, and no other", () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: MAX_ARCHIVE_ID_TIME - 1 }), fc.integer({ min: 1, max: 50 }), (ms, n) => {
      const first = firstArchiveIdOf(ms);
      const last = lastArchiveIdOf(ms);
      assert.ok(ARCHIVE_ID_PATTERN.test(first) && ARCHIVE_ID_PATTERN.test(last));
      assert.equal(timeOfArchiveId(first), ms);
      assert.equal(timeOfArchiveId(last), ms);
      const ids = new ArchiveIdGenerator(() => ms);
      for (let i = 0; i < n; i++) {
        const { id } = ids.next();
        assert.ok(first <= id && id <= last);
      }
      assert.ok(lastArchiveIdOf(ms - 1) < first && new ArchiveIdGenerator(() => ms - 1).next().id < first);
      assert.ok(firstArchiveIdOf(ms + 1) > last && new ArchiveIdGenerator(() => ms + 1).next().id > last);
    }),
  );
  for (const bad of [-1, 0.5, MAX_ARCHIVE_ID_TIME + 1, Number.NaN]) {
    assert.throws(() => firstArchiveIdOf(bad), RangeError);
    assert.throws(() => lastArchiveIdOf(bad), RangeError);
  }
});
