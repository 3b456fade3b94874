// XEP-0045: Multi-User Chat, version 1.34.x: the pure parts. Status codes (§15.6), muc#user
// and muc#admin <item/>s (§5, §9, §10), the join request's history limits (§7.2.13-§7.2.14),
// the muc#roomconfig form (§10.2, §15.5.3) and the muc#roominfo form and features (§6.4,
// §15.5.4). With XEP-0421 (Occupant Id 0.3.0) for the element only.
// No sockets, no storage, no clocks: `now` is always passed in.
import { Element, xml, childElements } from "./xml/element.ts";
import { NS } from "./ns.ts";
import { StanzaError } from "./errors.ts";
import { parseDateTime } from "./datetime.ts";
import { FORM_TYPE_FIELD, getField, getValue, getValues, type DataForm, type FormField, type FormOption } from "./forms.ts";

export type Affiliation = "owner" | "admin" | "member" | "none" | "outcast";
export type Role = "moderator" | "participant" | "visitor" | "none";

export const AFFILIATIONS: readonly Affiliation[] = ["owner", "admin", "member", "none", "outcast"];
export const ROLES: readonly Role[] = ["moderator", "participant", "visitor", "none"];

/** §15.6.2: the status codes Parley sends, by meaning. */
export const Status = {
  /** Real JIDs are visible to every occupant. */
  NON_ANONYMOUS: 100,
  /** Configuration changed (not privacy related). */
  CONFIG_CHANGED: 104,
  /** This presence is about you. */
  SELF: 110,
  /** The room is now non-anonymous / semi-anonymous. */
  NOW_NON_ANONYMOUS: 172,
  NOW_SEMI_ANONYMOUS: 173,
  /** The room is logged. */
  LOGGING_ENABLED: 170,
  LOGGING_DISABLED: 171,
  /** A new room was created. */
  CREATED: 201,
  /** Banned. */
  BANNED: 301,
  /** New nickname (in the unavailable presence of the old one). */
  NICK_CHANGED: 303,
  /** Kicked. */
  KICKED: 307,
  /** Removed because of an affiliation change. */
  AFFILIATION_CHANGED: 321,
  /** Removed because the room became members-only. */
  MEMBERS_ONLY: 322,
  /** Removed because the service is shutting down. */
  SHUTDOWN: 332,
  /** Removed because of a technical problem (XEP-0045 1.32+, ghost removal). */
  TECHNICAL: 333,
} as const;

/** The actor of a kick, ban or affiliation change. */
export interface MucActor {
  nick?: string;
  jid?: string;
}

/** An <item/> of muc#user (presence) or muc#admin (queries). */
export interface MucItem {
  affiliation?: Affiliation;
  role?: Role;
  jid?: string;
  nick?: string;
  reason?: string;
  actor?: MucActor;
}

export function isAffiliation(s: unknown): s is Affiliation {
  return typeof s === "string" && (AFFILIATIONS as readonly string[]).includes(s);
}

export function isRole(s: unknown): s is Role {
  return typeof s === "string" && (ROLES as readonly string[]).includes(s);
}

export function itemElement(item: MucItem): Element {
  const el = xml("item", { affiliation: item.affiliation, role: item.role, jid: item.jid, nick: item.nick });
  if (item.actor) el.append(xml("actor", { nick: item.actor.nick, jid: item.actor.jid }));
  if (item.reason !== undefined) el.append(xml("reason", {}, item.reason));
  return el;
}

/** Reads an <item/>; unknown affiliation or role values are the sender's mistake (bad-request). */
export function parseItem(el: Element): MucItem {
  const item: MucItem = {};
  const { affiliation, role, jid, nick } = el.attrs;
  if (affiliation !== undefined) {
    if (!isAffiliation(affiliation)) throw new StanzaError("bad-request", `unknown affiliation ${affiliation}`);
    item.affiliation = affiliation;
  }
  if (role !== undefined) {
    if (!isRole(role)) throw new StanzaError("bad-request", `unknown role ${role}`);
    item.role = role;
  }
  if (jid !== undefined) item.jid = jid;
  if (nick !== undefined) item.nick = nick;
  const reason = el.getChild("reason");
  if (reason) item.reason = reason.getText();
  const actor = el.getChild("actor");
  if (actor) item.actor = { nick: actor.attrs.nick, jid: actor.attrs.jid };
  return item;
}

/** The <item/>s of a muc#admin <query/>. */
export function parseAdminQuery(query: Element): MucItem[] {
  return childElements(query)
    .filter((c) => c.getName() === "item")
    .map(parseItem);
}

export interface Destroy {
  /** The alternate venue. */
  jid?: string;
  reason?: string;
  password?: string;
}

export function parseDestroy(el: Element): Destroy {
  const destroy: Destroy = {};
  if (el.attrs.jid !== undefined) destroy.jid = el.attrs.jid;
  const reason = el.getChild("reason");
  if (reason) destroy.reason = reason.getText();
  const password = el.getChild("password");
  if (password) destroy.password = password.getText();
  return destroy;
}

export interface MucUserPayload {
  items?: MucItem[];
  statuses?: number[];
  destroy?: Destroy;
}

/** <x xmlns='http://jabber.org/protocol/muc#user'> with items, then status codes (§15.6). */
export function mucUserElement(payload: MucUserPayload): Element {
  const x = xml("x", { xmlns: NS.mucUser });
  if (payload.destroy) {
    const d = payload.destroy;
    x.append(xml("destroy", { jid: d.jid }, d.reason !== undefined ? xml("reason", {}, d.reason) : null, d.password !== undefined ? xml("password", {}, d.password) : null));
  }
  for (const item of payload.items ?? []) x.append(itemElement(item));
  for (const code of payload.statuses ?? []) x.append(xml("status", { code: String(code) }));
  return x;
}

/** The status codes of a received muc#user <x/>, for clients and tests. */
export function statusCodes(stanza: Element): number[] {
  const x = stanza.getChild("x", NS.mucUser);
  if (!x) return [];
  return x.getChildren("status").map((s) => Number(s.attrs.code)).filter((n) => Number.isInteger(n));
}

/** XEP-0421 §4: <occupant-id xmlns='urn:xmpp:occupant-id:0' id='...'/>. */
export function occupantIdElement(id: string): Element {
  return xml("occupant-id", { xmlns: NS.occupantId, id });
}

// ---- joining -------------------------------------------------------------------------------

/** §7.2.14: how much discussion history the joining user wants; absent limits mean "the default". */
export interface HistoryRequest {
  maxstanzas?: number;
  maxchars?: number;
  seconds?: number;
  since?: Date;
}

export interface JoinRequest {
  /** True when the presence carried <x xmlns='http://jabber.org/protocol/muc'/>. */
  muc: boolean;
  password?: string;
  history: HistoryRequest;
}

function nonNegative(value: string | undefined): number | undefined {
  if (value === undefined || !/^\s*\d+\s*$/.test(value)) return undefined;
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : undefined;
}

/**
 * Reads a join presence. Malformed history attributes are ignored rather than refused: §7.2.14
 * leaves limits optional, and a join should not fail over a hint.
 */
export function parseJoin(presence: Element): JoinRequest {
  const x = presence.getChild("x", NS.muc);
  if (!x) return { muc: false, history: {} };
  const request: JoinRequest = { muc: true, history: {} };
  const password = x.getChild("password");
  if (password) request.password = password.getText();
  const h = x.getChild("history");
  if (h) {
    const maxstanzas = nonNegative(h.attrs.maxstanzas);
    const maxchars = nonNegative(h.attrs.maxchars);
    const seconds = nonNegative(h.attrs.seconds);
    const since = h.attrs.since === undefined ? null : parseDateTime(h.attrs.since);
    if (maxstanzas !== undefined) request.history.maxstanzas = maxstanzas;
    if (maxchars !== undefined) request.history.maxchars = maxchars;
    if (seconds !== undefined) request.history.seconds = seconds;
    if (since) request.history.since = since;
  }
  return request;
}

export interface HistoryEntry {
  /** When the room received the message. */
  at: Date;
  /** The size of the stanza as the room sends it (§7.2.14: "characters in the complete XML"). */
  chars: number;
}

/**
 * §7.2.14: the index of the first entry to send, given the limits (all of them apply at once).
 * Entries are oldest first; the newest ones are kept.
 */
export function historyStart(entries: readonly HistoryEntry[], request: HistoryRequest, now: Date): number {
  let start = entries.length;
  let chars = 0;
  const oldest = Math.max(
    request.seconds !== undefined ? now.getTime() - request.seconds * 1000 : -Infinity,
    request.since !== undefined ? request.since.getTime() : -Infinity,
  );
  const maxStanzas = request.maxstanzas ?? Infinity;
  while (start > 0) {
    const entry = entries[start - 1];
    if (entries.length - start >= maxStanzas) break;
    if (entry.at.getTime() < oldest) break;
    if (request.maxchars !== undefined && chars + entry.chars > request.maxchars) break;
    chars += entry.chars;
    start--;
  }
  return start;
}

// ---- room configuration (§10.2, §15.5.3) ----------------------------------------------------

export type Whois = "moderators" | "anyone";
export type AllowPm = "anyone" | "participants" | "moderators" | "none";

export interface RoomConfig {
  name: string;
  description: string;
  persistent: boolean;
  public: boolean;
  membersOnly: boolean;
  moderated: boolean;
  passwordProtected: boolean;
  password: string;
  whois: Whois;
  /** 0: no limit. */
  maxUsers: number;
  /** Participants (not only moderators) may change the subject. */
  changeSubject: boolean;
  allowPm: AllowPm;
  enableLogging: boolean;
  /** Roles whose holders may read the member, admin and owner lists (§9.5, roomconfig_getmemberlist). */
  getMemberList: Role[];
  /** Occupants other than admins may invite in members-only rooms. */
  allowInvites: boolean;
  /**
   * Roles whose occupants' presence is broadcast (muc#roomconfig_presencebroadcast): the
   * presence of an occupant whose role is not listed reaches only that occupant.
   */
  presenceBroadcast: Role[];
}

export const DEFAULT_ROOM_CONFIG: Readonly<RoomConfig> = Object.freeze<RoomConfig>({
  name: "",
  description: "",
  persistent: false,
  public: true,
  membersOnly: false,
  moderated: false,
  passwordProtected: false,
  password: "",
  whois: "moderators",
  maxUsers: 0,
  changeSubject: false,
  allowPm: "anyone",
  enableLogging: false,
  getMemberList: ["moderator", "participant"],
  allowInvites: false,
  presenceBroadcast: ["moderator", "participant", "visitor"],
});

/** A copy of a configuration that shares no array with it. */
export function copyRoomConfig(config: Readonly<RoomConfig>): RoomConfig {
  return { ...config, getMemberList: [...config.getMemberList], presenceBroadcast: [...config.presenceBroadcast] };
}

/** The choices of muc#roomconfig_maxusers; 0 is shown as "none" (no limit). */
export const MAX_USERS_OPTIONS = [5, 10, 20, 30, 50, 100, 200, 500, 1000];

const F = "muc#roomconfig_";

function bool(v: boolean): string {
  return v ? "1" : "0";
}

/** The form an owner fills in (§10.2). */
export function roomConfigForm(config: RoomConfig, limit = 0): DataForm {
  const maxOptions: FormOption[] = MAX_USERS_OPTIONS.filter((n) => limit === 0 || n <= limit).map((n) => ({ value: String(n) }));
  if (limit === 0) maxOptions.unshift({ label: "No limit", value: "none" });
  const fields: FormField[] = [
    { var: FORM_TYPE_FIELD, type: "hidden", values: [NS.mucRoomConfig] },
    { var: `${F}roomname`, type: "text-single", label: "Room name", values: [config.name] },
    { var: `${F}roomdesc`, type: "text-single", label: "Description", values: [config.description] },
    { var: `${F}persistentroom`, type: "boolean", label: "Persistent (kept when empty)", values: [bool(config.persistent)] },
    { var: `${F}publicroom`, type: "boolean", label: "Listed in the directory", values: [bool(config.public)] },
    { var: `${F}membersonly`, type: "boolean", label: "Members only", values: [bool(config.membersOnly)] },
    { var: `${F}moderatedroom`, type: "boolean", label: "Moderated (visitors cannot speak)", values: [bool(config.moderated)] },
    { var: `${F}passwordprotectedroom`, type: "boolean", label: "Password protected", values: [bool(config.passwordProtected)] },
    { var: `${F}roomsecret`, type: "text-private", label: "Password", values: [config.password] },
    {
      var: `${F}whois`,
      type: "list-single",
      label: "Who may see real JIDs",
      options: [{ label: "Moderators only", value: "moderators" }, { label: "Anyone", value: "anyone" }],
      values: [config.whois],
    },
    {
      var: `${F}maxusers`,
      type: "list-single",
      label: "Maximum number of occupants",
      options: maxOptions,
      values: [config.maxUsers === 0 ? "none" : String(config.maxUsers)],
    },
    { var: `${F}changesubject`, type: "boolean", label: "Participants may change the subject", values: [bool(config.changeSubject)] },
    {
      var: `${F}allowpm`,
      type: "list-single",
      label: "Who may send private messages",
      options: (["anyone", "participants", "moderators", "none"] as const).map((value) => ({ value })),
      values: [config.allowPm],
    },
    { var: `${F}allowinvites`, type: "boolean", label: "Occupants may invite others", values: [bool(config.allowInvites)] },
    {
      var: `${F}getmemberlist`,
      type: "list-multi",
      label: "Roles that may read the member list",
      options: (["moderator", "participant", "visitor"] as const).map((value) => ({ value })),
      values: [...config.getMemberList],
    },
    {
      var: `${F}presencebroadcast`,
      type: "list-multi",
      label: "Roles whose presence is broadcast",
      options: (["moderator", "participant", "visitor"] as const).map((value) => ({ value })),
      values: [...config.presenceBroadcast],
    },
    { var: `${F}enablelogging`, type: "boolean", label: "Log discussions", values: [bool(config.enableLogging)] },
  ];
  return { type: "form", title: "Room configuration", fields };
}

function notAcceptable(field: string, why: string): StanzaError {
  return new StanzaError("not-acceptable", `${F}${field}: ${why}`);
}

function boolField(form: DataForm, name: string, current: boolean): boolean {
  const v = getValue(form, `${F}${name}`);
  if (v === undefined) return current;
  const t = v.trim();
  if (t === "1" || t === "true") return true;
  if (t === "0" || t === "false") return false;
  throw notAcceptable(name, "must be a boolean");
}

/**
 * Applies a submitted muc#roomconfig form to `config`: fields left out keep their value, as
 * §10.2 lets a client submit only what it changes. An empty submission (the instant room of
 * §10.1.2) changes nothing. `limit` is the service's own ceiling on maxusers (0: none).
 * Throws not-acceptable naming the field whose value is wrong.
 */
export function applyRoomConfig(config: RoomConfig, form: DataForm, limit = 0): RoomConfig {
  const type = getValue(form, FORM_TYPE_FIELD);
  if (type !== undefined && type !== NS.mucRoomConfig) throw new StanzaError("not-acceptable", `FORM_TYPE must be ${NS.mucRoomConfig}`);
  const next = copyRoomConfig(config);
  const text = (name: string): string | undefined => {
    const field = getField(form, `${F}${name}`);
    return field ? (field.values[0] ?? "") : undefined;
  };
  next.name = text("roomname") ?? next.name;
  next.description = text("roomdesc") ?? next.description;
  next.persistent = boolField(form, "persistentroom", next.persistent);
  next.public = boolField(form, "publicroom", next.public);
  next.membersOnly = boolField(form, "membersonly", next.membersOnly);
  next.moderated = boolField(form, "moderatedroom", next.moderated);
  next.passwordProtected = boolField(form, "passwordprotectedroom", next.passwordProtected);
  next.password = text("roomsecret") ?? next.password;
  next.changeSubject = boolField(form, "changesubject", next.changeSubject);
  next.allowInvites = boolField(form, "allowinvites", next.allowInvites);
  next.enableLogging = boolField(form, "enablelogging", next.enableLogging);
  const whois = text("whois");
  if (whois !== undefined) {
    if (whois !== "moderators" && whois !== "anyone") throw notAcceptable("whois", "must be moderators or anyone");
    next.whois = whois;
  }
  const allowPm = text("allowpm");
  if (allowPm !== undefined) {
    if (!["anyone", "participants", "moderators", "none"].includes(allowPm)) throw notAcceptable("allowpm", "must be anyone, participants, moderators or none");
    next.allowPm = allowPm as AllowPm;
  }
  const maxUsers = text("maxusers");
  if (maxUsers !== undefined) {
    const t = maxUsers.trim();
    if (t === "none" || t === "" || t === "0") next.maxUsers = 0;
    else if (/^\d+$/.test(t) && Number(t) > 0 && Number(t) <= 1_000_000) next.maxUsers = Number(t);
    else throw notAcceptable("maxusers", "must be a positive number or none");
    if (limit > 0 && (next.maxUsers === 0 || next.maxUsers > limit)) throw notAcceptable("maxusers", `this service allows at most ${limit}`);
  }
  if (getField(form, `${F}getmemberlist`)) {
    const roles = getValues(form, `${F}getmemberlist`);
    // Clients write the roles; some write "member" meaning members' usual role.
    const mapped = roles.map((r) => (r === "member" ? "participant" : r));
    for (const r of mapped) if (r !== "moderator" && r !== "participant" && r !== "visitor") throw notAcceptable("getmemberlist", `unknown role ${r}`);
    next.getMemberList = [...new Set(mapped)] as Role[];
  }
  if (getField(form, `${F}presencebroadcast`)) {
    const roles = getValues(form, `${F}presencebroadcast`).map((r) => r.trim());
    for (const r of roles) if (r !== "moderator" && r !== "participant" && r !== "visitor") throw notAcceptable("presencebroadcast", `unknown role ${r}`);
    next.presenceBroadcast = [...new Set(roles)] as Role[];
  }
  if (next.passwordProtected && next.password === "") throw notAcceptable("roomsecret", "a password-protected room needs a password");
  if (!next.passwordProtected) next.password = "";
  return next;
}

/** §15.5.4 / XEP-0045 §6.4: the room's disco#info features. */
export function roomFeatures(config: RoomConfig): string[] {
  return [
    NS.muc,
    config.persistent ? "muc_persistent" : "muc_temporary",
    config.membersOnly ? "muc_membersonly" : "muc_open",
    config.whois === "anyone" ? "muc_nonanonymous" : "muc_semianonymous",
    config.passwordProtected ? "muc_passwordprotected" : "muc_unsecured",
    config.moderated ? "muc_moderated" : "muc_unmoderated",
    config.public ? "muc_public" : "muc_hidden",
  ];
}

/** §6.4: the muc#roominfo extension form of a room's disco#info. */
export function roomInfoForm(config: RoomConfig, occupants: number, subject: string): DataForm {
  return {
    type: "result",
    fields: [
      { var: FORM_TYPE_FIELD, type: "hidden", values: [NS.mucRoomInfo] },
      { var: "muc#roominfo_description", label: "Description", values: [config.description] },
      { var: "muc#roominfo_subject", label: "Subject", values: [subject] },
      { var: "muc#roominfo_occupants", label: "Number of occupants", values: [String(occupants)] },
      { var: "muc#roominfo_changesubject", type: "boolean", label: "Occupants may change the subject", values: [bool(config.changeSubject)] },
      { var: `${F}roomname`, label: "Room name", values: [config.name] },
      { var: `${F}maxusers`, label: "Maximum number of occupants", values: [config.maxUsers === 0 ? "none" : String(config.maxUsers)] },
      { var: `${F}allowpm`, label: "Who may send private messages", values: [config.allowPm] },
    ],
  };
}

// ---- invitations (§7.8.2) -------------------------------------------------------------------

export interface MediatedInvite {
  /** Whom the invitation is for (invite), or whose invitation is declined (decline). */
  to: string;
  reason?: string;
}

/** The <invite/>s and the <decline/> of a message's muc#user <x/>. */
export function parseInvitations(message: Element): { invites: MediatedInvite[]; decline?: MediatedInvite } {
  const x = message.getChild("x", NS.mucUser);
  const out: { invites: MediatedInvite[]; decline?: MediatedInvite } = { invites: [] };
  if (!x) return out;
  for (const el of x.getChildren("invite")) {
    if (el.attrs.to === undefined) throw new StanzaError("bad-request", "an invitation needs a 'to'");
    const reason = el.getChild("reason");
    out.invites.push(reason ? { to: el.attrs.to, reason: reason.getText() } : { to: el.attrs.to });
  }
  const decline = x.getChild("decline");
  if (decline) {
    if (decline.attrs.to === undefined) throw new StanzaError("bad-request", "a decline needs a 'to'");
    const reason = decline.getChild("reason");
    out.decline = reason ? { to: decline.attrs.to, reason: reason.getText() } : { to: decline.attrs.to };
  }
  return out;
}

// ---- nickname registration (§7.10) and voice requests (§7.13) --------------------------------

/** §7.10.1: the muc#register form a room offers (XEP-0077 with a data form). */
export function registrationForm(): DataForm {
  return {
    type: "form",
    title: "Nickname registration",
    instructions: ["Choose the nickname to reserve in this room; registering makes you a member."],
    fields: [
      { var: FORM_TYPE_FIELD, type: "hidden", values: [NS.mucRegister] },
      { var: "muc#register_roomnick", type: "text-single", label: "Nickname", required: true, values: [] },
    ],
  };
}

/**
 * §7.10.1: the nick of a submitted muc#register form. Throws bad-request for another form type,
 * not-acceptable for a missing or empty nick.
 */
export function parseRegistration(form: DataForm): string {
  if (form.type !== "submit") throw new StanzaError("bad-request", "expected a submitted form");
  const type = getValue(form, FORM_TYPE_FIELD);
  if (type !== undefined && type !== NS.mucRegister) throw new StanzaError("bad-request", `FORM_TYPE must be ${NS.mucRegister}`);
  const nick = getValue(form, "muc#register_roomnick")?.trim() ?? "";
  if (nick === "") throw new StanzaError("not-acceptable", "muc#register_roomnick: a nickname is needed");
  return nick;
}

/** A muc#request form (§7.13): a visitor's request, or a moderator's answer to one. */
export type VoiceRequest = { kind: "request"; role: string | undefined } | { kind: "answer"; allow: boolean; nick: string | undefined };

export function parseVoiceRequest(form: DataForm): VoiceRequest {
  if (form.type !== "submit") throw new StanzaError("bad-request", "expected a submitted muc#request form");
  const allow = getValue(form, "muc#request_allow");
  if (allow !== undefined) {
    const t = allow.trim();
    return { kind: "answer", allow: t === "1" || t === "true", nick: getValue(form, "muc#roomnick") };
  }
  return { kind: "request", role: getValue(form, "muc#role") };
}

/** §7.13: the approval form the room sends each moderator. */
export function voiceApprovalForm(nick: string, jid: string): DataForm {
  return {
    type: "form",
    title: "Voice request",
    instructions: [`${nick} asks for voice. Allow?`],
    fields: [
      { var: FORM_TYPE_FIELD, type: "hidden", values: [NS.mucRequest] },
      { var: "muc#role", type: "list-single", label: "Requested role", values: ["participant"], options: [{ value: "participant" }] },
      { var: "muc#jid", type: "jid-single", label: "User ID", values: [jid] },
      { var: "muc#roomnick", type: "text-single", label: "Room nickname", values: [nick] },
      { var: "muc#request_allow", type: "boolean", label: "Grant voice?", values: ["false"] },
    ],
  };
}
