// Shared by the MUC specs (XEP-0045): what a client does to be in a room, written once.
import { xml, type Element } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import { parseStanzaError } from "../../../protocol/errors.ts";
import type { XmppClient } from "../../../conformance/client/client.ts";
import type { TestServer } from "../../support/server.ts";

export interface JoinOptions {
  password?: string;
  /** XEP-0045 §7.2.14 history limits (maxstanzas, maxchars, seconds, since). */
  history?: Record<string, string>;
  id?: string;
}

/** Anything the room or one of its occupants sent. */
export const fromRoom = (room: string) => (el: Element) => (el.attrs.from ?? "").split("/")[0] === room;

/** §7.2.2: the presence that asks to enter `room` as `nick`. */
export function joinPresence(room: string, nick: string, opts: JoinOptions = {}): Element {
  const x = xml("x", { xmlns: NS.muc });
  if (opts.password !== undefined) x.append(xml("password", {}, opts.password));
  if (opts.history) x.append(xml("history", opts.history));
  return xml("presence", { to: `${room}/${nick}`, id: opts.id }, x);
}

/**
 * Enters the room and returns every stanza from it up to and including the subject (§7.2.16:
 * the subject ends the room's greeting), in order; throws the condition of an error presence.
 */
export async function joinRoom(c: XmppClient, room: string, nick: string, opts: JoinOptions = {}): Promise<Element[]> {
  c.send(joinPresence(room, nick, opts));
  const seen: Element[] = [];
  for (let i = 0; i < 500; i++) {
    const el = await c.next(fromRoom(room));
    seen.push(el);
    if (el.attrs.type === "error") throw new Error(`join failed: ${parseStanzaError(el)?.condition}`);
    if (el.name === "message" && el.getChild("subject") && !el.getChild("body")) return seen;
  }
  throw new Error("no subject");
}

/** A client of `user` logged in and available (initial presence sent). */
export async function available(t: TestServer, user: string, resource = "r"): Promise<XmppClient> {
  const c = await t.login(user, { resource });
  c.send(xml("presence"));
  return c;
}
