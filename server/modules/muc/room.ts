// XEP-0045: Multi-User Chat 1.34: one room. Occupants (§7), roles and affiliations (§5, §8, §9),
// the owner's configuration and destruction (§10), with XEP-0421 (Occupant Id 0.3.0) and
// XEP-0410 (MUC Self-Ping 1.1.0, the room answers self-pings).
//
// Every stanza for a room runs through run(), one at a time, and each one's stanzas are routed
// before the next starts: a client sees occupants' presence, then its own, then history, then
// the subject, in that order, whatever the load (§7.2.3).
import { createHmac, randomBytes } from "node:crypto";
import { Element, xml, clone, childElements } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import { StanzaError, errorReply, parseStanzaError } from "../../../protocol/errors.ts";
import { tryParseJid, type Jid } from "../../../protocol/jid.ts";
import { addDelay } from "../../../protocol/delay.ts";
import { buildForm, parseForm } from "../../../protocol/forms.ts";
import { serialize } from "../../../protocol/xml/serialize.ts";
import {
  DEFAULT_ROOM_CONFIG,
  Status,
  applyRoomConfig,
  historyStart,
  itemElement,
  mucUserElement,
  occupantIdElement,
  parseAdminQuery,
  parseDestroy,
  parseInvitations,
  parseJoin,
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
} from "../../../protocol/muc.ts";
import type { StanzaEvent, IqEvent } from "../../core/router.ts";
import type { JsonValue } from "../../core/storage/index.ts";

export interface Occupant {
  nick: string;
  /** The occupant's real full JID. */
  jid: Jid;
  role: Role;
  /** The occupant's last presence, without addressing or MUC payloads. */
  presence: Element;
  occupantId: string;
}

/** What a room needs from its service. */
export interface RoomHost {
  send(stanza: Element): Promise<void>;
  /** Stores (persistent) or forgets (temporary) the room's configuration and affiliations. */
  save(room: Room): void;
  /** The room has gone: destroyed, or temporary and empty. */
  remove(room: Room): void;
  now(): Date;
  historyLength: number;
}

interface StoredHistory extends HistoryEntry {
  /** The message as broadcast, without 'to'. */
  stanza: Element;
}

/** Broadcasts yield to the event loop after this many stanzas, so a big room cannot starve the server. */
const BROADCAST_BATCH = 64;

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

export interface RoomData {
  config: RoomConfig;
  affiliations: Array<[string, Affiliation]>;
  subject: string;
  subjectBy: string;
  salt: string;
}

export class Room {
  config: RoomConfig;
  subject = "";
  /** The nick that set the subject ("" for the room itself). */
  subjectBy = "";
  /** By real bare JID; 'none' is not stored. */
  readonly affiliations = new Map<string, Affiliation>();
  readonly occupants = new Map<string, Occupant>();
  private readonly byRealJid = new Map<string, Occupant>();
  private history: StoredHistory[] = [];
  /** §10.1.1: a new room stays locked until its owner configures it or accepts the defaults. */
  locked = false;
  private readonly salt: string;
  private queue: Promise<void> = Promise.resolve();
  destroyed = false;

  constructor(readonly jid: Jid, private readonly host: RoomHost, data?: RoomData) {
    this.config = { ...DEFAULT_ROOM_CONFIG, getMemberList: [...DEFAULT_ROOM_CONFIG.getMemberList], ...data?.config };
    this.salt = data?.salt ?? randomBytes(16).toString("base64");
    if (data) {
      for (const [jid, affiliation] of data.affiliations) this.affiliations.set(jid, affiliation);
      this.subject = data.subject;
      this.subjectBy = data.subjectBy;
    }
  }

  /** What a persistent room keeps across restarts, as JSON. */
  toData(): JsonValue {
    const data: RoomData = {
      config: { ...this.config, getMemberList: [...this.config.getMemberList] },
      affiliations: [...this.affiliations],
      subject: this.subject,
      subjectBy: this.subjectBy,
      salt: this.salt,
    };
    return JSON.parse(JSON.stringify(data)) as JsonValue;
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

  /** Sends one stanza per occupant, in order, yielding between batches. */
  private broadcast(build: (receiver: Occupant) => Element | null, occupants: Occupant[] = [...this.occupants.values()]): Promise<void> {
    return this.sendEach(occupants, build);
  }

  private async sendEach<T>(items: readonly T[], build: (item: T) => Element | null): Promise<void> {
    let sent = 0;
    for (const item of items) {
      const stanza = build(item);
      if (!stanza) continue;
      await this.host.send(stanza);
      if (++sent % BROADCAST_BATCH === 0) await yieldToLoop();
    }
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
    if (this.destroyed) {
      if (ev.stanza.attrs.type !== "error" && ev.stanza.attrs.type !== "unavailable") await this.error(ev, new StanzaError("item-not-found"));
      return;
    }
    if (ev.stanza.attrs.type === "error") return this.onError(ev);
    if (ev.kind === "presence") return this.onPresence(ev);
    if (ev.kind === "message") return ev.to.resource === "" ? this.onRoomMessage(ev) : this.onPrivateMessage(ev);
    if (ev.stanza.attrs.type === "result") return;
    return this.onIq(ev as IqEvent);
  }

  /** §18.1: an error bounced from an occupant's real JID means a ghost; remove it. */
  private async onError(ev: StanzaEvent): Promise<void> {
    const o = this.byRealJid.get(ev.from.toString());
    if (!o || ev.kind === "iq") return;
    const err = parseStanzaError(ev.stanza);
    if (err && GHOST_CONDITIONS.has(err.condition)) await this.removeOccupant(o, [Status.TECHNICAL], {}, false);
  }

  // ---- presence (§7.2, §7.6, §7.14) ----------------------------------------------------------

  private async onPresence(ev: StanzaEvent): Promise<void> {
    const type = ev.stanza.attrs.type;
    const current = this.byRealJid.get(ev.from.toString());
    if (type === "unavailable") {
      if (current) await this.leave(current, ev.stanza);
      return;
    }
    if (type !== undefined) return; // subscriptions and probes mean nothing to a room
    const nick = ev.to.resource;
    if (nick === "") return this.presenceError(ev, "jid-malformed", "a room nickname is needed");
    const request = parseJoin(ev.stanza);
    if (!current) return this.join(ev, nick, request);
    if (current.nick !== nick) return this.changeNick(ev, current, nick);
    current.presence = this.cleanPresence(ev.stanza);
    if (request.muc) {
      // The client thinks it is joining (it lost track, e.g. after a reconnection with the same
      // resource): give it the whole room again rather than a bare presence update.
      return this.sendRoomState(current, request, [], ev.stanza.attrs.id);
    }
    await this.broadcast((r) => this.presenceOf(current, r, []));
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
    if (this.config.maxUsers > 0 && this.occupants.size >= this.config.maxUsers && !privileged) {
      return this.presenceError(ev, "service-unavailable", "the room is full");
    }
    const occupant: Occupant = {
      nick,
      jid: ev.from,
      role: this.defaultRole(affiliation),
      presence: this.cleanPresence(ev.stanza),
      occupantId: this.occupantIdOf(ev.from),
    };
    this.occupants.set(nick, occupant);
    this.byRealJid.set(ev.from.toString(), occupant);
    const others = [...this.occupants.values()].filter((o) => o !== occupant);
    // §7.2.3: everyone already there, to the newcomer; then the newcomer, to everyone already there.
    await this.sendEach(others, (o) => this.presenceOf(o, occupant, []));
    await this.broadcast((r) => this.presenceOf(occupant, r, []), others);
    await this.sendRoomState(occupant, request, created ? [Status.CREATED] : [], ev.stanza.attrs.id, true);
  }

  /** Self-presence, then history, then the subject (§7.2.3, §7.2.15, §7.2.16). */
  private async sendRoomState(o: Occupant, request: JoinRequest, extra: number[], id: string | undefined, othersSent = false): Promise<void> {
    if (!othersSent) await this.sendEach([...this.occupants.values()].filter((other) => other !== o), (other) => this.presenceOf(other, o, []));
    const statuses = [...extra];
    if (this.config.whois === "anyone") statuses.push(Status.NON_ANONYMOUS);
    if (this.config.enableLogging) statuses.push(Status.LOGGING_ENABLED);
    const self = this.presenceOf(o, o, statuses);
    if (id !== undefined) self.attrs.id = id;
    await this.host.send(self);
    const now = this.host.now();
    for (const entry of this.history.slice(historyStart(this.history, request.history, now))) {
      const message = clone(entry.stanza);
      message.attrs.to = o.jid.toString();
      addDelay(message, entry.at, this.jid.toString());
      await this.host.send(message);
    }
    await this.host.send(this.subjectMessage(o));
  }

  private subjectMessage(receiver: Occupant): Element {
    const from = this.subjectBy === "" ? this.jid.toString() : this.occupantJid(this.subjectBy);
    return xml("message", { type: "groupchat", from, to: receiver.jid.toString(), id: `subject-${Date.now().toString(36)}` }, xml("subject", {}, this.subject));
  }

  private async changeNick(ev: StanzaEvent, o: Occupant, nick: string): Promise<void> {
    if (this.occupants.has(nick)) return this.presenceError(ev, "conflict", "that nickname is in use");
    const everyone = [...this.occupants.values()];
    // §7.6.3: the old nick leaves with 303 and the new nick, then the new one arrives.
    await this.broadcast((r) => this.presenceOf(o, r, [Status.NICK_CHANGED], { type: "unavailable", item: { nick }, base: xml("presence") }), everyone);
    this.occupants.delete(o.nick);
    o.nick = nick;
    o.presence = this.cleanPresence(ev.stanza);
    this.occupants.set(nick, o);
    await this.broadcast((r) => this.presenceOf(o, r, []), everyone);
  }

  private async leave(o: Occupant, stanza: Element): Promise<void> {
    const base = this.cleanPresence(stanza);
    await this.removeOccupant(o, [], {}, true, base);
  }

  /** Takes an occupant out and tells everyone (the occupant last, with 110). */
  private async removeOccupant(o: Occupant, statuses: number[], item: Partial<MucItem>, tellSelf: boolean, base: Element = xml("presence"), destroy?: Destroy): Promise<void> {
    const everyone = [...this.occupants.values()].filter((r) => r !== o);
    this.occupants.delete(o.nick);
    this.byRealJid.delete(o.jid.toString());
    o.role = "none";
    const opts = { type: "unavailable", item, base, destroy };
    await this.broadcast((r) => this.presenceOf(o, r, statuses, opts), everyone);
    if (tellSelf) await this.host.send(this.presenceOf(o, o, statuses, opts));
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
      if (this.config.persistent) this.host.save(this);
    } else if (sender.role === "visitor" || sender.role === "none") {
      return this.error(ev, new StanzaError("forbidden", "visitors may not speak in this room"));
    }
    const message = stripped(stanza, new Set([`occupant-id ${NS.occupantId}`]));
    message.attrs.from = this.occupantJid(sender.nick);
    delete message.attrs.to;
    message.append(occupantIdElement(sender.occupantId));
    if (stanza.getChild("body") && !subject) this.remember(message);
    await this.broadcast((r) => {
      const copy = clone(message);
      copy.attrs.to = r.jid.toString();
      return copy;
    });
  }

  private remember(message: Element): void {
    if (this.host.historyLength === 0) return;
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
    message.attrs.to = target.jid.toString();
    message.append(xml("x", { xmlns: NS.mucUser }));
    message.append(occupantIdElement(sender.occupantId));
    await this.host.send(message);
  }

  private async invite(ev: StanzaEvent, sender: Occupant | undefined, invites: Array<{ to: string; reason?: string }>): Promise<void> {
    if (!sender) return this.error(ev, new StanzaError("not-acceptable", "only occupants may invite"));
    const affiliation = this.affiliationOf(sender.jid);
    const privileged = affiliation === "owner" || affiliation === "admin";
    if (this.config.membersOnly && !privileged && !this.config.allowInvites) {
      return this.error(ev, new StanzaError("forbidden", "only admins may invite to this room"));
    }
    const targets: Jid[] = [];
    for (const invite of invites) {
      const jid = tryParseJid(invite.to);
      if (!jid) return this.error(ev, new StanzaError("jid-malformed", `${invite.to} is not a JID`));
      targets.push(jid);
    }
    let changed = false;
    for (const [i, invite] of invites.entries()) {
      const jid = targets[i];
      // §7.8.2: in a members-only room the invitation makes the invitee a member.
      if (this.config.membersOnly && this.affiliationOf(jid) === "none") {
        this.affiliations.set(jid.bare.toString(), "member");
        changed = true;
      }
      const x = xml("x", { xmlns: NS.mucUser }, xml("invite", { from: sender.jid.bare.toString() }, invite.reason !== undefined ? xml("reason", {}, invite.reason) : null));
      if (this.config.passwordProtected) x.append(xml("password", {}, this.config.password));
      await this.host.send(xml("message", { from: this.jid.toString(), to: jid.toString(), id: ev.stanza.attrs.id }, x));
    }
    if (changed && this.config.persistent) this.host.save(this);
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
      const payload = await this.answerIq(ev);
      const reply = xml("iq", { type: "result", id: ev.stanza.attrs.id, from: ev.stanza.attrs.to, to: ev.stanza.attrs.from });
      if (payload instanceof Element) reply.append(payload);
      await this.host.send(reply);
    } catch (err) {
      if (!(err instanceof StanzaError)) throw err;
      await this.error(ev, err);
    }
  }

  private async answerIq(ev: IqEvent): Promise<Element | true> {
    const type = ev.stanza.attrs.type;
    const ns = ev.payload.getNS();
    const name = ev.payload.getName();
    if (ev.to.resource !== "") {
      // XEP-0410 §3-§4: the room answers a self-ping for an occupant, and tells others they are not one.
      const occupant = this.byRealJid.get(ev.from.toString());
      if (!occupant) throw new StanzaError("not-acceptable", "you are not in this room");
      if (type === "get" && ns === NS.ping && name === "ping" && occupant.nick === ev.to.resource) return true;
      throw new StanzaError("service-unavailable");
    }
    if (this.locked && this.affiliationOf(ev.from) !== "owner") throw new StanzaError("item-not-found");
    const key = `${type} ${ns} ${name}`;
    switch (key) {
      case `get ${NS.discoInfo} query`:
        return this.discoInfo(ev);
      case `get ${NS.discoItems} query`:
        if (ev.payload.attrs.node !== undefined) throw new StanzaError("item-not-found");
        // §6.5 lets a room list its occupants; it does not, so as not to give away who is there.
        return xml("query", { xmlns: NS.discoItems });
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
    }
    throw new StanzaError("service-unavailable");
  }

  private discoInfo(ev: IqEvent): Element {
    if (ev.payload.attrs.node !== undefined) throw new StanzaError("item-not-found");
    const query = xml("query", { xmlns: NS.discoInfo }, xml("identity", { category: "conference", type: "text", name: this.config.name || this.jid.local }));
    for (const feature of [NS.discoInfo, NS.discoItems, ...roomFeatures(this.config), NS.occupantId, "http://jabber.org/protocol/muc#self-ping-optimization", NS.ping]) {
      query.append(xml("feature", { var: feature }));
    }
    query.append(buildForm(roomInfoForm(this.config, this.occupants.size, this.subject)));
    return query;
  }

  private assertOwner(jid: Jid): void {
    if (this.affiliationOf(jid) !== "owner") throw new StanzaError("forbidden", "only owners may do this");
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
      // §9.5: the member, admin and owner lists are for admins, and for the roles the config lets read them.
      const mayRead = privileged || (list !== "outcast" && affiliation !== "outcast" && this.config.getMemberList.includes(this.effectiveRole(ev.from)));
      if (!mayRead) throw new StanzaError("forbidden", "you may not read this list");
      for (const [jid, a] of this.affiliations) {
        if (a !== list) continue;
        const nick = [...this.occupants.values()].find((o) => o.jid.bare.toString() === jid)?.nick;
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
    target.role = role;
    await this.broadcast((r) => this.presenceOf(target, r, [], { item: { reason } }));
  }

  private async applyAffiliation(jid: Jid, affiliation: Affiliation, actor: MucActor, reason?: string): Promise<void> {
    const key = jid.toString();
    if (affiliation === "none") this.affiliations.delete(key);
    else this.affiliations.set(key, affiliation);
    this.host.save(this);
    const present = [...this.occupants.values()].filter((o) => o.jid.bare.equals(jid));
    for (const o of present) {
      if (affiliation === "outcast") {
        await this.removeOccupant(o, [Status.BANNED], { actor, reason }, true);
      } else if (affiliation === "none" && this.config.membersOnly) {
        await this.removeOccupant(o, [Status.AFFILIATION_CHANGED], { actor, reason }, true);
      } else {
        o.role = this.defaultRole(affiliation);
        await this.broadcast((r) => this.presenceOf(o, r, [], { item: { reason } }));
      }
    }
  }

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
    await this.sendEach(everyone, (o) => this.presenceOf(o, o, [], { type: "unavailable", item: { affiliation: "none" }, base: xml("presence"), destroy }));
    this.destroyed = true;
    this.host.save(this);
    this.host.remove(this);
  }

  /** The room as the service's disco#items lists it, or null when hidden. */
  listing(): { jid: string; name: string } | null {
    if (!this.config.public || this.locked || this.destroyed) return null;
    return { jid: this.jid.toString(), name: this.config.name || this.jid.local };
  }
}
