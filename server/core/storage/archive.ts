// The per-account message archive of XEP-0313 v0.7 (Message Archive Management): one-to-one
// messages an account sent and received, each under a server-assigned UID (archive-ids.ts).
//
// Every archived id is an ArchiveIdGenerator id and every ts the millisecond of its id
// (timeOfArchiveId): append and the group-commit writer refuse anything else. So archive order,
// (ts, id), is plain id order, and a page is one index range scan, from either end, on the
// primary key (host, username, id) or, with a 'with' filter, on (host, username, with_jid, id)
// (migration 0006): start and end become the first and last ids of their milliseconds, RSM and
// #extended ids are id bounds, and all of them are folded into one lower and one upper bound
// first, so a 50-message page costs the same at the start, middle or end of a million messages.
// No index on ts is kept: it was a third b-tree to update for every archived row.
import type { ExpressionBuilder, Kysely } from "kysely";
import { firstArchiveIdOf, lastArchiveIdOf, MAX_ARCHIVE_ID_TIME, timeOfArchiveId } from "./archive-ids.ts";
import type { ArchiveTable, Schema } from "./schema.ts";

export interface ArchiveEntry {
  host: string;
  username: string;
  /** An ArchiveIdGenerator id (ARCHIVE_ID_PATTERN). */
  id: string;
  /** The peer's bare JID. */
  with: string;
  /** The peer's resource, if the peer address had one. */
  withResource?: string;
  direction: "in" | "out";
  /** The stanza as standalone XML text (stanza-text.ts). */
  xml: string;
  /** Milliseconds since the epoch: the time of `id` (the ts ArchiveIdGenerator handed out with it). */
  ts: number;
}

export interface ArchivedMessage {
  id: string;
  with: string;
  withResource: string;
  direction: "in" | "out";
  xml: string;
  ts: number;
}

/** Which messages match (XEP-0313 §4.1); every field narrows the set. */
export interface ArchiveFilter {
  /** The peer's bare JID (§4.1.1). */
  with?: string;
  /** With `with`: only this resource of the peer (a full JID in the 'with' field). */
  withResource?: string;
  /** Inclusive, milliseconds (§4.1.2). */
  start?: number;
  /** Inclusive, milliseconds. */
  end?: number;
  /** Only messages after each of these (RSM <after/>, the 'after-id' field); each must exist. */
  afterIds?: readonly string[];
  /** Only messages before each of these (RSM <before/>, the 'before-id' field); each must exist. */
  beforeIds?: readonly string[];
  /** Only these messages (the 'ids' field); each must exist. */
  ids?: readonly string[];
}

export interface ArchivePageRequest extends ArchiveFilter {
  /** At most this many messages. */
  limit: number;
  /** The page at the end of the matching messages rather than the start (RSM <before/>). */
  fromEnd?: boolean;
  /** Skip this many matching messages from the start (RSM <index/>); not with fromEnd. */
  offset?: number;
}

export interface ArchivePage {
  /** In archive order, oldest first, whichever end the page was taken from. */
  messages: ArchivedMessage[];
  /** True when no matching message lies beyond the page in the direction it was taken. */
  complete: boolean;
}

export interface ArchiveBounds {
  first: { id: string; ts: number };
  last: { id: string; ts: number };
}

/** A UID named in a query that the archive does not hold (XEP-0313: item-not-found). */
export class UnknownArchiveIdError extends Error {
  constructor(readonly id: string) {
    super(`no archived message has the id ${JSON.stringify(id)}`);
    this.name = "UnknownArchiveIdError";
  }
}

/**
 * An archive entry that breaks the archive's contract (an id not made by ArchiveIdGenerator, or a
 * ts other than its id's time): a programming error in the caller, never the user's input.
 */
export class InvalidArchiveEntryError extends TypeError {
  constructor(message: string) {
    super(message);
    this.name = "InvalidArchiveEntryError";
  }
}

/** Throws InvalidArchiveEntryError unless `id` is an archive id and `ts` the millisecond it names. */
export function checkArchiveStamp(id: unknown, ts: unknown): void {
  const time = typeof id === "string" ? timeOfArchiveId(id) : NaN;
  if (Number.isNaN(time)) throw new InvalidArchiveEntryError(`archive id ${JSON.stringify(id)} was not made by ArchiveIdGenerator`);
  if (time !== ts) throw new InvalidArchiveEntryError(`archive entry ${id} has ts ${String(ts)}, but its id says ${time}`);
}

/** checkArchiveStamp for each entry. */
export function checkArchiveEntries(entries: readonly ArchiveEntry[]): void {
  for (const e of entries) checkArchiveStamp(e.id, e.ts);
}

type Db = Kysely<Schema>;
/** A bound on id: inclusive (from start/end) or exclusive (an RSM or #extended id). */
type Bound = { id: string; inclusive: boolean };

const COLUMNS = ["id", "with_jid", "with_resource", "direction", "xml", "ts"] as const;
// Eight columns a row: well under SQLite's 32766 and PostgreSQL's 65535 bound parameters.
const INSERT_CHUNK = 1000;
// Both dialects cap the length of an IN list in practice; ids come from one client's query.
const MAX_IDS = 1000;

/**
 * Inserts entries (in one statement per chunk); a UID already in that archive is left as it was.
 * Throws InvalidArchiveEntryError, before writing anything, for an entry that breaks the contract.
 */
export async function insertArchiveEntries(db: Db, entries: readonly ArchiveEntry[]): Promise<void> {
  checkArchiveEntries(entries);
  for (let i = 0; i < entries.length; i += INSERT_CHUNK) {
    const rows: ArchiveTable[] = entries.slice(i, i + INSERT_CHUNK).map((e) => ({
      host: e.host,
      username: e.username,
      id: e.id,
      with_jid: e.with,
      with_resource: e.withResource ?? "",
      direction: e.direction,
      xml: e.xml,
      ts: e.ts,
    }));
    await archiveInsert(db, rows).execute();
  }
}

/**
 * The insert of archive rows, for both writers: run here, and compiled for the SQLite writer
 * thread (writer-statements.ts). Re-archiving a stanza under the id it already has (a resent or
 * rescued copy) is a no-op: nothing is archived twice.
 */
export function archiveInsert(db: Db, rows: ArchiveTable[]) {
  return db
    .insertInto("archive")
    .values(rows)
    .onConflict((oc) => oc.columns(["host", "username", "id"]).doNothing());
}

export class ArchiveStore {
  readonly #db: Db;

  constructor(db: Db) {
    this.#db = db;
  }

  /**
   * Archives the entries in one transaction. Most writes go through the group-commit writer instead.
   * Rejects with InvalidArchiveEntryError (storing nothing) for an entry that breaks the contract.
   */
  async append(entries: readonly ArchiveEntry[]): Promise<void> {
    checkArchiveEntries(entries);
    if (entries.length === 0) return;
    await this.#db.transaction().execute((trx) => insertArchiveEntries(trx, entries));
  }

  /** One page of matching messages. Throws UnknownArchiveIdError for a named id the archive lacks. */
  async query(host: string, username: string, request: ArchivePageRequest): Promise<ArchivePage> {
    const limit = Math.max(0, Math.trunc(request.limit));
    const where = await this.#conditions(host, username, request);
    if (where === null || limit === 0) {
      const any = where === null ? false : (await this.#select(where, 1, false, 0)).length > 0;
      return { messages: [], complete: !any };
    }
    const fromEnd = request.fromEnd === true;
    const rows = await this.#select(where, limit + 1, fromEnd, fromEnd ? 0 : Math.max(0, request.offset ?? 0));
    const complete = rows.length <= limit;
    const page = rows.slice(0, limit);
    if (fromEnd) page.reverse();
    return { messages: page, complete };
  }

  /**
   * How many messages match. Counting walks the matching index range, so its cost grows with the
   * answer: with `atMost`, counting stops past that many and the answer is undefined.
   */
  async count(host: string, username: string, filter?: ArchiveFilter): Promise<number>;
  async count(host: string, username: string, filter: ArchiveFilter, opts: { atMost: number }): Promise<number | undefined>;
  async count(host: string, username: string, filter: ArchiveFilter = {}, opts?: { atMost: number }): Promise<number | undefined> {
    const where = await this.#conditions(host, username, filter);
    if (where === null) return 0;
    if (opts === undefined) {
      const row = await this.#db
        .selectFrom("archive")
        .select((eb) => eb.fn.countAll<number | string>().as("n"))
        .where(where)
        .executeTakeFirstOrThrow();
      return Number(row.n);
    }
    const atMost = Math.max(0, Math.trunc(opts.atMost));
    const row = await this.#db
      .selectFrom((db) => db.selectFrom("archive").select("id").where(where).limit(atMost + 1).as("capped"))
      .select((eb) => eb.fn.countAll<number | string>().as("n"))
      .executeTakeFirstOrThrow();
    const n = Number(row.n);
    return n > atMost ? undefined : n;
  }

  async get(host: string, username: string, id: string): Promise<ArchivedMessage | null> {
    const row = await this.#db
      .selectFrom("archive")
      .select(COLUMNS)
      .where("host", "=", host)
      .where("username", "=", username)
      .where("id", "=", id)
      .executeTakeFirst();
    return row ? toMessage(row) : null;
  }

  /** The first and last messages of the archive (XEP-0313 §5 metadata), or null when it is empty. */
  async bounds(host: string, username: string): Promise<ArchiveBounds | null> {
    const end = (direction: "asc" | "desc") =>
      this.#db
        .selectFrom("archive")
        .select(["id", "ts"])
        .where("host", "=", host)
        .where("username", "=", username)
        .orderBy("id", direction)
        .limit(1)
        .executeTakeFirst();
    const [first, last] = [await end("asc"), await end("desc")];
    if (!first || !last) return null;
    return { first: { id: first.id, ts: first.ts }, last: { id: last.id, ts: last.ts } };
  }

  /** Removes the account's whole archive; returns how many messages it held. */
  async removeUser(host: string, username: string): Promise<number> {
    const result = await this.#db.deleteFrom("archive").where("host", "=", host).where("username", "=", username).executeTakeFirst();
    return Number(result.numDeletedRows ?? 0n);
  }

  #select(where: Condition, limit: number, descending: boolean, offset: number) {
    const direction = descending ? "desc" : "asc";
    let query = this.#db
      .selectFrom("archive")
      .select(COLUMNS)
      .where(where)
      .orderBy("id", direction)
      .limit(limit);
    if (offset > 0) query = query.offset(offset);
    return query.execute().then((rows) => rows.map(toMessage));
  }

  /** The WHERE clause for a filter; null when it can match nothing. */
  async #conditions(host: string, username: string, filter: ArchiveFilter): Promise<Condition | null> {
    const named = [...(filter.afterIds ?? []), ...(filter.beforeIds ?? []), ...(filter.ids ?? [])];
    if (filter.ids !== undefined && filter.ids.length > MAX_IDS) throw new RangeError(`at most ${MAX_IDS} ids in one query`);
    await this.#checkExist(host, username, named);

    let lower: Bound | undefined;
    let upper: Bound | undefined;
    if (filter.start !== undefined) {
      // ts >= start: from the first id of the first whole millisecond at or after start.
      const ms = Math.max(0, Math.ceil(filter.start));
      if (!(ms <= MAX_ARCHIVE_ID_TIME)) return null;
      lower = { id: firstArchiveIdOf(ms), inclusive: true };
    }
    if (filter.end !== undefined) {
      // ts <= end: up to the last id of the last whole millisecond at or before end.
      const ms = Math.min(MAX_ARCHIVE_ID_TIME, Math.floor(filter.end));
      if (!(ms >= 0)) return null;
      upper = { id: lastArchiveIdOf(ms), inclusive: true };
    }
    for (const id of filter.afterIds ?? []) lower = stricterLower(lower, { id, inclusive: false });
    for (const id of filter.beforeIds ?? []) upper = stricterUpper(upper, { id, inclusive: false });
    if (lower && upper && isEmptyRange(lower, upper)) return null;

    const withJid = filter.with;
    const withResource = filter.withResource;
    const ids = filter.ids;
    return (eb: ExpressionBuilder<Schema, "archive">) => {
      const parts = [eb("host", "=", host), eb("username", "=", username)];
      if (withJid !== undefined) {
        parts.push(eb("with_jid", "=", withJid));
        if (withResource !== undefined) parts.push(eb("with_resource", "=", withResource));
      }
      if (lower) parts.push(eb("id", lower.inclusive ? ">=" : ">", lower.id));
      if (upper) parts.push(eb("id", upper.inclusive ? "<=" : "<", upper.id));
      if (ids !== undefined) parts.push(ids.length === 0 ? eb.val(false) : eb("id", "in", [...ids]));
      return eb.and(parts);
    };
  }

  /** Throws UnknownArchiveIdError for the first named id the archive lacks. */
  async #checkExist(host: string, username: string, ids: readonly string[]): Promise<void> {
    const wanted = [...new Set(ids)];
    const found = new Set<string>();
    for (let i = 0; i < wanted.length; i += MAX_IDS) {
      const rows = await this.#db
        .selectFrom("archive")
        .select("id")
        .where("host", "=", host)
        .where("username", "=", username)
        .where("id", "in", wanted.slice(i, i + MAX_IDS))
        .execute();
      for (const row of rows) found.add(row.id);
    }
    const missing = wanted.find((id) => !found.has(id));
    if (missing !== undefined) throw new UnknownArchiveIdError(missing);
  }
}

type Condition = (eb: ExpressionBuilder<Schema, "archive">) => ReturnType<ExpressionBuilder<Schema, "archive">["and"]>;

/** Of two lower bounds, the one that admits less (on a tie, the exclusive one). */
function stricterLower(current: Bound | undefined, next: Bound): Bound {
  if (current === undefined || next.id > current.id) return next;
  if (next.id === current.id && !next.inclusive) return next;
  return current;
}

/** Of two upper bounds, the one that admits less (on a tie, the exclusive one). */
function stricterUpper(current: Bound | undefined, next: Bound): Bound {
  if (current === undefined || next.id < current.id) return next;
  if (next.id === current.id && !next.inclusive) return next;
  return current;
}

function isEmptyRange(lower: Bound, upper: Bound): boolean {
  if (lower.id !== upper.id) return lower.id > upper.id;
  return !(lower.inclusive && upper.inclusive);
}

function toMessage(row: Pick<ArchiveTable, (typeof COLUMNS)[number]>): ArchivedMessage {
  return { id: row.id, with: row.with_jid, withResource: row.with_resource, direction: row.direction, xml: row.xml, ts: row.ts };
}
