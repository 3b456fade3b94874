// Migration 0005_push (issue 11): XEP-0357 push registrations (the user's server side), the
// push app server's device registrations, and the delivery outbox (durable jobs with retry and a
// dead-letter state). Tables are typed in server/modules/push/tables.ts.
import { sql, type Kysely, type Migration } from "kysely";
import type { Dialect } from "../schema.ts";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDb = Kysely<any>;

export function migration(_dialect: Dialect): Migration {
  return {
    async up(db: AnyDb) {
      await db.schema
        .createTable("push_registrations")
        .addColumn("host", "text", (c) => c.notNull())
        .addColumn("username", "text", (c) => c.notNull())
        .addColumn("service", "text", (c) => c.notNull())
        .addColumn("node", "text", (c) => c.notNull())
        .addColumn("resource", "text", (c) => c.notNull())
        .addColumn("options", "text")
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addPrimaryKeyConstraint("push_registrations_pk", ["host", "username", "service", "node"])
        .execute();

      await db.schema
        .createTable("push_devices")
        .addColumn("service", "text", (c) => c.notNull())
        .addColumn("node", "text", (c) => c.notNull())
        .addColumn("owner", "text", (c) => c.notNull())
        .addColumn("kind", "text", (c) => c.notNull().check(sql`kind in ('apns', 'fcm', 'web')`))
        .addColumn("token", "text", (c) => c.notNull())
        .addColumn("topic", "text")
        .addColumn("secret", "text", (c) => c.notNull())
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addPrimaryKeyConstraint("push_devices_pk", ["service", "node"])
        .execute();

      await db.schema
        .createTable("push_jobs")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("queue", "text", (c) => c.notNull())
        .addColumn("payload", "text", (c) => c.notNull())
        .addColumn("attempts", "integer", (c) => c.notNull().defaultTo(0))
        .addColumn("next_at", "bigint", (c) => c.notNull())
        .addColumn("state", "text", (c) => c.notNull().check(sql`state in ('queued', 'dead')`))
        .addColumn("last_error", "text")
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("push_jobs_due").on("push_jobs").columns(["queue", "state", "next_at"]).execute();
    },
    async down(db: AnyDb) {
      await db.schema.dropTable("push_jobs").ifExists().execute();
      await db.schema.dropTable("push_devices").ifExists().execute();
      await db.schema.dropTable("push_registrations").ifExists().execute();
    },
  };
}
