// XEP-0045: Multi-User Chat 1.34, served as a component at conference.<host> (§6 service
// discovery, rooms in room.ts), with XEP-0421 Occupant Id 0.3.0, XEP-0410 MUC Self-Ping 1.1.0
// (the room answers self-pings), XEP-0313 MAM 0.7.5 on room JIDs (archive.ts) and mediated
// invitations; XEP-0249 direct invitations need nothing here (they are messages between users).
// The service hands out unique room names (§10.1.4, muc#unique); rooms list their occupants in
// disco#items where that is public (§6.5), broadcast presence by role
// (muc#roomconfig_presencebroadcast), and give real JIDs on archived messages to those who may
// see them (archive.ts).
//
// Settings ([modules.muc]): domain_prefix = "conference" (the service is <prefix>.<host> for
// every host), or domain = "chat.example.org" (one host only), history_length = 20 (messages a
// newcomer gets at most; 0 gives none), archive_by_default = true (new rooms are logged: their
// messages go to the room's XEP-0313 archive, served as history and to MAM queries), and for
// MAM queries default_page = 50, max_page = 250, count_limit = 10000 (as [modules.mam]).
//
// Persistence (store.ts, migration 0003_muc): a persistent room's configuration, subject,
// affiliations and registered nicks are rows; the room archive is in the core archive table.
// Occupants live in memory: after a restart rooms are empty, so a client's self-ping tells it to
// join again (no ghosts). Rooms that an earlier version kept in the module key-value store are
// moved into the tables at start, once.
import { randomBytes } from "node:crypto";
import { StanzaError, errorReply } from "../../../protocol/errors.ts";
import { NS } from "../../../protocol/ns.ts";
import { makeJid, type Jid } from "../../../protocol/jid.ts";
import { xml, type Element } from "../../../protocol/xml/element.ts";
import type { Affiliation, RoomConfig } from "../../../protocol/muc.ts";
import { SettingsReader } from "../../core/config.ts";
import { defineModule, type ModuleApi } from "../../core/module.ts";
import type { IqEvent, StanzaEvent } from "../../core/router.ts";
import { ITEMS_EVENT, type DiscoItemsEvent } from "../disco/index.ts";
import { RoomArchive } from "./archive.ts";
import { MUC_GROUPCHAT_EVENT, Room, type MucGroupchatEvent, type RoomHost } from "./room.ts";
import { MucStore, readConfig, type StoredRoom } from "./store.ts";

const SELF_PING_OPTIMIZATION = "http://jabber.org/protocol/muc#self-ping-optimization";
/** Where rooms were kept before they had tables (module kv store). */
const LEGACY_ROOM_KEY = "room";
const LEGACY_INDEX_KEY = "rooms";

interface ServiceOptions {
  historyLength: number;
  defaults: Partial<RoomConfig>;
  archive: RoomArchive;
  store: MucStore;
}

/** One MUC service (one component domain). */
class MucService {
  readonly rooms = new Map<string, Room>();
  private readonly domainJid: Jid;
  /** Writes go one after another, in the order the rooms made them. */
  private writes: Promise<void> = Promise.resolve();
  readonly roomHost: RoomHost;

  constructor(private readonly m: ModuleApi, readonly domain: string, private readonly opts: ServiceOptions) {
    this.domainJid = makeJid("", domain);
    const persistent = (room: Room) => room.config.persistent && !room.destroyed;
    this.roomHost = {
      send: (stanza) => m.send(stanza),
      save: (room) => {
        if (persistent(room)) {
          const data = room.toData();
          this.write(room, () => opts.store.saveRoom(domain, data));
        } else {
          this.write(room, () => opts.store.deleteRoom(domain, room.jid.local, { archive: false }));
        }
      },
      saveSubject: (room) => {
        if (persistent(room)) this.write(room, () => opts.store.saveSubject(domain, room.jid.local, room.subject, room.subjectBy));
      },
      saveAffiliation: (room, jid, affiliation: Affiliation) => {
        if (persistent(room)) this.write(room, () => opts.store.setAffiliation(domain, room.jid.local, jid, affiliation));
      },
      saveNick: (room, jid, nick) => {
        if (persistent(room)) this.write(room, () => opts.store.setNick(domain, room.jid.local, jid, nick));
      },
      remove: (room) => {
        if (this.rooms.get(room.jid.local) === room) this.rooms.delete(room.jid.local);
        // Archive rows may still wait in the group-commit writer: let them land, then remove them.
        const until = Date.now();
        this.write(room, async () => {
          await m.storage.writer.sync().catch(() => {});
          await opts.store.deleteRoom(domain, room.jid.local, { archive: true, archiveUntil: until });
        });
      },
      now: () => new Date(),
      historyLength: opts.historyLength,
      archive: opts.archive,
    };
  }

  private write(room: Room, op: () => Promise<void>): void {
    this.writes = this.writes
      .then(op)
      .catch((err: unknown) => this.m.log.error({ err, room: room.jid.toString() }, "could not store a room"));
  }

  async load(): Promise<void> {
    await this.migrateLegacy();
    for (const data of await this.opts.store.loadRooms(this.domain)) {
      this.rooms.set(data.room, new Room(makeJid(data.room, this.domain), this.roomHost, data));
    }
  }

  /** Rooms kept in the key-value store by earlier versions move into the tables, then leave the store. */
  private async migrateLegacy(): Promise<void> {
    const store = this.m.store();
    const index = await store.get(this.domainJid, LEGACY_INDEX_KEY);
    if (!Array.isArray(index)) return;
    for (const local of index) {
      if (typeof local !== "string") continue;
      const roomJid = makeJid(local, this.domain);
      const value = await store.get(roomJid, LEGACY_ROOM_KEY);
      if (value && typeof value === "object" && !Array.isArray(value)) {
        const v = value as Record<string, unknown>;
        const data: StoredRoom = {
          room: local,
          config: readConfig(JSON.stringify(v.config ?? {})),
          affiliations: Array.isArray(v.affiliations) ? (v.affiliations as Array<[string, Affiliation]>) : [],
          nicks: [],
          subject: typeof v.subject === "string" ? v.subject : "",
          subjectBy: typeof v.subjectBy === "string" ? v.subjectBy : "",
          salt: typeof v.salt === "string" ? v.salt : "",
        };
        if (data.salt !== "") await this.opts.store.saveRoom(this.domain, data);
      }
      await store.delete(roomJid, LEGACY_ROOM_KEY);
    }
    await store.delete(this.domainJid, LEGACY_INDEX_KEY);
    this.m.log.info({ service: this.domain, rooms: index.length }, "moved rooms from the key-value store into the MUC tables");
  }

  /** Waits for every pending write (at shutdown, and in tests). */
  flush(): Promise<void> {
    return this.writes;
  }

  async handle(ev: StanzaEvent): Promise<void> {
    if (ev.to.local === "") return this.handleService(ev);
    let room = this.rooms.get(ev.to.local);
    if (!room) {
      const type = ev.stanza.attrs.type;
      if (ev.kind === "presence" && type === undefined && ev.to.resource !== "") {
        room = new Room(ev.to.bare, this.roomHost, undefined, this.opts.defaults);
        this.rooms.set(ev.to.local, room);
        const created = room;
        await created.run(() => created.create(ev));
        return;
      }
      if (type === "error" || type === "result" || type === "unavailable") return;
      return this.reply(ev, new StanzaError("item-not-found", { text: "no such room", by: ev.to.bare.toString() }));
    }
    const target = room;
    const groupchat = ev.kind === "message" && ev.stanza.attrs.type === "groupchat";
    await target.run(async () => {
      // Other modules (push) see a groupchat message in the room's order, just before the room
      // handles it; their failure is theirs, not the room's.
      if (groupchat) await this.m.fire<MucGroupchatEvent>(MUC_GROUPCHAT_EVENT, { ...ev, room: target }).catch((err: unknown) => this.m.log.error({ err }, "muc/groupchat failed"));
      await target.handle(ev);
    });
  }

  private reply(ev: StanzaEvent, err: StanzaError): Promise<void> {
    const reply = errorReply(ev.stanza, err);
    return reply ? this.m.send(reply) : Promise.resolve();
  }

  /**
   * §10.1.4: a room name no room of this service has, nor had from this name: 128 random bits
   * (a repeat is as likely as guessing a key), checked against the rooms there are.
   */
  private uniqueName(): string {
    for (let i = 0; i < 8; i++) {
      const name = randomBytes(16).toString("hex");
      if (!this.rooms.has(name)) return name;
    }
    throw new StanzaError("internal-server-error", "no unique name could be made");
  }

  /** §6.1-§6.3: the service itself: what it is, and its public rooms; §10.1.4 unique names. */
  private async handleService(ev: StanzaEvent): Promise<void> {
    const type = ev.stanza.attrs.type;
    if (ev.kind !== "iq") {
      if (ev.kind === "message" && type !== "error" && type !== "groupchat" && type !== "headline") await this.reply(ev, new StanzaError("service-unavailable"));
      return;
    }
    if (type === "result" || type === "error") return;
    const iq = ev as IqEvent;
    const key = `${type} ${iq.payload.getNS()} ${iq.payload.getName()}`;
    let payload: Element | null = null;
    if (key === `get ${NS.discoInfo} query` && iq.payload.attrs.node === undefined) {
      payload = xml("query", { xmlns: NS.discoInfo }, xml("identity", { category: "conference", type: "text", name: "Chatrooms" }));
      for (const feature of [NS.discoInfo, NS.discoItems, NS.muc, NS.mucUnique, NS.occupantId, SELF_PING_OPTIMIZATION, NS.ping]) payload.append(xml("feature", { var: feature }));
    } else if (key === `get ${NS.discoItems} query` && iq.payload.attrs.node === undefined) {
      payload = xml("query", { xmlns: NS.discoItems });
      for (const room of this.rooms.values()) {
        const listing = room.listing();
        if (listing) payload.append(xml("item", listing));
      }
    } else if (key === `get ${NS.mucUnique} unique`) {
      payload = xml("unique", { xmlns: NS.mucUnique }, this.uniqueName());
    } else if (key === `get ${NS.ping} ping`) {
      payload = null;
    } else {
      const cond = iq.payload.attrs.node !== undefined && key.includes("disco") ? "item-not-found" : "service-unavailable";
      return this.reply(ev, new StanzaError(cond));
    }
    const reply = xml("iq", { type: "result", id: ev.stanza.attrs.id, from: ev.stanza.attrs.to, to: ev.stanza.attrs.from });
    if (payload) reply.append(payload);
    await this.m.send(reply);
  }
}

export default defineModule({
  name: "muc",
  xeps: [
    {
      xep: 45,
      version: "1.34.5",
      status: "complete",
      note: "service side; rooms in SQL (config, affiliations, registered nicks), roles, affiliations, configuration, history from the room archive, invitations, nickname registration, IQs between occupants, multi-session nicks, voice requests, unique room names (§10.1.4), occupants in disco#items of public rooms, presence broadcast by role (muc#roomconfig_presencebroadcast)",
    },
    { xep: 313, version: "0.7.5", status: "complete", note: "on logged rooms: groupchat archived once with the room's stanza-id, RSM paging, #extended, metadata; members-only archives for members; senders' real JIDs for moderators (everyone in non-anonymous rooms)" },
    { xep: 410, version: "1.1.0", status: "complete", note: "the room answers self-pings for every session of an occupant; after a restart, not-acceptable until the client rejoins" },
    { xep: 421, version: "0.3.0", status: "complete", note: "in MUC presence and messages" },
    { xep: 249, version: "1.2", status: "complete", note: "direct invitations are plain messages between users" },
  ],
  async setup(m) {
    const settings = new SettingsReader(m.config, `modules.${m.name}`);
    const prefix = settings.string("domain_prefix", "conference");
    const explicit = settings.string("domain", "");
    const historyLength = settings.integer("history_length", 0, 1000, 20);
    const archiveByDefault = settings.boolean("archive_by_default", true);
    const maxPage = settings.integer("max_page", 1, 10_000, 250);
    const defaultPage = settings.integer("default_page", 1, 10_000, 50);
    const countLimit = settings.integer("count_limit", 0, 1_000_000_000, 10_000);
    if (defaultPage > maxPage) settings.problem("default_page", `larger than max_page (${maxPage})`);
    if (explicit !== "" && m.hosts.length !== 1) settings.problem("domain", "a single domain serves one host; use domain_prefix with several hosts");
    settings.finish();

    const archive = new RoomArchive(m.storage, m.log, { defaultPage, maxPage, countLimit });
    const store = new MucStore(m.storage.db);
    const byHost = new Map<string, MucService>();
    for (const host of m.hosts) {
      const service = new MucService(m, explicit !== "" ? explicit : `${prefix}.${host}`, { historyLength, defaults: { enableLogging: archiveByDefault }, archive, store });
      await service.load();
      m.addComponent(service.domain, (ev) => service.handle(ev));
      byHost.set(host, service);
    }

    // XEP-0045 §6.1: clients find the service among the server's items.
    m.hook<DiscoItemsEvent>(ITEMS_EVENT, ({ target, to, items }) => {
      const service = target === "host" ? byHost.get(to.domain) : undefined;
      if (service) items.push({ jid: service.domain, name: "Chatrooms" });
    });

    m.onStop(async () => {
      for (const service of byHost.values()) await service.flush();
    });
  },
});
