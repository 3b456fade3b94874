// Test support: what a client receives, recognised the way RFC 6120 §8 (stanza semantics, §8.3
// stanza errors) and RFC 6121 §2.1.6 (roster pushes) and §4 (presence) describe it.
import assert from "node:assert/strict";
import { xml, type Element } from "../../protocol/xml/element.ts";
import { NS } from "../../protocol/ns.ts";
import { parseStanzaError } from "../../protocol/errors.ts";
import type { XmppClient } from "../../conformance/client/client.ts";

/** Presence from exactly `from` of `type` (undefined: available), with that status text if given. */
export function isPresence(from: string, type: string | undefined, status?: string) {
  return (el: Element) =>
    el.name === "presence" && el.attrs.from === from && el.attrs.type === type && (status === undefined || el.getChildText("status") === status);
}

/** A roster push (RFC 6121 §2.1.6) about `jid`. */
export function isRosterPush(jid: string) {
  return (el: Element) => el.name === "iq" && el.attrs.type === "set" && el.getChild("query", NS.roster)?.getChild("item")?.attrs.jid === jid;
}

/**
 * Waits for the roster push about `jid` and acknowledges it, as RFC 6121 §2.1.6 asks of a
 * client; returns the push.
 */
export async function acknowledgedPush(c: XmppClient, jid: string): Promise<Element> {
  const iq = await c.next(isRosterPush(jid));
  c.send(xml("iq", { type: "result", id: iq.attrs.id }));
  return iq;
}

/** The item a roster push carries. */
export function pushedItem(push: Element): Element {
  return push.getChild("query", NS.roster)!.getChild("item")!;
}

/** Asserts that `reply` is an error stanza with the defined condition `condition`. */
export function assertError(reply: Element, condition: string): void {
  assert.equal(reply.attrs.type, "error");
  assert.equal(parseStanzaError(reply)?.condition, condition);
}
