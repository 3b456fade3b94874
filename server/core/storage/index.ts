// Parley's storage layer (DESIGN.md "Storage"): the one door the rest of the server uses.
export { openDatabase, parseDatabaseUrl } from "./database.ts";
export type { DatabaseLocation, OpenOptions, Storage } from "./database.ts";
export type { Dialect, Schema } from "./schema.ts";
export { migrations } from "./migrations.ts";
export { UserStore } from "./users.ts";
export type { ScramCredential, StoredScramCredential, UserCredentials, UserRecord } from "./users.ts";
export { RosterStore, rosterItem } from "./roster.ts";
export type { Roster, RosterItem, Subscription } from "./roster.ts";
export { VCardStore } from "./vcards.ts";
export type { StoredVCard } from "./vcards.ts";
export { LastActivityStore } from "./last-activity.ts";
export type { LastActivity } from "./last-activity.ts";
export { KeyValueStore } from "./kv.ts";
export type { JsonValue, KeyValueEntry } from "./kv.ts";
