// Specs for server/core/storage/users.ts: accounts with SCRAM-SHA-1 and SCRAM-SHA-256 verifiers
// (RFC 5802, RFC 7677), on SQLite and PostgreSQL.
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { rosterItem } from "../../../../server/core/storage/roster.ts";
import type { ScramCredential, UserCredentials } from "../../../../server/core/storage/users.ts";
import { forEachDatabase, uniqueName } from "./both.ts";

function credential(seed: number, iterations = 4096): ScramCredential {
  return {
    salt: Buffer.alloc(16, seed),
    iterations,
    storedKey: Buffer.alloc(32, seed + 1),
    serverKey: Buffer.alloc(32, seed + 2),
  };
}

function both(seed: number): UserCredentials {
  return { scramSha1: credential(seed), scramSha256: credential(seed + 100) };
}

/** Compares as plain bytes, whatever Uint8Array subclass either side is. */
function bytes(value: Uint8Array | undefined): number[] | undefined {
  return value === undefined ? undefined : [...value];
}

function plain(credentials: { scramSha1: ScramCredential | null; scramSha256: ScramCredential | null }) {
  const one = (c: ScramCredential | null) =>
    c && { salt: bytes(c.salt), iterations: c.iterations, storedKey: bytes(c.storedKey), serverKey: bytes(c.serverKey) };
  return { scramSha1: one(credentials.scramSha1), scramSha256: one(credentials.scramSha256) };
}

forEachDatabase("UserStore", (db) => {
  test("creates an account once; a second create of the name fails and keeps the first", async () => {
    const host = uniqueName("host");
    const users = db.storage.users;
    assert.equal(await users.exists(host, "romeo"), false);
    assert.equal(await users.get(host, "romeo"), null);

    assert.equal(await users.create(host, "romeo", both(1)), true);
    assert.equal(await users.create(host, "romeo", both(50)), false);

    const stored = await users.get(host, "romeo");
    assert.ok(stored);
    assert.equal(stored.host, host);
    assert.equal(stored.username, "romeo");
    assert.equal(stored.disabled, false);
    assert.deepEqual(plain(stored.credentials), plain(both(1)));
    assert.equal(await users.exists(host, "romeo"), true);
  });

  test("of many registrations racing for one name, exactly one wins and its credentials are stored", async () => {
    const host = uniqueName("host");
    const outcomes = await Promise.all(Array.from({ length: 8 }, (_, i) => db.storage.users.create(host, "race", both(i))));
    assert.equal(outcomes.filter(Boolean).length, 1);
    const winner = outcomes.indexOf(true);
    assert.deepEqual(plain((await db.storage.users.get(host, "race"))!.credentials), plain(both(winner)));
  });

  test("credentials come back as the exact bytes stored, for either mechanism or both", async () => {
    const bytesArb = fc.uint8Array({ minLength: 0, maxLength: 64 });
    const credentialArb = fc.record({
      salt: bytesArb,
      iterations: fc.integer({ min: 1, max: 2_000_000_000 }),
      storedKey: bytesArb,
      serverKey: bytesArb,
    });
    const credentialsArb = fc
      .record({ scramSha1: fc.option(credentialArb), scramSha256: fc.option(credentialArb) })
      .filter((c) => c.scramSha1 !== null || c.scramSha256 !== null);
    const host = uniqueName("host");
    let n = 0;
    await fc.assert(
      fc.asyncProperty(credentialsArb, async (credentials) => {
        const username = `user${n++}`;
        assert.equal(await db.storage.users.create(host, username, credentials), true);
        const stored = await db.storage.users.get(host, username);
        assert.deepEqual(plain(stored!.credentials), plain(credentials));
        assert.ok(stored!.credentials.scramSha1 === null || Buffer.isBuffer(stored!.credentials.scramSha1.salt));
      }),
      { numRuns: 40 },
    );
  });

  test("bytes from a view into a larger buffer are stored as the view, not the whole buffer", async () => {
    const host = uniqueName("host");
    const backing = new Uint8Array([9, 9, 1, 2, 3, 9, 9]);
    const view = backing.subarray(2, 5);
    await db.storage.users.create(host, "view", {
      scramSha1: { salt: view, iterations: 1, storedKey: view, serverKey: view },
      scramSha256: null,
    });
    const stored = await db.storage.users.get(host, "view");
    assert.deepEqual(bytes(stored!.credentials.scramSha1!.salt), [1, 2, 3]);
  });

  test("refuses an account without any credentials, or with a nonsensical iteration count", async () => {
    const host = uniqueName("host");
    await assert.rejects(db.storage.users.create(host, "none", { scramSha1: null, scramSha256: null }), TypeError);
    await assert.rejects(
      db.storage.users.create(host, "zero", { scramSha1: credential(1, 0), scramSha256: null }),
      RangeError,
    );
    await assert.rejects(
      db.storage.users.create(host, "half", { scramSha1: credential(1, 1.5), scramSha256: null }),
      RangeError,
    );
    assert.equal(await db.storage.users.count(host), 0);
  });

  test("setCredentials replaces both mechanisms, and reports a missing account", async () => {
    const host = uniqueName("host");
    const users = db.storage.users;
    await users.create(host, "juliet", both(1));
    const created = (await users.get(host, "juliet"))!.createdAt;

    const changed: UserCredentials = { scramSha1: null, scramSha256: credential(7, 10_000) };
    assert.equal(await users.setCredentials(host, "juliet", changed), true);
    const stored = await users.get(host, "juliet");
    assert.deepEqual(plain(stored!.credentials), plain(changed));
    assert.equal(stored!.createdAt, created);

    assert.equal(await users.setCredentials(host, "nobody", changed), false);
    assert.equal(await users.exists(host, "nobody"), false);
  });

  test("a disabled account keeps its credentials", async () => {
    const host = uniqueName("host");
    const users = db.storage.users;
    await users.create(host, "benvolio", both(3));
    assert.equal(await users.setDisabled(host, "benvolio", true), true);
    const stored = await users.get(host, "benvolio");
    assert.equal(stored!.disabled, true);
    assert.deepEqual(plain(stored!.credentials), plain(both(3)));
    assert.equal(await users.setDisabled(host, "benvolio", false), true);
    assert.equal((await users.get(host, "benvolio"))!.disabled, false);
    assert.equal(await users.setDisabled(host, "nobody", true), false);
  });

  test("createdAt comes from the storage's clock", async () => {
    const storage = await db.fresh({ now: () => 1_700_000_000_123 });
    await storage.users.create("example.com", "mercutio", both(1));
    assert.equal((await storage.users.get("example.com", "mercutio"))!.createdAt, 1_700_000_000_123);
  });

  test("count is per host", async () => {
    const [a, b] = [uniqueName("a"), uniqueName("b")];
    for (const name of ["u1", "u2", "u3"]) await db.storage.users.create(a, name, both(1));
    await db.storage.users.create(b, "u1", both(1));
    assert.equal(await db.storage.users.count(a), 3);
    assert.equal(await db.storage.users.count(b), 1);
    assert.equal(await db.storage.users.count(uniqueName("empty")), 0);
  });

  test("deleting an account removes its roster, vCard, last activity and module data, and nobody else's", async () => {
    const host = uniqueName("host");
    const otherHost = uniqueName("other");
    const s = db.storage;

    async function populate(h: string, user: string): Promise<void> {
      await s.users.create(h, user, both(1));
      await s.roster.upsert(h, user, rosterItem("nurse@example.net", { subscription: "both", groups: ["Verona"] }));
      await s.vcards.set(h, user, "<vCard xmlns='vcard-temp'><FN>x</FN></vCard>");
      await s.lastActivity.set(h, user, { logoutSeconds: 1_700_000_000, status: "gone" });
      await s.kv.set("private", h, user, "storage:bookmarks", { rooms: [] });
      await s.kv.set("push", h, user, "device", "abc");
    }
    async function everything(h: string, user: string) {
      const roster = await s.roster.list(h, user);
      return {
        exists: await s.users.exists(h, user),
        rosterVersion: roster.version > 0,
        rosterItems: roster.items.length,
        vcard: (await s.vcards.get(h, user)) !== null,
        lastActivity: (await s.lastActivity.get(h, user)) !== null,
        privateData: (await s.kv.list("private", h, user)).length,
        pushData: (await s.kv.list("push", h, user)).length,
      };
    }
    const full = { exists: true, rosterVersion: true, rosterItems: 1, vcard: true, lastActivity: true, privateData: 1, pushData: 1 };
    const gone = { exists: false, rosterVersion: false, rosterItems: 0, vcard: false, lastActivity: false, privateData: 0, pushData: 0 };

    await populate(host, "tybalt");
    await populate(host, "capulet");
    await populate(otherHost, "tybalt");
    await s.kv.set("muc", host, "", "rooms", ["verona"]);

    assert.equal(await s.users.delete(host, "tybalt"), true);
    assert.deepEqual(await everything(host, "tybalt"), gone);
    assert.deepEqual(await everything(host, "capulet"), full);
    assert.deepEqual(await everything(otherHost, "tybalt"), full);
    assert.deepEqual(await s.kv.get("muc", host, "", "rooms"), ["verona"]);
    assert.equal(await s.users.count(host), 1);

    assert.equal(await s.users.delete(host, "tybalt"), false);
  });

  test("a deleted and re-registered account starts clean, and its roster versions do not repeat the old ones", async () => {
    let clock = 1_700_000_000_000;
    const s = await db.fresh({ now: () => clock });
    const host = "example.com";
    await s.users.create(host, "paris", both(1));
    let oldVersion = 0;
    for (let i = 0; i < 3; i++) oldVersion = await s.roster.upsert(host, "paris", rosterItem(`c${i}@example.net`));
    await s.users.delete(host, "paris");
    clock += 60_000;

    assert.equal(await s.users.create(host, "paris", both(2)), true);
    assert.deepEqual(await s.roster.list(host, "paris"), { version: 0, items: [] });
    const newVersion = await s.roster.upsert(host, "paris", rosterItem("c0@example.net"));
    assert.ok(newVersion > oldVersion, `${newVersion} should exceed ${oldVersion}`);
  });

  test("the same username on two hosts is two accounts", async () => {
    const [a, b] = [uniqueName("a"), uniqueName("b")];
    const users = db.storage.users;
    assert.equal(await users.create(a, "romeo", both(1)), true);
    assert.equal(await users.create(b, "romeo", both(2)), true);
    assert.deepEqual(plain((await users.get(a, "romeo"))!.credentials), plain(both(1)));
    assert.deepEqual(plain((await users.get(b, "romeo"))!.credentials), plain(both(2)));
    await users.setDisabled(a, "romeo", true);
    assert.equal((await users.get(b, "romeo"))!.disabled, false);
  });
});
