// vCard storage for XEP-0054 v1.2 (vcard-temp): the serialised <vCard/> element, kept as text
// so that whatever a client published comes back unchanged.
import type { Kysely } from "kysely";
import type { Schema } from "./schema.ts";
import { changed, type Clock } from "./values.ts";
import { compiledRead } from "./compiled.ts";

export interface StoredVCard {
  xml: string;
  /** Milliseconds since the epoch. */
  updatedAt: number;
}

export class VCardStore {
  readonly #db: Kysely<Schema>;
  readonly #now: Clock;
  // Read at an account's first login since the start (its avatar hash, XEP-0153).
  readonly #row;

  constructor(db: Kysely<Schema>, now: Clock) {
    this.#db = db;
    this.#now = now;
    this.#row = compiledRead(db, (host: string, username: string) =>
      db.selectFrom("vcards").select(["xml", "updated_at"]).where("host", "=", host).where("username", "=", username));
  }

  async get(host: string, username: string): Promise<StoredVCard | null> {
    const [row] = await this.#row(host, username);
    return row ? { xml: row.xml, updatedAt: row.updated_at } : null;
  }

  async set(host: string, username: string, xml: string): Promise<void> {
    const fields = { xml, updated_at: this.#now() };
    await this.#db
      .insertInto("vcards")
      .values({ host, username, ...fields })
      .onConflict((oc) => oc.columns(["host", "username"]).doUpdateSet(fields))
      .execute();
  }

  /** False if there was no vCard. */
  async delete(host: string, username: string): Promise<boolean> {
    const result = await this.#db
      .deleteFrom("vcards")
      .where("host", "=", host)
      .where("username", "=", username)
      .executeTakeFirst();
    return changed(result.numDeletedRows);
  }
}
