// RFC 6121 §3.1.3: inbound subscription requests the user has not answered ("Pending In").
// They are kept outside the roster, because until the user approves, the contact's server "MUST
// NOT add an item for the user to the contact's roster"; a roster row could not be told apart from
// an item the user made. The complete stanza is kept, so that it can be delivered again each time
// the user becomes available, until the user answers. One request per contact is kept (the
// first), and the number and size are bounded, as the RFC's security warning asks.
import { Element, xml } from "../../../protocol/xml/element.ts";
import { serialize } from "../../../protocol/xml/serialize.ts";
import type { Jid } from "../../../protocol/jid.ts";
import type { JsonValue } from "../../core/storage/index.ts";
import type { ModuleStore } from "../../core/module.ts";

const KEY = "pending-in";
/** A stored request larger than this keeps only its addresses, type and id. */
const MAX_STORED_STANZA_CHARS = 4096;

type ElementJson = { name: string; attrs: Record<string, string>; children: Array<string | ElementJson> };

function toJson(el: Element): ElementJson {
  const attrs: Record<string, string> = {};
  for (const [k, v] of Object.entries(el.attrs)) if (v !== undefined && v !== null) attrs[k] = String(v);
  return { name: el.name, attrs, children: el.children.map((c) => (typeof c === "string" ? c : toJson(c))) };
}

function fromJson(j: ElementJson): Element {
  return xml(j.name, j.attrs, ...j.children.map((c) => (typeof c === "string" ? c : fromJson(c))));
}

function isElementJson(v: unknown): v is ElementJson {
  return typeof v === "object" && v !== null && typeof (v as ElementJson).name === "string" && Array.isArray((v as ElementJson).children);
}

export class PendingRequests {
  constructor(
    private readonly store: ModuleStore,
    private readonly maxPerAccount: number,
  ) {}

  /** The pending requests of an account: contact bare JID -> the subscribe stanza. */
  async list(account: Jid): Promise<Map<string, Element>> {
    const raw = await this.store.get(account, KEY);
    const out = new Map<string, Element>();
    if (raw && typeof raw === "object" && !Array.isArray(raw)) {
      for (const [contact, value] of Object.entries(raw)) if (isElementJson(value)) out.set(contact, fromJson(value));
    }
    return out;
  }

  async has(account: Jid, contact: string): Promise<boolean> {
    return (await this.list(account)).has(contact);
  }

  /** Records a request; false when the account already holds as many as it may. */
  async add(account: Jid, contact: string, stanza: Element): Promise<boolean> {
    const requests = await this.list(account);
    if (requests.has(contact)) return true;
    if (requests.size >= this.maxPerAccount) return false;
    const kept = serialize(stanza).length <= MAX_STORED_STANZA_CHARS
      ? stanza
      : xml("presence", { from: stanza.attrs.from, to: stanza.attrs.to, type: stanza.attrs.type, id: stanza.attrs.id });
    requests.set(contact, kept);
    await this.save(account, requests);
    return true;
  }

  async remove(account: Jid, contact: string): Promise<void> {
    const requests = await this.list(account);
    if (!requests.delete(contact)) return;
    await this.save(account, requests);
  }

  private async save(account: Jid, requests: Map<string, Element>): Promise<void> {
    if (requests.size === 0) return this.store.delete(account, KEY);
    const value: Record<string, JsonValue> = {};
    for (const [contact, el] of requests) value[contact] = toJson(el) as unknown as JsonValue;
    await this.store.set(account, KEY, value);
  }
}
