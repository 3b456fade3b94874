// Small per-module data (the `m.store(name)` of DESIGN.md "Modules"): JSON values under
// (module, host, username, key). Host-wide data uses username ""; data of no host uses host "".
// Meant for settings-sized values; anything with its own query pattern deserves its own table.
import type { Kysely } from "kysely";
import type { Schema } from "./schema.ts";
import { compiledRead } from "./compiled.ts";
import { changed, type Clock } from "./values.ts";

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export interface KeyValueEntry {
  key: string;
  value: JsonValue;
  /** Milliseconds since the epoch. */
  updatedAt: number;
}

function encode(value: JsonValue): string {
  const text = JSON.stringify(value);
  // JSON.stringify gives undefined for undefined and functions; storing "undefined" would be unreadable.
  if (text === undefined) throw new TypeError("kv value must be representable as JSON");
  return text;
}

export class KeyValueStore {
  readonly #db: Kysely<Schema>;
  readonly #now: Clock;

  // Modules read their keys on the login path (presence's pending requests, for one).
  readonly #value;

  constructor(db: Kysely<Schema>, now: Clock) {
    this.#db = db;
    this.#now = now;
    this.#value = compiledRead(db, (module: string, host: string, username: string, key: string) =>
      db.selectFrom("kv").select("value").where("module", "=", module).where("host", "=", host).where("username", "=", username).where("key", "=", key));
  }

  /** undefined when the key is absent (a stored JSON null comes back as null). */
  async get(module: string, host: string, username: string, key: string): Promise<JsonValue | undefined> {
    const [row] = await this.#value(module, host, username, key);
    return row ? (JSON.parse(row.value) as JsonValue) : undefined;
  }

  async set(module: string, host: string, username: string, key: string, value: JsonValue): Promise<void> {
    const fields = { value: encode(value), updated_at: this.#now() };
    await this.#db
      .insertInto("kv")
      .values({ module, host, username, key, ...fields })
      .onConflict((oc) => oc.columns(["module", "host", "username", "key"]).doUpdateSet(fields))
      .execute();
  }

  /** False if the key was absent. */
  async delete(module: string, host: string, username: string, key: string): Promise<boolean> {
    const result = await this.#db
      .deleteFrom("kv")
      .where("module", "=", module)
      .where("host", "=", host)
      .where("username", "=", username)
      .where("key", "=", key)
      .executeTakeFirst();
    return changed(result.numDeletedRows);
  }

  /** Every entry of one module for one owner, sorted by key. */
  async list(module: string, host: string, username: string): Promise<KeyValueEntry[]> {
    const rows = await this.#db
      .selectFrom("kv")
      .select(["key", "value", "updated_at"])
      .where("module", "=", module)
      .where("host", "=", host)
      .where("username", "=", username)
      .execute();
    // Sorted here rather than in SQL: PostgreSQL orders text by the database's collation and
    // SQLite by bytes, and both dialects must answer alike.
    return rows
      .map((row) => ({ key: row.key, value: JSON.parse(row.value) as JsonValue, updatedAt: row.updated_at }))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }
}
