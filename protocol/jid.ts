// XMPP addresses: RFC 7622 (JIDs). Localpart: PRECIS UsernameCaseMapped (RFC 8265 §3.3) plus
// the §3.3.1 prohibited characters; resourcepart: OpaqueString (RFC 8265 §4.2); domainpart:
// IDNA2008 U-labels by UTS #46 (node:url, the WHATWG URL host rules) or an IP literal (§3.2).
//
// Choices within the RFC: ASCII labels must be LDH without a leading or trailing hyphen (§3.2.1
// "NR-LDH labels or U-labels"), but "--" in positions 3–4 is let through as UTS #46 does with
// CheckHyphens off; an all-numeric last label is refused (it would be read as an IPv4 address);
// IPv4 literals are dotted-quad decimal without leading zeros; IPv6 literals are written in the
// WHATWG (RFC 5952-style) canonical form. Input far longer than any valid JID is refused before
// any Unicode work, so a hostile string costs little.

import { domainToASCII, domainToUnicode } from "node:url";
import { opaqueString, PrecisError, usernameCaseMapped } from "./precis.ts";

export type JidPart = "localpart" | "domainpart" | "resourcepart";

export class JidError extends Error {
  readonly condition = "jid-malformed";
  readonly part: JidPart | undefined;
  constructor(message: string, part?: JidPart, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = "JidError";
    this.part = part;
  }
}

const MAX_PART_OCTETS = 1023;
// NFC shrinks a part by at most 4/3 from UTF-16 units to UTF-8 octets (a precomposed Greek letter
// from four code units), so a longer part cannot normalise to 1023 octets. (UTS #46 drops ignored
// code points from domains, but nobody legitimately sends thousands of them.)
const MAX_RAW_PART_LENGTH = 4 * MAX_PART_OCTETS;
const MAX_RAW_JID_LENGTH = 3 * MAX_RAW_PART_LENGTH + 2;

// Only parseJid and makeJid may build a Jid, so every Jid holds normalised parts.
const normalisedParts: unique symbol = Symbol("normalised JID parts");

export class Jid {
  readonly local: string;
  readonly domain: string;
  readonly resource: string;
  // Private fields are not properties, so they stay writable for lazy caching after freeze().
  #bare: Jid | undefined;
  readonly #text: string;

  constructor(local: string, domain: string, resource: string, key: typeof normalisedParts) {
    if (key !== normalisedParts) throw new TypeError("use parseJid() or makeJid() to build a Jid");
    this.local = local;
    this.domain = domain;
    this.resource = resource;
    this.#bare = resource === "" ? this : undefined;
    this.#text = (local === "" ? "" : local + "@") + domain + (resource === "" ? "" : "/" + resource);
    Object.freeze(this);
  }

  /** The JID without its resourcepart (the account, or the domain). */
  get bare(): Jid {
    return (this.#bare ??= new Jid(this.local, this.domain, "", normalisedParts));
  }

  isBare(): boolean {
    return this.resource === "";
  }

  /**
   * The full JID of this JID's account with `resource` (normalised; "" gives the bare JID). Its
   * `bare` is this bare JID itself, and the parts are shared: a session that keeps both its
   * account and its full JID holds one bare JID, not two.
   */
  withResource(resource: string): Jid {
    if (!this.isBare()) return this.bare.withResource(resource);
    if (resource === "") return this;
    const full = new Jid(this.local, this.domain, normaliseResourcepart(resource), normalisedParts);
    full.#bare = this;
    return full;
  }

  /** Equality of the normalised forms, which is what RFC 7622 §3.1 comparison means. */
  equals(other: Jid | null | undefined): boolean {
    return other === this || (other instanceof Jid && other.#text === this.#text);
  }

  toString(): string {
    return this.#text;
  }
}

function utf8Length(s: string): number {
  return Buffer.byteLength(s, "utf8");
}

function checkLength(value: string, part: JidPart): string {
  if (value.length === 0) throw new JidError(`the ${part} is empty`, part);
  if (utf8Length(value) > MAX_PART_OCTETS) throw new JidError(`the ${part} is longer than ${MAX_PART_OCTETS} octets`, part);
  return value;
}

function precisPart(raw: string, part: JidPart, profile: (s: string) => string): string {
  if (raw.length === 0) throw new JidError(`the ${part} is empty`, part);
  if (raw.length > MAX_RAW_PART_LENGTH) throw new JidError(`the ${part} is too long`, part);
  try {
    return checkLength(profile(raw), part);
  } catch (error) {
    if (error instanceof PrecisError) throw new JidError(`invalid ${part}: ${error.message}`, part, error);
    throw error;
  }
}

// RFC 7622 §3.3.1: allowed by the IdentifierClass, but not in a localpart.
const LOCALPART_PROHIBITED = /["&'/:<>@]/;

function normaliseLocalpart(raw: string): string {
  const local = precisPart(raw, "localpart", usernameCaseMapped);
  if (LOCALPART_PROHIBITED.test(local)) {
    throw new JidError(`the localpart contains one of " & ' / : < > @`, "localpart");
  }
  return local;
}

function normaliseResourcepart(raw: string): string {
  return precisPart(raw, "resourcepart", opaqueString);
}

// Label separators of RFC 3490 §3.1: FULL STOP, IDEOGRAPHIC FULL STOP, FULLWIDTH FULL STOP,
// HALFWIDTH IDEOGRAPHIC FULL STOP.
const TRAILING_LABEL_SEPARATOR = /[.\u3002\uff0e\uff61]$/;
const IPV4 = /^(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})$/;
const IPV6_LITERAL = /^\[[0-9A-Fa-f:.]+\]$/;
// ASCII that UTS #46 would pass but that no LDH label holds; refused before node:url sees it,
// because the WHATWG host parser percent-decodes and reads numbers in other bases.
const NON_LDH_ASCII = /[\x00-\x2c\x2f\x3a-\x40\x5b-\x60\x7b-\x7f]/;
const LDH_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const NUMERIC_LABEL = /^[0-9]+$/;
const PLAIN_ASCII_NAME = /^[A-Za-z0-9.-]+$/;
const A_LABEL = /(?:^|\.)xn--/i;

function domainError(message: string): JidError {
  return new JidError(`invalid domainpart: ${message}`, "domainpart");
}

function normaliseDomainpart(raw: string): string {
  if (raw.length > MAX_RAW_PART_LENGTH) throw domainError("too long");
  // §3.2: a trailing label separator is stripped (one: "example.com.." stays invalid).
  const domain = raw.replace(TRAILING_LABEL_SEPARATOR, "");
  if (domain.length === 0) throw new JidError("the domainpart is empty", "domainpart");

  if (domain.startsWith("[")) {
    if (!IPV6_LITERAL.test(domain)) throw domainError("malformed IPv6 literal");
    let host: string;
    try {
      host = new URL(`http://${domain}/`).hostname;
    } catch {
      throw domainError("malformed IPv6 literal");
    }
    return host;
  }

  const ipv4 = IPV4.exec(domain);
  if (ipv4) {
    if (ipv4.slice(1).some((octet) => Number(octet) > 255)) throw domainError("IPv4 octet above 255");
    return domain;
  }

  if (NON_LDH_ASCII.test(domain)) throw domainError("only letters, digits, hyphens and dots are allowed");
  // Plain LDH names (nearly all traffic) need no UTS #46 processing beyond lower-casing.
  const plain = PLAIN_ASCII_NAME.test(domain) && !A_LABEL.test(domain);
  const ascii = plain ? domain.toLowerCase() : domainToASCII(domain);
  if (ascii === "") throw domainError("not a valid internationalised domain name");
  if (ascii.length > 253) throw domainError("longer than 253 octets in A-label form");
  const labels = ascii.split(".");
  for (const label of labels) {
    if (label.length === 0) throw domainError("empty label");
    if (label.length > 63) throw domainError("label longer than 63 octets");
    if (!LDH_LABEL.test(label)) throw domainError(`label "${label}" is not letters, digits and inner hyphens`);
  }
  if (NUMERIC_LABEL.test(labels[labels.length - 1])) throw domainError("the last label is numeric");
  return plain ? ascii : checkLength(domainToUnicode(ascii), "domainpart");
}

/** Builds a JID from separate parts, normalising each ('' or undefined for an absent part). */
export function makeJid(local: string, domain: string, resource?: string): Jid {
  return new Jid(
    local === "" ? "" : normaliseLocalpart(local),
    normaliseDomainpart(domain),
    resource === undefined || resource === "" ? "" : normaliseResourcepart(resource),
    normalisedParts,
  );
}

function parseUncached(s: string): Jid {
  if (s.length > MAX_RAW_JID_LENGTH) throw new JidError("the JID is too long");
  // §3.1: the resourcepart starts at the first '/'; the localpart ends at the first '@' before it.
  const slash = s.indexOf("/");
  const head = slash === -1 ? s : s.slice(0, slash);
  const at = head.indexOf("@");
  return new Jid(
    at === -1 ? "" : normaliseLocalpart(head.slice(0, at)),
    normaliseDomainpart(at === -1 ? head : head.slice(at + 1)),
    slash === -1 ? "" : normaliseResourcepart(s.slice(slash + 1)),
    normalisedParts,
  );
}

// Routing parses the same few thousand addresses over and over; Jids are frozen, so sharing is
// safe. Two generations bound the cache at CACHE_LIMIT entries with O(1) upkeep (deleting the
// oldest key of one big Map is slow in V8) and keep whatever is still in use.
const CACHE_LIMIT = 10_000;
// Longer strings are not kept, so hostile input cannot make the cache hold more than a few MB.
const CACHE_KEY_LIMIT = 256;
let youngCache = new Map<string, Jid>();
let oldCache = new Map<string, Jid>();

function cached(key: string): Jid | undefined {
  const young = youngCache.get(key);
  if (young) return young;
  const old = oldCache.get(key);
  if (old) remember(key, old);
  return old;
}

function remember(key: string, jid: Jid): void {
  if (key.length > CACHE_KEY_LIMIT) return;
  if (youngCache.size >= CACHE_LIMIT / 2) {
    oldCache = youngCache;
    youngCache = new Map();
  }
  youngCache.set(key, jid);
}

/** Parses and normalises a JID (RFC 7622 §3); throws JidError (jid-malformed) if it is not one. */
export function parseJid(s: string): Jid {
  if (typeof s !== "string") throw new JidError("a JID must be a string");
  const hit = cached(s);
  if (hit) return hit;
  const jid = parseUncached(s);
  remember(s, jid);
  const canonical = jid.toString();
  if (canonical !== s) remember(canonical, jid);
  return jid;
}

/** parseJid, with null instead of an error. */
export function tryParseJid(s: string): Jid | null {
  try {
    return parseJid(s);
  } catch (error) {
    if (error instanceof JidError) return null;
    throw error;
  }
}
