// Specs for server/core/storage/database.ts and migrations.ts (DESIGN.md "Storage"):
// opening either dialect, and migrations that are idempotent and safe to run concurrently.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { Migrator, sql } from "kysely";
import { openDatabase, parseDatabaseUrl } from "../../../../server/core/storage/database.ts";
import type { Storage } from "../../../../server/core/storage/database.ts";
import { InCodeMigrationProvider, migrations } from "../../../../server/core/storage/migrations.ts";
import { ArchiveIdGenerator } from "../../../../server/core/storage/archive-ids.ts";
import { rosterItem } from "../../../../server/core/storage/roster.ts";
import { forEachDatabase, POSTGRES_TEST_URL, uniqueName } from "./both.ts";

/**
 * Starts `count` node processes with `args`, waits until each has printed "ready", then
 * releases them all at once, so that their work overlaps as much as processes can.
 */
async function raceProcesses(count: number, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }[]> {
  const children = Array.from({ length: count }, () =>
    spawn(process.execPath, args, { cwd: projectRoot, stdio: ["pipe", "pipe", "pipe"], timeout: 60_000 }),
  );
  const outputs = children.map(() => ({ stdout: "", stderr: "" }));
  const exits = children.map((child) => once(child, "exit") as Promise<[number | null]>);
  const readiness = children.map(
    (child, i) =>
      new Promise<void>((resolve) => {
        // A child that dies before it is ready settles too: its exit code tells the test.
        child.on("exit", () => resolve());
        child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
          outputs[i]!.stdout += chunk;
          if (outputs[i]!.stdout.includes("ready\n")) resolve();
        });
        child.stderr.setEncoding("utf8").on("data", (chunk: string) => (outputs[i]!.stderr += chunk));
      }),
  );
  await Promise.all(readiness);
  for (const child of children) if (child.exitCode === null) child.stdin.end("go\n");
  const codes = await Promise.all(exits);
  return codes.map(([code], i) => ({ code, ...outputs[i]! }));
}
const here = dirname(fileURLToPath(import.meta.url));
const projectRoot = join(here, "../../../..");

// Every table the migrations create: the core's, then MUC's (0003), PubSub's (0004) and push's (0005).
const CORE_TABLES = [
  "archive", "kv", "last_activity",
  "muc_affiliations", "muc_nicks", "muc_rooms",
  "offline",
  "pubsub_affiliations", "pubsub_items", "pubsub_nodes", "pubsub_subscriptions",
  "push_devices", "push_jobs", "push_registrations",
  "roster_items", "roster_versions", "users", "vcards",
];

async function executedMigrations(storage: Storage): Promise<string[]> {
  const result = await sql<{ name: string }>`select name from kysely_migration order by name`.execute(storage.db);
  return result.rows.map((r) => r.name);
}

/** The tables this Storage sees: on PostgreSQL, those of its own schema (others belong to other tests). */
async function tableNames(storage: Storage): Promise<string[]> {
  const tables = await storage.db.introspection.getTables();
  let schema: string | undefined;
  if (storage.dialect === "postgres") {
    schema = (await sql<{ s: string }>`select current_schema() as s`.execute(storage.db)).rows[0]?.s;
  }
  return tables
    .filter((t) => t.schema === schema)
    .map((t) => t.name)
    .sort();
}

/** The archive table's indexes, each with its columns in order (the primary key as archive_pk). */
async function archiveIndexes(storage: Storage): Promise<Record<string, string[]>> {
  const indexes: Record<string, string[]> = {};
  if (storage.dialect === "sqlite") {
    const names = await sql<{ name: string }>`select name from sqlite_master where type = 'index' and tbl_name = 'archive'`.execute(storage.db);
    for (const { name } of names.rows) {
      const columns = await sql<{ seqno: number; name: string }>`select seqno, name from pragma_index_info(${name})`.execute(storage.db);
      // SQLite names the index behind a rowid table's primary key itself.
      indexes[name === "sqlite_autoindex_archive_1" ? "archive_pk" : name] = columns.rows.sort((a, b) => a.seqno - b.seqno).map((c) => c.name);
    }
  } else {
    const rows = await sql<{ indexname: string; indexdef: string }>`
      select indexname, indexdef from pg_indexes where tablename = 'archive' and schemaname = current_schema()`.execute(storage.db);
    for (const row of rows.rows) indexes[row.indexname] = /\(([^()]*)\)$/.exec(row.indexdef)![1]!.split(", ");
  }
  return indexes;
}

/** Runs the migrations up to and including `name` (or undoes the last one) as Storage.migrate would. */
async function migrateTo(storage: Storage, name: string | "down"): Promise<void> {
  const schema = storage.dialect === "postgres" ? (await sql<{ s: string }>`select current_schema() as s`.execute(storage.db)).rows[0]!.s : undefined;
  const migrator = new Migrator({ db: storage.db, provider: new InCodeMigrationProvider(storage.dialect), ...(schema ? { migrationTableSchema: schema } : {}) });
  const { error } = name === "down" ? await migrator.migrateDown() : await migrator.migrateTo(name);
  if (error !== undefined) throw error;
}

const credentials = {
  scramSha1: { salt: Buffer.from("salt"), iterations: 4096, storedKey: Buffer.alloc(20, 1), serverKey: Buffer.alloc(20, 2) },
  scramSha256: null,
};

describe("parseDatabaseUrl", () => {
  test("tells PostgreSQL urls from SQLite paths", () => {
    assert.deepEqual(parseDatabaseUrl("postgres://u@h/db"), { dialect: "postgres", url: "postgres://u@h/db" });
    assert.deepEqual(parseDatabaseUrl("postgresql://u@h/db"), { dialect: "postgres", url: "postgresql://u@h/db" });
    assert.deepEqual(parseDatabaseUrl("data/parley.sqlite"), { dialect: "sqlite", path: "data/parley.sqlite" });
    assert.deepEqual(parseDatabaseUrl("sqlite:data/parley.sqlite"), { dialect: "sqlite", path: "data/parley.sqlite" });
    assert.deepEqual(parseDatabaseUrl("sqlite:///var/lib/parley.db"), { dialect: "sqlite", path: "/var/lib/parley.db" });
    assert.deepEqual(parseDatabaseUrl(":memory:"), { dialect: "sqlite", path: ":memory:" });
    assert.deepEqual(parseDatabaseUrl("sqlite::memory:"), { dialect: "sqlite", path: ":memory:" });
  });

  test("refuses other schemes instead of creating a file named after them", () => {
    assert.throws(() => parseDatabaseUrl("mysql://root@localhost/parley"), /unsupported database url/);
    assert.throws(() => parseDatabaseUrl("sqlite:"), /names no file/);
    assert.throws(() => parseDatabaseUrl(""), /names no file/);
  });
});

describe("an in-memory SQLite database", () => {
  test("migrates and stores", async () => {
    const storage = await openDatabase(":memory:");
    try {
      await storage.migrate();
      assert.equal(storage.dialect, "sqlite");
      assert.equal(await storage.users.create("example.com", "romeo", credentials), true);
      assert.equal(await storage.users.exists("example.com", "romeo"), true);
    } finally {
      await storage.close();
    }
  });
});

describe("openDatabase refuses a PostgreSQL schema name it would have to quote", () => {
  test("upper case, spaces and quotes", async () => {
    for (const schema of ["Parley", "a b", 'x"; drop table users; --', "1abc", ""]) {
      await assert.rejects(openDatabase(POSTGRES_TEST_URL, { schema }), /schema/);
    }
  });
});

forEachDatabase("migrations", (db) => {
  test("create every core table, and running them again changes nothing", async () => {
    const storage = await db.open(db.createEmpty());
    await storage.migrate();
    assert.deepEqual(await executedMigrations(storage), Object.keys(migrations(storage.dialect)).sort());
    assert.deepEqual(await tableNames(storage), CORE_TABLES);
    await storage.users.create("example.com", "juliet", credentials);

    await storage.migrate();
    assert.deepEqual(await executedMigrations(storage), Object.keys(migrations(storage.dialect)).sort());
    assert.equal(await storage.users.exists("example.com", "juliet"), true);
  });

  test("a reopened database keeps its data and needs no migration", async () => {
    const location = db.createEmpty();
    const first = await db.open(location);
    await first.migrate();
    await first.roster.upsert("example.com", "juliet", rosterItem("romeo@example.net", { name: "Romeo" }));
    await first.close();

    const second = await db.open(location);
    await second.migrate();
    const roster = await second.roster.list("example.com", "juliet");
    assert.deepEqual(roster.items.map((i) => i.name), ["Romeo"]);
  });

  test("several processes migrating one new database at once all succeed, and each migration runs once", async () => {
    const location = db.createEmpty();
    const args = ["--import", "tsx", join(here, "migrate-child.ts"), location.url, ...(location.schema ? [location.schema] : [])];
    const results = await raceProcesses(3, args);
    for (const result of results) assert.deepEqual(result, { code: 0, stdout: "ready\nmigrated\n", stderr: "" });

    const storage = await db.open(location);
    assert.deepEqual(await executedMigrations(storage), Object.keys(migrations(storage.dialect)).sort());
    assert.deepEqual(await tableNames(storage), CORE_TABLES);
  });

  test("the archive keeps only the primary key (host, username, id) and (host, username, with_jid, id)", async () => {
    const storage = await db.open(db.createEmpty());
    await storage.migrate();
    assert.deepEqual(await archiveIndexes(storage), {
      archive_pk: ["host", "username", "id"],
      archive_by_peer: ["host", "username", "with_jid", "id"],
    });
  });

  test("0006_archive_by_id re-indexes an archive made before it without touching its messages, and can be undone", async () => {
    const storage = await db.open(db.createEmpty());
    await migrateTo(storage, "0005_push");
    const before = {
      archive_pk: ["host", "username", "id"],
      archive_by_time: ["host", "username", "ts", "id"],
      archive_by_peer: ["host", "username", "with_jid", "ts", "id"],
    };
    assert.deepEqual(await archiveIndexes(storage), before);
    // Messages archived by an earlier Parley: ids from ArchiveIdGenerator, ts the id's time.
    let now = 1_600_000_000_000;
    const ids = new ArchiveIdGenerator(() => (now += 500));
    const rows = Array.from({ length: 30 }, (_, i) => {
      const { id, ts } = ids.next();
      return { host: "example.com", username: "juliet", id, with_jid: i % 3 === 0 ? "romeo@example.net" : "nurse@example.net", with_resource: "", direction: "in" as const, xml: `<message n="${i}"/>`, ts };
    });
    await storage.db.insertInto("archive").values(rows).execute();

    await storage.migrate();
    assert.deepEqual(await executedMigrations(storage), Object.keys(migrations(storage.dialect)).sort());
    assert.deepEqual(await archiveIndexes(storage), { archive_pk: before.archive_pk, archive_by_peer: ["host", "username", "with_jid", "id"] });
    const all = await storage.archive.query("example.com", "juliet", { limit: 100 });
    assert.deepEqual(all.messages.map((m) => [m.id, m.ts, m.xml]), rows.map((r) => [r.id, r.ts, r.xml]));
    const romeo = await storage.archive.query("example.com", "juliet", { limit: 3, with: "romeo@example.net", start: rows[3]!.ts, end: rows[20]!.ts, fromEnd: true });
    assert.deepEqual(romeo.messages.map((m) => m.id), [rows[12]!.id, rows[15]!.id, rows[18]!.id]);
    assert.deepEqual(await storage.archive.bounds("example.com", "juliet"), {
      first: { id: rows[0]!.id, ts: rows[0]!.ts },
      last: { id: rows[29]!.id, ts: rows[29]!.ts },
    });

    await migrateTo(storage, "down");
    assert.deepEqual(await archiveIndexes(storage), before);
    assert.equal(await storage.archive.count("example.com", "juliet"), 30);
  });

  test("closing twice is harmless", async () => {
    const storage = await db.open(db.createEmpty());
    await storage.close();
    await storage.close();
  });

  if (db.dialect === "postgres") {
    test("two pools migrating one new schema at once, repeatedly, all succeed", async () => {
      for (let round = 0; round < 5; round++) {
        const location = db.createEmpty();
        const pools = await Promise.all([db.open(location), db.open(location), db.open(location)]);
        await Promise.all(pools.map((s) => s.migrate()));
        assert.deepEqual(await executedMigrations(pools[0]!), Object.keys(migrations("postgres")).sort());
        assert.deepEqual(await tableNames(pools[0]!), CORE_TABLES);
        await Promise.all(pools.map((s) => s.close()));
      }
    });

    test("the schema option keeps every table in that schema and out of public", async () => {
      const location = db.createEmpty();
      const storage = await db.open(location);
      await storage.migrate();
      const result = await sql<{ table_schema: string; table_name: string }>`
        select table_schema, table_name from information_schema.tables
        where table_name in ('users', 'kysely_migration') and table_schema in (${location.schema!}, 'public')`.execute(
        storage.db,
      );
      assert.deepEqual(
        result.rows.map((r) => r.table_schema),
        result.rows.map(() => location.schema),
      );
      assert.equal(result.rows.length, 2);
    });

    test("bigint columns come back as numbers", async () => {
      const host = uniqueName("host");
      await db.storage.users.create(host, "a", credentials);
      const user = await db.storage.users.get(host, "a");
      assert.equal(typeof user?.createdAt, "number");
      assert.equal(typeof (await db.storage.users.count(host)), "number");
    });
  }

  if (db.dialect === "sqlite") {
    test("a file database gets its folder created, WAL, foreign keys and a busy timeout", async () => {
      const location = db.createEmpty();
      const nested = join(dirname(location.url), "data", "deeper", "parley.sqlite");
      const storage = await db.open({ url: `sqlite:${nested}` });
      await storage.migrate();
      assert.ok(existsSync(nested));
      const pragma = async (name: string) =>
        Object.values((await sql.raw(`pragma ${name}`).execute(storage.db)).rows[0] as object)[0];
      assert.equal(await pragma("journal_mode"), "wal");
      assert.equal(await pragma("foreign_keys"), 1);
      assert.ok(Number(await pragma("busy_timeout")) > 0);
    });
  }
});
