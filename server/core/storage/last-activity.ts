// Last logout time and status for XEP-0012 v2.0 (Last Activity): a query to an offline
// account's bare JID answers with the seconds since this logout and the status it left with.
import type { Kysely } from "kysely";
import type { Schema } from "./schema.ts";

export interface LastActivity {
  /** When the last resource logged out, in whole seconds since the epoch (XEP-0012 counts seconds). */
  logoutSeconds: number;
  /** The status text of the unavailable presence, "" if there was none. */
  status: string;
}

export class LastActivityStore {
  readonly #db: Kysely<Schema>;

  constructor(db: Kysely<Schema>) {
    this.#db = db;
  }

  async get(host: string, username: string): Promise<LastActivity | null> {
    const row = await this.#db
      .selectFrom("last_activity")
      .select(["logout_seconds", "status"])
      .where("host", "=", host)
      .where("username", "=", username)
      .executeTakeFirst();
    return row ? { logoutSeconds: row.logout_seconds, status: row.status } : null;
  }

  async set(host: string, username: string, activity: LastActivity): Promise<void> {
    if (!Number.isSafeInteger(activity.logoutSeconds)) throw new RangeError("logoutSeconds must be an integer");
    const fields = { logout_seconds: activity.logoutSeconds, status: activity.status };
    await this.#db
      .insertInto("last_activity")
      .values({ host, username, ...fields })
      .onConflict((oc) => oc.columns(["host", "username"]).doUpdateSet(fields))
      .execute();
  }
}
