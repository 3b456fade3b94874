// npm run bench:mam — XEP-0313 v0.7.5 archive pages at scale (DESIGN.md "Storage", issue 6):
// one account's archive is filled with 1,000,000 messages (MESSAGES=...) on SQLite and on
// PostgreSQL, then 50-message pages are timed at the start, in the middle and at the end of the
// archive, with and without a 'with' filter, exactly as the mam module asks the store for them
// (ArchiveStore.query), and the RSM <count/> it may add (ArchiveStore.count), capped as the
// module caps it by default and uncapped.
// Reports p50 and p99 per case. Talks only to 127.0.0.1; removes its database afterwards.
//   MESSAGES=1000000 PEERS=20 QUERIES=300 DIALECTS=sqlite,postgres
//   PARLEY_BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { sql } from "kysely";
import pg from "pg";
import { openDatabase, type Storage } from "../server/core/storage/index.ts";
import { insertArchiveEntries, type ArchiveEntry, type ArchivePageRequest } from "../server/core/storage/archive.ts";
import { ArchiveIdGenerator } from "../server/core/storage/archive-ids.ts";

const MESSAGES = Number(process.env.MESSAGES ?? 1_000_000);
const PEERS = Number(process.env.PEERS ?? 20);
const QUERIES = Number(process.env.QUERIES ?? 300);
const PAGE = 50;
const DIALECTS = (process.env.DIALECTS ?? "sqlite,postgres").split(",").map((d) => d.trim());
const POSTGRES_URL = process.env.PARLEY_BENCH_POSTGRES_URL ?? process.env.PARLEY_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const HOST = "bench.example";
const USER = "juliet";
/** Rows a fill transaction holds; statements inside hold 1000 rows each. */
const FILL_TRANSACTION = 50_000;

const peer = (i: number) => `contact${i}@elsewhere.example`;

function messageXml(id: string, peerJid: string, outgoing: boolean, n: number): string {
  const me = `${USER}@${HOST}`;
  const [from, to] = outgoing ? [`${me}/phone`, peerJid] : [`${peerJid}/laptop`, me];
  return (
    `<message xmlns="jabber:client" from="${from}" to="${to}" type="chat" id="c${n}">` +
    `<body>Message number ${n}: what light through yonder window breaks? It is the east.</body>` +
    `<origin-id xmlns="urn:xmpp:sid:0" id="o${n}"/>` +
    (outgoing ? "" : `<stanza-id xmlns="urn:xmpp:sid:0" by="${me}" id="${id}"/>`) +
    `<markable xmlns="urn:xmpp:chat-markers:0"/></message>`
  );
}

interface Filled {
  /** Every 1000th id, with the peer of its message, for picking page positions. */
  samples: Array<{ id: string; peer: number }>;
  ms: number;
}

async function fill(storage: Storage): Promise<Filled> {
  // One message a second, ending now: eleven and a half days of a busy conversation.
  let clock = Date.now() - MESSAGES * 1000;
  const ids = new ArchiveIdGenerator(() => (clock += 1000));
  const samples: Filled["samples"] = [];
  const started = performance.now();
  for (let done = 0; done < MESSAGES; ) {
    const batch: ArchiveEntry[] = [];
    for (; batch.length < FILL_TRANSACTION && done < MESSAGES; done++) {
      const { id, ts } = ids.next();
      const p = (done * 7919) % PEERS;
      const outgoing = done % 3 === 0;
      batch.push({ host: HOST, username: USER, id, with: peer(p), withResource: "", direction: outgoing ? "out" : "in", xml: messageXml(id, peer(p), outgoing, done), ts });
      if (done % 1000 === 0) samples.push({ id, peer: p });
    }
    await storage.db.transaction().execute((trx) => insertArchiveEntries(trx, batch));
    if (process.stdout.isTTY) process.stdout.write(`\r  filled ${done.toLocaleString("en")}`);
  }
  if (process.stdout.isTTY) process.stdout.write("\r");
  return { samples, ms: performance.now() - started };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function time(label: string, make: (i: number) => Promise<unknown>): Promise<void> {
  // Warm-up: the first queries load pages and plans that every later one finds ready.
  for (let i = 0; i < 10; i++) await make(i);
  const durations: number[] = [];
  for (let i = 0; i < QUERIES; i++) {
    const t0 = performance.now();
    await make(i);
    durations.push(performance.now() - t0);
  }
  durations.sort((a, b) => a - b);
  console.log(`  ${label.padEnd(48)} p50 ${percentile(durations, 50).toFixed(2).padStart(7)} ms   p99 ${percentile(durations, 99).toFixed(2).padStart(7)} ms`);
}

async function measure(storage: Storage, filled: Filled): Promise<void> {
  const archive = storage.archive;
  const middle = filled.samples.slice(Math.floor(filled.samples.length * 0.45), Math.ceil(filled.samples.length * 0.55));
  const pick = (i: number) => middle[(i * 37) % middle.length]!;
  const page = (request: ArchivePageRequest) => async () => {
    const result = await archive.query(HOST, USER, request);
    if (result.messages.length !== PAGE) throw new Error(`expected a page of ${PAGE}, got ${result.messages.length}`);
  };
  const withPeer = (i: number) => peer(pick(i).peer);

  await time("start (first page)", page({ limit: PAGE }));
  await time("middle (RSM after an id)", (i) => page({ limit: PAGE, afterIds: [pick(i).id] })());
  await time("middle, backwards (RSM before an id)", (i) => page({ limit: PAGE, fromEnd: true, beforeIds: [pick(i).id] })());
  await time("end (RSM <before/>: last page)", page({ limit: PAGE, fromEnd: true }));
  await time("with: start", (i) => page({ limit: PAGE, with: withPeer(i) })());
  await time("with: middle (RSM after an id)", (i) => page({ limit: PAGE, with: withPeer(i), afterIds: [pick(i).id] })());
  await time("with: end (last page)", (i) => page({ limit: PAGE, with: withPeer(i), fromEnd: true })());
  await time("RSM <count/>, whole archive (uncapped)", () => archive.count(HOST, USER, {}));
  await time("RSM <count/>, whole archive, count_limit 10000", () => archive.count(HOST, USER, {}, { atMost: 10_000 }));
  await time("RSM <count/> with 'with' (uncapped)", (i) => archive.count(HOST, USER, { with: withPeer(i) }));
}

async function runSqlite(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "parley-bench-mam-"));
  const storage = await openDatabase(join(dir, "parley.sqlite"));
  try {
    await storage.migrate();
    console.log(`SQLite (${join(dir, "parley.sqlite")}, WAL, synchronous=FULL)`);
    const filled = await fill(storage);
    console.log(`  filled ${MESSAGES.toLocaleString("en")} messages in ${(filled.ms / 1000).toFixed(1)} s (${Math.round(MESSAGES / (filled.ms / 1000)).toLocaleString("en")}/s)`);
    await sql`analyze`.execute(storage.db);
    await measure(storage, filled);
  } finally {
    await storage.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function runPostgres(): Promise<void> {
  const schema = `parley_bench_${randomBytes(5).toString("hex")}`;
  const storage = await openDatabase(POSTGRES_URL, { schema });
  try {
    await storage.migrate();
    console.log(`PostgreSQL (${POSTGRES_URL.replace(/\/\/[^@]*@/, "//")}, schema ${schema})`);
    const filled = await fill(storage);
    console.log(`  filled ${MESSAGES.toLocaleString("en")} messages in ${(filled.ms / 1000).toFixed(1)} s (${Math.round(MESSAGES / (filled.ms / 1000)).toLocaleString("en")}/s)`);
    // What autovacuum would do shortly after such a load; without statistics the planner guesses.
    await sql`vacuum analyze archive`.execute(storage.db);
    await measure(storage, filled);
  } finally {
    await storage.close();
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
    try {
      await client.query(`drop schema if exists "${schema}" cascade`);
    } finally {
      await client.end();
    }
  }
}

console.log(`bench:mam — ${MESSAGES.toLocaleString("en")} messages for one account, ${PEERS} contacts, pages of ${PAGE}, ${QUERIES} queries a case`);
for (const dialect of DIALECTS) {
  if (dialect === "sqlite") await runSqlite();
  else if (dialect === "postgres") await runPostgres();
  else throw new Error(`unknown dialect ${dialect}`);
}
