// Storage of XEP-0060 1.26.0 Publish-Subscribe services (PEP, XEP-0163 1.2, and pubsub.<domain>)
// in the tables of migration 0004_pubsub, on SQLite and PostgreSQL alike.
//
// Callers serialise writes to one service (the module's per-service lock): `seq` is the node's
// highest plus one, read and written in one transaction.
import type { Kysely, Transaction } from "kysely";
import type { Schema, Storage } from "../../core/storage/index.ts";
import { PEP_DEFAULT_CONFIG, type NodeConfig } from "../../../protocol/pubsub.ts";
import { compiledRead } from "../../core/storage/compiled.ts";

interface ServiceKey {
  host: string;
  username: string;
  node: string;
}

export type PubSubTables = {
  pubsub_nodes: ServiceKey & { config: string; created_at: number };
  pubsub_items: ServiceKey & { id: string; seq: number; publisher: string; payload: string; published_at: number };
  pubsub_affiliations: ServiceKey & { jid: string; affiliation: string };
  pubsub_subscriptions: ServiceKey & { jid: string; subid: string; created_at: number };
};

type Tables = Schema & PubSubTables;
type Db = Kysely<Tables>;

/** A pubsub service: an account's PEP service, or a component's (username ""). */
export interface Service {
  host: string;
  username: string;
}

export interface StoredItem {
  id: string;
  publisher: string;
  /** The payload element as text (stanza-text.ts). */
  payload: string;
}

export type Affiliation = "owner" | "publisher" | "member" | "outcast";
const AFFILIATIONS: ReadonlySet<string> = new Set(["owner", "publisher", "member", "outcast"]);

/** What is kept in memory of a node: everything but its items. */
export interface NodeMeta {
  config: NodeConfig;
  /** Bare JID → affiliation (the owner's own is implicit for PEP). */
  affiliations: Map<string, Affiliation>;
  createdAt: number;
}

export interface Subscription {
  jid: string;
  subid: string;
}

const TABLES = ["pubsub_subscriptions", "pubsub_affiliations", "pubsub_items", "pubsub_nodes"] as const;

function decodeConfig(text: string): NodeConfig {
  let parsed: Partial<NodeConfig> = {};
  try {
    parsed = JSON.parse(text) as Partial<NodeConfig>;
  } catch {
    // A damaged row falls back to the defaults rather than making the whole service unreadable.
  }
  return { ...PEP_DEFAULT_CONFIG, ...parsed, rosterGroupsAllowed: [...(parsed.rosterGroupsAllowed ?? [])] };
}

export class PubSubStore {
  readonly #db: Db;
  readonly #now: () => number;
  // Read once a service is first used since the start: for an account, at its first login.
  readonly #nodeRows;
  readonly #affiliationRows;

  constructor(storage: Storage, now: () => number = Date.now) {
    const db = (this.#db = storage.db.withTables<PubSubTables>());
    this.#now = now;
    this.#nodeRows = compiledRead(db, (host: string, username: string) =>
      db.selectFrom("pubsub_nodes").selectAll().where("host", "=", host).where("username", "=", username));
    this.#affiliationRows = compiledRead(db, (host: string, username: string) =>
      db.selectFrom("pubsub_affiliations").selectAll().where("host", "=", host).where("username", "=", username));
  }

  #node<T extends keyof PubSubTables>(db: Db | Transaction<Tables>, table: T, s: Service, node: string) {
    // Kysely's typing cannot follow a generic table name through where(); every table has these columns.
    return db.deleteFrom(table as "pubsub_items").where("host", "=", s.host).where("username", "=", s.username).where("node", "=", node);
  }

  /** Every node of a service with its configuration and affiliations. */
  async nodes(s: Service): Promise<Map<string, NodeMeta>> {
    const rows = await this.#nodeRows(s.host, s.username);
    const out = new Map<string, NodeMeta>();
    for (const r of rows) out.set(r.node, { config: decodeConfig(r.config), affiliations: new Map(), createdAt: Number(r.created_at) });
    const affs = await this.#affiliationRows(s.host, s.username);
    for (const a of affs) {
      if (AFFILIATIONS.has(a.affiliation)) out.get(a.node)?.affiliations.set(a.jid, a.affiliation as Affiliation);
    }
    return out;
  }

  async createNode(s: Service, node: string, config: NodeConfig): Promise<NodeMeta> {
    const createdAt = this.#now();
    await this.#db.insertInto("pubsub_nodes").values({ ...s, node, config: JSON.stringify(config), created_at: createdAt }).execute();
    return { config, affiliations: new Map(), createdAt };
  }

  async setConfig(s: Service, node: string, config: NodeConfig): Promise<void> {
    await this.#db
      .updateTable("pubsub_nodes")
      .set({ config: JSON.stringify(config) })
      .where("host", "=", s.host)
      .where("username", "=", s.username)
      .where("node", "=", node)
      .execute();
  }

  /** The node with its items, affiliations and subscriptions. */
  async deleteNode(s: Service, node: string): Promise<void> {
    await this.#db.transaction().execute(async (trx) => {
      for (const table of TABLES) await this.#node(trx, table, s, node).execute();
    });
  }

  /** Everything of a service (an account being deleted). */
  async deleteService(s: Service): Promise<void> {
    await this.#db.transaction().execute(async (trx) => {
      for (const table of TABLES) {
        await trx.deleteFrom(table as "pubsub_items").where("host", "=", s.host).where("username", "=", s.username).execute();
      }
    });
  }

  /** Sets (or with null removes) the affiliation of a bare JID. */
  async setAffiliation(s: Service, node: string, jid: string, affiliation: Affiliation | null): Promise<void> {
    if (affiliation === null) {
      await this.#db
        .deleteFrom("pubsub_affiliations")
        .where("host", "=", s.host)
        .where("username", "=", s.username)
        .where("node", "=", node)
        .where("jid", "=", jid)
        .execute();
      return;
    }
    await this.#db
      .insertInto("pubsub_affiliations")
      .values({ ...s, node, jid, affiliation })
      .onConflict((oc) => oc.columns(["host", "username", "node", "jid"]).doUpdateSet({ affiliation }))
      .execute();
  }

  /**
   * Stores an item as the node's newest (replacing one with the same id) and keeps only the
   * newest `limit`. Returns the ids trimmed away.
   */
  async publish(s: Service, node: string, item: StoredItem, limit: number): Promise<string[]> {
    return this.#db.transaction().execute(async (trx) => {
      const top = await trx
        .selectFrom("pubsub_items")
        .select((eb) => eb.fn.max("seq").as("seq"))
        .where("host", "=", s.host)
        .where("username", "=", s.username)
        .where("node", "=", node)
        .executeTakeFirst();
      const seq = Number(top?.seq ?? 0) + 1;
      const row = { seq, publisher: item.publisher, payload: item.payload, published_at: this.#now() };
      await trx
        .insertInto("pubsub_items")
        .values({ ...s, node, id: item.id, ...row })
        .onConflict((oc) => oc.columns(["host", "username", "node", "id"]).doUpdateSet(row))
        .execute();
      return this.#trim(trx, s, node, limit);
    });
  }

  /** Keeps the newest `limit` items; returns the ids removed. */
  async trim(s: Service, node: string, limit: number): Promise<string[]> {
    return this.#db.transaction().execute((trx) => this.#trim(trx, s, node, limit));
  }

  async #trim(trx: Transaction<Tables>, s: Service, node: string, limit: number): Promise<string[]> {
    const old = await trx
      .selectFrom("pubsub_items")
      .select(["id"])
      .where("host", "=", s.host)
      .where("username", "=", s.username)
      .where("node", "=", node)
      .orderBy("seq", "desc")
      .offset(limit)
      .limit(1_000_000)
      .execute();
    const ids = old.map((r) => r.id);
    if (ids.length > 0) await this.#node(trx, "pubsub_items", s, node).where("id", "in", ids).execute();
    return ids;
  }

  /** The node's items, oldest first; only those of `ids` when given. */
  async items(s: Service, node: string, ids?: readonly string[]): Promise<StoredItem[]> {
    let q = this.#db
      .selectFrom("pubsub_items")
      .select(["id", "publisher", "payload"])
      .where("host", "=", s.host)
      .where("username", "=", s.username)
      .where("node", "=", node);
    if (ids !== undefined) {
      if (ids.length === 0) return [];
      q = q.where("id", "in", ids);
    }
    return q.orderBy("seq", "asc").execute();
  }

  /** The newest item of a node, if any. */
  async lastItem(s: Service, node: string): Promise<StoredItem | undefined> {
    return this.#db
      .selectFrom("pubsub_items")
      .select(["id", "publisher", "payload"])
      .where("host", "=", s.host)
      .where("username", "=", s.username)
      .where("node", "=", node)
      .orderBy("seq", "desc")
      .limit(1)
      .executeTakeFirst();
  }

  /** Removes items by id; returns the ids that existed. */
  async retract(s: Service, node: string, ids: readonly string[]): Promise<string[]> {
    return this.#db.transaction().execute(async (trx) => {
      const existing = (await trx
        .selectFrom("pubsub_items")
        .select("id")
        .where("host", "=", s.host)
        .where("username", "=", s.username)
        .where("node", "=", node)
        .where("id", "in", ids)
        .execute()).map((r) => r.id);
      if (existing.length > 0) await this.#node(trx, "pubsub_items", s, node).where("id", "in", existing).execute();
      return existing;
    });
  }

  /** Deletes every item of a node (XEP-0060 §8.5 purge). */
  async purge(s: Service, node: string): Promise<void> {
    await this.#node(this.#db, "pubsub_items", s, node).execute();
  }

  /** Subscribes a JID (bare or full, as it asked); returns its subid, the existing one if already subscribed. */
  async subscribe(s: Service, node: string, jid: string, subid: string): Promise<string> {
    const existing = await this.#db
      .selectFrom("pubsub_subscriptions")
      .select("subid")
      .where("host", "=", s.host)
      .where("username", "=", s.username)
      .where("node", "=", node)
      .where("jid", "=", jid)
      .executeTakeFirst();
    if (existing) return existing.subid;
    await this.#db.insertInto("pubsub_subscriptions").values({ ...s, node, jid, subid, created_at: this.#now() }).execute();
    return subid;
  }

  /** False when the JID was not subscribed. */
  async unsubscribe(s: Service, node: string, jid: string): Promise<boolean> {
    const result = await this.#db
      .deleteFrom("pubsub_subscriptions")
      .where("host", "=", s.host)
      .where("username", "=", s.username)
      .where("node", "=", node)
      .where("jid", "=", jid)
      .executeTakeFirst();
    return Number(result.numDeletedRows ?? 0) > 0;
  }

  /** Subscriptions of a node. */
  async subscribers(s: Service, node: string): Promise<Subscription[]> {
    return this.#db
      .selectFrom("pubsub_subscriptions")
      .select(["jid", "subid"])
      .where("host", "=", s.host)
      .where("username", "=", s.username)
      .where("node", "=", node)
      .orderBy("created_at", "asc")
      .execute();
  }

  /** The subscriptions of one JID (bare JID: also its full JIDs) at a service (XEP-0060 §5.6). */
  async subscriptionsOf(s: Service, bareJid: string): Promise<(Subscription & { node: string })[]> {
    const rows = await this.#db
      .selectFrom("pubsub_subscriptions")
      .select(["node", "jid", "subid"])
      .where("host", "=", s.host)
      .where("username", "=", s.username)
      .execute();
    return rows.filter((r) => r.jid === bareJid || r.jid.startsWith(`${bareJid}/`));
  }
}
