// The SQL of the SQLite writer thread (sqlite-writer-worker.ts), compiled from the very Kysely
// queries the other writer runs (writer.ts on PostgreSQL and in-memory SQLite), so that the two
// cannot drift apart: one archive insert, one offline insert, count and delete, one last-activity
// upsert, each written once, in its store's module.
//
// Each query is compiled with a marker in place of every value; where the markers land in the
// compiled parameters says which value of a row (in the order of sqlite-writer-protocol.ts) each
// placeholder takes. No connection is opened: Kysely's DummyDriver with SQLite's compiler.
import { DummyDriver, Kysely, SqliteAdapter, SqliteIntrospector, SqliteQueryCompiler, type Compilable } from "kysely";
import { archiveInsert } from "./archive.ts";
import { lastActivityUpsert } from "./last-activity.ts";
import { offlineCount, offlineDelete, offlineInsert } from "./offline.ts";
import type { ArchiveTable, Schema } from "./schema.ts";

/** A statement for the writer thread: its SQL, and for each parameter the index of the row value it binds. */
export interface RowStatement {
  sql: string;
  take: number[];
}

export interface WriterStatements {
  /** Row: host, username, id, with_jid, with_resource, direction, xml, ts (ARCHIVE_ROW). */
  insertArchive: RowStatement;
  /** Row: host, username, xml, stored_at (OFFLINE_ROW). */
  insertOffline: RowStatement;
  /** Row: host, username; answers one column, the count. */
  countOffline: RowStatement;
  /** Row: host, username, seq. */
  deleteOffline: RowStatement;
  /** Row: host, username, logout_seconds, status (LAST_ACTIVITY_ROW). */
  upsertLastActivity: RowStatement;
}

const compiler = new Kysely<Schema>({
  dialect: {
    createAdapter: () => new SqliteAdapter(),
    createDriver: () => new DummyDriver(),
    createIntrospector: (db) => new SqliteIntrospector(db),
    createQueryCompiler: () => new SqliteQueryCompiler(),
  },
});

/** The marker standing for the row's value at `index` (no real value contains U+0000). */
function marker(index: number): string {
  return `\u0000writer-value-${index}`;
}

/** Markers for a row of `n` values, typed as whatever the query builder wants. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function markers(n: number): any[] {
  return Array.from({ length: n }, (_, i) => marker(i));
}

function compile(query: Compilable, n: number): RowStatement {
  const { sql, parameters } = query.compile();
  const row = markers(n);
  const take = parameters.map((p) => {
    const index = row.indexOf(p);
    if (index < 0) throw new Error(`writer statement parameter ${JSON.stringify(p)} is not a row value: ${sql}`);
    return index;
  });
  return { sql, take };
}

let statements: WriterStatements | undefined;

/** Compiled once per process. */
export function writerStatements(): WriterStatements {
  if (statements) return statements;
  const [host, username, id, withJid, withResource, direction, xml, ts] = markers(8);
  const archiveRow: ArchiveTable = { host, username, id, with_jid: withJid, with_resource: withResource, direction, xml, ts };
  const o = markers(4);
  const d = markers(3);
  const l = markers(4);
  statements = {
    insertArchive: compile(archiveInsert(compiler, [archiveRow]), 8),
    insertOffline: compile(offlineInsert(compiler, [{ host: o[0], username: o[1], xml: o[2], stored_at: o[3] }]), 4),
    countOffline: compile(offlineCount(compiler, o[0], o[1]), 2),
    deleteOffline: compile(offlineDelete(compiler, d[0], d[1], [d[2]]), 3),
    upsertLastActivity: compile(lastActivityUpsert(compiler, l[0], l[1], l[2], l[3]), 4),
  };
  return statements;
}
