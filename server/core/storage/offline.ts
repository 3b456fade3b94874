// Offline message storage for XEP-0160 v1.0.1 (Best Practices for Handling Offline Messages):
// messages for an account with no available resource wait here, in arrival order, until a
// session of the account sends available presence. A per-account quota bounds the queue.
import type { Kysely } from "kysely";
import type { OfflineTable, Schema } from "./schema.ts";
import { compiledRead } from "./compiled.ts";

export interface OfflineEntry {
  host: string;
  username: string;
  /** The stanza as standalone XML text (stanza-text.ts), with its stanza-id if it has one. */
  xml: string;
  /** Milliseconds since the epoch: the stamp of the <delay/> it is delivered with. */
  storedAt: number;
}

export interface OfflineMessage {
  /** Increases with arrival: the order to deliver in, and the handle to delete by. */
  seq: number;
  xml: string;
  storedAt: number;
}

/** Storing would take the account past its quota (XEP-0160 §2: the sender gets service-unavailable). */
export class OfflineQuotaError extends Error {
  constructor(
    readonly host: string,
    readonly username: string,
    readonly limit: number,
  ) {
    super(`offline storage for ${username}@${host} is full (${limit} messages)`);
    this.name = "OfflineQuotaError";
  }
}

type Db = Kysely<Schema>;

// Five columns a row: far below either dialect's bound-parameter limit.
const INSERT_CHUNK = 1000;
const DELETE_CHUNK = 1000;

/** Inserts entries in order, so their sequence numbers follow the order given. */
export async function insertOfflineEntries(db: Db, entries: readonly OfflineEntry[]): Promise<void> {
  for (let i = 0; i < entries.length; i += INSERT_CHUNK) {
    await offlineInsert(db, entries.slice(i, i + INSERT_CHUNK).map((e) => ({ host: e.host, username: e.username, xml: e.xml, stored_at: e.storedAt }))).execute();
  }
}

export async function countOffline(db: Db, host: string, username: string): Promise<number> {
  const row = await offlineCount(db, host, username).executeTakeFirstOrThrow();
  return Number(row.n);
}

// The statements of a writer's batch (writer.ts), run here and compiled for the SQLite writer
// thread (writer-statements.ts).

export function offlineInsert(db: Db, rows: Array<Omit<OfflineTable, "seq">>) {
  return db.insertInto("offline").values(rows);
}

export function offlineCount(db: Db, host: string, username: string) {
  return db
    .selectFrom("offline")
    .select((eb) => eb.fn.countAll<number | string>().as("n"))
    .where("host", "=", host)
    .where("username", "=", username);
}

export function offlineDelete(db: Db, host: string, username: string, seqs: readonly number[]) {
  return db.deleteFrom("offline").where("host", "=", host).where("username", "=", username).where("seq", "in", seqs);
}

/** Deletes the account's messages with these sequence numbers; returns how many went. */
export async function deleteOfflineEntries(db: Db, host: string, username: string, seqs: readonly number[]): Promise<number> {
  let deleted = 0;
  for (let i = 0; i < seqs.length; i += DELETE_CHUNK) {
    const result = await offlineDelete(db, host, username, seqs.slice(i, i + DELETE_CHUNK)).executeTakeFirst();
    deleted += Number(result.numDeletedRows ?? 0n);
  }
  return deleted;
}

export class OfflineStore {
  readonly #db: Db;
  // Every login reads the queue (XEP-0160: what waited is delivered at the initial presence).
  readonly #rows;
  readonly #firstRows;

  constructor(db: Db) {
    this.#db = db;
    const queue = (host: string, username: string) =>
      db.selectFrom("offline").select(["seq", "xml", "stored_at"]).where("host", "=", host).where("username", "=", username).orderBy("seq");
    this.#rows = compiledRead(db, queue);
    this.#firstRows = compiledRead(db, (host: string, username: string, limit: number) => queue(host, username).limit(limit));
  }

  /**
   * Stores the messages in one transaction, in order. With `limit`, they are stored only if the
   * account then holds at most `limit` messages; otherwise nothing is stored and OfflineQuotaError
   * is thrown. Most writes go through the group-commit writer instead.
   */
  async append(entries: readonly OfflineEntry[], limit?: number): Promise<void> {
    if (entries.length === 0) return;
    await this.#db.transaction().execute(async (trx) => {
      if (limit !== undefined) {
        const wanted = new Map<string, number>();
        for (const e of entries) wanted.set(`${e.host}\u0000${e.username}`, (wanted.get(`${e.host}\u0000${e.username}`) ?? 0) + 1);
        for (const [key, n] of wanted) {
          const [host, username] = key.split("\u0000") as [string, string];
          if ((await countOffline(trx, host, username)) + n > limit) throw new OfflineQuotaError(host, username, limit);
        }
      }
      await insertOfflineEntries(trx, entries);
    });
  }

  /** The account's messages, oldest first; at most `limit` of them when given. */
  async list(host: string, username: string, limit?: number): Promise<OfflineMessage[]> {
    const rows = limit === undefined ? await this.#rows(host, username) : await this.#firstRows(host, username, limit);
    return rows.map((r) => ({ seq: r.seq, xml: r.xml, storedAt: r.stored_at }));
  }

  async count(host: string, username: string): Promise<number> {
    return countOffline(this.#db, host, username);
  }

  /** Deletes the account's messages with these sequence numbers; returns how many there were. */
  async delete(host: string, username: string, seqs: readonly number[]): Promise<number> {
    if (seqs.length === 0) return 0;
    return this.#db.transaction().execute((trx) => deleteOfflineEntries(trx, host, username, seqs));
  }

  /**
   * Takes every message of the account, oldest first, and deletes them in the same statement:
   * two sessions popping at once each get a message at most once, never both.
   */
  async pop(host: string, username: string): Promise<OfflineMessage[]> {
    const rows = await this.#db
      .deleteFrom("offline")
      .where("host", "=", host)
      .where("username", "=", username)
      .returning(["seq", "xml", "stored_at"])
      .execute();
    return rows.map((r) => ({ seq: r.seq, xml: r.xml, storedAt: r.stored_at })).sort((a, b) => a.seq - b.seq);
  }
}
