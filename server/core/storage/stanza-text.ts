// Stanzas kept as XML text (the archive of XEP-0313 v0.7 and offline storage of XEP-0160 v1.0.1):
// the text must parse on its own, so it carries its own jabber:client namespace and any prefix
// declarations the sender made on enclosing elements; reading it back uses Parley's own strict
// stream parser (RFC 6120 §4, §11).
import { Element, clone } from "../../../protocol/xml/element.ts";
import { XmlStreamParser } from "../../../protocol/xml/parser.ts";
import { serialize } from "../../../protocol/xml/serialize.ts";
import { NS } from "../../../protocol/ns.ts";

/** The stanza as standalone XML text. The element itself is not changed. */
export function stanzaToText(stanza: Element): string {
  const copy = clone(stanza);
  if (copy.attrs.xmlns === undefined || copy.attrs.xmlns === NS.server) copy.attrs.xmlns = NS.client;
  for (let ancestor = stanza.parent; ancestor; ancestor = ancestor.parent) {
    for (const [name, value] of Object.entries(ancestor.attrs)) {
      if (name.startsWith("xmlns:") && !(name in copy.attrs)) copy.attrs[name] = value;
    }
  }
  return serialize(copy);
}

/** Parses text written by stanzaToText; null when it is not one well-formed element. */
export function stanzaFromText(text: string): Element | null {
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
  parser.write(`<stream:stream xmlns='${NS.client}' xmlns:stream='${NS.stream}'>`);
  parser.write(text);
  if (failed || count !== 1) return null;
  return found;
}
