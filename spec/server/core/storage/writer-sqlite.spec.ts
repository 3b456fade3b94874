// Specs for the SQLite side of DESIGN.md "Storage" (database.ts, sqlite-writer.ts): on a database
// file the group-commit writer commits on a connection of its own in a worker thread, beside the
// main connection every other store reads and writes through (with its statements kept prepared).
// The two connections must not trip each other up, the thread must start however Parley runs
// and must neither keep a finished process alive nor let it end with a write uncommitted.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { sql } from "kysely";
import { openDatabase } from "../../../../server/core/storage/database.ts";
import type { ArchiveEntry } from "../../../../server/core/storage/archive.ts";
import { idOf } from "./archive-fixtures.ts";

const DATABASE_MODULE = new URL("../../../../server/core/storage/database.ts", import.meta.url).href;


function archived(host: string, username: string, name: string): ArchiveEntry {
  const id = idOf(host, name);
  return { host, username, id, with: "romeo@montague.lit", direction: "in", xml: `<message id="${id}"/>`, ts: 1 };
}

function offline(host: string, username: string, n: number) {
  return { host, username, xml: `<message id="o${n}"/>`, storedAt: n };
}

describe("SQLite storage with its writer thread", () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "parley-writer-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("an in-memory database commits on its own connection, and reads see it", async () => {
    const storage = await openDatabase(":memory:", { writer: { maxDelayMs: 1 } });
    try {
      await storage.migrate();
      await storage.writer.write({ kind: "archive", entries: [archived("example.org", "juliet", "m")] });
      assert.notEqual(await storage.archive.get("example.org", "juliet", idOf("example.org", "m")), null);
    } finally {
      await storage.close();
    }
  });

  test("the writer thread stores a batch of every kind exactly as the writer of the other databases does", async () => {
    // The thread's statements are compiled from the queries the other writer runs
    // (writer-statements.ts): the same writes must leave the same rows, placeholders bound right.
    const host = "example.org";
    const write = async (storage: Awaited<ReturnType<typeof openDatabase>>) => {
      await storage.migrate();
      const first = archived(host, "juliet", "same");
      await Promise.all([
        storage.writer.write({ kind: "archive", entries: [first, archived(host, "juliet", "other")] }),
        storage.writer.write({ kind: "offline", entries: [offline(host, "romeo", 1), offline(host, "romeo", 2), offline(host, "romeo", 3)], limit: 3 }),
        storage.writer.write({ kind: "last-activity", host, username: "nurse", activity: { logoutSeconds: 100, status: "first" } }),
      ]);
      // The same id again (a resent copy) changes nothing; a fourth offline message is over the
      // quota; a later logout replaces the first.
      const [again, over] = await Promise.allSettled([
        storage.writer.write({ kind: "archive", entries: [{ ...first, xml: "<message id='resent'/>" }] }),
        storage.writer.write({ kind: "offline", entries: [offline(host, "romeo", 4)], limit: 3 }),
        storage.writer.write({ kind: "last-activity", host, username: "nurse", activity: { logoutSeconds: 200, status: "later" } }),
      ]);
      assert.equal(again.status, "fulfilled");
      assert.equal(over.status, "rejected");
      const queued = await storage.offline.list(host, "romeo");
      await storage.writer.write({ kind: "offline-delete", host, username: "romeo", seqs: [queued[1]!.seq] });
      return {
        archive: (await storage.archive.query(host, "juliet", { limit: 10 })).messages.map((m) => [m.id, m.with, m.withResource, m.direction, m.xml, m.ts]),
        offline: (await storage.offline.list(host, "romeo")).map((m) => [m.xml, m.storedAt]),
        lastActivity: await storage.lastActivity.get(host, "nurse"),
      };
    };
    const onFile = await openDatabase(join(dir, "same-rows.sqlite"), { writer: { maxDelayMs: 1 } });
    const inMemory = await openDatabase(":memory:", { writer: { maxDelayMs: 1 } });
    try {
      const thread = await write(onFile);
      assert.deepEqual(thread, await write(inMemory));
      assert.deepEqual(thread.offline, [["<message id=\"o1\"/>", 1], ["<message id=\"o3\"/>", 3]]);
      assert.deepEqual(thread.lastActivity, { logoutSeconds: 200, status: "later" });
      assert.equal(thread.archive.length, 2);
      assert.ok(!thread.archive.some((row) => String(row[4]).includes("resent")));
    } finally {
      await onFile.close();
      await inMemory.close();
    }
  });

  test("the writer thread runs below the event loop's priority, so delivery gets a shared core first (Linux)", { skip: !existsSync("/proc/thread-self") }, async (t) => {
    const niceOfThreads = (): Map<number, number> => {
      const nice = new Map<number, number>();
      for (const tid of readdirSync("/proc/self/task")) {
        // Fields after "(comm)": state is field 3, nice field 19.
        const stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
        nice.set(Number(tid), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]));
      }
      return nice;
    };
    const earlier = niceOfThreads();
    const main = earlier.get(process.pid)!;
    // Started at nice 10 or more, every new thread would be there already: nothing to tell apart.
    if (main >= 10) return t.skip(`the test process runs at nice ${main}`);
    const storage = await openDatabase(join(dir, "priority.sqlite"), { writer: { maxDelayMs: 0 } });
    try {
      await storage.migrate();
      await storage.writer.write({ kind: "archive", entries: [archived("example.org", "juliet", "nice")] });
      const later = niceOfThreads();
      const lowered = [...later].filter(([tid, nice]) => !earlier.has(tid) && nice === 10);
      assert.equal(lowered.length, 1, `one new thread at nice 10: ${JSON.stringify([...later])}`);
      assert.equal(later.get(process.pid), main, "the event loop keeps its priority");
    } finally {
      await storage.close();
    }
  });

  test("a transaction on the main connection that reads, then writes, survives a commit of the writer in between", async () => {
    const storage = await openDatabase(join(dir, "interleaved.sqlite"), { writer: { maxDelayMs: 0 } });
    try {
      await storage.migrate();
      // Once this has committed, the writer's thread is up and commits at once.
      await storage.writer.write({ kind: "archive", entries: [archived("example.org", "juliet", "first")] });
      let write: Promise<void> | undefined;
      await storage.db.transaction().execute(async (trx) => {
        await trx.selectFrom("offline").select("seq").where("username", "=", "romeo").execute();
        write = storage.writer.write({ kind: "offline", entries: [offline("example.org", "juliet", 1)] });
        await new Promise((r) => setTimeout(r, 300));
        await trx.insertInto("offline").values({ host: "example.org", username: "romeo", xml: "<message/>", stored_at: 2 }).execute();
      });
      await write;
      assert.equal(await storage.offline.count("example.org", "juliet"), 1);
      assert.equal(await storage.offline.count("example.org", "romeo"), 1);
    } finally {
      await storage.close();
    }
  });

  test("queries keep their answers when more distinct statements run than the main connection keeps prepared", async () => {
    const storage = await openDatabase(join(dir, "statements.sqlite"));
    try {
      await storage.migrate();
      const ask = async (i: number) => (await sql.raw<{ n: number }>(`select ${i} as n`).execute(storage.db)).rows[0].n;
      for (let round = 0; round < 2; round++) for (let i = 0; i < 300; i++) assert.equal(await ask(i), i);
      await storage.offline.append([offline("example.org", "juliet", 1)]);
      assert.equal(await storage.offline.count("example.org", "juliet"), 1);
    } finally {
      await storage.close();
    }
  });

  // The writer's thread must neither keep a finished process alive nor let it end before a write
  // it holds has committed; and it must start however Parley was started (here as `parley` does,
  // tsx registered in the main thread only, not passed on as a flag).
  test("a process that never closes its storage still commits what it wrote, then exits", async () => {
    const file = join(dir, "child.sqlite");
    const script = [
      `import { register } from ${JSON.stringify(import.meta.resolve("tsx/esm/api"))};`,
      `register();`,
      `const { openDatabase } = await import(${JSON.stringify(DATABASE_MODULE)});`,
      `const storage = await openDatabase(${JSON.stringify(file)}, { writer: { maxDelayMs: 200 } });`,
      `await storage.migrate();`,
      `void storage.writer.write({ kind: "offline", entries: [{ host: "example.org", username: "juliet", xml: "<message/>", storedAt: 9 }] });`,
    ].join("\n");
    writeFileSync(join(dir, "child.mjs"), script);
    const child = spawn(process.execPath, [join(dir, "child.mjs")], { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    const [code, signal] = (await once(child, "exit")) as [number | null, string | null];
    clearTimeout(timer);
    assert.equal(signal, null, "the process did not exit on its own");
    assert.equal(code, 0, stderr);
    const storage = await openDatabase(file);
    try {
      assert.deepEqual((await storage.offline.list("example.org", "juliet")).map((m) => m.storedAt), [9]);
    } finally {
      await storage.close();
    }
  });
});
