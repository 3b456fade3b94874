// XEP-0059: Result Set Management, version 1.0.
// Requests are read strictly (a malformed <set/> is StanzaError "bad-request"), because a
// paging request we misread silently returns the wrong page.
import { Element, xml, childElements } from "./xml/element.ts";
import { NS } from "./ns.ts";
import { StanzaError } from "./errors.ts";

export interface RsmRequest {
  /** Page size; 0 asks for the count only (§2.6). The caller applies its own ceiling. */
  max?: number;
  /** The UID to page backwards from, or true for an empty <before/>: "the last page" (§2.4). */
  before?: string | true;
  /** The UID to page forwards from. */
  after?: string;
  /** Absolute position of the first item wanted (§2.5). */
  index?: number;
}

export interface RsmResponse {
  /** UID of the first item of the page; omit both first and last for an empty page (§2.2). */
  first?: string;
  /** Position of `first` in the full set. */
  firstIndex?: number;
  last?: string;
  /** Size of the full set (may be approximate). */
  count?: number;
}

/** The schema types max, index and count as xs:int. */
const XS_INT_MAX = 2 ** 31 - 1;

const REQUEST_CHILDREN = new Set(["max", "before", "after", "index"]);

/**
 * Reads a request <set xmlns="http://jabber.org/protocol/rsm"/>: null when there is none,
 * otherwise its paging fields. Throws StanzaError("bad-request") for an element that is not
 * an RSM set, a repeated child, or a max/index that is not a non-negative integer.
 * Both <after/> and <before/> may be present (XEP-0313 uses that for a range).
 * An empty <after/> names no item, so it is read as absent ("from the start").
 */
export function parseRsmRequest(set?: Element): RsmRequest | null {
  if (set === undefined) return null;
  assertRsmSet(set);
  const request: RsmRequest = {};
  const seen = new Set<string>();
  for (const child of childElements(set)) {
    const name = child.getName();
    if (child.getNS() !== NS.rsm || !REQUEST_CHILDREN.has(name)) continue;
    if (seen.has(name)) throw new StanzaError("bad-request", `RSM <${name}/> appears more than once`);
    seen.add(name);
    const text = child.getText();
    switch (name) {
      case "max":
        request.max = parseCount(text, "max");
        break;
      case "index":
        request.index = parseCount(text, "index");
        break;
      case "before":
        request.before = text === "" ? true : text;
        break;
      case "after":
        if (text !== "") request.after = text;
        break;
    }
  }
  return request;
}

/** Writes a request <set/>, e.g. for querying a remote archive. */
export function buildRsmRequest(request: RsmRequest): Element {
  const set = xml("set", { xmlns: NS.rsm });
  if (request.max !== undefined) set.append(xml("max", {}, formatCount(request.max, "max")));
  if (request.after !== undefined) set.append(xml("after", {}, request.after));
  if (request.before !== undefined) set.append(xml("before", {}, request.before === true ? null : request.before));
  if (request.index !== undefined) set.append(xml("index", {}, formatCount(request.index, "index")));
  return set;
}

/** Writes the response <set/> that goes after the page's items. */
export function buildRsmResponse(response: RsmResponse): Element {
  const set = xml("set", { xmlns: NS.rsm });
  if (response.first !== undefined) {
    const index = response.firstIndex === undefined ? undefined : formatCount(response.firstIndex, "firstIndex");
    set.append(xml("first", { index }, response.first));
  }
  if (response.last !== undefined) set.append(xml("last", {}, response.last));
  if (response.count !== undefined) set.append(xml("count", {}, formatCount(response.count, "count")));
  return set;
}

/**
 * Reads a response <set/>: null when there is none. Throws StanzaError("bad-request") for a
 * count or index that is not a non-negative integer.
 */
export function parseRsmResponse(set?: Element): RsmResponse | null {
  if (set === undefined) return null;
  assertRsmSet(set);
  const response: RsmResponse = {};
  const first = set.getChild("first", NS.rsm);
  if (first) {
    response.first = first.getText();
    if (first.attrs.index !== undefined) response.firstIndex = parseCount(first.attrs.index, "index");
  }
  const last = set.getChild("last", NS.rsm);
  if (last) response.last = last.getText();
  const count = set.getChild("count", NS.rsm);
  if (count) response.count = parseCount(count.getText(), "count");
  return response;
}

function assertRsmSet(set: Element): void {
  if (set.getName() !== "set" || set.getNS() !== NS.rsm) {
    throw new StanzaError("bad-request", "expected <set xmlns='http://jabber.org/protocol/rsm'/>");
  }
}

/** A non-negative xs:int; xs:int allows surrounding whitespace and a leading "+". */
function parseCount(text: string, what: string): number {
  const trimmed = text.trim();
  if (!/^\+?\d{1,10}$/.test(trimmed)) {
    throw new StanzaError("bad-request", `RSM ${what} must be a non-negative integer`);
  }
  const n = Number(trimmed);
  if (n > XS_INT_MAX) throw new StanzaError("bad-request", `RSM ${what} is too large`);
  return n;
}

function formatCount(n: number, what: string): string {
  if (!Number.isSafeInteger(n) || n < 0 || n > XS_INT_MAX) {
    throw new RangeError(`RSM ${what} must be a non-negative 32-bit integer, got ${n}`);
  }
  return String(n);
}
