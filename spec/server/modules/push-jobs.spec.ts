// Durable push delivery jobs (shared/DESIGN.md "Durability of jobs"): the SQL outbox on SQLite
// and PostgreSQL, and BullMQ on the real Redis at 127.0.0.1:6379, held to the same behaviour:
// retried with backoff until they succeed, dead-lettered when they fail for good or run out of
// attempts, and still there for a new queue and worker after the old ones went away.
// The shared Redis is not restarted here (everything on this machine uses it): a job added by
// one queue instance and never worked is picked up by a new instance with new connections,
// which is what a restart of Parley looks like to the queue. A real restart of Redis (SIGKILL,
// with the append-only file) is push-redis-restart.spec.ts, on a Redis of its own.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { forEachDatabase, uniqueName, type TestDatabase } from "../core/storage/both.ts";
import { BullQueue, PermanentJobError, SqlOutbox, backoffDelay, type JobQueue, type RetryPolicy } from "../../../server/modules/push-appserver/jobs.ts";
import { deleteRedisKeys } from "../../support/fake-push.ts";

const REDIS_URL = process.env.PARLEY_TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
const policy: RetryPolicy = { maxAttempts: 3, backoffMs: 20 };

interface Payload {
  n: number;
}

/** Resolves once `check` holds, polling; fails after `ms`. */
async function eventually(check: () => boolean | Promise<boolean>, ms = 8000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail("condition not met in time");
}

/** The shared behaviour, for any backend. `make` gives a fresh queue over the same store. */
function jobQueueContract(make: () => JobQueue<Payload>, cleanup: () => Promise<void> = async () => {}): void {
  const opened: JobQueue<Payload>[] = [];
  const open = () => {
    const q = make();
    opened.push(q);
    return q;
  };
  after(async () => {
    for (const q of opened) await q.close();
    await cleanup();
  });

  test("a job that fails is retried, with the attempt number, until it succeeds", async () => {
    const q = open();
    const attempts: number[] = [];
    q.start(async (p, attempt) => {
      if (p.n !== 1) return;
      attempts.push(attempt);
      if (attempt < 3) throw new Error("service unavailable");
    });
    await q.add({ n: 1 });
    await eventually(() => attempts.length === 3);
    await eventually(async () => (await q.pending()) === 0);
    assert.deepEqual(attempts, [1, 2, 3]);
    assert.deepEqual(await q.deadLetters(), []);
    await q.close();
  });

  test("a job that keeps failing is dead-lettered after the last attempt, with its error", async () => {
    const q = open();
    let calls = 0;
    q.start(async () => {
      calls++;
      throw new Error("503 from the service");
    });
    await q.add({ n: 2 });
    await eventually(async () => (await q.deadLetters()).length === 1);
    const [dead] = await q.deadLetters();
    assert.deepEqual(dead.payload, { n: 2 });
    assert.equal(dead.attempts, 3);
    assert.match(dead.error, /503 from the service/);
    assert.equal(calls, 3);
    await q.close();
  });

  test("a permanent failure is dead-lettered at once, without retries", async () => {
    const q = open();
    let calls = 0;
    q.start(async () => {
      calls++;
      throw new PermanentJobError("400 BadDeviceToken");
    });
    await q.add({ n: 3 });
    await eventually(async () => (await q.deadLetters()).some((d) => d.payload.n === 3));
    assert.equal(calls, 1);
    assert.match((await q.deadLetters()).find((d) => d.payload.n === 3)!.error, /BadDeviceToken/);
    await q.close();
  });

  test("jobs nobody worked survive the queue going away and are done by a new one", async () => {
    const first = open();
    await first.add({ n: 41 });
    await first.add({ n: 42 });
    await first.close();
    const second = open();
    const done: number[] = [];
    second.start(async (p) => {
      done.push(p.n);
    });
    await eventually(() => done.length === 2);
    assert.deepEqual(done.sort(), [41, 42]);
    await eventually(async () => (await second.pending()) === 0);
  });
}

describe("backoff", () => {
  test("doubles from the base delay after each failed attempt", () => {
    assert.deepEqual([1, 2, 3, 4].map((a) => backoffDelay({ maxAttempts: 9, backoffMs: 1000 }, a)), [1000, 2000, 4000, 8000]);
  });
});

forEachDatabase("SQL outbox", (db: TestDatabase) => {
  const name = uniqueName("push");
  jobQueueContract(() => new SqlOutbox<Payload>(db.storage, name, policy, 50));
});

describe("BullMQ on Redis", () => {
  const prefix = `parley-test-${randomBytes(5).toString("hex")}`;
  const queue = "push-deliveries";
  jobQueueContract(
    () => new BullQueue<Payload>({ url: REDIS_URL, prefix, queue, policy }),
    () => deleteRedisKeys(REDIS_URL, prefix),
  );

  test("a worker whose Redis connection is cut reconnects and finishes the job", async () => {
    const p = `${prefix}-kill`;
    const q = new BullQueue<Payload>({ url: REDIS_URL, prefix: p, queue, policy });
    const admin = new Redis(REDIS_URL);
    try {
      const done: number[] = [];
      q.start(async (payload) => {
        done.push(payload.n);
      });
      await q.add({ n: 7 });
      await eventually(() => done.includes(7));
      // What a Redis restart does to clients: every connection BullMQ named for this queue is cut.
      const list = String(await admin.client("LIST")).split("\n");
      let killed = 0;
      for (const line of list) {
        const id = /id=(\d+)/.exec(line)?.[1];
        const name = /name=(\S*)/.exec(line)?.[1] ?? "";
        if (id && name.startsWith(`${p}:`)) {
          await admin.client("KILL", "ID", id);
          killed++;
        }
      }
      assert.ok(killed > 0, "the worker's connections were found");
      await q.add({ n: 8 });
      await eventually(() => done.includes(8));
    } finally {
      await q.obliterate().catch(() => {});
      await q.close();
      admin.disconnect();
    }
  });
});
