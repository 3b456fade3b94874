// Roster storage: RFC 6121 §2 (roster items) and §3 (subscription states), with
// XEP-0237 v1.3 (roster versioning).
//
// Every change to a user's roster bumps that user's version in the same transaction, and the
// version string the server hands out is that integer. A user's first version is the clock in
// milliseconds rather than 1: an account that is deleted and registered again then never reuses
// a version an old client may still have cached with a different roster.
import type { Kysely, Transaction } from "kysely";
import type { RosterItemsTable, Schema } from "./schema.ts";
import { compiledRead } from "./compiled.ts";
import { changed, fromFlag, toFlag, type Clock } from "./values.ts";

export type Subscription = RosterItemsTable["subscription"];
const SUBSCRIPTIONS: readonly Subscription[] = ["none", "to", "from", "both"];

export interface RosterItem {
  /** The contact's bare JID, normalised. */
  jid: string;
  name: string | null;
  subscription: Subscription;
  /** "Pending Out": our subscribe request awaits the contact's answer (shown as ask="subscribe"). */
  askOut: boolean;
  /** "Pending In": the contact asked to subscribe and the user has not answered. */
  pendingIn: boolean;
  /** The contact's subscribe stanza, to re-deliver at login while pendingIn holds (RFC 6121 §3.1.3). */
  pendingInStanza: string | null;
  /** Subscription pre-approval (RFC 6121 §3.4). */
  approved: boolean;
  groups: string[];
}

export interface Roster {
  /** 0 for a user whose roster has never changed. */
  version: number;
  /** Sorted by jid. */
  items: RosterItem[];
}

/** A roster item with RFC 6121's defaults (no subscription, nothing pending) for what is not given. */
export function rosterItem(jid: string, fields: Partial<Omit<RosterItem, "jid">> = {}): RosterItem {
  return {
    jid,
    name: null,
    subscription: "none",
    askOut: false,
    pendingIn: false,
    pendingInStanza: null,
    approved: false,
    groups: [],
    ...fields,
  };
}

function checkItem(item: RosterItem): void {
  if (typeof item.jid !== "string" || item.jid === "") throw new TypeError("roster item needs a jid");
  if (!SUBSCRIPTIONS.includes(item.subscription)) {
    throw new RangeError(`subscription must be one of ${SUBSCRIPTIONS.join(", ")}`);
  }
  if (!Array.isArray(item.groups) || !item.groups.every((g) => typeof g === "string")) {
    throw new TypeError("roster groups must be an array of strings");
  }
}

function parseGroups(text: string): string[] {
  const groups: unknown = JSON.parse(text);
  if (!Array.isArray(groups) || !groups.every((g) => typeof g === "string")) {
    throw new TypeError(`roster_items.groups holds something other than an array of strings: ${text}`);
  }
  return groups;
}

function fromRow(row: RosterItemsTable): RosterItem {
  return {
    jid: row.contact,
    name: row.name,
    subscription: row.subscription,
    askOut: fromFlag(row.ask_out),
    pendingIn: fromFlag(row.pending_in),
    pendingInStanza: row.pending_in_stanza,
    approved: fromFlag(row.approved),
    groups: parseGroups(row.groups),
  };
}

export class RosterStore {
  readonly #db: Kysely<Schema>;
  readonly #now: Clock;

  // Read at every login and logout (presence goes to the subscribers) and at every roster get.
  readonly #versionRow;
  readonly #itemRows;

  constructor(db: Kysely<Schema>, now: Clock) {
    this.#db = db;
    this.#now = now;
    this.#versionRow = compiledRead(db, (host: string, username: string) =>
      db.selectFrom("roster_versions").select("version").where("host", "=", host).where("username", "=", username));
    this.#itemRows = compiledRead(db, (host: string, username: string) =>
      db.selectFrom("roster_items").selectAll().where("host", "=", host).where("username", "=", username));
  }

  async list(host: string, username: string): Promise<Roster> {
    // Version first, items second: a change committed in between makes the items newer than
    // the version, which only costs the client a roster push it already has. The other order
    // could pair a newer version with older items, and the client would cache the wrong roster.
    const version = await this.version(host, username);
    const rows = await this.#itemRows(host, username);
    const items = rows.map(fromRow).sort((a, b) => (a.jid < b.jid ? -1 : a.jid > b.jid ? 1 : 0));
    return { version, items };
  }

  async version(host: string, username: string): Promise<number> {
    const [row] = await this.#versionRow(host, username);
    return row?.version ?? 0;
  }

  async get(host: string, username: string, contact: string): Promise<RosterItem | null> {
    const row = await this.#db
      .selectFrom("roster_items")
      .selectAll()
      .where("host", "=", host)
      .where("username", "=", username)
      .where("contact", "=", contact)
      .executeTakeFirst();
    return row ? fromRow(row) : null;
  }

  /** Adds the item or replaces every field of an existing one; returns the new roster version. */
  async upsert(host: string, username: string, item: RosterItem): Promise<number> {
    checkItem(item);
    const fields = {
      name: item.name,
      subscription: item.subscription,
      ask_out: toFlag(item.askOut),
      pending_in: toFlag(item.pendingIn),
      pending_in_stanza: item.pendingInStanza,
      approved: toFlag(item.approved),
      groups: JSON.stringify(item.groups),
    };
    return this.#db.transaction().execute(async (trx) => {
      await trx
        .insertInto("roster_items")
        .values({ host, username, contact: item.jid, ...fields })
        .onConflict((oc) => oc.columns(["host", "username", "contact"]).doUpdateSet(fields))
        .execute();
      return this.#bump(trx, host, username);
    });
  }

  /** Removes the item; returns the new roster version, or null (and no new version) if there was none. */
  async remove(host: string, username: string, contact: string): Promise<number | null> {
    return this.#db.transaction().execute(async (trx) => {
      const result = await trx
        .deleteFrom("roster_items")
        .where("host", "=", host)
        .where("username", "=", username)
        .where("contact", "=", contact)
        .executeTakeFirst();
      if (!changed(result.numDeletedRows)) return null;
      return this.#bump(trx, host, username);
    });
  }

  // Always the last statement of a roster transaction, so concurrent writers for one user lock
  // the item row before the version row and cannot deadlock; the version row lock makes their
  // increments strictly sequential on PostgreSQL.
  async #bump(trx: Transaction<Schema>, host: string, username: string): Promise<number> {
    const row = await trx
      .insertInto("roster_versions")
      .values({ host, username, version: Math.max(1, Math.trunc(this.#now())) })
      .onConflict((oc) =>
        oc.columns(["host", "username"]).doUpdateSet((eb) => ({ version: eb("roster_versions.version", "+", 1) })),
      )
      .returning("version")
      .executeTakeFirstOrThrow();
    return row.version;
  }
}
