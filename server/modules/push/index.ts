// XEP-0357: Push Notifications 0.4.1, the user's server side. A device enables push with its
// app server's JID, a node and publish-options (its secrets, §5); while that device is away,
// Parley publishes a summary to the app server (§7), which wakes the phone.
//
// When a registration is notified: its device (the resource that enabled it) is not connected,
// is hibernating (XEP-0198, waiting for resumption), or said it is inactive (XEP-0352); and
// something arrived that a person would want to know about:
// - a chat or normal message with a <body/> or end-to-end encrypted content (OMEMO, legacy
//   OMEMO, OpenPGP for XMPP), delivered to the account or kept offline — never one marked
//   <no-store/> (XEP-0334), never chat states, receipts or markers alone;
// - a subscription request (RFC 6121 §3.1.3) from someone not already subscribed;
// - anything of the above written to a hibernated session's queue;
// - a groupchat message in a room of this server's MUC service (the service fires
//   MUC_GROUPCHAT_EVENT before the room handles it), as `[modules.push] muc` says:
//   "none"; "mentions": the user is named in the body (the nick the user is joined with, else
//   the nick registered in the room, else the localpart; as a word, any case) or by a XEP-0372
//   mention reference, in any room the user is in or affiliated with; "members-only" (the
//   default): mentions, and every message of a members-only room where the user is a member,
//   admin or owner; "all": every message of every room the user is in or affiliated with.
//   Only while the user has no available session in the room (none joined, or every joined one
//   hibernating or inactive); never for the sender, nor for a subject change, a chat state or a
//   no-store message. For rooms of other servers only what reaches a hibernated session counts,
//   and a mention there is the localpart (the server does not know the nick).
//
// What is sent: message-count (messages since the device was last connected),
// pending-subscription-count, last-message-sender (the sender's full JID, for a room message
// room@service/nick) unless `include_sender = false` or the registration's publish-options
// carry `urn:xmpp:parley:push:include-sender` = 0, and last-message-body only when the
// registration's publish-options carry `urn:xmpp:parley:push:include-body` = 1, `allow_body` is
// not false, and the message was not encrypted; for an encrypted one,
// `last-message-encrypted` = 1 (Parley's field) is the hint instead. Both Parley fields are
// stripped before the publish-options are forwarded. A priority hint (protocol/push.ts): high
// for messages (a visible alert on iOS), low for the rest (a silent wake-up).
// A burst of triggers within `coalesce_ms` (default 1500) makes one publish. An account keeps
// at most `max_registrations` (default 20); enabling one more drops the oldest.
// A registration is removed when the app server answers with an error that says it is gone:
// item-not-found, gone, not-authorized, forbidden or registration-required (XEP-0357 §9 lets
// the server disable on errors; temporary ones such as remote-server-timeout do not count).
import { xml, childElements, type Element } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import { parseStanzaError, type StanzaErrorCondition } from "../../../protocol/errors.ts";
import { parseJid, tryParseJid, type Jid } from "../../../protocol/jid.ts";
import { INCLUDE_BODY_FIELD, buildPublish, isEncryptedMessage, optionValues, parseDisable, parseEnable, type PushSummary } from "../../../protocol/push.ts";
import { SettingsReader } from "../../core/config.ts";
import { defineModule } from "../../core/module.ts";
import type { StanzaEvent } from "../../core/router.ts";
import type { ClientSession } from "../../core/sessions.ts";
import type { ResumeEvent, SessionEvent } from "../../transports/c2s.ts";
import { DELIVERED_EVENT, type DeliveredMessageEvent } from "../message/index.ts";
import { isInactive } from "../csi/index.ts";
import { MUC_GROUPCHAT_EVENT, type MucGroupchatEvent, type Room } from "../muc/room.ts";
import { RegistrationStore, type Registration } from "./registrations.ts";

export { RegistrationStore, type Registration } from "./registrations.ts";

/**
 * A publish-options field only Parley reads: "0" (or "false") keeps the sender out of this
 * registration's notifications. Stripped before the options are forwarded, like
 * INCLUDE_BODY_FIELD.
 */
export const INCLUDE_SENDER_FIELD = "urn:xmpp:parley:push:include-sender";


export type MucPushMode = "none" | "mentions" | "members-only" | "all";
const MUC_MODES: readonly MucPushMode[] = ["none", "mentions", "members-only", "all"];

const GONE: ReadonlySet<StanzaErrorCondition> = new Set<StanzaErrorCondition>(["item-not-found", "gone", "not-authorized", "forbidden", "registration-required"]);
const REFERENCE_NS = "urn:xmpp:reference:0";

/** What a stanza means for push, or null when it should wake nobody. */
export interface Trigger {
  kind: "message" | "subscription";
  sender: string;
  body?: string;
  encrypted: boolean;
}

function hasNoStore(message: Element): boolean {
  return message.getChild("no-store", NS.hints) !== undefined;
}

const WORD = /[\p{L}\p{N}_]/u;

/** Whether `body` names `nick` as a word, in any case: "romeo:", "@Romeo", "hi romeo!", not "romeos". */
export function mentions(body: string, nick: string): boolean {
  if (nick.trim() === "") return false;
  const hay = body.toLowerCase();
  const needle = nick.toLowerCase();
  let from = 0;
  // Bounded: a body is at most a stanza long, and each round moves past one occurrence.
  for (let round = 0; round < 10_000; round++) {
    const at = hay.indexOf(needle, from);
    if (at < 0) return false;
    const before = at > 0 ? hay[at - 1]! : "";
    const after = hay[at + needle.length] ?? "";
    if (!WORD.test(before) && !WORD.test(after)) return true;
    from = at + 1;
  }
  return false;
}

/** XEP-0372: the JIDs a message's mention references point at (xmpp: URIs). */
function mentionedJids(message: Element): Set<string> {
  const out = new Set<string>();
  for (const r of childElements(message)) {
    if (r.name !== "reference" || r.getNS() !== REFERENCE_NS || r.attrs.type !== "mention") continue;
    const uri = r.attrs.uri ?? "";
    if (!uri.startsWith("xmpp:")) continue;
    let target = uri.slice(5).split("?")[0]!;
    try {
      target = decodeURIComponent(target);
    } catch {
      continue;
    }
    const jid = tryParseJid(target);
    if (jid) out.add(jid.toString());
  }
  return out;
}

/** A groupchat message's content as a push (body or encrypted payload), or null. */
function groupchatContent(message: Element, sender: string): Trigger | null {
  if (hasNoStore(message)) return null;
  const encrypted = isEncryptedMessage(message);
  const body = message.getChildText("body") ?? undefined;
  if (!encrypted && (body === undefined || body.trim() === "")) return null;
  return { kind: "message", sender, body: encrypted ? undefined : body, encrypted };
}

/**
 * A chat or normal message worth a push (see the header), or null. A groupchat message counts
 * only with `groupchatMention` (a name it must mention) or `anyGroupchat`.
 */
export function messageTrigger(message: Element, opts: { groupchatMention?: string; anyGroupchat?: boolean } = {}): Trigger | null {
  if (message.name !== "message") return null;
  const type = message.attrs.type ?? "normal";
  if (hasNoStore(message)) return null;
  // XEP-0280: a copy of a message someone else sent the user, received by another device.
  const carbon = message.getChild("received", NS.carbons)?.getChild("forwarded", NS.forward)?.getChild("message");
  if (carbon) return messageTrigger(carbon, opts);
  if (type === "groupchat") {
    const t = groupchatContent(message, message.attrs.from ?? "");
    if (!t || opts.anyGroupchat) return t;
    const nick = opts.groupchatMention;
    return nick && t.body !== undefined && mentions(t.body, nick) ? t : null;
  }
  if (type !== "chat" && type !== "normal") return null;
  const encrypted = isEncryptedMessage(message);
  const body = message.getChildText("body") ?? undefined;
  if (!encrypted && (body === undefined || body === "")) return null;
  return { kind: "message", sender: message.attrs.from ?? "", body: encrypted ? undefined : body, encrypted };
}

/** Someone a room message may concern: the occupant's nicks and sessions, and the affiliation. */
interface RoomPerson {
  bare: Jid;
  nicks: string[];
  sessions: Jid[];
  member: boolean;
}

/**
 * Who a groupchat message in `room` should wake, by `mode` (see the header): local accounts
 * other than the sender's, each with whether the message names them. Availability is the
 * caller's to check.
 */
export function roomRecipients(
  room: Room,
  message: Element,
  senderBare: Jid,
  mode: MucPushMode,
  isLocal: (domain: string) => boolean,
  /** People to leave out before the (costlier) mention check: those present in the room. */
  present: (p: RoomPerson) => boolean = () => false,
): RoomPerson[] {
  if (mode === "none") return [];
  const people = new Map<string, RoomPerson>();
  const person = (bare: Jid): RoomPerson | null => {
    if (!isLocal(bare.domain) || bare.local === "" || bare.equals(senderBare)) return null;
    const key = bare.toString();
    let p = people.get(key);
    if (!p) {
      p = { bare, nicks: [], sessions: [], member: false };
      people.set(key, p);
    }
    return p;
  };
  for (const o of room.occupants.values()) {
    const p = person(o.jid.bare);
    if (!p) continue;
    p.nicks.push(o.nick);
    p.sessions.push(...o.sessions);
  }
  for (const [jid, affiliation] of room.affiliations) {
    if (affiliation !== "member" && affiliation !== "admin" && affiliation !== "owner") continue;
    const bare = tryParseJid(jid);
    const p = bare ? person(bare) : null;
    if (p) p.member = true;
  }
  const body = message.getChildText("body") ?? "";
  const referenced = mode === "all" ? new Set<string>() : mentionedJids(message);
  const named = (p: RoomPerson): boolean => {
    if (referenced.has(p.bare.toString()) || p.nicks.some((n) => referenced.has(`${room.jid.toString()}/${n}`))) return true;
    if (body === "") return false;
    const names = [...p.nicks];
    const registered = room.nicks.get(p.bare.toString());
    if (registered !== undefined) names.push(registered);
    if (names.length === 0) names.push(p.bare.local);
    return names.some((n) => mentions(body, n));
  };
  const out: RoomPerson[] = [];
  for (const p of people.values()) {
    if (present(p)) continue;
    const wanted =
      mode === "all" ? true : mode === "members-only" ? (room.config.membersOnly && p.member) || named(p) : named(p);
    if (wanted) out.push(p);
  }
  return out;
}

interface Burst {
  timer: { cancel(): void };
  reg: Registration;
  sender?: string;
  body?: string;
  lastEncrypted: boolean;
  messages: number;
}

const isOn = (v: string | undefined) => v === "1" || v === "true";
const isOff = (v: string | undefined) => v === "0" || v === "false";

export default defineModule({
  name: "push",
  xeps: [
    {
      xep: 357,
      version: "0.4.1",
      status: "complete",
      note: "user's server side (coalesced summaries, priority hint, body only on opt-in, never for encrypted messages); optional app server push.<domain> for APNs, FCM v1 and Web Push (module push_appserver)",
    },
  ],
  setup(m) {
    const settings = new SettingsReader(m.config, `modules.${m.name}`);
    const coalesceMs = settings.integer("coalesce_ms", 0, 60_000, 1500);
    const mucMode = settings.oneOf<MucPushMode>("muc", MUC_MODES, "members-only");
    const allowBody = settings.boolean("allow_body", true);
    const includeSender = settings.boolean("include_sender", true);
    const maxRegistrations = settings.integer("max_registrations", 1, 1000, 20);
    settings.finish();

    const store = new RegistrationStore(m.storage, maxRegistrations);
    /**
     * Per account, then per registration: messages and subscription requests since its device was
     * last connected. By account first, so that a login of an account with nothing counted reads
     * no registrations.
     */
    const counts = new Map<string, Map<string, { messages: number; subscriptions: number }>>();
    const bursts = new Map<string, Burst>();
    const keyOf = (r: Registration) => `${r.account}\u0000${r.service}\u0000${r.node}`;
    const regKey = (r: Registration) => `${r.service}\u0000${r.node}`;
    const forget = (r: Registration) => {
      const mine = counts.get(r.account);
      if (!mine) return;
      mine.delete(regKey(r));
      if (mine.size === 0) counts.delete(r.account);
    };
    /** MUC services of this server: their rooms' messages are judged by the MUC event, not the queue observer. */
    const localMucDomains = new Set<string>();

    m.addFeature(NS.push, "account");

    m.onIq("set", NS.push, "enable", async (ev) => {
      const enable = parseEnable(ev.payload);
      const resource = ev.origin?.jid?.resource ?? ev.from.resource;
      await store.put(ev.from.bare, { service: enable.jid.toString(), node: enable.node, resource, publishOptions: enable.publishOptions });
      m.log.info({ jid: ev.from.toString(), service: enable.jid.toString() }, "push enabled");
      return true as const;
    }, { targets: ["self"] });

    m.onIq("set", NS.push, "disable", async (ev) => {
      const disable = parseDisable(ev.payload);
      // §6: disabling what was never enabled is not an error; the result says it is off.
      await store.remove(ev.from.bare, disable.jid.toString(), disable.node);
      return true as const;
    }, { targets: ["self"] });

    /** Whether a session would see a stanza now (connected, not hibernating, not inactive). */
    const awake = (session: ClientSession | undefined | null): boolean => !!session && !session.hibernating && !isInactive(session);

    /** Whether the registration's device would see a stanza now, so that no push is needed. */
    function deviceAwake(reg: Registration, account: Jid): boolean {
      return awake(m.sessions.resources(account).find((s) => s.jid?.resource === reg.resource));
    }

    async function publish(burst: Burst): Promise<void> {
      const { reg } = burst;
      const count = counts.get(reg.account)?.get(regKey(reg)) ?? { messages: 0, subscriptions: 0 };
      const options = optionValues(reg.publishOptions);
      const summary: PushSummary = { messageCount: count.messages, priority: burst.messages > 0 ? "high" : "low" };
      if (count.subscriptions > 0) summary.pendingSubscriptionCount = count.subscriptions;
      const wantsSender = includeSender && !isOff(options[INCLUDE_SENDER_FIELD]);
      if (wantsSender && burst.sender !== undefined) summary.lastMessageSender = burst.sender;
      const wantsBody = allowBody && isOn(options[INCLUDE_BODY_FIELD]);
      if (wantsBody && burst.body !== undefined && !burst.lastEncrypted) summary.lastMessageBody = burst.body;
      if (burst.lastEncrypted) summary.lastMessageEncrypted = true;
      // Parley's own fields stay here; the app server gets only what it asked for.
      const forwarded = reg.publishOptions
        ? { ...reg.publishOptions, fields: reg.publishOptions.fields.filter((f) => f.var !== INCLUDE_BODY_FIELD && f.var !== INCLUDE_SENDER_FIELD) }
        : undefined;
      const iq = xml("iq", { type: "set", from: reg.account, to: reg.service }, buildPublish(reg.node, summary, forwarded));
      let answer: Element;
      try {
        answer = await m.request(iq);
      } catch (err) {
        m.log.warn({ err, service: reg.service }, "push publish got no answer");
        return;
      }
      const error = parseStanzaError(answer);
      if (!error) return;
      if (GONE.has(error.condition)) {
        const account = reg.account;
        m.log.info({ account, service: reg.service, condition: error.condition }, "app server refused the push: registration removed");
        await store.remove(parseJid(account), reg.service, reg.node);
        forget(reg);
      } else {
        m.log.warn({ service: reg.service, condition: error.condition }, "push publish failed");
      }
    }

    function trigger(reg: Registration, t: Trigger): void {
      const key = keyOf(reg);
      let mine = counts.get(reg.account);
      if (!mine) counts.set(reg.account, (mine = new Map()));
      let count = mine.get(regKey(reg));
      if (!count) mine.set(regKey(reg), (count = { messages: 0, subscriptions: 0 }));
      if (t.kind === "message") count.messages++;
      else count.subscriptions++;
      let burst = bursts.get(key);
      if (!burst) {
        const fresh: Burst = { reg, lastEncrypted: false, messages: 0, timer: { cancel() {} } };
        fresh.timer = m.timer(coalesceMs, () => {
          bursts.delete(key);
          void publish(fresh).catch((err: unknown) => m.log.error({ err }, "push publish failed"));
        });
        bursts.set(key, fresh);
        burst = fresh;
      }
      if (t.kind === "message") {
        burst.messages++;
        burst.sender = t.sender;
        burst.body = t.body;
        burst.lastEncrypted = t.encrypted;
      }
    }

    async function notifyAccount(account: Jid, t: Trigger, skip: (reg: Registration) => boolean): Promise<void> {
      const regs = await store.list(account);
      for (const reg of regs) {
        if (skip(reg)) continue;
        if (deviceAwake(reg, account)) continue;
        trigger(reg, t);
      }
    }

    // Delivered or kept offline. A hibernating device that got the message itself is left to
    // its queue observer below, so that it is counted once.
    m.hook<DeliveredMessageEvent>(DELIVERED_EVENT, async ({ stanza, account, recipients }) => {
      const t = messageTrigger(stanza);
      if (!t) return false;
      const queuedFor = new Set(recipients.filter((s) => s.hibernating).map((s) => s.jid?.resource));
      // Not awaited: delivery (and carbons after it) need not wait for a registration lookup.
      void notifyAccount(account, t, (reg) => queuedFor.has(reg.resource)).catch((err: unknown) => m.log.error({ err }, "push trigger failed"));
      return false;
    });

    // A groupchat message in one of this server's rooms, before the room broadcasts it: members
    // and occupants away from the room (see the header). Hibernated occupant sessions are
    // judged here too, and their queue observer leaves this room's messages alone.
    m.hook<MucGroupchatEvent>(MUC_GROUPCHAT_EVENT, ({ room, stanza, from, to }) => {
      localMucDomains.add(room.jid.domain);
      // A groupchat message to an occupant (room/nick) is refused by the room, not broadcast.
      if (mucMode === "none" || room.destroyed || from.resource === "" || to.resource !== "") return false;
      // Only what the room will broadcast: an occupant with voice speaking, not a subject change.
      let nick: string | undefined;
      for (const o of room.occupants.values()) {
        if (o.sessions.some((s) => s.equals(from))) {
          if (o.role === "participant" || o.role === "moderator") nick = o.nick;
          break;
        }
      }
      if (nick === undefined) return false;
      const t = groupchatContent(stanza, `${room.jid.toString()}/${nick}`);
      if (!t) return false;
      const present = (p: RoomPerson): boolean => p.sessions.some((s) => awake(m.sessions.get(s)));
      for (const p of roomRecipients(room, stanza, from.bare, mucMode, (d) => m.isLocalHost(d), present)) {
        void notifyAccount(p.bare, t, () => false).catch((err: unknown) => m.log.error({ err }, "push trigger failed"));
      }
      return false;
    });

    // RFC 6121 §3.1.3: an inbound subscription request, before the presence module takes it.
    m.hook<StanzaEvent>("presence/bare", ({ stanza, to, from }) => {
      if (stanza.attrs.type !== "subscribe" || !m.isLocalHost(to.domain)) return false;
      void (async () => {
        if ((await store.list(to.bare)).length === 0) return;
        const item = await m.storage.roster.get(to.domain, to.local, from.bare.toString());
        if (item && (item.subscription === "from" || item.subscription === "both")) return;
        await notifyAccount(to.bare, { kind: "subscription", sender: from.bare.toString(), encrypted: false }, () => false);
      })().catch((err: unknown) => m.log.error({ err }, "push trigger failed"));
      return false;
    }, 50);

    /** What a stanza written to a hibernated session's queue means for push. */
    function queuedTrigger(el: Element, account: Jid): Trigger | null {
      if (el.name === "presence") return el.attrs.type === "subscribe" ? { kind: "subscription", sender: el.attrs.from ?? "", encrypted: false } : null;
      if (el.name !== "message") return null;
      if (el.attrs.type !== "groupchat") return messageTrigger(el);
      const room = tryParseJid(el.attrs.from ?? "");
      if (!room || localMucDomains.has(room.domain) || mucMode === "none") return null;
      // A room elsewhere: its nick for us is unknown, so a mention is of the localpart.
      return messageTrigger(el, mucMode === "all" ? { anyGroupchat: true } : { groupchatMention: account.local });
    }

    // XEP-0198: what is queued for a hibernated session wakes its device.
    m.hook<SessionEvent>("c2s/hibernating", ({ session }) => {
      const jid = session.jid;
      if (!jid) return false;
      session.addWriteObserver((el) => {
        const t = queuedTrigger(el, jid);
        if (!t) return;
        void store.list(jid.bare).then((regs) => {
          for (const reg of regs) if (reg.resource === jid.resource) trigger(reg, t);
        });
      });
      return false;
    });

    // A device that connects again has seen everything: its counts start over.
    const reset = (session: ClientSession) => {
      const jid = session.jid;
      if (!jid || !counts.has(jid.bare.toString())) return;
      void store.list(jid.bare).then((regs) => {
        for (const reg of regs) if (reg.resource === jid.resource) forget(reg);
      });
    };
    m.hook<SessionEvent>("c2s/bound", ({ session }) => {
      reset(session);
      return false;
    });
    m.hook<ResumeEvent>("c2s/resuming", ({ previous }) => {
      reset(previous);
      return false;
    });

    m.onStop(() => {
      for (const burst of bursts.values()) burst.timer.cancel();
      bursts.clear();
    });
  },
});
