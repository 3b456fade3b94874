// The group-commit writer's SQLite back end (DESIGN.md "Storage"): batches go to a worker_thread
// with its own better-sqlite3 connection (sqlite-writer-worker.ts), so that the synchronous
// COMMIT, its WAL fsync and the checkpoints SQLite runs inside some commits block that thread
// rather than the event loop every connection shares. The main thread only copies a batch to the
// worker and waits for its answer, which comes after COMMIT returned: what writer.ts promises
// its callers holds unchanged.
//
// The worker is started with the storage (start()): loading it under tsx takes a while, and the
// first messages of a server should not wait for that. It keeps the process alive only while a
// batch is in flight, like the writer's own timer. If it dies, the batch in flight fails and the
// next batch starts a new one.
import { Worker } from "node:worker_threads";
import { OFFLINE_ROW, type BatchRequest, type ErrorData, type WorkerReply, type WorkerRequest } from "./sqlite-writer-protocol.ts";
import { OfflineQuotaError } from "./offline.ts";
import { writerStatements } from "./writer-statements.ts";
import type { BatchCommitter, WriteOp } from "./writer.ts";

const BOOT = new URL("./sqlite-writer-boot.mjs", import.meta.url);

interface InFlight {
  worker: Worker;
  /** Index in the batch of each offline write sent, by its index in the request. */
  offlineOps: number[];
  resolve(refused: Map<number, unknown>): void;
  reject(error: unknown): void;
}

export class SqliteWorkerCommitter implements BatchCommitter {
  readonly #path: string;
  #worker: Worker | null = null;
  /** The current worker has loaded (it answers messages). */
  #ready = false;
  readonly #inFlight = new Map<number, InFlight>();
  #nextId = 1;
  #closed = false;

  /** `path`: the database file, already in WAL mode (a second connection to ":memory:" would be another database). */
  constructor(path: string) {
    this.#path = path;
  }

  /** Starts the worker now rather than with the first batch. */
  start(): void {
    if (!this.#closed) this.#worker ??= this.#spawn();
  }

  commit(ops: readonly WriteOp[]): Promise<Map<number, unknown>> {
    if (this.#closed) return Promise.reject(new Error("the SQLite writer thread is closed"));
    const id = this.#nextId++;
    const request: BatchRequest = { type: "batch", id, deletes: [], offline: [], archive: [], lastActivity: [] };
    const offlineOps: number[] = [];
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i];
      if (op.kind === "offline-delete") {
        if (op.seqs.length > 0) request.deletes.push([op.host, op.username, [...op.seqs]]);
      } else if (op.kind === "offline") {
        if (op.entries.length === 0) continue;
        const rows = new Array<unknown>(op.entries.length * OFFLINE_ROW);
        let r = 0;
        for (const e of op.entries) {
          rows[r++] = e.host;
          rows[r++] = e.username;
          rows[r++] = e.xml;
          rows[r++] = e.storedAt;
        }
        offlineOps.push(i);
        request.offline.push({ limit: op.limit ?? null, rows });
      } else if (op.kind === "last-activity") {
        request.lastActivity.push(op.host, op.username, op.activity.logoutSeconds, op.activity.status);
      } else {
        const archive = request.archive;
        for (const e of op.entries) {
          archive.push(e.host, e.username, e.id, e.with, e.withResource ?? "", e.direction, e.xml, e.ts);
        }
      }
    }
    return new Promise<Map<number, unknown>>((resolve, reject) => {
      let worker: Worker;
      try {
        worker = this.#worker ??= this.#spawn();
        worker.postMessage(request satisfies WorkerRequest);
      } catch (error) {
        // A value that cannot cross to the worker (structured clone), or no worker at all.
        reject(error);
        return;
      }
      this.#inFlight.set(id, { worker, offlineOps, resolve, reject });
      worker.ref();
    });
  }

  /** Lets the worker finish the batch in flight, closes its connection and ends it. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    const worker = this.#worker;
    if (!worker) return;
    this.#worker = null;
    // Still loading: it holds nothing (the writer's close() waited for its last batch) and has
    // no connection yet. Otherwise let it close its connection itself.
    if (!this.#ready) {
      await worker.terminate();
      return;
    }
    worker.ref();
    await new Promise<void>((resolve) => {
      const done = () => resolve();
      worker.on("message", (reply: WorkerReply) => {
        if (reply.type === "closed") done();
      });
      worker.once("exit", done);
      worker.postMessage({ type: "close" } satisfies WorkerRequest);
    });
    await worker.terminate();
  }

  #spawn(): Worker {
    const worker = new Worker(BOOT, { workerData: { path: this.#path, statements: writerStatements() } });
    this.#ready = false;
    worker.unref();
    worker.on("message", (reply: WorkerReply) => this.#settle(worker, reply));
    worker.on("error", (error) => this.#lost(worker, error));
    worker.on("messageerror", (error) => this.#lost(worker, error));
    worker.on("exit", (code) => this.#lost(worker, new Error(`the SQLite writer thread stopped (exit code ${code})`)));
    return worker;
  }

  #settle(worker: Worker, reply: WorkerReply): void {
    if (reply.type === "ready") {
      if (this.#worker === worker) this.#ready = true;
      return;
    }
    if (reply.type === "closed") return;
    const pending = this.#inFlight.get(reply.id);
    if (!pending) return;
    this.#inFlight.delete(reply.id);
    if (![...this.#inFlight.values()].some((p) => p.worker === worker)) worker.unref();
    if (reply.type === "failed") {
      pending.reject(revive(reply.error));
      return;
    }
    const refused = new Map<number, unknown>();
    for (const r of reply.refused) refused.set(pending.offlineOps[r.index], new OfflineQuotaError(r.host, r.username, r.limit));
    pending.resolve(refused);
  }

  /** The worker failed or ended: whatever it held fails (it may or may not have committed; nobody was told it did). */
  #lost(worker: Worker, error: unknown): void {
    if (this.#worker === worker) this.#worker = null;
    for (const [id, p] of this.#inFlight) {
      if (p.worker !== worker) continue;
      this.#inFlight.delete(id);
      p.reject(error);
    }
  }
}

/** An Error like the worker's, with its SQLite code (e.g. SQLITE_CONSTRAINT_NOTNULL). */
function revive(data: ErrorData): Error {
  const error = new Error(data.message) as Error & { code?: string };
  error.name = data.name;
  if (data.code !== undefined) error.code = data.code;
  if (data.stack !== undefined) error.stack = data.stack;
  return error;
}
