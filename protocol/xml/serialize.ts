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

export function escapeText(s: string): string {
  s = clean(s);
  return TEXT_SPECIAL.test(s) ? s.replace(/[&<>\r]/g, (c) => TEXT_MAP[c]) : s;
}

export function escapeAttr(s: string): string {
  s = clean(s);
  return ATTR_SPECIAL.test(s) ? s.replace(/[&<>"\t\n\r]/g, (c) => ATTR_MAP[c]) : s;
}

function openTag(el: Element): string {
  let out = "<" + el.name;
  const attrs = el.attrs;
  for (const k in attrs) {
    const v = attrs[k];
    if (v === undefined || v === null) continue;
    out += " " + k + '="' + escapeAttr(String(v)) + '"';
  }
  return out;
}

function write(node: Node, out: string[]): void {
  if (typeof node === "string") {
    out.push(escapeText(node));
    return;
  }
  const tag = openTag(node);
  const children = node.children;
  if (children.length === 0) {
    out.push(tag + "/>");
    return;
  }
  out.push(tag + ">");
  for (const c of children) write(c, out);
  out.push("</" + node.name + ">");
}

/** The element and its descendants as XML text. */
export function serialize(el: Element): string {
  const out: string[] = [];
  write(el, out);
  return out.join("");
}

/**
 * A stanza as it goes out on a stream whose default namespace is `streamNs`: an xmlns equal to
 * the stream's own is left out (RFC 6120 §4.8.3), and a jabber:client/jabber:server default is
 * rewritten for the stream it travels on, as servers do when they route between c2s and s2s.
 */
export function serializeForStream(el: Element, streamNs: string): string {
  const ns = el.attrs.xmlns;
  if (ns === undefined || (ns !== streamNs && ns !== "jabber:client" && ns !== "jabber:server")) return serialize(el);
  const out: string[] = [];
  const saved = ns;
  delete el.attrs.xmlns;
  try {
    write(el, out);
  } finally {
    el.attrs.xmlns = saved;
  }
  return out.join("");
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
