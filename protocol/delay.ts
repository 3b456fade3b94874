// XEP-0203: Delayed Delivery, version 2.0, with stamps in the XEP-0082 DateTime profile.
// Stamps are written in UTC (§3: "MUST be expressed in UTC"); received stamps with an offset
// are still accepted, since parseDateTime normalises them.
import { Element, xml, childElements } from "./xml/element.ts";
import { NS } from "./ns.ts";
import { formatDateTime, parseDateTime } from "./datetime.ts";

export interface Delay {
  stamp: Date;
  /** The entity that delayed the stanza (a server for offline storage, a room for history). */
  from?: string;
  reason?: string;
}

/** <delay xmlns="urn:xmpp:delay" from=".." stamp="..">reason</delay> */
export function delayElement(stamp: Date, from?: string, reason?: string): Element {
  return xml("delay", { xmlns: NS.delay, from, stamp: formatDateTime(stamp) }, reason ?? null);
}

/**
 * Adds a delay to `stanza` in place and returns it, unless it already carries one from the same
 * entity: a message that is stored offline twice on its way (or re-delivered after a stream
 * resumption fails) keeps the first, earliest stamp that entity gave it. Delays from other
 * entities stay, as §3 allows one per delaying entity.
 */
export function addDelay(stanza: Element, stamp: Date, from?: string, reason?: string): Element {
  const alreadyDelayed = delayChildren(stanza).some((d) => d.attrs.from === from);
  if (!alreadyDelayed) stanza.append(delayElement(stamp, from, reason));
  return stanza;
}

/**
 * The delay of a received stanza (or <forwarded/>), or null. With several delays the earliest
 * stamp wins: it is the closest to when the sender actually sent it, which is what a client
 * shows. Delays whose stamp is not a valid XEP-0082 DateTime are ignored.
 */
export function parseDelay(stanza: Element): Delay | null {
  let earliest: Delay | null = null;
  for (const el of delayChildren(stanza)) {
    const stamp = el.attrs.stamp === undefined ? null : parseDateTime(el.attrs.stamp);
    if (stamp === null) continue;
    if (earliest !== null && earliest.stamp.getTime() <= stamp.getTime()) continue;
    earliest = { stamp };
    if (el.attrs.from !== undefined) earliest.from = el.attrs.from;
    const reason = el.getText();
    if (reason !== "") earliest.reason = reason;
  }
  return earliest;
}

function delayChildren(stanza: Element): Element[] {
  return childElements(stanza).filter((c) => c.getName() === "delay" && c.getNS() === NS.delay);
}
