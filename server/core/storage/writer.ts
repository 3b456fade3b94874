// The group-commit writer of DESIGN.md "Storage": archive (XEP-0313) and offline (XEP-0160)
// writes from many callers are gathered and committed together, one transaction every few
// milliseconds (or as soon as enough are waiting), instead of one transaction per stanza.
//
// - write(op) resolves once the transaction holding op has committed, and only then: a caller
//   that acknowledges a stanza after it (XEP-0198 <a/>) never acknowledges something a crash
//   could still lose.
// - If the transaction fails, every operation in it is rejected with that error: nothing in a
//   failed batch was stored.
// - An offline write with a quota that would overflow is refused on its own (OfflineQuotaError);
//   the rest of its batch commits.
// - Batches commit one after another, in the order their operations were written; inside a
//   batch, offline deletions run first, then offline insertions, then archive insertions, then
//   last-activity upserts, each kind in the order written. So one account's offline messages
//   keep their order, a deletion never meets a row inserted in the same batch (its sequence
//   number was unknown), and an account's latest logout is the one kept.
// - An archive write whose entries break the archive's contract (archive.ts: an id not made by
//   ArchiveIdGenerator, or a ts other than its id's time) is rejected at once with
//   InvalidArchiveEntryError and never joins a batch, so it cannot fail anyone else's writes.
// - sync() resolves once everything written before it has been settled; close() writes out
//   what waits, at once, and refuses further writes.
//
// Where a batch is committed is a BatchCommitter's business: on PostgreSQL (and an in-memory
// SQLite database) a Kysely transaction here, whose I/O is already off the event loop; on a
// SQLite file a worker_thread with a connection of its own (sqlite-writer.ts), because
// better-sqlite3 is synchronous and its COMMIT would stop every connection while it fsyncs.
import { Kysely } from "kysely";
import type { Schema } from "./schema.ts";
import { checkArchiveEntries, insertArchiveEntries, type ArchiveEntry } from "./archive.ts";
import { countOffline, deleteOfflineEntries, insertOfflineEntries, OfflineQuotaError, type OfflineEntry } from "./offline.ts";
import { upsertLastActivity, type LastActivity } from "./last-activity.ts";

export type WriteOp =
  | { kind: "archive"; entries: readonly ArchiveEntry[] }
  /** With `limit`: refused as a whole if the account would then hold more than `limit` messages. */
  | { kind: "offline"; entries: readonly OfflineEntry[]; limit?: number }
  | { kind: "offline-delete"; host: string; username: string; seqs: readonly number[] }
  /** XEP-0012: an account's last logout (last-activity.ts); a later one in the same batch wins. */
  | { kind: "last-activity"; host: string; username: string; activity: LastActivity };

/** Commits one batch in one transaction, applying its operations in the order writer.ts promises. */
export interface BatchCommitter {
  /**
   * Resolves once the transaction has committed, with the operations (by index) refused on
   * their own and why (OfflineQuotaError); rejects if the transaction failed (nothing stored).
   */
  commit(ops: readonly WriteOp[]): Promise<Map<number, unknown>>;
  /** Called once by the writer's close(), after its last batch. */
  close?(): Promise<void>;
}

export interface GroupCommitOptions {
  /** How long the first operation of a batch waits for others to join it (default 5 ms). */
  maxDelayMs?: number;
  /**
   * A batch starts at once when this many operations wait (default 500). While a batch commits
   * the next one gathers whatever arrives, however many, so batches grow with the load.
   */
  maxBatch?: number;
  /** Told about each batch after it settles, for logs and metrics. */
  onBatch?: (info: { operations: number; ms: number; error?: unknown }) => void;
}

export class WriterClosedError extends Error {
  constructor() {
    super("the storage writer is closed");
    this.name = "WriterClosedError";
  }
}

interface Pending {
  op: WriteOp;
  resolve(): void;
  reject(error: unknown): void;
}

interface Batch {
  entries: Pending[];
  /** sync() callers: settled with the batch, rejected if it failed. */
  waiters: Pending[];
  openedAt: number;
}

export class GroupCommitWriter {
  readonly #committer: BatchCommitter;
  readonly #maxDelayMs: number;
  readonly #maxBatch: number;
  readonly #onBatch: GroupCommitOptions["onBatch"];
  #forming: Batch | null = null;
  #committing: Batch | null = null;
  #timer: NodeJS.Timeout | null = null;
  #closed = false;
  #closing: Promise<void> | null = null;
  #idle: Array<() => void> = [];

  /** `target`: a Kysely database (each batch one Kysely transaction) or a committer of its own. */
  constructor(target: Kysely<Schema> | BatchCommitter, opts: GroupCommitOptions = {}) {
    this.#committer = target instanceof Kysely ? new KyselyCommitter(target) : target;
    this.#maxDelayMs = opts.maxDelayMs ?? 5;
    this.#maxBatch = opts.maxBatch ?? 500;
    if (!(this.#maxDelayMs >= 0) || !Number.isInteger(this.#maxBatch) || this.#maxBatch < 1) {
      throw new RangeError("maxDelayMs must be >= 0 and maxBatch a positive integer");
    }
    this.#onBatch = opts.onBatch;
  }

  /** Operations written and not yet settled. */
  get pending(): number {
    return (this.#forming?.entries.length ?? 0) + (this.#committing?.entries.length ?? 0);
  }

  write(op: WriteOp): Promise<void> {
    if (this.#closed) return Promise.reject(new WriterClosedError());
    if (op.kind === "archive") {
      try {
        checkArchiveEntries(op.entries);
      } catch (error) {
        return Promise.reject(error);
      }
    }
    return new Promise<void>((resolve, reject) => {
      const batch = (this.#forming ??= { entries: [], waiters: [], openedAt: Date.now() });
      batch.entries.push({ op, resolve, reject });
      this.#schedule();
    });
  }

  /**
   * Resolves once every operation written before this call has settled (committed, refused or
   * failed); rejects if the last batch holding them failed.
   */
  sync(): Promise<void> {
    const batch = this.#forming ?? this.#committing;
    if (!batch) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      batch.waiters.push({ op: { kind: "archive", entries: [] }, resolve, reject });
    });
  }

  /** Commits what waits, without waiting for the delay, and refuses later writes. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      this.#schedule();
      while (this.#forming || this.#committing) {
        await new Promise<void>((resolve) => this.#idle.push(resolve));
      }
      await this.#committer.close?.();
    })();
    return this.#closing;
  }

  #schedule(): void {
    const batch = this.#forming;
    if (!batch || this.#committing) return;
    const due = batch.openedAt + this.#maxDelayMs - Date.now();
    if (this.#closed || batch.entries.length >= this.#maxBatch || due <= 0) {
      if (this.#timer) {
        clearTimeout(this.#timer);
        this.#timer = null;
      }
      void this.#commit();
      return;
    }
    // Not unref'd: a process must not exit with acknowledged-to-be writes still waiting.
    this.#timer ??= setTimeout(() => {
      this.#timer = null;
      this.#schedule();
    }, due);
  }

  async #commit(): Promise<void> {
    const batch = this.#forming!;
    this.#forming = null;
    this.#committing = batch;
    const started = Date.now();
    let refused = new Map<number, unknown>();
    let failure: unknown = undefined;
    let failed = false;
    try {
      refused = await this.#committer.commit(batch.entries.map((entry) => entry.op));
    } catch (error) {
      failed = true;
      failure = error;
    }
    this.#committing = null;
    batch.entries.forEach((entry, i) => {
      if (failed) entry.reject(failure);
      else if (refused.has(i)) entry.reject(refused.get(i));
      else entry.resolve();
    });
    for (const waiter of batch.waiters) {
      if (failed) waiter.reject(failure);
      else waiter.resolve();
    }
    try {
      this.#onBatch?.({ operations: batch.entries.length, ms: Date.now() - started, ...(failed ? { error: failure } : {}) });
    } catch {
      // A metrics callback must not stop the writer.
    }
    if (this.#forming) this.#schedule();
    else for (const wake of this.#idle.splice(0)) wake();
  }
}

/** Each batch one Kysely transaction, on the database's own connections (PostgreSQL's pool). */
class KyselyCommitter implements BatchCommitter {
  readonly #db: Kysely<Schema>;

  constructor(db: Kysely<Schema>) {
    this.#db = db;
  }

  commit(ops: readonly WriteOp[]): Promise<Map<number, unknown>> {
    return this.#db.transaction().execute((trx) => apply(trx, ops));
  }
}

/** Runs one batch inside its transaction; returns the operations refused (quota), by index, and why. */
async function apply(trx: Kysely<Schema>, ops: readonly WriteOp[]): Promise<Map<number, unknown>> {
  const refused = new Map<number, unknown>();
  for (const op of ops) {
    if (op.kind === "offline-delete" && op.seqs.length > 0) await deleteOfflineEntries(trx, op.host, op.username, op.seqs);
  }

  const offline: OfflineEntry[] = [];
  // Quota: what an account held before the batch (read once, when first needed) plus what the
  // batch has accepted for it so far.
  const stored = new Map<string, number>();
  const accepted = new Map<string, number>();
  for (const [index, op] of ops.entries()) {
    if (op.kind !== "offline" || op.entries.length === 0) continue;
    const adding = new Map<string, { host: string; username: string; n: number }>();
    for (const e of op.entries) {
      const key = `${e.host}\u0000${e.username}`;
      const a = adding.get(key) ?? { host: e.host, username: e.username, n: 0 };
      a.n++;
      adding.set(key, a);
    }
    if (op.limit !== undefined) {
      let over: { host: string; username: string } | undefined;
      for (const [key, a] of adding) {
        if (!stored.has(key)) stored.set(key, await countOffline(trx, a.host, a.username));
        if (stored.get(key)! + (accepted.get(key) ?? 0) + a.n > op.limit) over ??= a;
      }
      if (over) {
        refused.set(index, new OfflineQuotaError(over.host, over.username, op.limit));
        continue;
      }
    }
    for (const [key, a] of adding) accepted.set(key, (accepted.get(key) ?? 0) + a.n);
    offline.push(...op.entries);
  }
  if (offline.length > 0) await insertOfflineEntries(trx, offline);

  const archive: ArchiveEntry[] = [];
  for (const op of ops) if (op.kind === "archive") archive.push(...op.entries);
  if (archive.length > 0) await insertArchiveEntries(trx, archive);

  for (const op of ops) if (op.kind === "last-activity") await upsertLastActivity(trx, op.host, op.username, op.activity);
  return refused;
}
