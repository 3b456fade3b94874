// Last logout time and status for XEP-0012 v2.0 (Last Activity): a query to an offline
// account's bare JID answers with the seconds since this logout and the status it left with.
//
// A logout is written through the group-commit writer (writer.ts), like archive rows: on SQLite
// a synchronous upsert on the event loop would wait for its own fsync, at every logout.
import type { Kysely } from "kysely";
import type { Schema } from "./schema.ts";
import type { GroupCommitWriter } from "./writer.ts";

export interface LastActivity {
  /** When the last resource logged out, in whole seconds since the epoch (XEP-0012 counts seconds). */
  logoutSeconds: number;
  /** The status text of the unavailable presence, "" if there was none. */
  status: string;
}

export class LastActivityStore {
  readonly #db: Kysely<Schema>;
  readonly #writer: GroupCommitWriter;

  constructor(db: Kysely<Schema>, writer: GroupCommitWriter) {
    this.#db = db;
    this.#writer = writer;
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

  /** Resolves once the logout is committed (with whatever else the writer's batch holds). */
  async set(host: string, username: string, activity: LastActivity): Promise<void> {
    if (!Number.isSafeInteger(activity.logoutSeconds)) throw new RangeError("logoutSeconds must be an integer");
    await this.#writer.write({ kind: "last-activity", host, username, activity: { logoutSeconds: activity.logoutSeconds, status: activity.status } });
  }
}

/** The upsert a batch runs for one logout (writer.ts). */
export async function upsertLastActivity(db: Kysely<Schema>, host: string, username: string, activity: LastActivity): Promise<void> {
  await lastActivityUpsert(db, host, username, activity.logoutSeconds, activity.status).execute();
}

/** That upsert, run here and compiled for the SQLite writer thread (writer-statements.ts). */
export function lastActivityUpsert(db: Kysely<Schema>, host: string, username: string, logoutSeconds: number, status: string) {
  const fields = { logout_seconds: logoutSeconds, status };
  return db
    .insertInto("last_activity")
    .values({ host, username, ...fields })
    .onConflict((oc) => oc.columns(["host", "username"]).doUpdateSet(fields));
}
