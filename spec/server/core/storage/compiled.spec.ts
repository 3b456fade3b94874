// Specs for server/core/storage/compiled.ts: reads compiled once and run with new arguments,
// on SQLite and PostgreSQL, against what Kysely returns when it builds the same query each time.
import assert from "node:assert/strict";
import { test } from "node:test";
import { sql } from "kysely";
import { compiledRead } from "../../../../server/core/storage/compiled.ts";
import { forEachDatabase, uniqueName } from "./both.ts";

forEachDatabase("compiledRead", (db) => {
  test("each call binds its own arguments, in the places the query gave them", async () => {
    const host = uniqueName("host");
    const kv = db.storage.kv;
    await kv.set("m1", host, "romeo", "a", 1);
    await kv.set("m1", host, "juliet", "a", 2);
    await kv.set("m2", host, "romeo", "a", 3);
    const d = db.storage.db;
    // Arguments in another order than the query uses them, one of them twice.
    const read = compiledRead(d, (key: string, username: string, module: string) =>
      d.selectFrom("kv").select("value").where("module", "=", module).where("host", "=", host).where("username", "=", username).where("key", "=", key)
        .where((eb) => eb.or([eb("module", "=", module), eb("module", "=", "never")])));
    assert.deepEqual((await read("a", "romeo", "m1")).map((r) => r.value), ["1"]);
    assert.deepEqual((await read("a", "juliet", "m1")).map((r) => r.value), ["2"]);
    assert.deepEqual((await read("a", "romeo", "m2")).map((r) => r.value), ["3"]);
    assert.deepEqual(await read("b", "romeo", "m1"), []);
    // Concurrent calls do not share parameters.
    const [x, y] = await Promise.all([read("a", "romeo", "m2"), read("a", "juliet", "m1")]);
    assert.deepEqual([x.map((r) => r.value), y.map((r) => r.value)], [["3"], ["2"]]);
  });

  test("a limit is bound like any value, and the rows equal Kysely's own", async () => {
    const host = uniqueName("host");
    const storage = db.storage;
    const entries = Array.from({ length: 5 }, (_, i) => ({ host, username: "romeo", xml: `<message id='${i}'/>`, storedAt: 1_000 + i }));
    await storage.offline.append(entries);
    const d = storage.db;
    const first = compiledRead(d, (username: string, limit: number) =>
      d.selectFrom("offline").select(["seq", "xml"]).where("host", "=", host).where("username", "=", username).orderBy("seq").limit(limit));
    for (const limit of [1, 3, 10]) {
      const direct = await d.selectFrom("offline").select(["seq", "xml"]).where("host", "=", host).where("username", "=", "romeo").orderBy("seq").limit(limit).execute();
      assert.deepEqual(await first("romeo", limit), direct);
    }
    assert.equal((await first("romeo", 3)).length, 3);
  });

  test("an argument written into the SQL text instead of bound is refused at the first call", async () => {
    const d = db.storage.db;
    const read = compiledRead(d, (table: string) => d.selectFrom("kv").select("value").where(sql.raw(`key = '${table}'`) as never));
    await assert.rejects(read("x"), /SQL text/);
    const unused = compiledRead(d, (_ignored: string) => d.selectFrom("kv").select("value"));
    await assert.rejects(unused("x"), /uses 0 of its 1 arguments/);
  });
});
