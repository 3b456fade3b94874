// Serialisation of Elements to XML 1.0 text for XMPP streams (RFC 6120 §4.8, §11).
// Escaping is chosen so that parsing the output gives back the same Element exactly:
// '\r' in text and '\t' '\n' '\r' in attribute values are written as character references,
// because a parser would otherwise normalise them (XML 1.0 §2.11, §3.3.3). Characters that
// XML cannot carry at all (most C0 controls, lone surrogates, U+FFFE/U+FFFF) are replaced by
// U+FFFD rather than producing a stream the peer must reject.
import type { Element, Node } from "./element.ts";

const TEXT_SPECIAL = /[&<>\r]/;
const ATTR_SPECIAL = /[&<>"\t\n\r]/;
// eslint-disable-next-line no-control-regex
const ILLEGAL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
// eslint-disable-next-line no-control-regex
const HAS_ILLEGAL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF\uD800-\uDFFF]/;

function clean(s: string): string {
  return HAS_ILLEGAL.test(s) ? s.replace(ILLEGAL, "\uFFFD") : s;
}

const TEXT_MAP: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;" };
const ATTR_MAP: Record<string, string> = {
  "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\t": "&#9;", "\n": "&#10;", "\r": "&#13;",
};

/**
 * String.prototype.charCodeAt, called as charCodeAt.call(s, i) in the loops below. Written
 * `s.charCodeAt(i)`, the method is looked up on `s` at every character, and once a server has
 * passed strings of several kinds through a loop (flat, concatenated, sliced, two-byte), V8's
 * optimised code makes that lookup a call to its generic LoadIC: in the archived-chat profile,
 * the largest single item of the event loop (6% of it), and 5× slower than this in a test with
 * mixed strings. The function itself is fixed, so nothing is looked up; a module-level constant
 * (not an import) lets the compiler inline it.
 */
const charCodeAt = String.prototype.charCodeAt;

/**
 * Whether `s` can be written as it is: no character XML cannot carry and none that must be
 * escaped (`attr` adds the quote and the whitespace a parser would normalise in a value). Most
 * strings of a stanza are short and plain, and a scan of their char codes costs a fraction of
 * running the two regular expressions below on them.
 */
function plain(s: string, attr: boolean): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = charCodeAt.call(s, i);
    if (c < 0x20) {
      if (c === 0x0a || c === 0x09 ? attr : true) return false;
    } else if (c <= 0x3e) {
      if (c === 0x26 || c === 0x3c || c === 0x3e || (c === 0x22 && attr)) return false;
    } else if (c >= 0xd800 && (c <= 0xdfff || c >= 0xfffe)) {
      return false;
    }
  }
  return true;
}

export function escapeText(s: string): string {
  if (plain(s, false)) return s;
  s = clean(s);
  return TEXT_SPECIAL.test(s) ? s.replace(/[&<>\r]/g, (c) => TEXT_MAP[c]) : s;
}

export function escapeAttr(s: string): string {
  if (plain(s, true)) return s;
  s = clean(s);
  return ATTR_SPECIAL.test(s) ? s.replace(/[&<>"\t\n\r]/g, (c) => ATTR_MAP[c]) : s;
}

/** The attributes as they go in an opening tag, each with its leading space; `skip` is left out. */
function attrsText(attrs: Readonly<Record<string, unknown>>, skip: string | undefined): string {
  let out = "";
  for (const k in attrs) {
    if (k === skip) continue;
    const v = attrs[k];
    if (v === undefined || v === null) continue;
    out += " " + k + '="' + escapeAttr(String(v)) + '"';
  }
  return out;
}

// One string built by concatenation; V8 flattens it once, when it is written out.
function write(node: Node): string {
  return typeof node === "string" ? escapeText(node) : writeElement(node, attrsText(node.attrs, undefined));
}

function writeElement(el: Element, attrs: string): string {
  const children = el.children;
  if (children.length === 0) return "<" + el.name + attrs + "/>";
  let out = "<" + el.name + attrs + ">";
  for (let i = 0; i < children.length; i++) out += write(children[i]!);
  return out + "</" + el.name + ">";
}

/** The element and its descendants as XML text. */
export function serialize(el: Element): string {
  return write(el);
}

/**
 * The element as serialize() writes it, but with `attrs` on its own tag instead of its
 * attributes (standalone.ts: a stored stanza's namespace declarations). The element is not changed.
 */
export function serializeWithAttrs(el: Element, attrs: Readonly<Record<string, string | undefined>>): string {
  return writeElement(el, attrsText(attrs, undefined));
}

/**
 * A stanza as it goes out on a stream whose default namespace is `streamNs`: an xmlns equal to
 * the stream's own is left out (RFC 6120 §4.8.3), and a jabber:client/jabber:server default is
 * rewritten for the stream it travels on, as servers do when they route between c2s and s2s.
 * The element is not changed: deleting `xmlns` leaves the attributes in V8's slow dictionary
 * mode whenever it was not the last one added (a stanza built with xml(), xmlns first).
 */
export function serializeForStream(el: Element, streamNs: string): string {
  const ns = el.attrs.xmlns;
  if (ns === undefined || (ns !== streamNs && ns !== "jabber:client" && ns !== "jabber:server")) return serialize(el);
  return writeElement(el, attrsText(el.attrs, "xmlns"));
}

/** The opening tag of a stream (RFC 6120 §4.7), with the declaration and the stream prefix. */
export function streamHeader(attrs: Record<string, string | undefined>, defaultNs: string): string {
  let out = "<?xml version='1.0'?><stream:stream";
  const all: Record<string, string | undefined> = {
    ...attrs,
    xmlns: defaultNs,
    "xmlns:stream": "http://etherx.jabber.org/streams",
  };
  for (const k in all) {
    const v = all[k];
    if (v !== undefined) out += " " + k + '="' + escapeAttr(v) + '"';
  }
  return out + ">";
}

export const STREAM_FOOTER = "</stream:stream>";
