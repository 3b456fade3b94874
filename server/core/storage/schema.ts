// Kysely table types for Parley's core storage (one schema for SQLite and PostgreSQL).
// Implements the storage needs of RFC 6120 (accounts), RFC 6121 §2 (roster),
// XEP-0237 v1.3 (roster versioning), XEP-0054 v1.2 (vcard-temp), XEP-0012 v2.0 (last activity),
// XEP-0313 v0.7 (message archive) and XEP-0160 v1.0.1 (offline messages).
//
// Portable representations, identical on both dialects:
// - binary data (SCRAM salts and keys) is a Buffer: `bytea` on PostgreSQL, `blob` on SQLite;
//   both drivers take and return Buffers, so bytes round-trip exactly.
// - booleans are integers 0/1 (SQLite has no boolean type; better-sqlite3 refuses to bind JS booleans).
// - timestamps are integer milliseconds since the epoch (`bigint` on PostgreSQL, parsed to
//   number by the pool's type parser), except last_activity.logout_seconds, which XEP-0012 counts in seconds.
// - JSON is stored as text.
// Every key starts with (host, username): both are already-normalised strings (nodeprep/PRECIS
// is the caller's job), and Parley serves several virtual hosts from one database.

import type { Generated } from "kysely";

export type Dialect = "sqlite" | "postgres";

/** 0 or 1; see the header for why not boolean. */
export type Flag = 0 | 1;

export interface UsersTable {
  host: string;
  username: string;
  scram_sha1_salt: Buffer | null;
  scram_sha1_iterations: number | null;
  scram_sha1_stored_key: Buffer | null;
  scram_sha1_server_key: Buffer | null;
  scram_sha256_salt: Buffer | null;
  scram_sha256_iterations: number | null;
  scram_sha256_stored_key: Buffer | null;
  scram_sha256_server_key: Buffer | null;
  created_at: number;
  disabled: Flag;
}

export interface RosterItemsTable {
  host: string;
  username: string;
  /** The contact's bare JID, normalised. */
  contact: string;
  name: string | null;
  subscription: "none" | "to" | "from" | "both";
  /** RFC 6121 §3.1.2: we sent a subscription request that is still pending ("Pending Out"). */
  ask_out: Flag;
  /** RFC 6121 §3.1.3: the contact asked to subscribe and the user has not answered ("Pending In"). */
  pending_in: Flag;
  /** The contact's subscribe stanza, kept so it can be re-delivered at the user's next login. */
  pending_in_stanza: string | null;
  /** RFC 6121 §3.4: subscription pre-approval. */
  approved: Flag;
  /** JSON text: an array of group names. */
  groups: string;
}

export interface RosterVersionsTable {
  host: string;
  username: string;
  version: number;
}

export interface VCardsTable {
  host: string;
  username: string;
  xml: string;
  updated_at: number;
}

export interface LastActivityTable {
  host: string;
  username: string;
  logout_seconds: number;
  status: string;
}

export interface KeyValueTable {
  module: string;
  /** "" for data that belongs to no host. */
  host: string;
  /** "" for data that belongs to the host rather than to one user. */
  username: string;
  key: string;
  /** JSON text. */
  value: string;
  updated_at: number;
}

/** XEP-0313: one row per message in one account's archive. */
export interface ArchiveTable {
  host: string;
  username: string;
  /** The server-assigned archive UID (XEP-0359 stanza-id), unique within the account's archive. */
  id: string;
  /** The peer's bare JID: the 'to' of an outgoing message, the 'from' of an incoming one. */
  with_jid: string;
  /** The peer's resource, "" when the peer address had none. */
  with_resource: string;
  direction: "in" | "out";
  /** The stanza as XML text. */
  xml: string;
  /** When the server archived it, milliseconds since the epoch. Archive order is (ts, id). */
  ts: number;
}

/** XEP-0160: messages waiting for their recipient's next available session. */
export interface OfflineTable {
  /** Increasing in insertion order across the table, so one account's messages keep their order. */
  seq: Generated<number>;
  host: string;
  username: string;
  xml: string;
  stored_at: number;
}

export interface Schema {
  users: UsersTable;
  roster_items: RosterItemsTable;
  roster_versions: RosterVersionsTable;
  vcards: VCardsTable;
  last_activity: LastActivityTable;
  kv: KeyValueTable;
  archive: ArchiveTable;
  offline: OfflineTable;
}
