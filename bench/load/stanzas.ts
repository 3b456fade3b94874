// The bytes the load generator sends, built once as strings: RFC 6120 stream header (§4.7),
// STARTTLS (§5.4.2.1), SASL (§6.4), resource binding (§7.6), initial presence (RFC 6121 §4.2),
// chat messages (RFC 6121 §5.2) optionally marked <no-store/> (XEP-0334 v0.3.0 §4.3), and the
// few stanzas of the muc scenario (XEP-0045 v1.34: joining without history §7.2.14, an instant
// room §10.1.2, groupchat messages §7.4, leaving §7.14).
// Message bodies carry the benchmark's own payload: the step, a sequence number and the time
// the message was meant to be sent, which is what latency is measured from (no coordinated
// omission: a message sent late because the generator or the server fell behind still counts
// its lateness).
import { escapeXml } from "./scanner.ts";

const NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls";
const NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl";
const NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind";
const NS_MUC = "http://jabber.org/protocol/muc";
const NS_MUC_OWNER = "http://jabber.org/protocol/muc#owner";
const NS_DATA = "jabber:x:data";

export function streamOpen(domain: string): string {
  return `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='${escapeXml(domain)}' version='1.0'>`;
}

export const STARTTLS = `<starttls xmlns='${NS_TLS}'/>`;
export const STREAM_CLOSE = "</stream:stream>";
export const INITIAL_PRESENCE = "<presence/>";
export const BIND_ID = "bench-bind";

export function saslAuth(mechanism: string, initialResponse: string): string {
  return `<auth xmlns='${NS_SASL}' mechanism='${escapeXml(mechanism)}'>${initialResponse}</auth>`;
}

export function saslResponse(data: string): string {
  return `<response xmlns='${NS_SASL}'>${data}</response>`;
}

export function bind(resource: string): string {
  return `<iq type='set' id='${BIND_ID}'><bind xmlns='${NS_BIND}'><resource>${escapeXml(resource)}</resource></bind></iq>`;
}

/** An empty result for a server's IQ get (XEP-0199 ping, mostly), so no server closes us as dead. */
export function iqResult(id: string, to: string | undefined): string {
  return `<iq type='result' id='${escapeXml(id)}'${to ? ` to='${escapeXml(to)}'` : ""}/>`;
}

/** A chat message to `to`, split around its body so that sending costs one concatenation. */
export interface MessageTemplate {
  readonly head: string;
  readonly tail: string;
}

export function messageTemplate(to: string, noStore: boolean): MessageTemplate {
  return {
    head: `<message to='${escapeXml(to)}' type='chat'><body>`,
    tail: `</body>${noStore ? "<no-store xmlns='urn:xmpp:hints'/>" : ""}</message>`,
  };
}

/** What a benchmark body says: which step sent it, its number, when it was due (µs, generator clock). */
export interface BodyPayload {
  step: number;
  seq: number;
  dueMicros: number;
}

const BODY_PREFIX = "bench ";

export function encodeBody(p: BodyPayload): string {
  return `${BODY_PREFIX}${p.step} ${p.seq} ${p.dueMicros}`;
}

/** The payload of a benchmark body, or null for any other text. */
export function decodeBody(text: string): BodyPayload | null {
  if (!text.startsWith(BODY_PREFIX)) return null;
  const parts = text.slice(BODY_PREFIX.length).split(" ");
  if (parts.length !== 3) return null;
  const [step, seq, dueMicros] = parts.map(Number);
  if (!Number.isSafeInteger(step) || !Number.isSafeInteger(seq) || !Number.isSafeInteger(dueMicros) || step < 0 || seq < 0) return null;
  return { step, seq, dueMicros };
}

/** XEP-0045 §7.2.14: join `occupantJid` (room@service/nick) and ask for no discussion history. */
export function mucJoin(occupantJid: string, id: string): string {
  return `<presence to='${escapeXml(occupantJid)}' id='${escapeXml(id)}'><x xmlns='${NS_MUC}'><history maxstanzas='0'/></x></presence>`;
}

/** XEP-0045 §10.1.2: the owner of a new room accepts the default configuration (an instant room). */
export function mucInstantRoom(room: string, id: string): string {
  return `<iq type='set' id='${escapeXml(id)}' to='${escapeXml(room)}'><query xmlns='${NS_MUC_OWNER}'><x xmlns='${NS_DATA}' type='submit'/></query></iq>`;
}

/** XEP-0045 §7.14: leave the room. */
export function mucLeave(occupantJid: string): string {
  return `<presence to='${escapeXml(occupantJid)}' type='unavailable'/>`;
}

/** A groupchat message to a room (XEP-0045 §7.4), split around its body like messageTemplate. */
export function groupchatTemplate(room: string): MessageTemplate {
  return { head: `<message to='${escapeXml(room)}' type='groupchat'><body>`, tail: "</body></message>" };
}
