// Specs for server/core/storage/roster.ts: RFC 6121 §2 roster items and XEP-0237 v1.3 roster
// versions, on SQLite and PostgreSQL.
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { rosterItem } from "../../../../server/core/storage/roster.ts";
import type { RosterItem } from "../../../../server/core/storage/roster.ts";
import { forEachDatabase, uniqueName } from "./both.ts";

forEachDatabase("RosterStore", (db) => {
  test("a user who never had a roster has version 0 and no items", async () => {
    const host = uniqueName("host");
    assert.deepEqual(await db.storage.roster.list(host, "romeo"), { version: 0, items: [] });
    assert.equal(await db.storage.roster.version(host, "romeo"), 0);
    assert.equal(await db.storage.roster.get(host, "romeo", "juliet@example.com"), null);
  });

  test("every field of an item comes back as stored", async () => {
    const host = uniqueName("host");
    const item: RosterItem = {
      jid: "juliet@example.com",
      name: "Juliet ☀",
      subscription: "from",
      askOut: true,
      pendingIn: true,
      pendingInStanza: "<presence xmlns='jabber:client' from='juliet@example.com' type='subscribe'><status>it's me</status></presence>",
      approved: true,
      groups: ["Friends", "Capulets"],
    };
    await db.storage.roster.upsert(host, "romeo", item);
    assert.deepEqual(await db.storage.roster.get(host, "romeo", item.jid), item);
    assert.deepEqual((await db.storage.roster.list(host, "romeo")).items, [item]);
  });

  test("upsert replaces the whole item", async () => {
    const host = uniqueName("host");
    const roster = db.storage.roster;
    await roster.upsert(host, "romeo", rosterItem("nurse@example.com", { name: "Nurse", askOut: true, groups: ["A"] }));
    await roster.upsert(host, "romeo", rosterItem("nurse@example.com", { subscription: "both" }));
    assert.deepEqual(await roster.get(host, "romeo", "nurse@example.com"), rosterItem("nurse@example.com", { subscription: "both" }));
  });

  test("each change returns a higher version, which list then reports", async () => {
    const host = uniqueName("host");
    const roster = db.storage.roster;
    const versions = [
      await roster.upsert(host, "romeo", rosterItem("a@example.com")),
      await roster.upsert(host, "romeo", rosterItem("b@example.com")),
      await roster.upsert(host, "romeo", rosterItem("a@example.com", { name: "A" })),
      (await roster.remove(host, "romeo", "b@example.com"))!,
    ];
    for (let i = 1; i < versions.length; i++) assert.ok(versions[i]! > versions[i - 1]!, `${versions}`);
    assert.ok(versions[0]! > 0);
    assert.equal((await roster.list(host, "romeo")).version, versions.at(-1));
  });

  test("removing a contact that is not there returns null and leaves the version alone", async () => {
    const host = uniqueName("host");
    const roster = db.storage.roster;
    const version = await roster.upsert(host, "romeo", rosterItem("a@example.com"));
    assert.equal(await roster.remove(host, "romeo", "nobody@example.com"), null);
    assert.equal(await roster.remove(uniqueName("host"), "romeo", "a@example.com"), null);
    assert.equal(await roster.version(host, "romeo"), version);
    assert.equal((await roster.list(host, "romeo")).items.length, 1);
  });

  test("versions are per user: one user's change does not move another's", async () => {
    const host = uniqueName("host");
    const otherHost = uniqueName("other");
    const roster = db.storage.roster;
    await roster.upsert(host, "romeo", rosterItem("a@example.com"));
    await roster.upsert(otherHost, "juliet", rosterItem("a@example.com"));
    const before = {
      romeo: await roster.version(host, "romeo"),
      julietElsewhere: await roster.version(otherHost, "juliet"),
    };
    for (let i = 0; i < 3; i++) await roster.upsert(host, "juliet", rosterItem(`c${i}@example.com`));
    assert.equal(await roster.version(host, "romeo"), before.romeo);
    assert.equal(await roster.version(otherHost, "juliet"), before.julietElsewhere);
    assert.equal((await roster.list(host, "romeo")).items.length, 1);
    assert.equal((await roster.list(otherHost, "juliet")).items.length, 1);
  });

  test("group names in any script, with quotes and backslashes, round-trip in order", async () => {
    const host = uniqueName("host");
    const groups = ["Famille 👪", "朋友", "עברית", "Ελληνικά", "e\u0301te\u0301", 'say "hi"\\now', "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "[]{},:"];
    await db.storage.roster.upsert(host, "romeo", rosterItem("a@example.com", { groups, name: "Ромео 🌹" }));
    const stored = await db.storage.roster.get(host, "romeo", "a@example.com");
    assert.deepEqual(stored?.groups, groups);
    assert.equal(stored?.name, "Ромео 🌹");
  });

  test("list returns the items sorted by jid", async () => {
    const host = uniqueName("host");
    for (const jid of ["zed@example.com", "Ärger@example.com", "alice@example.com", "bob@example.org"]) {
      await db.storage.roster.upsert(host, "romeo", rosterItem(jid));
    }
    assert.deepEqual(
      (await db.storage.roster.list(host, "romeo")).items.map((i) => i.jid),
      ["alice@example.com", "bob@example.org", "zed@example.com", "Ärger@example.com"],
    );
  });

  test("refuses an unknown subscription state or a missing jid", async () => {
    const host = uniqueName("host");
    const bad = { ...rosterItem("a@example.com"), subscription: "maybe" } as unknown as RosterItem;
    await assert.rejects(db.storage.roster.upsert(host, "romeo", bad), RangeError);
    await assert.rejects(db.storage.roster.upsert(host, "romeo", rosterItem("")), TypeError);
    assert.deepEqual(await db.storage.roster.list(host, "romeo"), { version: 0, items: [] });
  });

  test("concurrent changes to one roster each get their own version, and none is lost", async () => {
    const host = uniqueName("host");
    const jids = Array.from({ length: 20 }, (_, i) => `contact${i}@example.com`);
    const versions = await Promise.all(jids.map((jid) => db.storage.roster.upsert(host, "romeo", rosterItem(jid))));
    assert.equal(new Set(versions).size, versions.length);
    const roster = await db.storage.roster.list(host, "romeo");
    assert.equal(roster.version, Math.max(...versions));
    assert.deepEqual(roster.items.map((i) => i.jid).sort(), [...jids].sort());
  });

  test("any sequence of changes matches a simple model, with the version rising at each real change", async () => {
    const contact = fc.constantFrom("a@example.com", "b@example.com", "c@example.net");
    const subscription = fc.constantFrom("none" as const, "to" as const, "from" as const, "both" as const);
    const op = fc.oneof(
      fc.record({
        kind: fc.constant("upsert" as const),
        item: fc.record({
          jid: contact,
          name: fc.option(fc.string({ maxLength: 8 })),
          subscription,
          askOut: fc.boolean(),
          pendingIn: fc.boolean(),
          pendingInStanza: fc.option(fc.constant("<presence type='subscribe'/>")),
          approved: fc.boolean(),
          groups: fc.array(fc.string({ unit: "grapheme", maxLength: 6 }), { maxLength: 3 }),
        }),
      }),
      fc.record({ kind: fc.constant("remove" as const), jid: contact }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 12 }), async (ops) => {
        const host = uniqueName("host");
        const roster = db.storage.roster;
        const model = new Map<string, RosterItem>();
        let version = 0;
        for (const o of ops) {
          if (o.kind === "upsert") {
            const next = await roster.upsert(host, "romeo", o.item);
            assert.ok(next > version);
            version = next;
            model.set(o.item.jid, { ...o.item }); // fast-check records have a null prototype
          } else {
            const next = await roster.remove(host, "romeo", o.jid);
            if (model.delete(o.jid)) {
              assert.ok(next !== null && next > version);
              version = next;
            } else {
              assert.equal(next, null);
            }
          }
        }
        const expected = [...model.values()].sort((a, b) => (a.jid < b.jid ? -1 : 1));
        assert.deepEqual(await roster.list(host, "romeo"), { version, items: expected });
      }),
      { numRuns: 25 },
    );
  });
});
