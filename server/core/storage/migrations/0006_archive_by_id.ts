// Migration 0006_archive_by_id (issue 5, performance): the archive is ordered by id alone.
// Every archived id is an ArchiveIdGenerator id whose first 10 characters are the millisecond
// stored in ts (archive.ts checks it on every write, and every id Parley ever generated already
// satisfies it), so (ts, id) order is id order: the primary key (host, username, id) serves the
// pages without a 'with' filter and time ranges, and archive_by_time was one b-tree too many to
// update for every archived row. archive_by_peer becomes (host, username, with_jid, id) for
// pages with a 'with' filter. No row is rewritten.
import type { Kysely, Migration } from "kysely";
import type { Dialect } from "../schema.ts";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDb = Kysely<any>;

export function migration(_dialect: Dialect): Migration {
  return {
    async up(db: AnyDb) {
      await db.schema.dropIndex("archive_by_time").execute();
      await db.schema.dropIndex("archive_by_peer").execute();
      await db.schema.createIndex("archive_by_peer").on("archive").columns(["host", "username", "with_jid", "id"]).execute();
    },
    async down(db: AnyDb) {
      await db.schema.dropIndex("archive_by_peer").execute();
      await db.schema.createIndex("archive_by_peer").on("archive").columns(["host", "username", "with_jid", "ts", "id"]).execute();
      await db.schema.createIndex("archive_by_time").on("archive").columns(["host", "username", "ts", "id"]).execute();
    },
  };
}
