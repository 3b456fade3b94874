// Migration 0003_muc (issue 7): XEP-0045 Multi-User Chat 1.34 rooms in their own tables.
// A room is named (service, room): the component domain and the room's localpart. Tables typed
// in server/modules/muc/store.ts.
// - muc_rooms: one row per persistent room: its muc#roomconfig (JSON text), subject, and the
//   salt of its XEP-0421 occupant ids (so ids stay stable across restarts).
// - muc_affiliations: owner, admin, member and outcast by real bare JID (§5.2); 'none' is no row.
// - muc_nicks: nicknames registered with the room (§7.10), one per bare JID, unique in the room.
// The room archive (XEP-0313 on the room JID) needs no table of its own: it lives in `archive`
// with host = the service, username = the room, so it shares the archive's paging and indexes.
import { sql } from "kysely";
import type { Kysely, Migration } from "kysely";
import type { Dialect } from "../schema.ts";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDb = Kysely<any>;

const ROOM = ["service", "room"] as const;

export function migration(_dialect: Dialect): Migration {
  return {
    async up(db: AnyDb) {
      await db.schema
        .createTable("muc_rooms")
        .addColumn("service", "text", (c) => c.notNull())
        .addColumn("room", "text", (c) => c.notNull())
        .addColumn("config", "text", (c) => c.notNull())
        .addColumn("subject", "text", (c) => c.notNull().defaultTo(""))
        .addColumn("subject_by", "text", (c) => c.notNull().defaultTo(""))
        .addColumn("salt", "text", (c) => c.notNull())
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .addPrimaryKeyConstraint("muc_rooms_pk", [...ROOM])
        .execute();

      await db.schema
        .createTable("muc_affiliations")
        .addColumn("service", "text", (c) => c.notNull())
        .addColumn("room", "text", (c) => c.notNull())
        .addColumn("jid", "text", (c) => c.notNull())
        .addColumn("affiliation", "text", (c) => c.notNull().check(sql`affiliation in ('owner', 'admin', 'member', 'outcast')`))
        .addPrimaryKeyConstraint("muc_affiliations_pk", [...ROOM, "jid"])
        .execute();

      await db.schema
        .createTable("muc_nicks")
        .addColumn("service", "text", (c) => c.notNull())
        .addColumn("room", "text", (c) => c.notNull())
        .addColumn("jid", "text", (c) => c.notNull())
        .addColumn("nick", "text", (c) => c.notNull())
        .addPrimaryKeyConstraint("muc_nicks_pk", [...ROOM, "jid"])
        .addUniqueConstraint("muc_nicks_unique_nick", [...ROOM, "nick"])
        .execute();
    },

    async down(db: AnyDb) {
      for (const table of ["muc_nicks", "muc_affiliations", "muc_rooms"]) await db.schema.dropTable(table).execute();
    },
  };
}
