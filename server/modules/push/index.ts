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
// - anything of the above written to a hibernated session's queue, and, with
//   `[modules.push] groupchat_mentions = true`, a groupchat message queued for a hibernated
//   session whose body names the account's localpart (the MUC service does not tell the
//   server the occupant's nick, so this is the cheap approximation).
//
// What is sent: message-count (messages since the device was last connected),
// pending-subscription-count, last-message-sender, and last-message-body only when the
// registration's publish-options carry `urn:xmpp:parley:push:include-body` = 1 (Parley's own
// field, stripped before the options are forwarded) and the message was not encrypted; for an
// encrypted one, `last-message-encrypted` = 1 (Parley's field) is the hint instead. A
// priority hint (protocol/push.ts): high for messages (a visible alert on iOS), low for the rest
// (a silent wake-up).
// A burst of triggers within `coalesce_ms` (default 1500) makes one publish. An account keeps
// at most `max_registrations` (default 20); enabling one more drops the oldest.
// Other settings: `allow_body = false` never sends bodies, whatever registrations ask.
// A registration is removed when the app server answers with an error that says it is gone:
// item-not-found, gone, not-authorized, forbidden or registration-required (XEP-0357 §9 lets
// the server disable on errors; temporary ones such as remote-server-timeout do not count).
import { xml, type Element } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import { parseStanzaError, type StanzaErrorCondition } from "../../../protocol/errors.ts";
import { parseJid, type Jid } from "../../../protocol/jid.ts";
import { INCLUDE_BODY_FIELD, buildPublish, isEncryptedMessage, optionValues, parseDisable, parseEnable, type PushSummary } from "../../../protocol/push.ts";
import { SettingsReader } from "../../core/config.ts";
import { defineModule, type ModuleApi } from "../../core/module.ts";
import type { StanzaEvent } from "../../core/router.ts";
import type { ClientSession } from "../../core/sessions.ts";
import type { ResumeEvent, SessionEvent } from "../../transports/c2s.ts";
import { DELIVERED_EVENT, type DeliveredMessageEvent } from "../message/index.ts";
import { isInactive } from "../csi/index.ts";
import { RegistrationStore, type Registration } from "./registrations.ts";

export { RegistrationStore, type Registration } from "./registrations.ts";

const GONE: ReadonlySet<StanzaErrorCondition> = new Set<StanzaErrorCondition>(["item-not-found", "gone", "not-authorized", "forbidden", "registration-required"]);

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

/** A chat or normal message worth a push (see the header), or null. */
export function messageTrigger(message: Element, opts: { groupchatMention?: string } = {}): Trigger | null {
  if (message.name !== "message") return null;
  const type = message.attrs.type ?? "normal";
  if (hasNoStore(message)) return null;
  // XEP-0280: a copy of a message someone else sent the user, received by another device.
  const carbon = message.getChild("received", NS.carbons)?.getChild("forwarded", NS.forward)?.getChild("message");
  if (carbon) return messageTrigger(carbon, opts);
  const encrypted = isEncryptedMessage(message);
  const body = message.getChildText("body") ?? undefined;
  if (type === "groupchat") {
    const nick = opts.groupchatMention;
    if (!nick || !body || !body.toLowerCase().includes(nick.toLowerCase())) return null;
  } else if (type !== "chat" && type !== "normal") {
    return null;
  }
  if (!encrypted && (body === undefined || body === "")) return null;
  return { kind: "message", sender: message.attrs.from ?? "", body: encrypted ? undefined : body, encrypted };
}

interface Burst {
  timer: { cancel(): void };
  reg: Registration;
  sender?: string;
  body?: string;
  lastEncrypted: boolean;
  messages: number;
}

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
    const groupchatMentions = settings.boolean("groupchat_mentions", false);
    const allowBody = settings.boolean("allow_body", true);
    const maxRegistrations = settings.integer("max_registrations", 1, 1000, 20);
    settings.finish();

    const store = new RegistrationStore(m.storage, maxRegistrations);
    /** Per registration: messages and subscription requests since its device was last connected. */
    const counts = new Map<string, { messages: number; subscriptions: number }>();
    const bursts = new Map<string, Burst>();
    const keyOf = (r: Registration) => `${r.account}\u0000${r.service}\u0000${r.node}`;

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

    /** Whether the registration's device would see a stanza now, so that no push is needed. */
    function deviceAwake(reg: Registration, account: Jid): ClientSession | null {
      const session = m.sessions.resources(account).find((s) => s.jid?.resource === reg.resource);
      if (!session || session.hibernating || isInactive(session)) return null;
      return session;
    }

    async function publish(burst: Burst): Promise<void> {
      const { reg } = burst;
      const key = keyOf(reg);
      const count = counts.get(key) ?? { messages: 0, subscriptions: 0 };
      const options = optionValues(reg.publishOptions);
      const summary: PushSummary = { messageCount: count.messages, priority: burst.messages > 0 ? "high" : "low" };
      if (count.subscriptions > 0) summary.pendingSubscriptionCount = count.subscriptions;
      if (burst.sender !== undefined) summary.lastMessageSender = burst.sender;
      const wantsBody = allowBody && (options[INCLUDE_BODY_FIELD] === "1" || options[INCLUDE_BODY_FIELD] === "true");
      if (wantsBody && burst.body !== undefined && !burst.lastEncrypted) summary.lastMessageBody = burst.body;
      if (burst.lastEncrypted) summary.lastMessageEncrypted = true;
      // Parley's own field stays here; the app server gets only what it asked for.
      const forwarded = reg.publishOptions ? { ...reg.publishOptions, fields: reg.publishOptions.fields.filter((f) => f.var !== INCLUDE_BODY_FIELD) } : undefined;
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
        counts.delete(key);
      } else {
        m.log.warn({ service: reg.service, condition: error.condition }, "push publish failed");
      }
    }

    function trigger(reg: Registration, t: Trigger): void {
      const key = keyOf(reg);
      const count = counts.get(key) ?? { messages: 0, subscriptions: 0 };
      if (t.kind === "message") count.messages++;
      else count.subscriptions++;
      counts.set(key, count);
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

    // XEP-0198: what is queued for a hibernated session wakes its device.
    m.hook<SessionEvent>("c2s/hibernating", ({ session }) => {
      const jid = session.jid;
      if (!jid) return false;
      session.addWriteObserver((el) => {
        let t: Trigger | null = null;
        if (el.name === "message") t = messageTrigger(el, { groupchatMention: groupchatMentions ? jid.local : undefined });
        else if (el.name === "presence" && el.attrs.type === "subscribe") t = { kind: "subscription", sender: el.attrs.from ?? "", encrypted: false };
        if (!t) return;
        const trig = t;
        void store.list(jid.bare).then((regs) => {
          for (const reg of regs) if (reg.resource === jid.resource) trigger(reg, trig);
        });
      });
      return false;
    });

    // A device that connects again has seen everything: its counts start over.
    const reset = (session: ClientSession) => {
      const jid = session.jid;
      if (!jid) return;
      void store.list(jid.bare).then((regs) => {
        for (const reg of regs) if (reg.resource === jid.resource) counts.delete(keyOf(reg));
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

