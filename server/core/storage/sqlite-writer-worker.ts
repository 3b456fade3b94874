// The SQLite side of the group-commit writer (writer.ts, DESIGN.md "Storage"), run in a
// worker_thread on a better-sqlite3 connection of its own. better-sqlite3 is synchronous: a
// COMMIT with synchronous = FULL waits for the WAL fsync (and sometimes a checkpoint), and on
// the main thread that wait stopped every connection. Here it stops only this thread; the main
// connection keeps reading (WAL mode) and sees each batch once it has committed.
//
// One batch is one BEGIN IMMEDIATE … COMMIT, applied in the order writer.ts promises: offline
// deletions, then offline insertions (each checked against its quota), then archive insertions,
// then last-activity upserts, each kind in the order written. Statements are prepared once and reused for every batch;
// their SQL comes with the thread's workerData, compiled from the queries writer.ts runs on the
// other databases (writer-statements.ts).
//
// Checkpoints (copying the WAL back into the database file, with its own fsyncs) are this
// thread's job too, and come after a batch's answer has been sent rather than inside its COMMIT
// as SQLite's automatic checkpoint would: the callers of that batch do not wait for them, and a
// page rewritten by many batches is copied once per checkpoint. The main connection makes none
// (database.ts), so a write on the main thread never pays for one; a timer checkpoints what the
// main connection alone wrote while no batch comes.
//
// The thread runs at a lower priority than the event loop (WRITER_NICE): on a shared core,
// delivering a message comes before committing its archive row.
// Started by sqlite-writer-boot.mjs, which makes tsx load this file.
import { readlinkSync } from "node:fs";
import { getPriority, setPriority } from "node:os";
import { parentPort, workerData } from "node:worker_threads";
import SqliteDatabase from "better-sqlite3";
import { isArchiveStamp } from "./archive-ids.ts";
import { ARCHIVE_ROW, LAST_ACTIVITY_ROW, OFFLINE_ROW, type BatchRequest, type ErrorData, type WorkerReply, type WorkerRequest } from "./sqlite-writer-protocol.ts";
import type { RowStatement, WriterStatements } from "./writer-statements.ts";

interface Statements {
  insertArchive: SqliteDatabase.Statement;
  insertOffline: SqliteDatabase.Statement;
  countOffline: SqliteDatabase.Statement;
  deleteOffline: SqliteDatabase.Statement;
  upsertLastActivity: SqliteDatabase.Statement;
  apply: (batch: BatchRequest) => WorkerReply & { type: "done" };
}

const port = parentPort!;
const { path, statements: sql } = workerData as { path: string; statements: WriterStatements };
let database: SqliteDatabase.Database | null = null;
let statements: Statements | null = null;

/**
 * Checkpoint after a batch once this long has passed since the last one. An archive row dirties
 * its account's index pages, and the batches of one second rewrite many of the same pages: at
 * 2,000 archived msgs/s, checkpointing each second rather than every 200 ms took this thread
 * from 19-21% of a core to 15-16% (its system time from 9-11% to 6-7%); 2 s and 5 s gained
 * nothing more. The WAL holds up to a second of batches in between.
 */
const CHECKPOINT_AFTER_MS = 1000;
/** …and at least this often while no batch comes, for what the main connection wrote. */
const IDLE_CHECKPOINT_MS = 1000;
let lastCheckpoint = Date.now();

function open(): SqliteDatabase.Database {
  if (database) return database;
  const db = new SqliteDatabase(path);
  try {
    // The same settings as the main connection (database.ts): wait for the other connection's
    // write lock instead of failing, and fsync every commit (nothing acknowledged is lost).
    db.pragma("busy_timeout = 5000");
    db.pragma("synchronous = FULL");
    db.pragma("foreign_keys = ON");
    db.pragma("wal_autocheckpoint = 0");
  } catch (error) {
    db.close();
    throw error;
  }
  database = db;
  return db;
}

/** Prepared on the first batch, and again after a failure (a batch written before the migrations ran). */
function prepared(): Statements {
  statements ??= prepare(open());
  return statements;
}

function checkpoint(): void {
  lastCheckpoint = Date.now();
  try {
    // PASSIVE: copies what no reader still needs, and never waits for or blocks a reader or writer.
    database?.pragma("wal_checkpoint(PASSIVE)");
  } catch {
    // Busy or failed: the WAL stays whole and the next checkpoint carries on from there.
  }
}

/**
 * The parameters of `statement` for the row starting at `at` in `values`, in the order its
 * placeholders take them (writer-statements.ts); one array per statement, refilled for each row.
 */
function binder(statement: RowStatement): (values: readonly unknown[], at: number) => unknown[] {
  const take = statement.take;
  const args = new Array<unknown>(take.length);
  return (values, at) => {
    for (let k = 0; k < take.length; k++) args[k] = values[at + take[k]!];
    return args;
  };
}

function prepare(db: SqliteDatabase.Database): Statements {
  // Re-archiving a stanza under the id it already has (a resent or rescued copy) is a no-op:
  // nothing is archived twice (archive.ts archiveInsert).
  const insertArchive = db.prepare(sql.insertArchive.sql);
  const insertOffline = db.prepare(sql.insertOffline.sql);
  const countOffline = db.prepare(sql.countOffline.sql).pluck();
  const deleteOffline = db.prepare(sql.deleteOffline.sql);
  const upsertLastActivity = db.prepare(sql.upsertLastActivity.sql);
  const archiveArgs = binder(sql.insertArchive);
  const offlineArgs = binder(sql.insertOffline);
  const countArgs = binder(sql.countOffline);
  const deleteArgs = binder(sql.deleteOffline);
  const lastActivityArgs = binder(sql.upsertLastActivity);

  const run = (batch: BatchRequest): WorkerReply & { type: "done" } => {
    for (const [host, username, seqs] of batch.deletes) for (const seq of seqs) deleteOffline.run(deleteArgs([host, username, seq], 0));

    const refused: Array<{ index: number; host: string; username: string; limit: number }> = [];
    // Quota: what an account held before this batch's insertions (read once, when first needed)
    // plus what the batch has accepted for it so far (the same rule as writer.ts for PostgreSQL).
    const held = new Map<string, number>();
    batch.offline.forEach((op, index) => {
      const adding = new Map<string, { host: string; username: string; n: number }>();
      for (let i = 0; i < op.rows.length; i += OFFLINE_ROW) {
        const host = op.rows[i] as string;
        const username = op.rows[i + 1] as string;
        const key = `${host}\u0000${username}`;
        const a = adding.get(key) ?? { host, username, n: 0 };
        a.n++;
        adding.set(key, a);
      }
      if (op.limit !== null) {
        for (const [key, a] of adding) {
          if (!held.has(key)) held.set(key, Number(countOffline.get(countArgs([a.host, a.username], 0))));
          if (held.get(key)! + a.n > op.limit) {
            refused.push({ index, host: a.host, username: a.username, limit: op.limit });
            return;
          }
        }
      }
      for (const [key, a] of adding) if (held.has(key)) held.set(key, held.get(key)! + a.n);
      for (let i = 0; i < op.rows.length; i += OFFLINE_ROW) insertOffline.run(offlineArgs(op.rows, i));
    });

    const archive = batch.archive;
    for (let i = 0; i < archive.length; i += ARCHIVE_ROW) {
      // The archive's contract (archive.ts): writer.ts refuses a breaking entry before it gets
      // here, so this only guards against a caller that bypassed it; it fails the batch.
      const id = archive[i + 2];
      if (typeof id !== "string" || !isArchiveStamp(id, archive[i + 7] as number)) {
        throw new TypeError(`archive entry ${JSON.stringify(id)} has ts ${String(archive[i + 7])}: not an ArchiveIdGenerator id of that millisecond`);
      }
      insertArchive.run(archiveArgs(archive, i));
    }
    const logouts = batch.lastActivity;
    for (let i = 0; i < logouts.length; i += LAST_ACTIVITY_ROW) upsertLastActivity.run(lastActivityArgs(logouts, i));
    return { type: "done", id: batch.id, refused };
  };
  // IMMEDIATE: take the write lock before the first read (the quota count), so the transaction
  // never has to upgrade from a read snapshot the main connection may have moved past.
  const apply = db.transaction(run).immediate as (batch: BatchRequest) => WorkerReply & { type: "done" };
  return { insertArchive, insertOffline, countOffline, deleteOffline, upsertLastActivity, apply };
}

function errorData(error: unknown): ErrorData {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return { name: error.name, message: error.message, ...(typeof code === "string" ? { code } : {}), ...(error.stack ? { stack: error.stack } : {}) };
  }
  return { name: "Error", message: String(error) };
}

port.on("message", (request: WorkerRequest) => {
  if (request.type === "close") {
    statements = null;
    checkpoint();
    try {
      database?.close();
    } finally {
      database = null;
      port.postMessage({ type: "closed" } satisfies WorkerReply);
      port.close();
    }
    return;
  }
  let reply: WorkerReply;
  try {
    reply = prepared().apply(request);
  } catch (error) {
    // Failures are rare; preparing afresh costs little and never keeps a statement that could
    // not be prepared (a batch written before the migrations ran).
    statements = null;
    reply = { type: "failed", id: request.id, error: errorData(error) };
  }
  port.postMessage(reply);
  if (Date.now() - lastCheckpoint >= CHECKPOINT_AFTER_MS) checkpoint();
});

// The thread ends with the close message (port.close), so this timer need not hold it open.
setInterval(() => {
  if (Date.now() - lastCheckpoint >= IDLE_CHECKPOINT_MS) checkpoint();
}, IDLE_CHECKPOINT_MS).unref();

/**
 * The nice value of this thread, above the event loop's (Linux schedules threads, not processes).
 * When both want the same core, the thread that delivers messages runs first and this one
 * commits in what is left over, in bigger batches (a row costs less in a bigger one); it is not
 * starved, since a nice of 10 still gets about a tenth of a busy core. Where there are cores to
 * spare, nothing changes.
 */
const WRITER_NICE = 10;

function lowerPriority(): void {
  try {
    // "<pid>/task/<tid>"; setpriority(2) given a thread id sets that thread's nice value only.
    const tid = Number(readlinkSync("/proc/thread-self").split("/").pop());
    // A process started at a higher nice value keeps it.
    if (Number.isInteger(tid) && tid > 0) setPriority(tid, Math.max(WRITER_NICE, getPriority(tid)));
  } catch {
    // Not Linux, or not allowed: the thread keeps the process's priority.
  }
}

lowerPriority();
try {
  open();
} catch {
  // Reported with the first batch, which tries again.
}
port.postMessage({ type: "ready" } satisfies WorkerReply);
