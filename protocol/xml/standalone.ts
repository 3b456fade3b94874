// One element as XML text that parses on its own (RFC 6120 §4.8 namespaces, XML Namespaces 1.0):
// for what Parley stores as text (archived and offline stanzas, vCards) and reads back.
import type { Element } from "./element.ts";
import { XmlStreamParser } from "./parser.ts";
import { serializeWithAttrs } from "./serialize.ts";

const STREAM_NS = "http://etherx.jabber.org/streams";

/**
 * The element as self-contained text: `defaultNs` as its xmlns when it has none (or always,
 * with `force`), and the namespace prefixes its ancestors declared declared again on it.
 * The element itself is not changed.
 */
export function standaloneXml(el: Element, defaultNs: string, opts: { force?: boolean; replace?: readonly string[] } = {}): string {
  // Only the element's own tag differs from serialize(el): its attributes are copied, the tree is not.
  const attrs: Record<string, string | undefined> = { ...el.attrs };
  const current = attrs.xmlns;
  if (opts.force || current === undefined || opts.replace?.includes(current)) attrs.xmlns = defaultNs;
  for (let ancestor = el.parent; ancestor; ancestor = ancestor.parent) {
    for (const name in ancestor.attrs) {
      if (name.startsWith("xmlns:") && !(name in attrs)) attrs[name] = ancestor.attrs[name];
    }
  }
  return serializeWithAttrs(el, attrs);
}

/** Parses text holding exactly one element with Parley's strict parser; null otherwise. */
export function parseStandalone(text: string, defaultNs = "jabber:client"): Element | null {
  let found: Element | null = null;
  let count = 0;
  let failed = false;
  const parser = new XmlStreamParser(
    {
      streamStart: () => {},
      stanza: (el) => {
        count++;
        found ??= el;
      },
      streamEnd: () => {},
      error: () => {
        failed = true;
      },
    },
    // It fitted in a stanza once; the limits only need to let it through again.
    { maxStanzaSize: Buffer.byteLength(text) + 1024, maxDepth: 1024 },
  );
  parser.write(`<stream:stream xmlns='${defaultNs}' xmlns:stream='${STREAM_NS}'>`);
  parser.write(text);
  return failed || count !== 1 ? null : found;
}
