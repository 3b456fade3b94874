// XEP-0313: Message Archive Management, version 0.7.5 (urn:xmpp:mam:2 and its #extended
// feature: before-id, after-id, ids, flipped pages, metadata), with the archiving preferences
// of XEP-0441 v0.2.0 (split out of XEP-0313 0.7), the stanza-id of XEP-0359 v0.7, the storage
// hints of XEP-0334 v0.3.0, and what XEP-0160 v1.0.1 §3 and XEP-0085 call content worth storing.
// Pure codecs: queries and preferences are read strictly (StanzaError on anything malformed),
// results are built here so that every module writes them alike.
import { Element, xml, childElements, clone } from "./xml/element.ts";
import { NS } from "./ns.ts";
import { StanzaError } from "./errors.ts";
import { tryParseJid, type Jid } from "./jid.ts";
import { parseDateTime, formatDateTime } from "./datetime.ts";
import { buildForm, formType, getValues, parseForm, FORM_TYPE_FIELD, type DataForm } from "./forms.ts";
import { buildRsmResponse, parseRsmRequest, type RsmRequest, type RsmResponse } from "./rsm.ts";
import { delayElement } from "./delay.ts";

// ---- queries (§4) ----------------------------------------------------------------------------

export interface MamQuery {
  /** Echoed in every result so the client can match them (§4.2). */
  queryId?: string;
  with?: Jid;
  start?: Date;
  end?: Date;
  /** #extended §4.1.3: bounds by archive UID, exclusive; they do not change the paging direction. */
  beforeId?: string;
  afterId?: string;
  /** #extended: fetch exactly these UIDs. */
  ids?: string[];
  rsm: RsmRequest | null;
  /** #extended §4.3.4: send the page's results newest first. */
  flipPage: boolean;
}

const QUERY_FIELDS = new Set([FORM_TYPE_FIELD, "with", "start", "end", "before-id", "after-id", "ids"]);

/** The form a client fetches with an IQ get (§4.1.5); the #extended fields only when supported. */
export function mamQueryForm(extended = true): Element {
  const form: DataForm = {
    type: "form",
    fields: [
      { var: FORM_TYPE_FIELD, type: "hidden", values: [NS.mam] },
      { var: "with", type: "jid-single", values: [] },
      { var: "start", type: "text-single", values: [] },
      { var: "end", type: "text-single", values: [] },
    ],
  };
  if (extended) {
    form.fields.push({ var: "before-id", type: "text-single", values: [] }, { var: "after-id", type: "text-single", values: [] });
  }
  const x = buildForm(form);
  if (extended) {
    // §4.1.5: the ids list is open; XEP-0122 says so instead of listing every UID.
    x.append(
      xml(
        "field",
        { var: "ids", type: "list-multi" },
        xml("validate", { xmlns: "http://jabber.org/protocol/xdata-validate", datatype: "xs:string" }, xml("open")),
      ),
    );
  }
  return xml("query", { xmlns: NS.mam }, x);
}

/**
 * Reads a <query xmlns="urn:xmpp:mam:2"/> of an IQ set. Throws StanzaError: bad-request for a
 * malformed form, RSM set, JID or date; feature-not-implemented for a field this server does
 * not know (§4.1.5) or a pubsub 'node' (XEP-0442, not served here).
 */
export function parseMamQuery(query: Element): MamQuery {
  if (query.getName() !== "query" || query.getNS() !== NS.mam) throw new StanzaError("bad-request", "expected <query xmlns='urn:xmpp:mam:2'/>");
  if (query.attrs.node !== undefined) throw new StanzaError("feature-not-implemented", "pubsub archives are not served here");
  const result: MamQuery = { rsm: null, flipPage: false };
  if (query.attrs.queryid !== undefined) result.queryId = query.attrs.queryid;
  let sawForm = false;
  let sawSet = false;
  for (const child of childElements(query)) {
    const ns = child.getNS();
    const name = child.getName();
    if (ns === NS.dataForms && name === "x") {
      if (sawForm) throw new StanzaError("bad-request", "more than one data form");
      sawForm = true;
      readForm(parseForm(withIdsAsList(child)), result);
    } else if (ns === NS.rsm && name === "set") {
      if (sawSet) throw new StanzaError("bad-request", "more than one RSM set");
      sawSet = true;
      result.rsm = parseRsmRequest(child);
    } else if (ns === NS.mam && name === "flip-page") {
      result.flipPage = true;
    }
  }
  return result;
}

/**
 * Submissions often leave field types out, and an untyped field is text-single, which takes one
 * value; 'ids' is list-multi by definition (§4.1.5), so it is read as one whatever was written.
 */
function withIdsAsList(x: Element): Element {
  const ids = x.getChildByAttr("var", "ids");
  if (!ids || ids.attrs.type !== undefined) return x;
  const copy = clone(x);
  copy.getChildByAttr("var", "ids")!.attrs.type = "list-multi";
  return copy;
}

function readForm(form: DataForm, into: MamQuery): void {
  if (form.type !== "submit") throw new StanzaError("bad-request", "the query form must be of type submit");
  const type = formType(form);
  if (type !== undefined && type !== NS.mam) throw new StanzaError("bad-request", `FORM_TYPE must be ${NS.mam}`);
  for (const field of form.fields) {
    if (field.var !== undefined && !QUERY_FIELDS.has(field.var)) {
      throw new StanzaError("feature-not-implemented", `the field ${field.var} is not supported`);
    }
  }
  const single = (name: string): string | undefined => {
    const values = getValues(form, name);
    if (values.length > 1) throw new StanzaError("bad-request", `${name} takes one value`);
    const value = values[0]?.trim();
    return value === "" ? undefined : value;
  };
  const withText = single("with");
  if (withText !== undefined) {
    const jid = tryParseJid(withText);
    if (!jid) throw new StanzaError("bad-request", "with is not a valid JID");
    into.with = jid;
  }
  for (const name of ["start", "end"] as const) {
    const text = single(name);
    if (text === undefined) continue;
    const date = parseDateTime(text);
    if (!date) throw new StanzaError("bad-request", `${name} is not a XEP-0082 DateTime`);
    into[name] = date;
  }
  const beforeId = single("before-id");
  if (beforeId !== undefined) into.beforeId = beforeId;
  const afterId = single("after-id");
  if (afterId !== undefined) into.afterId = afterId;
  if (form.fields.some((f) => f.var === "ids")) {
    into.ids = [...new Set(getValues(form, "ids").map((v) => v.trim()).filter((v) => v !== ""))];
  }
}

export interface MamResult {
  /** The querying session's full JID. */
  to: string;
  /** The archive's address (the account's bare JID). */
  from: string;
  /** The result message's own stanza id. */
  messageId?: string;
  queryId?: string;
  /** The archive UID. */
  archiveId: string;
  /** When the server archived the message. */
  stamp: Date;
  /** The archived stanza; it is placed inside <forwarded/> as it is. */
  message: Element;
}

/** One result (§4.2): the archived message forwarded (XEP-0297) with its archive stamp. */
export function mamResultMessage(result: MamResult): Element {
  return xml(
    "message",
    { to: result.to, from: result.from, id: result.messageId },
    xml(
      "result",
      { xmlns: NS.mam, queryid: result.queryId, id: result.archiveId },
      xml("forwarded", { xmlns: NS.forward }, delayElement(result.stamp), result.message),
    ),
  );
}

/** The IQ result's payload after the results (§4.2, §4.3.3). */
export function mamFin(complete: boolean, rsm: RsmResponse): Element {
  return xml("fin", { xmlns: NS.mam, complete: complete ? "true" : undefined }, buildRsmResponse(rsm));
}

export interface ArchiveEdge {
  id: string;
  stamp: Date;
}

/** #extended §5 metadata: the first and last message of the archive; empty when it is empty. */
export function mamMetadata(edges: { start: ArchiveEdge; end: ArchiveEdge } | null): Element {
  const metadata = xml("metadata", { xmlns: NS.mam });
  if (edges) {
    metadata.append(xml("start", { id: edges.start.id, timestamp: formatDateTime(edges.start.stamp) }));
    metadata.append(xml("end", { id: edges.end.id, timestamp: formatDateTime(edges.end.stamp) }));
  }
  return metadata;
}

// ---- preferences (XEP-0441) ------------------------------------------------------------------

export type ArchiveDefault = "always" | "never" | "roster";

export interface MamPrefs {
  default: ArchiveDefault;
  /** JIDs as written by parsePrefs: normalised, bare or full. */
  always: string[];
  never: string[];
}

const DEFAULTS = new Set<string>(["always", "never", "roster"]);

/** Reads <prefs/> of an IQ set. Throws StanzaError("bad-request") for a bad default or JID. */
export function parsePrefs(prefs: Element): MamPrefs {
  if (prefs.getName() !== "prefs" || prefs.getNS() !== NS.mam) throw new StanzaError("bad-request", "expected <prefs xmlns='urn:xmpp:mam:2'/>");
  const def = prefs.attrs.default;
  if (def === undefined || !DEFAULTS.has(def)) throw new StanzaError("bad-request", "default must be always, never or roster");
  const list = (name: "always" | "never"): string[] => {
    const out: string[] = [];
    for (const holder of prefs.getChildren(name, NS.mam)) {
      for (const el of holder.getChildren("jid", NS.mam)) {
        const jid = tryParseJid(el.getText().trim());
        if (!jid) throw new StanzaError("bad-request", `<${name}/> holds an invalid JID`);
        const text = jid.toString();
        if (!out.includes(text)) out.push(text);
      }
    }
    return out;
  };
  const always = list("always");
  const never = list("never");
  // A JID in both lists is a contradiction; the stricter list wins, as it protects privacy.
  return { default: def as ArchiveDefault, always: always.filter((j) => !never.includes(j)), never };
}

export function buildPrefs(prefs: MamPrefs): Element {
  const jids = (list: string[]) => list.map((j) => xml("jid", {}, j));
  return xml("prefs", { xmlns: NS.mam, default: prefs.default }, xml("always", {}, ...jids(prefs.always)), xml("never", {}, ...jids(prefs.never)));
}

/**
 * XEP-0441 §2.4: whether a message with `peer` is archived. A listed full JID matches only that
 * resource; a listed bare JID matches every resource. `inRoster` is asked only for "roster".
 */
export async function archivedByPrefs(prefs: MamPrefs, peer: Jid, inRoster: (bare: string) => boolean | Promise<boolean>): Promise<boolean> {
  const full = peer.toString();
  const bare = peer.bare.toString();
  if (listedIn(prefs.never, full, bare)) return false;
  if (listedIn(prefs.always, full, bare)) return true;
  if (prefs.default === "always") return true;
  if (prefs.default === "never") return false;
  return inRoster(bare);
}

function listedIn(list: readonly string[], full: string, bare: string): boolean {
  for (const j of list) if (j === full || j === bare) return true;
  return false;
}

// ---- stanza-ids (XEP-0359) -------------------------------------------------------------------

/** Removes every <stanza-id/> claiming to be by `by` (§4: a client or peer cannot set it). */
export function stripStanzaIds(stanza: Element, by: string): void {
  // Runs on every message, in both directions, and almost never finds one: nothing is copied then.
  const children = stanza.children;
  let kept: typeof children | null = null;
  for (let i = 0; i < children.length; i++) {
    const c = children[i]!;
    const spoof = typeof c !== "string" && c.attrs.by === by && c.getName() === "stanza-id" && c.getNS() === NS.sid;
    if (spoof) kept ??= children.slice(0, i);
    else kept?.push(c);
  }
  if (kept) stanza.children = kept;
}

/** Adds <stanza-id xmlns="urn:xmpp:sid:0" id by/> (XEP-0313 §3.5). */
export function addStanzaId(stanza: Element, id: string, by: string): void {
  // The Element itself rather than xml(), which also deletes two JSX props from the attributes
  // and converts each with toString: this runs for each archived copy.
  stanza.cnode(new Element("stanza-id", { xmlns: NS.sid, id, by }));
}

/** The id of the <stanza-id/> by `by`, if the stanza carries one. */
export function stanzaIdBy(stanza: Element, by: string): string | undefined {
  return childElements(stanza).find((c) => c.getName() === "stanza-id" && c.getNS() === NS.sid && c.attrs.by === by)?.attrs.id;
}

// ---- what is worth storing (XEP-0334, XEP-0160 §3, XEP-0085) ----------------------------------

export interface StorageHints {
  /** Neither archived nor stored offline. */
  noStore: boolean;
  /** Not archived; may still wait in offline storage. */
  noPermanentStore: boolean;
  /** Store it even if it would not otherwise be. */
  store: boolean;
}

export function storageHints(stanza: Element): StorageHints {
  // One pass over the children, and no closure: this runs for every message archived. (Under
  // tsx, which keeps function names, a named inner closure costs a defineProperty per call.)
  const hints: StorageHints = { noStore: false, noPermanentStore: false, store: false };
  for (const child of stanza.children) {
    if (typeof child === "string" || child.getNS() !== NS.hints) continue;
    const name = child.getName();
    if (name === "no-store") hints.noStore = true;
    else if (name === "no-permanent-store") hints.noPermanentStore = true;
    else if (name === "store") hints.store = true;
  }
  return hints;
}

/**
 * Whether a message carries anything beyond state: chat states (XEP-0085, which XEP-0160 §3
 * says not to store), hints, ids, a thread, a delay or an encryption marker alone are not
 * content; a body, a receipt or marker (XEP-0184, XEP-0333), an encrypted payload, a reaction,
 * a correction or any other payload is.
 */
export function carriesContent(stanza: Element): boolean {
  for (const child of childElements(stanza)) {
    const ns = child.getNS();
    const name = child.getName();
    if (ns === NS.chatStates || ns === NS.hints || ns === NS.sid || ns === NS.delay || ns === NS.eme) continue;
    if (name === "thread" && (ns === NS.client || ns === NS.server)) continue;
    return true;
  }
  return false;
}
