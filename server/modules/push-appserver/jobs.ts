// Durable jobs (shared/DESIGN.md "Durability of jobs"): push deliveries are retried with
// exponential backoff until they succeed, fail for good (a dead-letter record is kept), or run
// out of attempts (dead-lettered too). Two backends behind one interface:
// - SqlOutbox (default): rows in push_jobs (migration 0005_push), polled by the process. A job
//   is claimed by moving its next_at forward (a lease) with a compare-and-set, so that two
//   Parley nodes on one database never run it twice at once; a crash mid-job means the lease
//   runs out and the job runs again (deliveries are at-least-once).
// - BullQueue: BullMQ on Redis (when `redis.url` is set); its failed set is the dead-letter
//   record, and jobs live in Redis, so they survive a restart of Parley or of Redis — when Redis
//   runs with `appendonly yes` and `appendfsync always` (README, "Push"): then a job whose add()
//   returned is on disk even if Redis is killed the next instant. While Redis is away, ioredis
//   holds commands and reconnects; add() waits rather than failing, and a worker's in-flight job
//   is completed when Redis is back (its lock, stored with an absolute expiry, outlives a short
//   restart), so a restart neither loses nor repeats deliveries
//   (spec/server/modules/push-redis-restart.spec.ts). One job may be late: one the worker was
//   claiming as Redis died waits for its claim to run out (`lockMs`), then runs.
import { randomUUID } from "node:crypto";
import type { Kysely } from "kysely";
import { Queue, Worker, UnrecoverableError, type Job } from "bullmq";
import { Redis } from "ioredis";
import type { Storage } from "../../core/storage/index.ts";
import type { PushTables } from "../push/tables.ts";

/** Thrown by a handler when retrying cannot help: the job is dead-lettered at once. */
export class PermanentJobError extends Error {
  override name = "PermanentJobError";
}

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  maxAttempts: number;
  /** The wait before the second attempt; doubled for each one after. */
  backoffMs: number;
}

export interface DeadLetter<T> {
  id: string;
  payload: T;
  attempts: number;
  error: string;
}

export type JobHandler<T> = (payload: T, attempt: number) => Promise<void>;

export interface JobQueue<T> {
  add(payload: T): Promise<string>;
  /** Starts working; one handler per queue. */
  start(handler: JobHandler<T>): void;
  deadLetters(): Promise<DeadLetter<T>[]>;
  /** Jobs waiting or being retried (not dead). */
  pending(): Promise<number>;
  /** Stops working; jobs not done stay stored. */
  close(): Promise<void>;
}

/** The wait before attempt `attempt + 1` after `attempt` attempts failed. */
export function backoffDelay(policy: RetryPolicy, attempt: number): number {
  return Math.min(policy.backoffMs * 2 ** Math.max(0, attempt - 1), 6 * 3600_000);
}

const LEASE_MS = 60_000;

export class SqlOutbox<T> implements JobQueue<T> {
  private readonly db: Kysely<PushTables>;
  private handler: JobHandler<T> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  private closed = false;

  constructor(
    storage: Storage,
    private readonly queue: string,
    private readonly policy: RetryPolicy,
    private readonly pollMs = 1000,
  ) {
    this.db = storage.db.withTables<PushTables>() as unknown as Kysely<PushTables>;
  }

  async add(payload: T): Promise<string> {
    const id = randomUUID();
    const now = Date.now();
    await this.db
      .insertInto("push_jobs")
      .values({ id, queue: this.queue, payload: JSON.stringify(payload), attempts: 0, next_at: now, state: "queued", last_error: null, created_at: now })
      .execute();
    this.kick();
    return id;
  }

  start(handler: JobHandler<T>): void {
    this.handler = handler;
    this.timer = setInterval(() => this.kick(), this.pollMs);
    this.timer.unref();
    this.kick();
  }

  private kick(): void {
    if (!this.handler || this.closed) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.drain()
      .catch(() => {})
      .finally(() => {
        this.running = null;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  private async drain(): Promise<void> {
    // Bounded: a queue that keeps growing is picked up by the next tick.
    for (let round = 0; round < 100 && !this.closed; round++) {
      const now = Date.now();
      const due = await this.db
        .selectFrom("push_jobs")
        .selectAll()
        .where("queue", "=", this.queue)
        .where("state", "=", "queued")
        .where("next_at", "<=", now)
        .orderBy("next_at")
        .limit(16)
        .execute();
      if (due.length === 0) return;
      await Promise.all(due.map((row) => this.runOne(row, now)));
    }
  }

  private async runOne(row: PushTables["push_jobs"], now: number): Promise<void> {
    const claimed = await this.db
      .updateTable("push_jobs")
      .set({ next_at: now + LEASE_MS })
      .where("id", "=", row.id)
      .where("next_at", "=", row.next_at)
      .where("state", "=", "queued")
      .executeTakeFirst();
    if (Number(claimed.numUpdatedRows) !== 1 || !this.handler) return;
    const attempt = row.attempts + 1;
    try {
      await this.handler(JSON.parse(row.payload) as T, attempt);
      await this.db.deleteFrom("push_jobs").where("id", "=", row.id).execute();
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      const dead = err instanceof PermanentJobError || attempt >= this.policy.maxAttempts;
      await this.db
        .updateTable("push_jobs")
        .set({
          attempts: attempt,
          last_error: message.slice(0, 2000),
          state: dead ? "dead" : "queued",
          next_at: dead ? Date.now() : Date.now() + backoffDelay(this.policy, attempt),
        })
        .where("id", "=", row.id)
        .execute();
    }
  }

  async deadLetters(): Promise<DeadLetter<T>[]> {
    const rows = await this.db.selectFrom("push_jobs").selectAll().where("queue", "=", this.queue).where("state", "=", "dead").orderBy("created_at").execute();
    return rows.map((r) => ({ id: r.id, payload: JSON.parse(r.payload) as T, attempts: r.attempts, error: r.last_error ?? "" }));
  }

  async pending(): Promise<number> {
    const rows = await this.db.selectFrom("push_jobs").select("id").where("queue", "=", this.queue).where("state", "=", "queued").execute();
    return rows.length;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }
}

export interface BullQueueOptions {
  url: string;
  /** Redis key prefix; tests use one per run. */
  prefix: string;
  queue: string;
  policy: RetryPolicy;
  concurrency?: number;
  /**
   * How long a worker's claim on a job lasts unless renewed (renewed every half of it while the
   * job runs), and how often jobs whose claim ran out are looked for. A job claimed just as Redis
   * went away (the claim was written, its answer lost) runs after at most twice this.
   */
  lockMs?: number;
}

export class BullQueue<T> implements JobQueue<T> {
  private readonly connection: Redis;
  private readonly queue: Queue;
  private worker: Worker | null = null;
  private workerConnection: Redis | null = null;

  constructor(private readonly opts: BullQueueOptions) {
    // BullMQ needs maxRetriesPerRequest null: a blocked worker command must not time out.
    this.connection = new Redis(opts.url, { maxRetriesPerRequest: null, lazyConnect: false });
    this.queue = new Queue(opts.queue, { connection: this.connection, prefix: opts.prefix });
    // While Redis is away (a restart), the connections report errors and reconnect on their own;
    // an 'error' event without a listener would end the process.
    this.queue.on("error", () => {});
  }

  async add(payload: T): Promise<string> {
    const job = await this.queue.add("deliver", payload, {
      attempts: this.opts.policy.maxAttempts,
      backoff: { type: "exponential", delay: this.opts.policy.backoffMs },
      removeOnComplete: true,
      removeOnFail: false,
    });
    return job.id ?? "";
  }

  start(handler: JobHandler<T>): void {
    this.workerConnection = new Redis(this.opts.url, { maxRetriesPerRequest: null });
    this.worker = new Worker(
      this.opts.queue,
      async (job: Job) => {
        try {
          await handler(job.data as T, job.attemptsMade + 1);
        } catch (err) {
          if (err instanceof PermanentJobError) throw new UnrecoverableError(err.message);
          throw err;
        }
      },
      {
        connection: this.workerConnection,
        prefix: this.opts.prefix,
        concurrency: this.opts.concurrency ?? 4,
        lockDuration: this.opts.lockMs ?? 30_000,
        stalledInterval: this.opts.lockMs ?? 30_000,
        // A job found without its claim is run again rather than failed, up to the attempts allowed.
        maxStalledCount: this.opts.policy.maxAttempts,
      },
    );
    // Errors are recorded on the job; the event only needs a listener so none goes unhandled.
    this.worker.on("error", () => {});
  }

  async deadLetters(): Promise<DeadLetter<T>[]> {
    const failed = await this.queue.getFailed();
    return failed.map((j) => ({ id: j.id ?? "", payload: j.data as T, attempts: j.attemptsMade, error: j.failedReason ?? "" }));
  }

  async pending(): Promise<number> {
    const counts = await this.queue.getJobCounts("waiting", "delayed", "active", "prioritized");
    return Object.values(counts).reduce((a, b) => a + b, 0);
  }

  async close(): Promise<void> {
    await this.worker?.close();
    await this.queue.close();
    this.workerConnection?.disconnect();
    this.connection.disconnect();
  }

  /** Removes every key of this queue (tests). */
  async obliterate(): Promise<void> {
    await this.queue.obliterate({ force: true });
  }
}
