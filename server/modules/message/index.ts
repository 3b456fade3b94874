// RFC 6121 §8.5 (server rules for messages to a local user) and RFC 6120 §10.3.1 (a message
// with no 'to' is for the sender's own bare JID): the last step of a message's way in, after
// every module that archives, copies or filters it has had its turn at a higher priority.
//
// Choices the RFC leaves to the server, and why:
// - Bare JID, normal or chat (§8.5.2.1.1): delivered to the available resources with the highest
//   non-negative priority, to all of them when several share it (option (a), "most available").
//   Delivering to every non-negative resource would wake every device for every message; carbons
//   (XEP-0280) copy to the others when the user wants that.
// - Headline to a bare JID goes to every non-negative resource (§8.5.2.1.1 requires it).
// - "Available" means the session has sent initial presence; a session that has only bound a
//   resource never gets bare-JID messages, and negative priority never does either (§8.5.2.1.1).
// - No resource to take a normal or chat message (§8.5.2.2.1, and §8.5.2.1.1 when all are
//   negative): `message/offline` runs first so that offline storage (XEP-0160) can keep it;
//   if nobody does, the sender gets <service-unavailable/>.
// - Full JID whose resource is gone (§8.5.3.2.1): chat is treated as if sent to the bare JID;
//   normal and groupchat get <service-unavailable/> (option (b): the sender learns the
//   conversation it addressed has ended); headline and error are dropped.
// - No such account (§8.5.1): <service-unavailable/> for normal, chat and groupchat; headline is
//   dropped as it is for an existing account that is offline, so the answer does not reveal
//   which accounts exist.
// - To the server itself: Parley reads no messages, so normal and chat get
//   <service-unavailable/> and the rest are dropped, unless a module took them first.
//
// Extension point: once a message has been handed to an account's resources (or kept by offline
// storage), `message/delivered` runs with the sessions that got it, so that Message Carbons
// (XEP-0280 §7: a copy to each enabled resource "that did not receive it under the RFC 6121
// delivery rules") need not repeat these rules. It runs after every message/* handler above
// DELIVERY_PRIORITY, so what it sees is the stanza exactly as the recipients got it (with the
// archive's XEP-0359 stanza-id, say). Nothing runs for a message that was bounced or dropped.
import { StanzaError } from "../../../protocol/errors.ts";
import { defineModule, type ModuleApi } from "../../core/module.ts";
import type { Element } from "../../../protocol/xml/element.ts";
import type { Jid } from "../../../protocol/jid.ts";
import type { StanzaEvent } from "../../core/router.ts";
import type { ClientSession } from "../../core/sessions.ts";

/** Below every module that looks at messages on their way in (archive, carbons, blocking). */
export const DELIVERY_PRIORITY = -100;

/** Fired when a normal or chat message finds no resource to take it; return true once stored. */
export const OFFLINE_EVENT = "message/offline";

export interface OfflineMessageEvent {
  readonly stanza: Element;
  /** The recipient account's bare JID. */
  readonly to: Jid;
}

/** Fired after a message reached a local account: handed to resources, or kept offline. */
export const DELIVERED_EVENT = "message/delivered";

export interface DeliveredMessageEvent {
  /** The message as the recipients got it. */
  readonly stanza: Element;
  /** The local client that sent it, or null (the server, a remote domain). */
  readonly origin: ClientSession | null;
  readonly from: Jid;
  /** The recipient account's bare JID. */
  readonly account: Jid;
  /** The sessions that got the message itself; empty when offline storage kept it. */
  readonly recipients: readonly ClientSession[];
}

async function delivered(m: ModuleApi, ev: StanzaEvent, account: Jid, recipients: readonly ClientSession[]): Promise<true> {
  await m.fire<DeliveredMessageEvent>(DELIVERED_EVENT, { stanza: ev.stanza, origin: ev.origin, from: ev.from, account: account.bare, recipients });
  return true;
}

type MessageType = "normal" | "chat" | "groupchat" | "headline" | "error";

function messageType(stanza: Element): MessageType {
  // RFC 6121 §5.2.2: no type means normal; the router has refused unknown types already.
  return (stanza.attrs.type ?? "normal") as MessageType;
}

/** The sessions that may receive a message sent to the bare JID (§8.5.2.1.1). */
function bareRecipients(m: ModuleApi, account: Jid, type: MessageType): ClientSession[] {
  const candidates = m.sessions.resources(account).filter((s) => s.presence !== null && s.priority >= 0);
  if (type === "headline" || candidates.length === 0) return candidates;
  const top = Math.max(...candidates.map((s) => s.priority));
  return candidates.filter((s) => s.priority === top);
}

async function accountExists(m: ModuleApi, account: Jid): Promise<boolean> {
  return m.storage.users.exists(account.domain, account.local);
}

/** Delivery to the account (§8.5.2), for a bare JID or a chat to a resource that has gone. */
async function deliverToAccount(m: ModuleApi, ev: StanzaEvent, account: Jid): Promise<true> {
  const type = messageType(ev.stanza);
  if (type === "error") return true;
  if (type === "groupchat") {
    m.bounce(ev, new StanzaError("service-unavailable"));
    return true;
  }
  const recipients = bareRecipients(m, account, type);
  if (recipients.length > 0) {
    for (const session of recipients) session.send(ev.stanza);
    return delivered(m, ev, account, recipients);
  }
  if (type === "headline") return true;
  if (await accountExists(m, account)) {
    if (await m.fire<OfflineMessageEvent>(OFFLINE_EVENT, { stanza: ev.stanza, to: account })) return delivered(m, ev, account, []);
  }
  m.bounce(ev, new StanzaError("service-unavailable"));
  return true;
}

/** A full JID whose resource is not bound (§8.5.3.2.1). */
async function resourceGone(m: ModuleApi, ev: StanzaEvent): Promise<true> {
  const type = messageType(ev.stanza);
  if (type === "chat") return deliverToAccount(m, ev, ev.to.bare);
  if (type === "normal" || type === "groupchat") m.bounce(ev, new StanzaError("service-unavailable"));
  return true;
}

export default defineModule({
  name: "message",
  xeps: [
    { xep: "RFC 6121", version: "2011-03", status: "partial", note: "§8.5 message delivery to local accounts; offline storage through message/offline" },
    { xep: "RFC 6120", version: "2011-03", status: "partial", note: "§10.3.1 messages without 'to'" },
  ],
  setup(m) {
    m.hook("message/bare", (ev) => deliverToAccount(m, ev, ev.to), DELIVERY_PRIORITY);
    // RFC 6120 §10.3.1: no 'to' means the sender's own bare JID (ev.to already is).
    m.hook("message/self", (ev) => deliverToAccount(m, ev, ev.to), DELIVERY_PRIORITY);

    m.hook("message/full", (ev) => {
      const session = m.sessions.get(ev.to);
      // §8.5.3.1: a bound resource gets what is addressed to it, available or not.
      if (session) {
        session.send(ev.stanza);
        return delivered(m, ev, ev.to, [session]);
      }
      return resourceGone(m, ev);
    }, DELIVERY_PRIORITY);

    m.hook("message/host", (ev) => {
      const type = messageType(ev.stanza);
      if (type === "normal" || type === "chat") m.bounce(ev, new StanzaError("service-unavailable", "this server does not read messages"));
      return true;
    }, DELIVERY_PRIORITY);
  },
});
