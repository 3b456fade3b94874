// Schema migrations for Parley's core storage, one list for SQLite and PostgreSQL
// (tables described in schema.ts). Migrations live in code so that nothing is read from disk
// at run time and a bundled server carries its schema with it.
//
// Rules for adding one: append a new name that sorts after the last (Kysely runs them in name
// order and refuses history that was rewritten); never edit a migration that has shipped.
import { sql } from "kysely";
import type { Kysely, Migration, MigrationProvider } from "kysely";
import type { Dialect } from "./schema.ts";
import { migration as mucTables } from "./migrations/0003_muc.ts";
import { migration as pubsubTables } from "./migrations/0004_pubsub.ts";
import { migration as pushTables } from "./migrations/0005_push.ts";
import { migration as archiveById } from "./migrations/0006_archive_by_id.ts";

/** Column types that differ between the dialects; everything else is spelled the same. */
function columnTypes(dialect: Dialect) {
  return {
    binary: dialect === "postgres" ? ("bytea" as const) : ("blob" as const),
  };
}

function flagCheck(column: string) {
  return sql`${sql.ref(column)} in (0, 1)`;
}

// Kysely's migration API is untyped by design: a migration sees the schema as it was then,
// not the current Schema type.
type AnyDb = Kysely<any>;

function coreTables(dialect: Dialect): Migration {
  const { binary } = columnTypes(dialect);
  return {
    async up(db: AnyDb) {
      let users = db.schema
        .createTable("users")
        .addColumn("host", "text", (c) => c.notNull())
        .addColumn("username", "text", (c) => c.notNull());
      for (const mech of ["scram_sha1", "scram_sha256"]) {
        users = users
          .addColumn(`${mech}_salt`, binary)
          .addColumn(`${mech}_iterations`, "integer")
          .addColumn(`${mech}_stored_key`, binary)
          .addColumn(`${mech}_server_key`, binary);
      }
      await users
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("disabled", "integer", (c) => c.notNull().defaultTo(0).check(flagCheck("disabled")))
        .addPrimaryKeyConstraint("users_pk", ["host", "username"])
        .execute();

      await db.schema
        .createTable("roster_items")
        .addColumn("host", "text", (c) => c.notNull())
        .addColumn("username", "text", (c) => c.notNull())
        .addColumn("contact", "text", (c) => c.notNull())
        .addColumn("name", "text")
        .addColumn("subscription", "text", (c) =>
          c.notNull().defaultTo("none").check(sql`subscription in ('none', 'to', 'from', 'both')`),
        )
        .addColumn("ask_out", "integer", (c) => c.notNull().defaultTo(0).check(flagCheck("ask_out")))
        .addColumn("pending_in", "integer", (c) => c.notNull().defaultTo(0).check(flagCheck("pending_in")))
        .addColumn("pending_in_stanza", "text")
        .addColumn("approved", "integer", (c) => c.notNull().defaultTo(0).check(flagCheck("approved")))
        .addColumn("groups", "text", (c) => c.notNull().defaultTo("[]"))
        .addPrimaryKeyConstraint("roster_items_pk", ["host", "username", "contact"])
        .execute();

      await db.schema
        .createTable("roster_versions")
        .addColumn("host", "text", (c) => c.notNull())
        .addColumn("username", "text", (c) => c.notNull())
        .addColumn("version", "bigint", (c) => c.notNull())
        .addPrimaryKeyConstraint("roster_versions_pk", ["host", "username"])
        .execute();

      await db.schema
        .createTable("vcards")
        .addColumn("host", "text", (c) => c.notNull())
        .addColumn("username", "text", (c) => c.notNull())
        .addColumn("xml", "text", (c) => c.notNull())
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .addPrimaryKeyConstraint("vcards_pk", ["host", "username"])
        .execute();

      await db.schema
        .createTable("last_activity")
        .addColumn("host", "text", (c) => c.notNull())
        .addColumn("username", "text", (c) => c.notNull())
        .addColumn("logout_seconds", "bigint", (c) => c.notNull())
        .addColumn("status", "text", (c) => c.notNull().defaultTo(""))
        .addPrimaryKeyConstraint("last_activity_pk", ["host", "username"])
        .execute();

      await db.schema
        .createTable("kv")
        .addColumn("module", "text", (c) => c.notNull())
        .addColumn("host", "text", (c) => c.notNull())
        .addColumn("username", "text", (c) => c.notNull())
        .addColumn("key", "text", (c) => c.notNull())
        .addColumn("value", "text", (c) => c.notNull())
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .addPrimaryKeyConstraint("kv_pk", ["module", "host", "username", "key"])
        .execute();
      // Deleting an account removes its rows from every module at once.
      await db.schema.createIndex("kv_by_user").on("kv").columns(["host", "username"]).execute();
    },

    async down(db: AnyDb) {
      for (const table of ["kv", "last_activity", "vcards", "roster_versions", "roster_items", "users"]) {
        await db.schema.dropTable(table).execute();
      }
    },
  };
}

// XEP-0313 message archive and XEP-0160 offline storage.
function archiveAndOffline(dialect: Dialect): Migration {
  // Archive ids are compared as bytes on both dialects: PostgreSQL would otherwise order text by
  // the database's collation, and a page boundary could then fall differently than in SQLite.
  const idType = dialect === "postgres" ? sql`text collate "C"` : sql`text`;
  return {
    async up(db: AnyDb) {
      await db.schema
        .createTable("archive")
        .addColumn("host", "text", (c) => c.notNull())
        .addColumn("username", "text", (c) => c.notNull())
        .addColumn("id", idType, (c) => c.notNull())
        .addColumn("with_jid", "text", (c) => c.notNull())
        .addColumn("with_resource", "text", (c) => c.notNull().defaultTo(""))
        .addColumn("direction", "text", (c) => c.notNull().check(sql`direction in ('in', 'out')`))
        .addColumn("xml", "text", (c) => c.notNull())
        .addColumn("ts", "bigint", (c) => c.notNull())
        .addPrimaryKeyConstraint("archive_pk", ["host", "username", "id"])
        .execute();
      // A page is a range scan of one of these, whatever the archive's size: archive order is
      // (ts, id), with or without the 'with' filter of XEP-0313 §4.1.1.
      await db.schema.createIndex("archive_by_time").on("archive").columns(["host", "username", "ts", "id"]).execute();
      await db.schema
        .createIndex("archive_by_peer")
        .on("archive")
        .columns(["host", "username", "with_jid", "ts", "id"])
        .execute();

      // A sequence shared by every account gives each account's messages their arrival order.
      // SQLite's AUTOINCREMENT never reuses a number, even the highest after it was deleted.
      await db.schema
        .createTable("offline")
        .addColumn("seq", dialect === "postgres" ? "bigint" : "integer", (c) =>
          dialect === "postgres" ? c.primaryKey().generatedByDefaultAsIdentity() : c.primaryKey().autoIncrement(),
        )
        .addColumn("host", "text", (c) => c.notNull())
        .addColumn("username", "text", (c) => c.notNull())
        .addColumn("xml", "text", (c) => c.notNull())
        .addColumn("stored_at", "bigint", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("offline_by_user").on("offline").columns(["host", "username", "seq"]).execute();
    },

    async down(db: AnyDb) {
      await db.schema.dropTable("offline").execute();
      await db.schema.dropTable("archive").execute();
    },
  };
}

/** Every migration, by name; names sort in the order they must run. */
export function migrations(dialect: Dialect): Record<string, Migration> {
  return {
    "0001_core_tables": coreTables(dialect),
    "0002_archive_and_offline": archiveAndOffline(dialect),
    "0003_muc": mucTables(dialect),
    "0004_pubsub": pubsubTables(dialect),
    "0005_push": pushTables(dialect),
    "0006_archive_by_id": archiveById(dialect),
  };
}

export class InCodeMigrationProvider implements MigrationProvider {
  readonly #dialect: Dialect;
  constructor(dialect: Dialect) {
    this.#dialect = dialect;
  }
  async getMigrations(): Promise<Record<string, Migration>> {
    return migrations(this.#dialect);
  }
}
