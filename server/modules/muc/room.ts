// XEP-0045: Multi-User Chat 1.34: one room. Occupants (§7), roles and affiliations (§5, §8, §9),
// the owner's configuration and destruction (§10), nickname registration (§7.10, §7.12), voice
// requests (§7.13) and IQs between occupants (§7.2 "IQ requests ... to occupants"), with
// XEP-0421 (Occupant Id 0.3.0), XEP-0410 (MUC Self-Ping 1.1.0, the room answers self-pings) and
// XEP-0313 (MAM 0.7.5) on the room's archive (archive.ts).
//
// Every stanza for a room runs through run(), one at a time, and each one's stanzas are routed
// before the next starts: a client sees occupants' presence, then its own, then history, then
// the subject, in that order, whatever the load (§7.2.3).
//
// One occupant may be joined from several resources of one bare JID under one nick
// (multi-session nicks): it is one occupant to everyone else, and each of its sessions gets what
// the occupant gets. A session joining or leaving an occupant that stays is told alone.
//
// Discussion history: a logged room (muc#roomconfig_enablelogging, on by default) archives every
// groupchat message once and serves history on join from that archive; an unlogged room keeps
// its last messages in memory only.
import { createHmac, randomBytes } from "node:crypto";
import { Element, xml, clone, childElements } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import { StanzaError, errorReply, parseStanzaError } from "../../../protocol/errors.ts";
import { tryParseJid, type Jid } from "../../../protocol/jid.ts";
import { addDelay } from "../../../protocol/delay.ts";
import { buildForm, formType, parseForm, type DataForm } from "../../../protocol/forms.ts";
import { carriesContent, mamQueryForm, storageHints, stripStanzaIds } from "../../../protocol/mam.ts";
import { serialize } from "../../../protocol/xml/serialize.ts";
import {
  DEFAULT_ROOM_CONFIG,
  Status,
  copyRoomConfig,
  applyRoomConfig,
  historyStart,
  itemElement,
  mucUserElement,
  occupantIdElement,
  parseAdminQuery,
  parseDestroy,
  parseInvitations,
  parseJoin,
  parseRegistration,
  parseVoiceRequest,
  registrationForm,
  roomConfigForm,
  roomFeatures,
  roomInfoForm,
  type Affiliation,
  type Destroy,
  type HistoryEntry,
  type JoinRequest,
  type MucActor,
  type MucItem,
  type Role,
  type RoomConfig,
  type VoiceRequest,
  voiceApprovalForm,
} from "../../../protocol/muc.ts";
import type { StanzaEvent, IqEvent } from "../../core/router.ts";
import { REAL_JID_NS, type RoomArchive } from "./archive.ts";
import type { StoredRoom } from "./store.ts";

export interface Occupant {
  nick: string;
  /** The real full JID of the occupant's first session: the one shown in <item jid/>. */
  jid: Jid;
  /** Every real full JID joined under this nick (one bare JID), first first. */
  sessions: Jid[];
  role: Role;
  /** The occupant's last presence, without addressing or MUC payloads. */
  presence: Element;
  occupantId: string;
}

/** What a room needs from its service. */
export interface RoomHost {
  send(stanza: Element): Promise<void>;
  /** Stores the whole room (persistent) or forgets what was stored (temporary). */
  save(room: Room): void;
  saveSubject(room: Room): void;
  /** One affiliation changed (stored when the room is persistent). */
  saveAffiliation(room: Room, jid: string, affiliation: Affiliation): void;
  /** A nick was registered (or, null, unregistered). */
  saveNick(room: Room, jid: string, nick: string | null): void;
  /** The room has gone: destroyed, or temporary and empty. Its storage and archive go too. */
  remove(room: Room): void;
  now(): Date;
  /** How many messages of history a newcomer gets at most. */
  historyLength: number;
  archive: RoomArchive;
}

interface StoredHistory extends HistoryEntry {
  /** The message as broadcast, without 'to'. */
  stanza: Element;
}

/** An IQ forwarded from one occupant to another, waiting for its answer. */
interface ProxiedIq {
  /** The asker's real full JID, the id it used, and its nick. */
  from: Jid;
  id: string | undefined;
  fromNick: string;
  /** Where the request went, and the nick it was addressed to. */
  to: Jid;
  toNick: string;
}

/** Broadcasts yield to the event loop after this many stanzas, so a big room cannot starve the server. */
const BROADCAST_BATCH = 32;
/** IQs waiting for an answer from an occupant, per room; the oldest is forgotten beyond this. */
const MAX_PROXIED_IQS = 1000;
/** XEP-0045 §7.12: the disco#info node that tells a user its registered nick. */
const ROOMUSER_NODE = "x-roomuser-item";

const AFFILIATION_RANK: Record<Affiliation, number> = { outcast: 0, none: 1, member: 2, admin: 3, owner: 4 };

/** §18.1: errors from an occupant's real JID that mean the occupant is not there any more. */
const GHOST_CONDITIONS = new Set(["gone", "item-not-found", "recipient-unavailable", "redirect", "remote-server-not-found", "remote-server-timeout", "service-unavailable"]);

const PRESENCE_STRIP = new Set([`x ${NS.muc}`, `x ${NS.mucUser}`, `occupant-id ${NS.occupantId}`]);

function stripped(el: Element, names: Set<string>): Element {
  const out = clone(el);
  out.children = out.children.filter((c) => typeof c === "string" || !names.has(`${c.getName()} ${c.getNS()}`));
  return out;
}

function yieldToLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** A room as it was stored (store.ts), without its name. */
export type RoomData = Omit<StoredRoom, "room">;

/**
 * Fired by the MUC service with each groupchat message sent to a room, in the room's order, just
 * before the room handles it (push uses it to wake members away from the room).
 */
export const MUC_GROUPCHAT_EVENT = "muc/groupchat";
export interface MucGroupchatEvent extends StanzaEvent {
  room: Room;
}

export class Room {
  config: RoomConfig;
  subject = "";
  /** The nick that set the subject ("" for the room itself). */
  subjectBy = "";
  /** By real bare JID; 'none' is not stored. */
  readonly affiliations = new Map<string, Affiliation>();
  /** §7.10: registered nicknames, by real bare JID, and the reverse. */
  readonly nicks = new Map<string, string>();
  private readonly nickOwners = new Map<string, string>();
  readonly occupants = new Map<string, Occupant>();
  private readonly byRealJid = new Map<string, Occupant>();
  private history: StoredHistory[] = [];
  private readonly proxied = new Map<string, ProxiedIq>();
  /** §10.1.1: a new room stays locked until its owner configures it or accepts the defaults. */
  locked = false;
  readonly salt: string;
  private queue: Promise<void> = Promise.resolve();
  destroyed = false;

  constructor(readonly jid: Jid, private readonly host: RoomHost, data?: RoomData, defaults: Partial<RoomConfig> = {}) {
    this.config = copyRoomConfig({ ...DEFAULT_ROOM_CONFIG, ...defaults, ...data?.config });
    this.salt = data?.salt ?? randomBytes(16).toString("base64");
    if (data) {
      for (const [jid, affiliation] of data.affiliations) if (affiliation !== "none") this.affiliations.set(jid, affiliation);
      for (const [jid, nick] of data.nicks) this.setNick(jid, nick);
      this.subject = data.subject;
      this.subjectBy = data.subjectBy;
    }
  }

  /** What a persistent room keeps across restarts. */
  toData(): StoredRoom {
    return {
      room: this.jid.local,
      config: copyRoomConfig(this.config),
      affiliations: [...this.affiliations],
      nicks: [...this.nicks],
      subject: this.subject,
      subjectBy: this.subjectBy,
      salt: this.salt,
    };
  }

  /** Runs `fn` after everything queued before it; failures are the caller's to report. */
  run(fn: () => Promise<void>): Promise<void> {
    const next = this.queue.then(fn);
    this.queue = next.catch(() => {});
    return next;
  }

  get isEmpty(): boolean {
    return this.occupants.size === 0;
  }

  affiliationOf(jid: Jid): Affiliation {
    return this.affiliations.get(jid.bare.toString()) ?? "none";
  }

  private setNick(bare: string, nick: string | null): void {
    const old = this.nicks.get(bare);
    if (old !== undefined) this.nickOwners.delete(old);
    if (nick === null) {
      this.nicks.delete(bare);
    } else {
      this.nicks.set(bare, nick);
      this.nickOwners.set(nick, bare);
    }
  }

  /** §7.10: a nick registered by someone else cannot be used. */
  private reservedByOther(nick: string, jid: Jid): boolean {
    const owner = this.nickOwners.get(nick);
    return owner !== undefined && owner !== jid.bare.toString();
  }

  private defaultRole(affiliation: Affiliation): Role {
    if (affiliation === "owner" || affiliation === "admin") return "moderator";
    if (affiliation === "outcast") return "none";
    if (affiliation === "member") return "participant";
    return this.config.moderated ? "visitor" : "participant";
  }

  private occupantJid(nick: string): string {
    return `${this.jid.toString()}/${nick}`;
  }

  /** XEP-0421 §4: stable per real bare JID and room, and telling nothing about the JID. */
  private occupantIdOf(real: Jid): string {
    return createHmac("sha256", this.salt).update(real.bare.toString()).digest("base64url").slice(0, 24);
  }

  private mayDiscoverJids(receiver: Occupant): boolean {
    return this.config.whois === "anyone" || receiver.role === "moderator";
  }

  /** Whether an entity, in the room or not, may see occupants' real JIDs (§4.2: moderators, or anyone in a non-anonymous room). */
  private mayDiscoverJidsAs(jid: Jid): boolean {
    return this.config.whois === "anyone" || this.effectiveRole(jid) === "moderator";
  }

  /** muc#roomconfig_presencebroadcast: is the presence of an occupant (with this role) shown to the others? */
  private shown(o: Occupant, role: Role = o.role): boolean {
    return this.config.presenceBroadcast.includes(role);
  }

  /** Who gets an occupant's presence: everyone when it is broadcast, the occupant alone otherwise. */
  private audience(o: Occupant): Occupant[] {
    const everyone = [...this.occupants.values()];
    return this.shown(o) ? everyone : everyone.filter((r) => r === o);
  }

  /**
   * An occupant's role changed (it was shown to the others or not before): everyone who sees it
   * now gets its presence; those who saw it and no longer do see it leave (role none).
   */
  private async announceRole(o: Occupant, wasShown: boolean, item: Partial<MucItem>): Promise<void> {
    if (this.shown(o)) {
      await this.broadcast((r) => this.presenceOf(o, r, [], { item }));
      return;
    }
    if (wasShown) {
      const others = [...this.occupants.values()].filter((r) => r !== o);
      await this.broadcast((r) => this.presenceOf(o, r, [], { type: "unavailable", base: xml("presence"), item: { role: "none" } }), others);
    }
    await this.broadcast((r) => this.presenceOf(o, r, [], { item }), [o]);
  }

  private itemFor(o: Occupant, receiver: Occupant | null, extra: Partial<MucItem> = {}): MucItem {
    const item: MucItem = { affiliation: this.affiliationOf(o.jid), role: o.role, ...extra };
    if (receiver === null || receiver === o || this.mayDiscoverJids(receiver)) item.jid = o.jid.toString();
    return item;
  }

  private presenceOf(o: Occupant, receiver: Occupant, statuses: number[], opts: { type?: string; item?: Partial<MucItem>; destroy?: Destroy; base?: Element } = {}): Element {
    const p = clone(opts.base ?? o.presence);
    p.attrs.from = this.occupantJid(o.nick);
    p.attrs.to = receiver.jid.toString();
    if (opts.type) p.attrs.type = opts.type;
    else delete p.attrs.type;
    const codes = receiver === o ? [...statuses, Status.SELF] : statuses;
    p.append(mucUserElement({ items: [this.itemFor(o, receiver, opts.item)], statuses: codes.sort((a, b) => a - b), destroy: opts.destroy }));
    p.append(occupantIdElement(o.occupantId));
    return p;
  }

  /** Sends what `build` makes for each occupant to every session of it, in order, yielding between batches. */
  private async broadcast(build: (receiver: Occupant) => Element | null, occupants: Occupant[] = [...this.occupants.values()]): Promise<void> {
    let sent = 0;
    for (const receiver of occupants) {
      const stanza = build(receiver);
      if (!stanza) continue;
      for (const copy of this.toSessions(receiver.sessions, stanza)) {
        await this.host.send(copy);
        if (++sent % BROADCAST_BATCH === 0) await yieldToLoop();
      }
    }
  }

  /** One copy of `stanza` per session, each addressed to it. */
  private toSessions(sessions: readonly Jid[], stanza: Element): Element[] {
    return sessions.map((s, i) => {
      const copy = i === sessions.length - 1 ? stanza : clone(stanza);
      copy.attrs.to = s.toString();
      return copy;
    });
  }

  private sendTo(session: Jid, stanza: Element): Promise<void> {
    stanza.attrs.to = session.toString();
    return this.host.send(stanza);
  }

  private error(ev: StanzaEvent, err: StanzaError): Promise<void> {
    const reply = errorReply(ev.stanza, err);
    return reply ? this.host.send(reply) : Promise.resolve();
  }

  private presenceError(ev: StanzaEvent, condition: ConstructorParameters<typeof StanzaError>[0], text?: string): Promise<void> {
    return this.error(ev, new StanzaError(condition, { text, by: this.jid.toString() }));
  }

  // ---- dispatch ------------------------------------------------------------------------------

  async handle(ev: StanzaEvent): Promise<void> {
    const type = ev.stanza.attrs.type;
    if (this.destroyed) {
      if (type !== "error" && type !== "unavailable" && type !== "result") await this.error(ev, new StanzaError("item-not-found"));
      return;
    }
    if (ev.kind === "iq") {
      if (type === "result" || type === "error") return this.onIqAnswer(ev);
      return this.onIq(ev as IqEvent);
    }
    if (type === "error") return this.onError(ev);
    if (ev.kind === "presence") return this.onPresence(ev);
    return ev.to.resource === "" ? this.onRoomMessage(ev) : this.onPrivateMessage(ev);
  }

  /** §18.1: an error bounced from an occupant's real JID means a ghost session; remove it. */
  private async onError(ev: StanzaEvent): Promise<void> {
    const o = this.byRealJid.get(ev.from.toString());
    if (!o) return;
    const err = parseStanzaError(ev.stanza);
    if (err && GHOST_CONDITIONS.has(err.condition)) await this.leaveSession(o, ev.from, xml("presence"), [Status.TECHNICAL], false);
  }

  // ---- presence (§7.2, §7.6, §7.14) ----------------------------------------------------------

  private async onPresence(ev: StanzaEvent): Promise<void> {
    const type = ev.stanza.attrs.type;
    const current = this.byRealJid.get(ev.from.toString());
    if (type === "unavailable") {
      if (current) await this.leaveSession(current, ev.from, this.cleanPresence(ev.stanza), [], true);
      return;
    }
    if (type !== undefined) return; // subscriptions and probes mean nothing to a room
    const nick = ev.to.resource;
    if (nick === "") return this.presenceError(ev, "jid-malformed", "a room nickname is needed");
    const request = parseJoin(ev.stanza);
    if (!current) {
      const same = this.occupants.get(nick);
      if (same && same.jid.bare.equals(ev.from.bare)) return this.addSession(ev, same, request);
      return this.join(ev, nick, request);
    }
    if (current.nick !== nick) return this.changeNick(ev, current, nick);
    current.presence = this.cleanPresence(ev.stanza);
    if (request.muc) {
      // The client thinks it is joining (it lost track, e.g. after a reconnection with the same
      // resource): give it the whole room again rather than a bare presence update.
      return this.sendRoomState(current, ev.from, request, [], ev.stanza.attrs.id);
    }
    await this.broadcast((r) => this.presenceOf(current, r, []), this.audience(current));
  }

  private cleanPresence(stanza: Element): Element {
    const p = stripped(stanza, PRESENCE_STRIP);
    for (const attr of ["to", "from", "type", "id"]) delete p.attrs[attr];
    return p;
  }

  /** Creates the occupant of `ev` in a room that has just been made: its creator is the owner. */
  async create(ev: StanzaEvent): Promise<void> {
    const request = parseJoin(ev.stanza);
    this.affiliations.set(ev.from.bare.toString(), "owner");
    // §10.1.1: locked until configured; a client without MUC support gets an instant room.
    this.locked = request.muc;
    await this.join(ev, ev.to.resource, request, true);
  }

  /** §7.2.5-§7.2.9: who may enter, in the order the errors are checked. */
  private async join(ev: StanzaEvent, nick: string, request: JoinRequest, created = false): Promise<void> {
    if (nick === "") return this.presenceError(ev, "jid-malformed", "a room nickname is needed");
    const affiliation = this.affiliationOf(ev.from);
    const privileged = affiliation === "owner" || affiliation === "admin";
    if (this.locked && affiliation !== "owner") return this.presenceError(ev, "item-not-found", "this room is being created");
    if (affiliation === "outcast") return this.presenceError(ev, "forbidden", "you are banned from this room");
    if (this.config.membersOnly && affiliation === "none") return this.presenceError(ev, "registration-required", "this room is for members only");
    if (this.config.passwordProtected && affiliation !== "owner" && request.password !== this.config.password) {
      return this.presenceError(ev, "not-authorized", "a password is required");
    }
    if (this.occupants.has(nick)) return this.presenceError(ev, "conflict", "that nickname is in use");
    if (this.reservedByOther(nick, ev.from)) return this.presenceError(ev, "conflict", "that nickname is registered to someone else");
    if (this.config.maxUsers > 0 && this.occupants.size >= this.config.maxUsers && !privileged) {
      return this.presenceError(ev, "service-unavailable", "the room is full");
    }
    const occupant: Occupant = {
      nick,
      jid: ev.from,
      sessions: [ev.from],
      role: this.defaultRole(affiliation),
      presence: this.cleanPresence(ev.stanza),
      occupantId: this.occupantIdOf(ev.from),
    };
    this.occupants.set(nick, occupant);
    this.byRealJid.set(ev.from.toString(), occupant);
    const others = [...this.occupants.values()].filter((o) => o !== occupant);
    // §7.2.3: everyone already there, to the newcomer; then the newcomer, to everyone already there.
    await this.sendOthers(occupant, ev.from);
    if (this.shown(occupant)) await this.broadcast((r) => this.presenceOf(occupant, r, []), others);
    await this.sendRoomState(occupant, ev.from, request, created ? [Status.CREATED] : [], ev.stanza.attrs.id, true);
  }

  /** Another resource of an occupant's bare JID joins under its nick: it shares the occupant. */
  private async addSession(ev: StanzaEvent, o: Occupant, request: JoinRequest): Promise<void> {
    const affiliation = this.affiliationOf(ev.from);
    if (this.config.passwordProtected && affiliation !== "owner" && request.password !== this.config.password) {
      return this.presenceError(ev, "not-authorized", "a password is required");
    }
    o.sessions.push(ev.from);
    this.byRealJid.set(ev.from.toString(), o);
    await this.sendRoomState(o, ev.from, request, [], ev.stanza.attrs.id);
  }

  private sendOthers(o: Occupant, session: Jid): Promise<void> {
    return this.sendEachTo(
      session,
      [...this.occupants.values()].filter((other) => other !== o && this.shown(other)),
      (other) => this.presenceOf(other, o, []),
    );
  }

  private async sendEachTo<T>(session: Jid, items: readonly T[], build: (item: T) => Element): Promise<void> {
    let sent = 0;
    for (const item of items) {
      await this.sendTo(session, build(item));
      if (++sent % BROADCAST_BATCH === 0) await yieldToLoop();
    }
  }

  /** Self-presence, then history, then the subject (§7.2.3, §7.2.15, §7.2.16), to one session. */
  private async sendRoomState(o: Occupant, session: Jid, request: JoinRequest, extra: number[], id: string | undefined, othersSent = false): Promise<void> {
    if (!othersSent) await this.sendOthers(o, session);
    const statuses = [...extra];
    if (this.config.whois === "anyone") statuses.push(Status.NON_ANONYMOUS);
    if (this.config.enableLogging) statuses.push(Status.LOGGING_ENABLED);
    const self = this.presenceOf(o, o, statuses);
    if (id !== undefined) self.attrs.id = id;
    await this.sendTo(session, self);
    const now = this.host.now();
    let history: Array<{ stanza: Element; at: Date }>;
    if (this.config.enableLogging) {
      try {
        history = await this.host.archive.history(this.jid, request.history, this.host.historyLength, now);
      } catch {
        // The newcomer is in; history is a courtesy, and the archive's failure is logged by the writer.
        history = [];
      }
    } else {
      history = this.history.slice(historyStart(this.history, request.history, now));
    }
    for (const entry of history) {
      const message = clone(entry.stanza);
      addDelay(message, entry.at, this.jid.toString());
      await this.sendTo(session, message);
    }
    await this.sendTo(session, this.subjectMessage(o));
  }

  private subjectMessage(receiver: Occupant): Element {
    const from = this.subjectBy === "" ? this.jid.toString() : this.occupantJid(this.subjectBy);
    return xml("message", { type: "groupchat", from, to: receiver.jid.toString(), id: `subject-${Date.now().toString(36)}` }, xml("subject", {}, this.subject));
  }

  private async changeNick(ev: StanzaEvent, o: Occupant, nick: string): Promise<void> {
    if (this.occupants.has(nick)) return this.presenceError(ev, "conflict", "that nickname is in use");
    if (this.reservedByOther(nick, o.jid)) return this.presenceError(ev, "conflict", "that nickname is registered to someone else");
    if (o.sessions.length > 1) return this.presenceError(ev, "not-acceptable", "leave from your other sessions before changing nick");
    const everyone = this.audience(o);
    // §7.6.3: the old nick leaves with 303 and the new nick, then the new one arrives.
    await this.broadcast((r) => this.presenceOf(o, r, [Status.NICK_CHANGED], { type: "unavailable", item: { nick }, base: xml("presence") }), everyone);
    this.occupants.delete(o.nick);
    o.nick = nick;
    o.presence = this.cleanPresence(ev.stanza);
    this.occupants.set(nick, o);
    await this.broadcast((r) => this.presenceOf(o, r, []), everyone);
  }

  /**
   * One session of an occupant goes. If others remain, only the leaving session is told (with
   * 110 and role none); otherwise the occupant leaves the room.
   */
  private async leaveSession(o: Occupant, session: Jid, base: Element, statuses: number[], tellSelf: boolean): Promise<void> {
    if (o.sessions.length > 1) {
      o.sessions = o.sessions.filter((s) => !s.equals(session));
      this.byRealJid.delete(session.toString());
      if (o.jid.equals(session)) o.jid = o.sessions[0];
      if (tellSelf) await this.sendTo(session, this.presenceOf(o, o, statuses, { type: "unavailable", base, item: { role: "none" } }));
      return;
    }
    await this.removeOccupant(o, statuses, {}, tellSelf, base);
  }

  /** Takes an occupant out and tells everyone (the occupant last, with 110). */
  private async removeOccupant(o: Occupant, statuses: number[], item: Partial<MucItem>, tellSelf: boolean, base: Element = xml("presence"), destroy?: Destroy): Promise<void> {
    // Those who never saw the occupant (presence broadcast by role) are not told it left.
    const everyone = this.shown(o) ? [...this.occupants.values()].filter((r) => r !== o) : [];
    this.occupants.delete(o.nick);
    for (const s of o.sessions) this.byRealJid.delete(s.toString());
    o.role = "none";
    const opts = { type: "unavailable", item, base, destroy };
    await this.broadcast((r) => this.presenceOf(o, r, statuses, opts), everyone);
    if (tellSelf) await this.broadcast(() => this.presenceOf(o, o, statuses, opts), [o]);
    if (this.isEmpty && !this.config.persistent) {
      this.destroyed = true;
      this.host.remove(this);
    }
  }

  // ---- messages (§7.4, §7.5, §7.8, §8.1) -----------------------------------------------------

  private async onRoomMessage(ev: StanzaEvent): Promise<void> {
    const { stanza } = ev;
    const type = stanza.attrs.type ?? "normal";
    const sender = this.byRealJid.get(ev.from.toString());
    if (type !== "groupchat") {
      const x = childElements(stanza).find((c) => c.getName() === "x" && c.getNS() === NS.dataForms);
      if (x) {
        let form: DataForm;
        try {
          form = parseForm(x);
        } catch (err) {
          if (err instanceof StanzaError) return this.error(ev, err);
          throw err;
        }
        if (formType(form) === NS.mucRequest) return this.voiceRequest(ev, sender, form);
      }
      const { invites, decline } = parseInvitations(stanza);
      if (invites.length > 0) return this.invite(ev, sender, invites);
      if (decline) return this.decline(ev, decline);
      return this.error(ev, new StanzaError("bad-request", "messages to a room are groupchat"));
    }
    if (!sender) return this.error(ev, new StanzaError("not-acceptable", "only occupants may speak"));
    const subject = stanza.getChild("subject");
    if (subject && !stanza.getChild("body")) {
      const allowed = sender.role === "moderator" || (this.config.changeSubject && sender.role === "participant");
      if (!allowed) return this.error(ev, new StanzaError("forbidden", "you may not change the subject"));
      this.subject = subject.getText();
      this.subjectBy = sender.nick;
      if (this.config.persistent) this.host.saveSubject(this);
    } else if (sender.role === "visitor" || sender.role === "none") {
      return this.error(ev, new StanzaError("forbidden", "visitors may not speak in this room"));
    }
    // A client's own muc#user payload or real-JID record in a groupchat message can only be a spoof.
    const message = stripped(stanza, new Set([`occupant-id ${NS.occupantId}`, `x ${NS.mucUser}`, `real-jid ${REAL_JID_NS}`]));
    // XEP-0359 §5: a stanza-id claiming to be the room's can only be a spoof.
    stripStanzaIds(message, this.jid.toString());
    // Content (a body, an encrypted payload, a marker...) is history; a subject or chat state alone is not.
    // XEP-0334: <no-store/> and <no-permanent-store/> keep it out of the archive and history.
    const hints = storageHints(message);
    const content = !(subject && !stanza.getChild("body")) && !hints.noStore && !hints.noPermanentStore && (hints.store || carriesContent(message));
    message.attrs.from = this.occupantJid(sender.nick);
    delete message.attrs.to;
    message.append(occupantIdElement(sender.occupantId));
    if (content) this.remember(sender, message, ev.from);
    await this.broadcast((r) => {
      const copy = clone(message);
      copy.attrs.to = r.jid.toString();
      return copy;
    });
  }

  /** Keeps a message for history and MAM: archived once (with the room's stanza-id) or held in memory. */
  private remember(sender: Occupant, message: Element, realJid: Jid): void {
    if (this.config.enableLogging) {
      this.host.archive.append(this.jid, sender.nick, message, realJid.toString());
      return;
    }
    if (this.host.historyLength === 0 || !message.getChild("body")) return;
    this.history.push({ stanza: message, at: this.host.now(), chars: serialize(message).length });
    if (this.history.length > this.host.historyLength) this.history.splice(0, this.history.length - this.host.historyLength);
  }

  private async onPrivateMessage(ev: StanzaEvent): Promise<void> {
    const sender = this.byRealJid.get(ev.from.toString());
    if (!sender) return this.error(ev, new StanzaError("not-acceptable", "only occupants may send private messages"));
    if (ev.stanza.attrs.type === "groupchat") return this.error(ev, new StanzaError("bad-request", "a private message is not groupchat"));
    const target = this.occupants.get(ev.to.resource);
    if (!target) return this.error(ev, new StanzaError("item-not-found", "no such occupant"));
    const pm = this.config.allowPm;
    const allowed = pm === "anyone" || (pm === "participants" && sender.role !== "visitor") || (pm === "moderators" && sender.role === "moderator");
    if (!allowed) return this.error(ev, new StanzaError("forbidden", "private messages are not allowed here"));
    const message = stripped(ev.stanza, new Set([`occupant-id ${NS.occupantId}`, `x ${NS.mucUser}`]));
    message.attrs.from = this.occupantJid(sender.nick);
    message.append(xml("x", { xmlns: NS.mucUser }));
    message.append(occupantIdElement(sender.occupantId));
    for (const copy of this.toSessions(target.sessions, message)) await this.host.send(copy);
  }

  /**
   * §7.13: a visitor asks for voice (a submitted muc#request form); every moderator gets the
   * approval form. A moderator's submission with muc#request_allow true gives the named
   * occupant voice (§8.3). Requests from occupants who already have voice change nothing.
   */
  private async voiceRequest(ev: StanzaEvent, sender: Occupant | undefined, form: DataForm): Promise<void> {
    if (!sender) return this.error(ev, new StanzaError("not-acceptable", "only occupants may ask for voice"));
    let request: VoiceRequest;
    try {
      request = parseVoiceRequest(form);
    } catch (err) {
      if (err instanceof StanzaError) return this.error(ev, err);
      throw err;
    }
    if (request.kind === "answer") {
      if (sender.role !== "moderator") return this.error(ev, new StanzaError("forbidden", "only moderators grant voice"));
      if (!request.allow) return;
      const target = this.occupants.get(request.nick ?? "");
      if (!target) return this.error(ev, new StanzaError("item-not-found", "no such occupant"));
      if (target.role === "visitor") await this.applyRole(target, "participant", { nick: sender.nick });
      return;
    }
    if (request.role !== "participant") return this.error(ev, new StanzaError("bad-request", "only voice (muc#role participant) can be requested"));
    if (sender.role !== "visitor") return;
    const approval = buildForm(voiceApprovalForm(sender.nick, sender.jid.bare.toString()));
    const moderators = [...this.occupants.values()].filter((o) => o.role === "moderator");
    await this.broadcast(() => xml("message", { from: this.jid.toString(), id: `voice-${randomBytes(6).toString("base64url")}` }, clone(approval)), moderators);
  }

  private async invite(ev: StanzaEvent, sender: Occupant | undefined, invites: Array<{ to: string; reason?: string }>): Promise<void> {
    if (!sender) return this.error(ev, new StanzaError("not-acceptable", "only occupants may invite"));
    const affiliation = this.affiliationOf(sender.jid);
    const privileged = affiliation === "owner" || affiliation === "admin";
    // §7.8.2: in a members-only room only admins invite, unless the room lets occupants do it.
    if (this.config.membersOnly && !privileged && !this.config.allowInvites) {
      return this.error(ev, new StanzaError("forbidden", "only admins may invite to this room"));
    }
    const targets: Jid[] = [];
    for (const invite of invites) {
      const jid = tryParseJid(invite.to);
      if (!jid) return this.error(ev, new StanzaError("jid-malformed", `${invite.to} is not a JID`));
      targets.push(jid);
    }
    for (const [i, invite] of invites.entries()) {
      const jid = targets[i];
      // §7.8.2: in a members-only room the invitation makes the invitee a member.
      if (this.config.membersOnly && this.affiliationOf(jid) === "none") {
        this.affiliations.set(jid.bare.toString(), "member");
        this.host.saveAffiliation(this, jid.bare.toString(), "member");
      }
      const x = xml("x", { xmlns: NS.mucUser }, xml("invite", { from: sender.jid.bare.toString() }, invite.reason !== undefined ? xml("reason", {}, invite.reason) : null));
      if (this.config.passwordProtected) x.append(xml("password", {}, this.config.password));
      await this.host.send(xml("message", { from: this.jid.toString(), to: jid.toString(), id: ev.stanza.attrs.id }, x));
    }
  }

  private async decline(ev: StanzaEvent, decline: { to: string; reason?: string }): Promise<void> {
    const to = tryParseJid(decline.to);
    if (!to) return this.error(ev, new StanzaError("jid-malformed", `${decline.to} is not a JID`));
    const x = xml("x", { xmlns: NS.mucUser }, xml("decline", { from: ev.from.bare.toString() }, decline.reason !== undefined ? xml("reason", {}, decline.reason) : null));
    await this.host.send(xml("message", { from: this.jid.toString(), to: to.toString(), id: ev.stanza.attrs.id }, x));
  }

  // ---- IQs -----------------------------------------------------------------------------------

  private async onIq(ev: IqEvent): Promise<void> {
    try {
      if (ev.to.resource !== "" && (await this.proxyIq(ev))) return;
      const payload = await this.answerIq(ev);
      const reply = xml("iq", { type: "result", id: ev.stanza.attrs.id, from: ev.stanza.attrs.to, to: ev.stanza.attrs.from });
      if (payload instanceof Element) reply.append(payload);
      await this.host.send(reply);
    } catch (err) {
      if (!(err instanceof StanzaError)) throw err;
      await this.error(ev, err);
    }
  }

  /**
   * §7.2 (IQs to an occupant): a request from one occupant to another's occupant JID goes to the
   * other's real JID (its first session; a vCard request, its bare JID) as if from the asker's occupant JID, under an id of the
   * room's; the answer comes back the same way. Returns false for what the room answers itself
   * (the XEP-0410 self-ping). Throws not-acceptable for a non-occupant, item-not-found for an
   * unknown nick.
   */
  private async proxyIq(ev: IqEvent): Promise<boolean> {
    const asker = this.byRealJid.get(ev.from.toString());
    // XEP-0410 §3-§4: the room answers a self-ping for an occupant, and tells others they are not one.
    if (!asker) throw new StanzaError("not-acceptable", "you are not in this room");
    if (asker.nick === ev.to.resource) {
      if (ev.stanza.attrs.type === "get" && ev.payload.getNS() === NS.ping && ev.payload.getName() === "ping") return false;
      throw new StanzaError("service-unavailable");
    }
    const target = this.occupants.get(ev.to.resource);
    if (!target) throw new StanzaError("item-not-found", "no such occupant");
    const id = `muc-${randomBytes(9).toString("base64url")}`;
    if (this.proxied.size >= MAX_PROXIED_IQS) this.proxied.delete(this.proxied.keys().next().value!);
    // §7.2 (1.34): a vCard is the account's, not a resource's: that request goes to the bare JID.
    const to = ev.payload.getNS() === NS.vcard ? target.jid.bare : target.sessions[0];
    this.proxied.set(id, { from: ev.from, id: ev.stanza.attrs.id, fromNick: asker.nick, to, toNick: target.nick });
    const forwarded = clone(ev.stanza);
    forwarded.attrs.from = this.occupantJid(asker.nick);
    forwarded.attrs.to = to.toString();
    forwarded.attrs.id = id;
    await this.host.send(forwarded);
    return true;
  }

  /** The answer to a proxied IQ goes back to the asker, from the occupant JID it asked. */
  private async onIqAnswer(ev: StanzaEvent): Promise<void> {
    const id = ev.stanza.attrs.id;
    const pending = id === undefined ? undefined : this.proxied.get(id);
    if (!pending || !pending.to.equals(ev.from) || ev.to.resource !== pending.fromNick) return;
    this.proxied.delete(id!);
    const answer = clone(ev.stanza);
    answer.attrs.from = this.occupantJid(pending.toNick);
    answer.attrs.to = pending.from.toString();
    if (pending.id === undefined) delete answer.attrs.id;
    else answer.attrs.id = pending.id;
    await this.host.send(answer);
  }

  private async answerIq(ev: IqEvent): Promise<Element | true> {
    const type = ev.stanza.attrs.type;
    const ns = ev.payload.getNS();
    const name = ev.payload.getName();
    if (ev.to.resource !== "") return true; // the self-ping
    if (this.locked && this.affiliationOf(ev.from) !== "owner") throw new StanzaError("item-not-found");
    const key = `${type} ${ns} ${name}`;
    switch (key) {
      case `get ${NS.discoInfo} query`:
        return this.discoInfo(ev);
      case `get ${NS.discoItems} query`:
        if (ev.payload.attrs.node !== undefined) throw new StanzaError("item-not-found");
        return this.discoItems(ev.from);
      case `get ${NS.ping} ping`:
        return true;
      case `get ${NS.mucAdmin} query`:
        return this.adminGet(ev);
      case `set ${NS.mucAdmin} query`:
        await this.adminSet(ev);
        return true;
      case `get ${NS.mucOwner} query`:
        this.assertOwner(ev.from);
        return xml("query", { xmlns: NS.mucOwner }, buildForm(roomConfigForm(this.config)));
      case `set ${NS.mucOwner} query`:
        await this.ownerSet(ev);
        return true;
      case `get ${NS.register} query`:
        return this.registrationForm(ev);
      case `set ${NS.register} query`:
        return this.register(ev);
      case `get ${NS.mam} query`:
        this.assertMayReadArchive(ev.from);
        return mamQueryForm(true);
      case `set ${NS.mam} query`:
        this.assertMayReadArchive(ev.from);
        return this.host.archive.query(this.jid, ev.payload, ev.from.toString(), (stanza) => this.host.send(stanza), { realJids: this.mayDiscoverJidsAs(ev.from) });
      case `get ${NS.mam} metadata`:
        this.assertMayReadArchive(ev.from);
        return this.host.archive.metadata(this.jid);
    }
    throw new StanzaError("service-unavailable");
  }

  private discoInfo(ev: IqEvent): Element {
    const node = ev.payload.attrs.node;
    if (node === ROOMUSER_NODE) {
      // §7.12: the asker's registered nick, if any, as the identity's name.
      const query = xml("query", { xmlns: NS.discoInfo, node });
      const nick = this.nicks.get(ev.from.bare.toString());
      if (nick !== undefined) query.append(xml("identity", { category: "conference", type: "text", name: nick }));
      return query;
    }
    if (node !== undefined) throw new StanzaError("item-not-found");
    const query = xml("query", { xmlns: NS.discoInfo }, xml("identity", { category: "conference", type: "text", name: this.config.name || this.jid.local }));
    const features = [NS.discoInfo, NS.discoItems, ...roomFeatures(this.config), NS.occupantId, "http://jabber.org/protocol/muc#self-ping-optimization", NS.ping, NS.register];
    if (this.config.enableLogging) features.push(NS.mam, NS.mamExtended, NS.sid);
    for (const feature of features) query.append(xml("feature", { var: feature }));
    query.append(buildForm(roomInfoForm(this.config, this.occupants.size, this.subject)));
    return query;
  }

  /**
   * §6.5: a room MAY list its occupants where that is public, or return an empty list. Listed
   * here: the occupants whose presence is broadcast, as room@service/nick, in a public room, to
   * its occupants, and to anyone not banned when the room is open (neither members-only nor
   * password-protected), since anyone could enter and see them. Hidden rooms list nobody.
   */
  private discoItems(asker: Jid): Element {
    const query = xml("query", { xmlns: NS.discoItems });
    if (!this.config.public || this.affiliationOf(asker) === "outcast") return query;
    const self = this.byRealJid.get(asker.toString());
    const open = !this.config.membersOnly && !this.config.passwordProtected;
    if (!self && !open) return query;
    for (const o of this.occupants.values()) {
      if (o === self || this.shown(o)) query.append(xml("item", { jid: this.occupantJid(o.nick) }));
    }
    return query;
  }

  private assertOwner(jid: Jid): void {
    if (this.affiliationOf(jid) !== "owner") throw new StanzaError("forbidden", "only owners may do this");
  }

  /**
   * XEP-0313 on a room: only a logged room has an archive. Members-only rooms open it to members;
   * hidden or password-protected ones to members and occupants; others to anyone not banned.
   */
  private assertMayReadArchive(jid: Jid): void {
    if (!this.config.enableLogging) throw new StanzaError("feature-not-implemented", "this room is not archived");
    const affiliation = this.affiliationOf(jid);
    if (affiliation === "outcast") throw new StanzaError("forbidden", "you are banned from this room");
    if (AFFILIATION_RANK[affiliation] >= AFFILIATION_RANK.member) return;
    if (this.config.membersOnly) throw new StanzaError("forbidden", "the archive of a members-only room is for its members");
    if ((!this.config.public || this.config.passwordProtected) && !this.byRealJid.has(jid.toString())) {
      throw new StanzaError("forbidden", "the archive of this room is for its occupants");
    }
  }

  /** The role an entity has for permission checks: its occupant's, or the one its affiliation would give. */
  private effectiveRole(jid: Jid): Role {
    const occupant = this.byRealJid.get(jid.toString());
    if (occupant) return occupant.role;
    const affiliation = this.affiliationOf(jid);
    // Someone outside the room with no affiliation has no role at all.
    return affiliation === "none" ? "none" : this.defaultRole(affiliation);
  }

  private adminGet(ev: IqEvent): Element {
    const items = parseAdminQuery(ev.payload);
    if (items.length !== 1) throw new StanzaError("bad-request", "ask for one affiliation or one role");
    const [wanted] = items;
    const affiliation = this.affiliationOf(ev.from);
    const privileged = affiliation === "owner" || affiliation === "admin";
    const query = xml("query", { xmlns: NS.mucAdmin });
    if (wanted.affiliation !== undefined) {
      const list = wanted.affiliation;
      if (list === "none") throw new StanzaError("bad-request", "the 'none' affiliation is not a list");
      // §9.5: the member, admin and owner lists are for admins, and for the roles the config lets
      // read them (muc#roomconfig_getmemberlist): what OMEMO clients of a members-only,
      // non-anonymous room need to find every member's devices.
      const mayRead = privileged || (list !== "outcast" && affiliation !== "outcast" && this.config.getMemberList.includes(this.effectiveRole(ev.from)));
      if (!mayRead) throw new StanzaError("forbidden", "you may not read this list");
      for (const [jid, a] of this.affiliations) {
        if (a !== list) continue;
        const nick = this.nicks.get(jid) ?? [...this.occupants.values()].find((o) => o.jid.bare.toString() === jid)?.nick;
        query.append(itemElement({ affiliation: a, jid, nick }));
      }
      return query;
    }
    if (wanted.role !== undefined) {
      if (this.effectiveRole(ev.from) !== "moderator") throw new StanzaError("forbidden", "only moderators may read role lists");
      for (const o of this.occupants.values()) {
        if (o.role !== wanted.role) continue;
        query.append(itemElement({ affiliation: this.affiliationOf(o.jid), role: o.role, nick: o.nick, jid: o.jid.toString() }));
      }
      return query;
    }
    throw new StanzaError("bad-request", "ask for an affiliation or a role");
  }

  /** §8, §9, §10: role and affiliation changes, all checked before any is applied. */
  private async adminSet(ev: IqEvent): Promise<void> {
    const items = parseAdminQuery(ev.payload);
    if (items.length === 0) throw new StanzaError("bad-request", "no items");
    const actorAffiliation = this.affiliationOf(ev.from);
    const actorOccupant = this.byRealJid.get(ev.from.toString());
    const actor: MucActor = actorOccupant ? { nick: actorOccupant.nick } : {};
    const plans: Array<() => Promise<void>> = [];
    const pendingAffiliations = new Map(this.affiliations);
    for (const item of items) {
      if (item.role !== undefined && item.affiliation === undefined) {
        if (item.nick === undefined) throw new StanzaError("bad-request", "a role change names a nick");
        const target = this.occupants.get(item.nick);
        if (!target) throw new StanzaError("item-not-found", `nobody is called ${item.nick}`);
        this.checkRoleChange(ev.from, actorAffiliation, target, item.role);
        const role = item.role;
        plans.push(() => this.applyRole(target, role, actor, item.reason));
      } else if (item.affiliation !== undefined) {
        let target: Jid | null = null;
        if (item.jid !== undefined) target = tryParseJid(item.jid)?.bare ?? null;
        else if (item.nick !== undefined) target = this.occupants.get(item.nick)?.jid.bare ?? null;
        if (!target) throw new StanzaError(item.jid !== undefined ? "jid-malformed" : "bad-request", "an affiliation change names a JID");
        const from = pendingAffiliations.get(target.toString()) ?? "none";
        const to = item.affiliation;
        this.checkAffiliationChange(actorAffiliation, from, to);
        if (to === "none") pendingAffiliations.delete(target.toString());
        else pendingAffiliations.set(target.toString(), to);
        const jid = target;
        plans.push(() => this.applyAffiliation(jid, to, actor, item.reason));
      } else {
        throw new StanzaError("bad-request", "an item needs a role or an affiliation");
      }
    }
    // §10.9: a room keeps at least one owner.
    if (![...pendingAffiliations.values()].includes("owner")) throw new StanzaError("conflict", "a room needs an owner");
    for (const plan of plans) await plan();
  }

  private checkRoleChange(actorJid: Jid, actorAffiliation: Affiliation, target: Occupant, role: Role): void {
    const actorRole = this.effectiveRole(actorJid);
    const targetAffiliation = this.affiliationOf(target.jid);
    const privileged = actorAffiliation === "owner" || actorAffiliation === "admin";
    const targetPrivileged = targetAffiliation === "owner" || targetAffiliation === "admin";
    if (actorRole !== "moderator") throw new StanzaError("forbidden", "only moderators may change roles");
    // §8.2, §8.4, §9.7: admins and owners keep their moderator role; moderator is granted by admins.
    if (targetPrivileged && role !== "moderator") throw new StanzaError("not-allowed", "an admin or owner cannot lose their role");
    if ((role === "moderator" || target.role === "moderator") && !privileged) throw new StanzaError("forbidden", "only admins may grant or revoke moderation");
    if (AFFILIATION_RANK[targetAffiliation] > AFFILIATION_RANK[actorAffiliation]) throw new StanzaError("not-allowed", "that occupant outranks you");
  }

  private checkAffiliationChange(actor: Affiliation, from: Affiliation, to: Affiliation): void {
    if (actor !== "owner" && actor !== "admin") throw new StanzaError("forbidden", "only admins and owners may change affiliations");
    // §9, §10: admins manage members and outcasts; owners also admins and owners.
    if (actor === "admin" && (from === "owner" || from === "admin" || to === "owner" || to === "admin")) {
      throw new StanzaError("not-allowed", "only owners may change admins and owners");
    }
  }

  private async applyRole(target: Occupant, role: Role, actor: MucActor, reason?: string): Promise<void> {
    if (!this.occupants.has(target.nick)) return;
    if (role === "none") {
      // §8.2: the kicked occupant is told too, with 307.
      return this.removeOccupant(target, [Status.KICKED], { actor, reason }, true);
    }
    const wasShown = this.shown(target);
    target.role = role;
    await this.announceRole(target, wasShown, { reason });
  }

  private async applyAffiliation(jid: Jid, affiliation: Affiliation, actor: MucActor, reason?: string): Promise<void> {
    const key = jid.toString();
    if (affiliation === "none") this.affiliations.delete(key);
    else this.affiliations.set(key, affiliation);
    this.host.saveAffiliation(this, key, affiliation);
    const present = [...this.occupants.values()].filter((o) => o.jid.bare.equals(jid));
    for (const o of present) {
      if (affiliation === "outcast") {
        await this.removeOccupant(o, [Status.BANNED], { actor, reason }, true);
      } else if (affiliation === "none" && this.config.membersOnly) {
        await this.removeOccupant(o, [Status.AFFILIATION_CHANGED], { actor, reason }, true);
      } else {
        const wasShown = this.shown(o);
        o.role = this.defaultRole(affiliation);
        await this.announceRole(o, wasShown, { reason });
      }
    }
  }

  // ---- nickname registration (§7.10) ---------------------------------------------------------

  /**
   * §7.10: who may register. Outcasts are forbidden; in a members-only room, only those who are
   * already members (or above) may, since registering makes one a member (not-allowed otherwise).
   */
  private assertMayRegister(jid: Jid): Affiliation {
    const affiliation = this.affiliationOf(jid);
    if (affiliation === "outcast") throw new StanzaError("forbidden", "you are banned from this room");
    if (this.config.membersOnly && affiliation === "none") throw new StanzaError("not-allowed", "membership of this room is by invitation");
    return affiliation;
  }

  private registrationForm(ev: IqEvent): Element {
    this.assertMayRegister(ev.from);
    const nick = this.nicks.get(ev.from.bare.toString());
    // §7.10.1: someone already registered is told so, with the nick (XEP-0077 §3.1).
    if (nick !== undefined) return xml("query", { xmlns: NS.register }, xml("registered"), xml("username", {}, nick));
    const form = registrationForm();
    return xml("query", { xmlns: NS.register }, xml("instructions", {}, form.instructions?.[0] ?? ""), buildForm(form));
  }

  private async register(ev: IqEvent): Promise<true> {
    const affiliation = this.assertMayRegister(ev.from);
    const bare = ev.from.bare.toString();
    if (ev.payload.getChild("remove")) {
      // XEP-0077 §3.2 on a room: the nick is released; a member who registered becomes no one.
      if (!this.nicks.has(bare)) throw new StanzaError("item-not-found", "you have no registered nickname here");
      this.setNick(bare, null);
      this.host.saveNick(this, bare, null);
      return true;
    }
    const x = childElements(ev.payload).find((c) => c.getName() === "x" && c.getNS() === NS.dataForms);
    if (!x) throw new StanzaError("bad-request", "expected a muc#register form");
    const form = parseForm(x);
    if (form.type === "cancel") return true;
    const nick = parseRegistration(form);
    if (tryParseJid(`${this.jid.toString()}/${nick}`)?.resource !== nick) throw new StanzaError("jid-malformed", "that nickname is not a valid resource");
    // §7.10.1: a nick registered to another, or used in the room by someone else, is a conflict.
    const inUse = this.occupants.get(nick);
    if (this.reservedByOther(nick, ev.from) || (inUse && !inUse.jid.bare.equals(ev.from.bare))) {
      throw new StanzaError("conflict", "that nickname is taken");
    }
    this.setNick(bare, nick);
    this.host.saveNick(this, bare, nick);
    if (affiliation === "none") await this.applyAffiliation(ev.from.bare, "member", {});
    return true;
  }

  // ---- owner (§10) ---------------------------------------------------------------------------

  private async ownerSet(ev: IqEvent): Promise<void> {
    this.assertOwner(ev.from);
    const destroy = ev.payload.getChild("destroy");
    if (destroy) return this.destroy(parseDestroy(destroy));
    const x = childElements(ev.payload).find((c) => c.getName() === "x" && c.getNS() === NS.dataForms);
    if (!x) throw new StanzaError("bad-request", "expected a data form or <destroy/>");
    const form = parseForm(x);
    if (form.type === "cancel") {
      // §10.1.3: cancelling the configuration of a new room destroys it.
      if (this.locked) await this.destroy({});
      return;
    }
    if (form.type !== "submit") throw new StanzaError("bad-request", "expected a submitted form");
    const before = this.config;
    const after = applyRoomConfig(before, form);
    this.config = after;
    this.locked = false;
    this.host.save(this);
    const statuses: number[] = [];
    if (before.whois !== after.whois) statuses.push(after.whois === "anyone" ? Status.NOW_NON_ANONYMOUS : Status.NOW_SEMI_ANONYMOUS);
    if (before.enableLogging !== after.enableLogging) statuses.push(after.enableLogging ? Status.LOGGING_ENABLED : Status.LOGGING_DISABLED);
    if (JSON.stringify(before) !== JSON.stringify(after)) statuses.push(Status.CONFIG_CHANGED);
    if (statuses.length > 0 && JSON.stringify(before) !== JSON.stringify(after)) {
      const sorted = [...new Set(statuses)].sort((a, b) => a - b);
      await this.broadcast((r) => xml("message", { type: "groupchat", from: this.jid.toString(), to: r.jid.toString(), id: `config-${Date.now().toString(36)}` }, mucUserElement({ statuses: sorted })));
    }
    // Presence broadcast by role changed: occupants now shown arrive, those now hidden leave.
    for (const o of [...this.occupants.values()]) {
      const was = before.presenceBroadcast.includes(o.role);
      if (was === this.shown(o)) continue;
      const others = [...this.occupants.values()].filter((r) => r !== o);
      const opts = was ? { type: "unavailable", base: xml("presence"), item: { role: "none" as Role } } : {};
      await this.broadcast((r) => this.presenceOf(o, r, [], opts), others);
    }
    if (after.membersOnly && !before.membersOnly) {
      for (const o of [...this.occupants.values()]) {
        if (this.affiliationOf(o.jid) === "none") await this.removeOccupant(o, [Status.MEMBERS_ONLY], {}, true);
      }
    }
    if (!after.persistent && this.isEmpty) {
      this.destroyed = true;
      this.host.remove(this);
    }
  }

  /** §10.9: everyone leaves with the <destroy/> (and its alternate venue); the room is gone. */
  async destroy(destroy: Destroy): Promise<void> {
    this.config = { ...this.config, persistent: false };
    const everyone = [...this.occupants.values()];
    this.occupants.clear();
    this.byRealJid.clear();
    for (const o of everyone) o.role = "none";
    // §10.9: each occupant is told, from its own occupant JID, that the room has gone.
    await this.broadcast((o) => this.presenceOf(o, o, [], { type: "unavailable", item: { affiliation: "none" }, base: xml("presence"), destroy }), everyone);
    this.destroyed = true;
    this.host.remove(this);
  }

  /** The room as the service's disco#items lists it, or null when hidden. */
  listing(): { jid: string; name: string } | null {
    if (!this.config.public || this.locked || this.destroyed) return null;
    return { jid: this.jid.toString(), name: this.config.name || this.jid.local };
  }
}
