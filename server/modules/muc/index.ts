// XEP-0045: Multi-User Chat 1.34, served as a component at conference.<host> (§6 service
// discovery, rooms in room.ts), with XEP-0421 Occupant Id 0.3.0, XEP-0410 MUC Self-Ping 1.1.0
// (the room answers self-pings) and mediated invitations; XEP-0249 direct invitations need
// nothing here (they are messages between users).
//
// Settings ([modules.muc]): domain_prefix = "conference" (the service is <prefix>.<host> for
// every host), or domain = "chat.example.org" (one host only), history_length = 20 (messages a
// room keeps for newcomers; 0 keeps none).
//
// Persistence: until rooms have their own tables, a persistent room's configuration,
// affiliations and subject are one JSON value in the module key-value store (host = the service
// domain, username = the room's localpart, key "room"), and the service keeps the list of its
// persistent rooms under username "" (key "rooms"). Occupants and history live in memory: after
// a restart rooms are empty, so a client's self-ping tells it to join again (no ghosts).
import { StanzaError, errorReply } from "../../../protocol/errors.ts";
import { NS } from "../../../protocol/ns.ts";
import { makeJid, type Jid } from "../../../protocol/jid.ts";
import { xml, type Element } from "../../../protocol/xml/element.ts";
import { SettingsReader } from "../../core/config.ts";
import { defineModule, type ModuleApi } from "../../core/module.ts";
import type { IqEvent, StanzaEvent } from "../../core/router.ts";
import { ITEMS_EVENT, type DiscoItemsEvent } from "../disco/index.ts";
import { Room, type RoomData, type RoomHost } from "./room.ts";

const SELF_PING_OPTIMIZATION = "http://jabber.org/protocol/muc#self-ping-optimization";
const ROOM_KEY = "room";
const INDEX_KEY = "rooms";

/** One MUC service (one component domain). */
class MucService {
  readonly rooms = new Map<string, Room>();
  private readonly domainJid: Jid;
  /** Writes go one after another, so the room index never loses an update. */
  private writes: Promise<void> = Promise.resolve();
  readonly roomHost: RoomHost;

  constructor(private readonly m: ModuleApi, readonly domain: string, historyLength: number) {
    this.domainJid = makeJid("", domain);
    this.roomHost = {
      send: (stanza) => m.send(stanza),
      save: (room) => this.save(room),
      remove: (room) => {
        if (this.rooms.get(room.jid.local) === room) this.rooms.delete(room.jid.local);
      },
      now: () => new Date(),
      historyLength,
    };
  }

  async load(): Promise<void> {
    const store = this.m.store();
    const index = await store.get(this.domainJid, INDEX_KEY);
    for (const local of Array.isArray(index) ? index : []) {
      if (typeof local !== "string") continue;
      const data = await store.get(makeJid(local, this.domain), ROOM_KEY);
      if (!data || typeof data !== "object") continue;
      this.rooms.set(local, new Room(makeJid(local, this.domain), this.roomHost, data as unknown as RoomData));
    }
  }

  private save(room: Room): void {
    const keep = room.config.persistent && !room.destroyed;
    const data = room.toData();
    this.writes = this.writes
      .then(async () => {
        const store = this.m.store();
        const index = await store.get(this.domainJid, INDEX_KEY);
        const names = new Set(Array.isArray(index) ? index.filter((n): n is string => typeof n === "string") : []);
        if (keep) {
          await store.set(room.jid, ROOM_KEY, data);
          if (!names.has(room.jid.local)) await store.set(this.domainJid, INDEX_KEY, [...names, room.jid.local]);
        } else if (names.has(room.jid.local)) {
          await store.delete(room.jid, ROOM_KEY);
          names.delete(room.jid.local);
          await store.set(this.domainJid, INDEX_KEY, [...names]);
        }
      })
      .catch((err: unknown) => this.m.log.error({ err, room: room.jid.toString() }, "could not store a room"));
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
        room = new Room(ev.to.bare, this.roomHost);
        this.rooms.set(ev.to.local, room);
        const created = room;
        await created.run(() => created.create(ev));
        return;
      }
      if (type === "error" || type === "result" || type === "unavailable") return;
      return this.reply(ev, new StanzaError("item-not-found", { text: "no such room", by: ev.to.bare.toString() }));
    }
    const target = room;
    await target.run(() => target.handle(ev));
  }

  private reply(ev: StanzaEvent, err: StanzaError): Promise<void> {
    const reply = errorReply(ev.stanza, err);
    return reply ? this.m.send(reply) : Promise.resolve();
  }

  /** §6.1-§6.3: the service itself: what it is, and its public rooms. */
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
      for (const feature of [NS.discoInfo, NS.discoItems, NS.muc, NS.occupantId, SELF_PING_OPTIMIZATION, NS.ping]) payload.append(xml("feature", { var: feature }));
    } else if (key === `get ${NS.discoItems} query` && iq.payload.attrs.node === undefined) {
      payload = xml("query", { xmlns: NS.discoItems });
      for (const room of this.rooms.values()) {
        const listing = room.listing();
        if (listing) payload.append(xml("item", listing));
      }
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
    { xep: 45, version: "1.34.5", status: "partial", note: "rooms, roles, affiliations, configuration, invitations; no nickname registration, no IQ proxying to occupants, one session per nick" },
    { xep: 410, version: "1.1.0", status: "complete", note: "the room answers self-pings" },
    { xep: 421, version: "0.3.0", status: "complete", note: "in MUC presence and messages" },
    { xep: 249, version: "1.2", status: "complete", note: "direct invitations are plain messages between users" },
  ],
  async setup(m) {
    const settings = new SettingsReader(m.config, `modules.${m.name}`);
    const prefix = settings.string("domain_prefix", "conference");
    const explicit = settings.string("domain", "");
    const historyLength = settings.integer("history_length", 0, 1000, 20);
    if (explicit !== "" && m.hosts.length !== 1) settings.problem("domain", "a single domain serves one host; use domain_prefix with several hosts");
    settings.finish();

    const byHost = new Map<string, MucService>();
    for (const host of m.hosts) {
      const service = new MucService(m, explicit !== "" ? explicit : `${prefix}.${host}`, historyLength);
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
