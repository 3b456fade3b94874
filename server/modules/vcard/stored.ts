// XEP-0054 vcard-temp 1.2: a published <vCard/> is kept as XML text (storage.vcards) and handed
// back exactly as it was published. Text is what the store holds, so the element is made
// self-contained first: namespace prefixes the client declared on the IQ or the stream header
// are declared again on the <vCard/> itself, or the stored text would not parse on its own.
import type { Element } from "../../../protocol/xml/element.ts";
import { parseStandalone, standaloneXml } from "../../../protocol/xml/standalone.ts";
import { NS } from "../../../protocol/ns.ts";

/** The vCard as standalone XML text, namespace declarations inherited from its ancestors included. */
export function vcardToText(vcard: Element): string {
  return standaloneXml(vcard, NS.vcard, { force: true });
}

/** Parses stored text back into a <vCard/>; null when the text is not one. */
export function vcardFromText(text: string): Element | null {
  const vcard = parseStandalone(text, NS.client);
  if (!vcard || vcard.getName() !== "vCard" || vcard.getNS() !== NS.vcard) return null;
  return vcard;
}
