// XEP-0280: Message Carbons 1.0.1 §6 (messages eligible for carbons delivery) and §9 (avoiding
// carbons for a single message, with the XEP-0334 0.3.0 <no-copy/> hint), and the copies
// themselves: §7/§8 wrapping with XEP-0297 Stanza Forwarding 1.0.
//
// Parley follows the §6.1 rules with these readings:
// - chat: always; normal (or no type) with a <body>; any type but the three below when it carries
//   a payload of instant messaging without a body: receipts (XEP-0184), chat states (XEP-0085),
//   chat markers (XEP-0333), OMEMO (XEP-0384), reactions (XEP-0444), retractions (XEP-0424),
//   direct and mediated MUC invitations (XEP-0249, XEP-0045 §7.8.2);
// - never groupchat (§6.1: the room already sends every joined client its copy), never headline
//   (not a conversation), never error: §6.1 allows errors answering eligible messages, but that
//   needs correlating errors with what they answer, which Parley does not do. So the stricter
//   `urn:xmpp:carbons:rules:0` promise (§6.2) is not advertised;
// - a private message from a MUC occupant (an <x xmlns='…muc#user'/> without an invitation) is
//   not copied to the recipient's other clients, as §6.1 asks; one the user sends to an occupant
//   is copied to the user's other clients;
// - a message that already carries a carbons <sent/> or <received/> wrapper is never copied, so
//   a forged or looping copy cannot nest.
import { clone, xml, type Element } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import type { Jid } from "../../../protocol/jid.ts";

export type CarbonDirection = "sent" | "received";

/** Payloads (namespace of a direct child) that make a bodiless message instant messaging. */
const IM_PAYLOAD_NAMESPACES: ReadonlySet<string> = new Set([
  NS.receipts,
  NS.chatStates,
  NS.chatMarkers,
  NS.omemo,
  NS.omemoLegacy,
  NS.reactions,
  NS.retraction,
  NS.conferenceInvite,
]);

function childNamespaces(stanza: Element): string[] {
  return stanza.getChildElements().map((c) => c.getNS() ?? "");
}

/** §9: the sender asked that no copies be made (<private/>, or the XEP-0334 <no-copy/> hint alone). */
export function refusesCopies(stanza: Element): boolean {
  return stanza.getChild("private", NS.carbons) !== undefined || stanza.getChild("no-copy", NS.hints) !== undefined;
}

/** Whether a message is a carbon copy already (or claims to be). */
function isCarbon(stanza: Element): boolean {
  return stanza.getChild("sent", NS.carbons) !== undefined || stanza.getChild("received", NS.carbons) !== undefined;
}

/** A private message exchanged with a MUC occupant, as opposed to a mediated invitation. */
function isMucPrivateMessage(stanza: Element): boolean {
  const x = stanza.getChild("x", NS.mucUser);
  return x !== undefined && x.getChild("invite") === undefined;
}

/** §6.1: whether copies of `stanza`, seen in `direction` by the copying user, are made at all. */
export function eligibleForCarbons(stanza: Element, direction: CarbonDirection): boolean {
  if (stanza.name !== "message" || refusesCopies(stanza) || isCarbon(stanza)) return false;
  const type = stanza.attrs.type ?? "normal";
  if (type === "groupchat" || type === "headline" || type === "error") return false;
  if (direction === "received" && isMucPrivateMessage(stanza)) return false;
  if (type === "chat") return true;
  if (stanza.getChild("body") !== undefined) return true;
  if (stanza.getChild("x", NS.mucUser)?.getChild("invite") !== undefined) return true;
  return childNamespaces(stanza).some((ns) => IM_PAYLOAD_NAMESPACES.has(ns));
}

/**
 * The copy for one of the user's resources (§7, §8): from the user's bare JID, to the resource,
 * the original's type, and the original inside <forwarded/>. The original is cloned, so that
 * nothing done to the copy (or to the original after it was copied) shows in the other.
 */
export function carbonCopy(direction: CarbonDirection, original: Element, account: Jid, to: Jid): Element {
  const forwarded = clone(original);
  // XEP-0297 §3: the forwarded stanza keeps its own namespace inside urn:xmpp:forward:0.
  forwarded.attrs.xmlns = NS.client;
  return xml(
    "message",
    { xmlns: NS.client, from: account.bare.toString(), to: to.toString(), type: original.attrs.type },
    xml(direction, { xmlns: NS.carbons }, xml("forwarded", { xmlns: NS.forward }, forwarded)),
  );
}
