// XEP-0352: Client State Indication 1.0.0 §3.2 leaves it to the server what an inactive client
// is spared. Parley's rules, for each stanza the server is about to send such a client:
//
// Urgent: sent at once, after everything held before it, in order (so nothing overtakes):
// - every IQ (a request waits for its answer; an answer is what the client is waiting for);
// - every error (a message or presence of type error): something the user did has failed;
// - a message with a <body> that is not groupchat (someone is talking to the user), a carbon
//   copy of such a message the user *received* (XEP-0280), an encrypted message (OMEMO, which
//   may carry no body), a call being proposed (XEP-0353 Jingle Message Initiation);
// - a subscription request (RFC 6121 §3.1: someone waits for the user to say yes);
// - the user's own MUC presence (XEP-0045 status 110): a client joining a room waits for it.
//
// Folded: held, and only the latest per key goes out (it replaces the earlier one and moves to
// the end of the queue, so it still follows whatever came before it):
// - available and unavailable presence, per sender full JID: the client only needs the last;
// - chat-state-only messages (XEP-0085, no body), per sender full JID; and the carbon copies of
//   the user's own chat states, per addressee.
//
// Held in order, never dropped: everything else. That is receipts (XEP-0184) and chat markers
// (XEP-0333) on their own (ticks can wait, but each one acknowledges a different message),
// groupchat messages (mentions will be urgent once MUC exists), copies of what the user sent
// from another device, subscription answers (subscribed, unsubscribe, unsubscribed), PEP events
// and any other headline, messages without a body.
//
// Anything that is not a stanza (a stream-management <r/>, say) passes at once, holding nothing.
import type { Element } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";

/** XEP-0353 Jingle Message Initiation; not in protocol/ns.ts yet. */

/** MUC status code 110: "this presence refers to you" (XEP-0045 §7.2.3). */
const SELF_PRESENCE_STATUS = "110";

export type Disposition =
  /** Not a stanza: write it now, leave the queue alone. */
  | { readonly kind: "pass" }
  /** Flush what is held, then this. */
  | { readonly kind: "urgent" }
  /** Hold, in order. */
  | { readonly kind: "hold" }
  /** Hold, replacing the held stanza with the same key. */
  | { readonly kind: "fold"; readonly key: string };

const PASS: Disposition = { kind: "pass" };
const URGENT: Disposition = { kind: "urgent" };
const HOLD: Disposition = { kind: "hold" };

/** Child elements that may ride along a chat state without making it more than a chat state. */
function isChatStateCompanion(child: Element): boolean {
  const ns = child.getNS();
  return ns === NS.chatStates || ns === NS.hints || ns === NS.sid || ns === NS.delay || child.name === "thread";
}

function isChatStateOnly(message: Element): boolean {
  const children = message.getChildElements();
  return children.some((c) => c.getNS() === NS.chatStates) && children.every(isChatStateCompanion);
}

function isEncrypted(message: Element): boolean {
  return message.getChild("encrypted", NS.omemo) !== undefined || message.getChild("encrypted", NS.omemoLegacy) !== undefined;
}

function isCallProposal(message: Element): boolean {
  return message.getChild("propose", NS.jingleMessage) !== undefined;
}

/** The message inside a XEP-0280 carbon copy, and which way it went. */
function carbonInside(message: Element): { direction: "sent" | "received"; inner: Element } | null {
  for (const direction of ["received", "sent"] as const) {
    const inner = message.getChild(direction, NS.carbons)?.getChild("forwarded", NS.forward)?.getChild("message");
    if (inner) return { direction, inner };
  }
  return null;
}

function messageDisposition(message: Element): Disposition {
  const type = message.attrs.type ?? "normal";
  if (type === "error") return URGENT;
  const carbon = carbonInside(message);
  if (carbon?.direction === "received") return messageDisposition(carbon.inner);
  if (carbon) {
    if (isChatStateOnly(carbon.inner)) return { kind: "fold", key: `sent-chat-state\u0000${carbon.inner.attrs.to ?? ""}` };
    return HOLD;
  }
  if (isChatStateOnly(message)) return { kind: "fold", key: `chat-state\u0000${message.attrs.from ?? ""}` };
  if (type === "groupchat") return HOLD;
  if (message.getChild("body") !== undefined || isEncrypted(message) || isCallProposal(message)) return URGENT;
  return HOLD;
}

function presenceDisposition(presence: Element): Disposition {
  const type = presence.attrs.type;
  if (type === undefined || type === "unavailable") {
    const mucUser = presence.getChild("x", NS.mucUser);
    if (mucUser?.getChildren("status").some((s) => s.attrs.code === SELF_PRESENCE_STATUS)) return URGENT;
    return { kind: "fold", key: `presence\u0000${presence.attrs.from ?? ""}` };
  }
  if (type === "subscribe" || type === "error") return URGENT;
  return HOLD;
}

/** What an inactive client's session does with `stanza` (see the rules above). */
export function disposition(stanza: Element): Disposition {
  switch (stanza.name) {
    case "iq":
      return URGENT;
    case "message":
      return messageDisposition(stanza);
    case "presence":
      return presenceDisposition(stanza);
    default:
      return PASS;
  }
}
