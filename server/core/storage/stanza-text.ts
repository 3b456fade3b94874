// Stanzas kept as XML text (the archive of XEP-0313 v0.7 and offline storage of XEP-0160 v1.0.1):
// the text must parse on its own, so it carries its own jabber:client namespace and any prefix
// declarations the sender made on enclosing elements; reading it back uses Parley's own strict
// stream parser (RFC 6120 §4, §11).
import type { Element } from "../../../protocol/xml/element.ts";
import { parseStandalone, standaloneXml } from "../../../protocol/xml/standalone.ts";
import { NS } from "../../../protocol/ns.ts";

/** The stanza as standalone XML text. The element itself is not changed. */
export function stanzaToText(stanza: Element): string {
  return standaloneXml(stanza, NS.client, { replace: [NS.server] });
}

/** Parses text written by stanzaToText; null when it is not one well-formed element. */
export function stanzaFromText(text: string): Element | null {
  return parseStandalone(text, NS.client);
}
