// XEP-0045 Multi-User Chat 1.34: persistent rooms in SQL (tables of migration 0003_muc), on
// SQLite and PostgreSQL alike. What survives a restart: the configuration (§10.2), the subject
// (§8.1), the affiliations (§5.2), the registered nicknames (§7.10) and the occupant-id salt
// (XEP-0421). The room archive (XEP-0313) is in the core `archive` table, host = service,
// username = room; deleteRoom removes it with the rest.
import type { Kysely } from "kysely";
import type { Schema } from "../../core/storage/schema.ts";
import { DEFAULT_ROOM_CONFIG, copyRoomConfig, isAffiliation, isRole, type Affiliation, type RoomConfig } from "../../../protocol/muc.ts";

export interface MucRoomsTable {
  service: string;
  room: string;
  /** JSON text: RoomConfig. */
  config: string;
  subject: string;
  /** The nick that set the subject, "" for the room. */
  subject_by: string;
  salt: string;
  created_at: number;
  updated_at: number;
}

export interface MucAffiliationsTable {
  service: string;
  room: string;
  /** Real bare JID, normalised. */
  jid: string;
  affiliation: Exclude<Affiliation, "none">;
}

export interface MucNicksTable {
  service: string;
  room: string;
  jid: string;
  nick: string;
}

// A type alias, not an interface: withTables<T>() wants an index-signature-compatible record.
export type MucTables = {
  muc_rooms: MucRoomsTable;
  muc_affiliations: MucAffiliationsTable;
  muc_nicks: MucNicksTable;
};

export interface StoredRoom {
  /** The room's localpart. */
  room: string;
  config: RoomConfig;
  subject: string;
  subjectBy: string;
  salt: string;
  affiliations: Array<[string, Affiliation]>;
  /** Registered nicknames: [bare JID, nick]. */
  nicks: Array<[string, string]>;
}

type Db = Kysely<Schema & MucTables>;

/** A stored configuration, completed with today's defaults for fields added since it was written. */
export function readConfig(text: string): RoomConfig {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = {};
  }
  const stored = typeof parsed === "object" && parsed !== null && !Array.isArray(parsed) ? (parsed as Partial<RoomConfig>) : {};
  const config = copyRoomConfig(DEFAULT_ROOM_CONFIG);
  for (const key of Object.keys(DEFAULT_ROOM_CONFIG) as Array<keyof RoomConfig>) {
    const value = stored[key];
    if (value === undefined || typeof value !== typeof DEFAULT_ROOM_CONFIG[key]) continue;
    // The role lists: arrays of roles, or the default.
    if (Array.isArray(DEFAULT_ROOM_CONFIG[key]) && !(Array.isArray(value) && value.every(isRole))) continue;
    (config as unknown as Record<string, unknown>)[key] = value;
  }
  return config;
}

export class MucStore {
  readonly #db: Db;
  readonly #now: () => number;

  constructor(db: Kysely<Schema>, now: () => number = Date.now) {
    this.#db = db.withTables<MucTables>();
    this.#now = now;
  }

  /** Every persistent room of a service, with its affiliations and nicks. */
  async loadRooms(service: string): Promise<StoredRoom[]> {
    const rooms = await this.#db.selectFrom("muc_rooms").selectAll().where("service", "=", service).execute();
    const affiliations = await this.#db.selectFrom("muc_affiliations").select(["room", "jid", "affiliation"]).where("service", "=", service).execute();
    const nicks = await this.#db.selectFrom("muc_nicks").select(["room", "jid", "nick"]).where("service", "=", service).execute();
    const byRoom = new Map<string, StoredRoom>();
    for (const row of rooms) {
      byRoom.set(row.room, {
        room: row.room,
        config: readConfig(row.config),
        subject: row.subject,
        subjectBy: row.subject_by,
        salt: row.salt,
        affiliations: [],
        nicks: [],
      });
    }
    for (const row of affiliations) if (isAffiliation(row.affiliation)) byRoom.get(row.room)?.affiliations.push([row.jid, row.affiliation]);
    for (const row of nicks) byRoom.get(row.room)?.nicks.push([row.jid, row.nick]);
    return [...byRoom.values()];
  }

  /** Stores the whole room, replacing what was stored for it, in one transaction. */
  async saveRoom(service: string, data: StoredRoom): Promise<void> {
    const now = this.#now();
    await this.#db.transaction().execute(async (trx) => {
      const fields = { config: JSON.stringify(data.config), subject: data.subject, subject_by: data.subjectBy, salt: data.salt, updated_at: now };
      await trx
        .insertInto("muc_rooms")
        .values({ service, room: data.room, created_at: now, ...fields })
        .onConflict((oc) => oc.columns(["service", "room"]).doUpdateSet(fields))
        .execute();
      await trx.deleteFrom("muc_affiliations").where("service", "=", service).where("room", "=", data.room).execute();
      await trx.deleteFrom("muc_nicks").where("service", "=", service).where("room", "=", data.room).execute();
      const affiliations = data.affiliations.filter((a): a is [string, Exclude<Affiliation, "none">] => a[1] !== "none");
      for (let i = 0; i < affiliations.length; i += 500) {
        await trx
          .insertInto("muc_affiliations")
          .values(affiliations.slice(i, i + 500).map(([jid, affiliation]) => ({ service, room: data.room, jid, affiliation })))
          .execute();
      }
      for (let i = 0; i < data.nicks.length; i += 500) {
        await trx
          .insertInto("muc_nicks")
          .values(data.nicks.slice(i, i + 500).map(([jid, nick]) => ({ service, room: data.room, jid, nick })))
          .execute();
      }
    });
  }

  /** The subject only (§8.1), for a room already stored. */
  async saveSubject(service: string, room: string, subject: string, subjectBy: string): Promise<void> {
    await this.#db
      .updateTable("muc_rooms")
      .set({ subject, subject_by: subjectBy, updated_at: this.#now() })
      .where("service", "=", service)
      .where("room", "=", room)
      .execute();
  }

  /** One affiliation change; 'none' removes the row. */
  async setAffiliation(service: string, room: string, jid: string, affiliation: Affiliation): Promise<void> {
    if (affiliation === "none") {
      await this.#db.deleteFrom("muc_affiliations").where("service", "=", service).where("room", "=", room).where("jid", "=", jid).execute();
      return;
    }
    await this.#db
      .insertInto("muc_affiliations")
      .values({ service, room, jid, affiliation })
      .onConflict((oc) => oc.columns(["service", "room", "jid"]).doUpdateSet({ affiliation }))
      .execute();
  }

  /** Registers (or with null, forgets) the nickname of a bare JID. */
  async setNick(service: string, room: string, jid: string, nick: string | null): Promise<void> {
    await this.#db.transaction().execute(async (trx) => {
      await trx.deleteFrom("muc_nicks").where("service", "=", service).where("room", "=", room).where("jid", "=", jid).execute();
      if (nick !== null) await trx.insertInto("muc_nicks").values({ service, room, jid, nick }).execute();
    });
  }

  /**
   * Forgets a room's configuration, affiliations and nicks; with `archive`, its archive too, up
   * to `archiveUntil` (ms, inclusive) when given, so that a new room of the same name, made
   * while this ran, keeps its first messages.
   */
  async deleteRoom(service: string, room: string, opts: { archive: boolean; archiveUntil?: number }): Promise<void> {
    await this.#db.transaction().execute(async (trx) => {
      await trx.deleteFrom("muc_rooms").where("service", "=", service).where("room", "=", room).execute();
      await trx.deleteFrom("muc_affiliations").where("service", "=", service).where("room", "=", room).execute();
      await trx.deleteFrom("muc_nicks").where("service", "=", service).where("room", "=", room).execute();
      if (opts.archive) {
        let del = trx.deleteFrom("archive").where("host", "=", service).where("username", "=", room);
        if (opts.archiveUntil !== undefined) del = del.where("ts", "<=", opts.archiveUntil);
        await del.execute();
      }
    });
  }
}
