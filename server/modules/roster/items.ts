// RFC 6121 §2.1 (roster syntax) and §2.3.3 (roster set error cases): reading a roster set and
// writing roster items. Pure: no storage, no sessions.
import { Element, childElements, xml } from "../../../protocol/xml/element.ts";
import { StanzaError } from "../../../protocol/errors.ts";
import { tryParseJid, type Jid } from "../../../protocol/jid.ts";
import { opaqueString } from "../../../protocol/precis.ts";
import type { RosterItem } from "../../core/storage/index.ts";

export interface RosterLimits {
  /** Longest handle ('name' attribute), in characters (§2.3.3: a server-configured limit). */
  maxNameLength: number;
  /** Longest group name, in characters. */
  maxGroupLength: number;
  /** Most groups one item may be in. */
  maxGroups: number;
}

export type RosterSetRequest =
  | { kind: "remove"; jid: Jid }
  | { kind: "update"; jid: Jid; name: string | null; groups: string[] };

function characters(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/** The comparison §2.1.2.5 suggests for duplicate groups: that of resourceparts (RFC 7622 §3.4). */
function groupKey(group: string): string {
  try {
    return opaqueString(group);
  } catch {
    return group;
  }
}

/** Reads the <query/> of a roster set, or throws the error §2.3.3 prescribes. */
export function parseRosterSet(query: Element, limits: RosterLimits): RosterSetRequest {
  const items = childElements(query).filter((c) => c.getName() === "item");
  if (items.length !== 1) throw new StanzaError("bad-request", "a roster set carries exactly one <item/>");
  const item = items[0];
  const jidText = item.attrs.jid;
  if (jidText === undefined || jidText === "") throw new StanzaError("bad-request", "the <item/> needs a 'jid'");
  const jid = tryParseJid(jidText);
  if (!jid) throw new StanzaError("jid-malformed", "the item's 'jid' is not a valid JID");
  // Subscriptions, probes and pushes all work on bare JIDs (RFC 6121 §3.1.1); an item for one
  // resource could never take part in them.
  if (!jid.isBare()) throw new StanzaError("bad-request", "roster items are bare JIDs");
  // §2.1.5: every 'subscription' value other than "remove" is ignored, as are 'ask' and 'approved'.
  if (item.attrs.subscription === "remove") return { kind: "remove", jid };

  // §2.4.1: an empty name is the same as no name.
  const name = item.attrs.name === undefined || item.attrs.name === "" ? null : item.attrs.name;
  if (name !== null && characters(name) > limits.maxNameLength) {
    throw new StanzaError("not-acceptable", `the name is longer than ${limits.maxNameLength} characters`);
  }
  const groups: string[] = [];
  const seen = new Set<string>();
  for (const el of childElements(item)) {
    if (el.getName() !== "group") continue;
    const group = el.getText();
    if (group === "") throw new StanzaError("not-acceptable", "a group name cannot be empty; leave the <group/> out instead");
    if (characters(group) > limits.maxGroupLength) {
      throw new StanzaError("not-acceptable", `a group name is longer than ${limits.maxGroupLength} characters`);
    }
    const key = groupKey(group);
    if (seen.has(key)) throw new StanzaError("bad-request", `the group "${group}" is listed twice`);
    seen.add(key);
    groups.push(group);
  }
  if (groups.length > limits.maxGroups) throw new StanzaError("not-acceptable", `an item can be in at most ${limits.maxGroups} groups`);
  return { kind: "update", jid, name, groups };
}

/** An <item/> as roster results and pushes show it (§2.1.2). */
export function itemElement(item: RosterItem): Element {
  const attrs: Record<string, string> = { jid: item.jid };
  if (item.name !== null) attrs.name = item.name;
  attrs.subscription = item.subscription;
  // §2.1.2.2: "Pending Out" is shown as ask='subscribe'; §2.1.2.1: pre-approval as approved='true'.
  if (item.askOut) attrs.ask = "subscribe";
  if (item.approved) attrs.approved = "true";
  return xml("item", attrs, ...item.groups.map((g) => xml("group", {}, g)));
}

/** The <item/> of a push announcing a removal (§2.5.2). */
export function removedItemElement(jid: string): Element {
  return xml("item", { jid, subscription: "remove" });
}

/** True when the two items would look the same to a client and to the state machine. */
export function sameItem(a: RosterItem | null, b: RosterItem | null): boolean {
  if (a === null || b === null) return a === b;
  return (
    a.jid === b.jid &&
    a.name === b.name &&
    a.subscription === b.subscription &&
    a.askOut === b.askOut &&
    a.pendingIn === b.pendingIn &&
    a.pendingInStanza === b.pendingInStanza &&
    a.approved === b.approved &&
    a.groups.length === b.groups.length &&
    a.groups.every((g, i) => g === b.groups[i])
  );
}
