// XEP-0054 vcard-temp 1.2: a published <vCard/> is kept as XML text (storage.vcards) and handed
// back exactly as it was published. Text is what the store holds, so the element is made
// self-contained first: namespace prefixes the client declared on the IQ or the stream header
// are declared again on the <vCard/> itself, or the stored text would not parse on its own.
import { Element, clone } from "../../../protocol/xml/element.ts";
import { XmlStreamParser } from "../../../protocol/xml/parser.ts";
import { serialize } from "../../../protocol/xml/serialize.ts";
import { NS } from "../../../protocol/ns.ts";

/** The vCard as standalone XML text, namespace declarations inherited from its ancestors included. */
export function vcardToText(vcard: Element): string {
  const copy = clone(vcard);
  copy.attrs.xmlns = NS.vcard;
  for (let ancestor = vcard.parent; ancestor; ancestor = ancestor.parent) {
    for (const [name, value] of Object.entries(ancestor.attrs)) {
      if (name.startsWith("xmlns:") && !(name in copy.attrs)) copy.attrs[name] = value;
    }
  }
  return serialize(copy);
}

/** Parses stored text back into a <vCard/>; null when the text is not one. */
export function vcardFromText(text: string): Element | null {
  let found: Element | null = null;
  let failed = false;
  const parser = new XmlStreamParser(
    {
      streamStart: () => {},
      stanza: (el) => {
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
  const vcard = found as Element | null;
  if (failed || !vcard || vcard.getName() !== "vCard" || vcard.getNS() !== NS.vcard) return null;
  return vcard;
}
