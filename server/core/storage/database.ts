// Opens Parley's storage (DESIGN.md "Storage"): Kysely over SQLite (better-sqlite3, the
// embedded default) or PostgreSQL (pg), with one schema and one set of migrations for both.
import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import SqliteDatabase from "better-sqlite3";
import { Kysely, Migrator, PostgresDialect, SqliteDialect, sql, type SqliteDatabase as KyselySqliteDatabase } from "kysely";
import pg from "pg";
import { ArchiveStore } from "./archive.ts";
import { KeyValueStore } from "./kv.ts";
import { LastActivityStore } from "./last-activity.ts";
import { InCodeMigrationProvider } from "./migrations.ts";
import { OfflineStore } from "./offline.ts";
import { RosterStore } from "./roster.ts";
import type { Dialect, Schema } from "./schema.ts";
import { UserStore } from "./users.ts";
import { VCardStore } from "./vcards.ts";
import { SqliteWorkerCommitter } from "./sqlite-writer.ts";
import { GroupCommitWriter, type GroupCommitOptions } from "./writer.ts";

export interface Storage {
  db: Kysely<Schema>;
  dialect: Dialect;
  users: UserStore;
  roster: RosterStore;
  vcards: VCardStore;
  lastActivity: LastActivityStore;
  kv: KeyValueStore;
  /** XEP-0313 message archives (reads; writes go through `writer`). */
  archive: ArchiveStore;
  /** XEP-0160 offline messages (reads; writes go through `writer`). */
  offline: OfflineStore;
  /** Group commit for archive and offline writes (DESIGN.md "Storage"). */
  writer: GroupCommitWriter;
  /** Brings the schema up to date. Idempotent; concurrent callers (even other processes) wait for each other. */
  migrate(): Promise<void>;
  /** Commits what the writer holds, then releases the connections; later calls do nothing. */
  close(): Promise<void>;
}

export interface OpenOptions {
  /**
   * PostgreSQL only: keep every table in this schema (created if missing), set as the
   * search_path of each pooled connection. Lower-case letters, digits and "_". Tests use it
   * to isolate themselves inside one database.
   */
  schema?: string;
  /** PostgreSQL only: the most connections the pool opens (default 10). */
  poolSize?: number;
  /** PostgreSQL only: an idle pooled connection failed. The pool drops it and reconnects on demand. */
  onPoolError?: (error: Error) => void;
  /** Milliseconds since the epoch, for created/updated columns (default Date.now). */
  now?: () => number;
  /**
   * The group-commit writer's batching (default: 5 ms, or 500 operations; 5,000 on a SQLite
   * file, whose batches are committed by a worker thread and cost the event loop little).
   */
  writer?: GroupCommitOptions;
}

export type DatabaseLocation =
  | { dialect: "sqlite"; path: string /* ":memory:" for a private in-memory database */ }
  | { dialect: "postgres"; url: string };

const MEMORY = ":memory:";

/**
 * `postgres://…` or `postgresql://…` is PostgreSQL; `:memory:`, `sqlite:PATH`, `sqlite://PATH`
 * or a bare file path is SQLite. Other schemes are refused rather than taken for file names.
 */
export function parseDatabaseUrl(url: string): DatabaseLocation {
  if (/^postgres(ql)?:\/\//i.test(url)) return { dialect: "postgres", url };
  let path = url;
  if (/^sqlite:\/\//i.test(path)) path = path.slice("sqlite://".length);
  else if (/^sqlite:/i.test(path)) path = path.slice("sqlite:".length);
  else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(path)) {
    throw new Error(`unsupported database url "${url}": use a file path, sqlite:PATH or postgres://…`);
  }
  if (path === "") throw new Error(`database url "${url}" names no file`);
  return { dialect: "sqlite", path };
}

/**
 * How long a batch of the SQLite file's writer gathers before it commits. Every commit rewrites
 * each b-tree page it touched into the WAL, and archive rows of different accounts land on
 * different index pages, so the CPU a row costs falls as batches grow: 25 µs at 100 rows a
 * commit, 17 µs at 400 (bench/ANALYSIS.md, session 6). Together with the writer thread's lower
 * priority (sqlite-writer-worker.ts), 20 ms rather than 5 took that thread from 34–37% of a core
 * to 27–31% at 8,000 archived messages a second. What waits for a commit is a XEP-0198
 * acknowledgement or a MAM query, never a delivery.
 */
const SQLITE_GROUP_COMMIT_MS = 20;

export async function openDatabase(url: string, opts: OpenOptions = {}): Promise<Storage> {
  const location = parseDatabaseUrl(url);
  const now = opts.now ?? Date.now;
  if (location.dialect === "sqlite") {
    const db = new Kysely<Schema>({ dialect: new SqliteDialect({ database: withStatementCache(openSqlite(location.path)) }) });
    // DESIGN.md "Storage": on a file, the group commit runs on a connection of its own in a
    // worker thread (sqlite-writer.ts); an in-memory database has no second connection to give.
    let writer: GroupCommitWriter;
    if (location.path === MEMORY) writer = new GroupCommitWriter(db, opts.writer);
    else {
      const committer = new SqliteWorkerCommitter(resolve(location.path));
      writer = new GroupCommitWriter(committer, { maxDelayMs: SQLITE_GROUP_COMMIT_MS, maxBatch: 5000, ...opts.writer });
      committer.start();
    }
    return makeStorage(db, "sqlite", now, writer, () => migrateSqlite(db));
  }
  const schema = opts.schema;
  if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
    throw new Error(`schema "${schema}" must be lower-case letters, digits and "_", starting with a letter or "_"`);
  }
  const pool = new pg.Pool({
    connectionString: location.url,
    max: opts.poolSize ?? 10,
    types: { getTypeParser: typeParser },
    // A startup parameter rather than a SET after connecting: it holds before the first query
    // on every new connection, without a round trip. (An `options` in the url replaces it.)
    ...(schema === undefined ? {} : { options: `-c search_path=${schema}` }),
  });
  pool.on("error", opts.onPoolError ?? (() => {}));
  const db = new Kysely<Schema>({ dialect: new PostgresDialect({ pool }) });
  try {
    if (schema !== undefined) await createSchema(db, schema);
  } catch (error) {
    await db.destroy();
    throw error;
  }
  // PostgreSQL keeps the writer's 5 ms batches: at a fixed 3,000 archived msgs/s, 20 ms ones left
  // Parley's CPU as it was (67-69%) and doubled the chat's p99 (35-57 ms -> 100-128 ms; session 7).
  return makeStorage(db, "postgres", now, new GroupCommitWriter(db, opts.writer), () => migratePostgres(db));
}

function makeStorage(
  db: Kysely<Schema>,
  dialect: Dialect,
  now: () => number,
  writer: GroupCommitWriter,
  migrate: () => Promise<void>,
): Storage {
  let closing: Promise<void> | undefined;
  return {
    db,
    dialect,
    users: new UserStore(db, now),
    roster: new RosterStore(db, now),
    vcards: new VCardStore(db, now),
    lastActivity: new LastActivityStore(db, writer),
    kv: new KeyValueStore(db, now),
    archive: new ArchiveStore(db),
    offline: new OfflineStore(db),
    writer,
    migrate,
    // DESIGN.md: nothing acknowledged is lost on a polite stop, so the last batch commits first.
    close: () =>
      (closing ??= (async () => {
        try {
          await writer.close();
        } finally {
          await db.destroy();
        }
      })()),
  };
}

function openSqlite(path: string): SqliteDatabase.Database {
  const memory = path === MEMORY;
  if (!memory) mkdirSync(dirname(resolve(path)), { recursive: true });
  const database = new SqliteDatabase(path);
  // First, so that even switching to WAL waits for another process instead of failing at once.
  database.pragma("busy_timeout = 5000");
  // WAL lets readers run beside the one writer; an in-memory database has no file to log to.
  if (!memory) database.pragma("journal_mode = WAL");
  // The writer's thread checkpoints (sqlite-writer-worker.ts); here a commit that happened to
  // find the WAL long would copy it back into the database file on the event loop.
  if (!memory) database.pragma("wal_autocheckpoint = 0");
  // DESIGN.md: nothing acknowledged is ever lost, so commits reach the disk even in WAL mode
  // (NORMAL could drop the last commits on power loss). Group commit pays for the fsyncs.
  database.pragma("synchronous = FULL");
  database.pragma("foreign_keys = ON");
  return database;
}

/** Statements kept prepared on the main SQLite connection, by SQL text (least recently used go first). */
const STATEMENT_CACHE_SIZE = 256;

/**
 * Kysely prepares every query it runs on better-sqlite3 anew; SQLite's prepare (parsing and
 * planning) cost more than many of the lookups themselves on the login path. The query text
 * Kysely compiles is the same for the same query shape, so one prepared statement per text serves
 * them all. A statement still iterating (a streamed query) is not handed out twice.
 */
function withStatementCache(database: SqliteDatabase.Database): KyselySqliteDatabase {
  const cache = new Map<string, SqliteDatabase.Statement>();
  return {
    close: () => {
      cache.clear();
      database.close();
    },
    prepare(query: string) {
      // Kysely opens a transaction with a plain (deferred) BEGIN. The group-commit writer commits
      // on a connection of its own (sqlite-writer.ts), and in WAL mode a deferred transaction
      // that has read and then wants to write fails with SQLITE_BUSY_SNAPSHOT if the writer
      // committed in between; busy_timeout does not help there. IMMEDIATE takes the write lock
      // at BEGIN, where busy_timeout waits for the writer's transaction to end.
      const text = query === "begin" ? "begin immediate" : query;
      const cached = cache.get(text);
      if (cached !== undefined && !cached.busy) {
        // Map order is insertion order: moving a hit to the end keeps the oldest first.
        cache.delete(text);
        cache.set(text, cached);
        return cached;
      }
      const statement = database.prepare(text);
      cache.delete(text);
      cache.set(text, statement);
      if (cache.size > STATEMENT_CACHE_SIZE) cache.delete(cache.keys().next().value!);
      return statement;
    },
  };
}

// PostgreSQL bigint (int8, oid 20) arrives as a string by default, to spare precision beyond
// 2^53. Ours are millisecond timestamps, versions and counts, far below that: numbers are
// what the stores promise, and a value that would not fit fails loudly instead of rounding.
const INT8_OID = 20;
function parseInt8(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new RangeError(`bigint ${text} does not fit a JavaScript number`);
  return value;
}
const typeParser = ((oid: number, format?: "text" | "binary") =>
  oid === INT8_OID && format !== "binary"
    ? parseInt8
    : pg.types.getTypeParser(oid, format ?? "text")) as typeof pg.types.getTypeParser;

async function createSchema(db: Kysely<Schema>, schema: string): Promise<void> {
  try {
    await db.schema.createSchema(schema).ifNotExists().execute();
  } catch (error) {
    // Two sessions creating the same schema at once: PostgreSQL's IF NOT EXISTS can still
    // fail the loser with a unique violation on the catalog. The schema exists; that's all we need.
    const exists = await sql<{ found: number }>`select 1 as found from pg_namespace where nspname = ${schema}`.execute(db);
    if (exists.rows.length === 0) throw error;
  }
}

async function runMigrator(migrator: Migrator): Promise<void> {
  const { error, results } = await migrator.migrateToLatest();
  if (error !== undefined) {
    const failed = results?.find((r) => r.status === "Error")?.migrationName;
    throw new Error(failed ? `migration ${failed} failed` : "migrations could not run", { cause: error });
  }
}

async function migratePostgres(db: Kysely<Schema>): Promise<void> {
  // Kysely looks for its bookkeeping tables in every schema unless told which one; with test
  // schemas side by side it would find another schema's table and skip creating ours.
  const current = await sql<{ schema: string | null }>`select current_schema() as schema`.execute(db);
  const schema = current.rows[0]?.schema;
  if (!schema) throw new Error("PostgreSQL has no current schema: the search_path names no existing schema");
  // Kysely takes a database-wide advisory lock and runs all pending migrations in one
  // transaction, so a second process waits and then finds nothing left to do.
  await runMigrator(new Migrator({ db, provider: new InCodeMigrationProvider("postgres"), migrationTableSchema: schema }));
}

async function migrateSqlite(db: Kysely<Schema>): Promise<void> {
  // Kysely runs SQLite migrations without a lock or a transaction. BEGIN IMMEDIATE takes the
  // database's write lock up front, so another process migrating the same file waits (busy_timeout)
  // and then sees the work done, and a failed migration leaves no half-made tables.
  await db.connection().execute(async (connection) => {
    await sql`begin immediate`.execute(connection);
    try {
      await runMigrator(new Migrator({ db: connection, provider: new InCodeMigrationProvider("sqlite") }));
    } catch (error) {
      await sql`rollback`.execute(connection);
      throw error;
    }
    await sql`commit`.execute(connection);
  });
}
