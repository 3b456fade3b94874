// Test support: XML text read back into an Element by Parley's own stream parser
// (protocol/xml/parser.ts: RFC 6120 §4 and §11, XML 1.0, Namespaces in XML 1.0), the way a peer
// reads what we send.
import type { Element } from "../../protocol/xml/element.ts";
import { STREAM_NS, XmlStreamParser } from "../../protocol/xml/parser.ts";
import { serialize } from "../../protocol/xml/serialize.ts";

// The wrapping stream has no default namespace and binds a prefix no fixture uses, so the parser
// adds no namespace to the element: the text must declare everything it relies on, as an
// element that stands alone must (an undeclared `stream:` prefix is not-well-formed here).
const STREAM_OPEN = `<parley-spec:stream xmlns:parley-spec="${STREAM_NS}">`;
const STREAM_CLOSE = "</parley-spec:stream>";

/** The single element written in `text`; throws if the text is anything else or not well-formed. */
export function parseXml(text: string): Element {
  const elements: Element[] = [];
  let failure: string | undefined;
  let ended = false;
  const parser = new XmlStreamParser({
    streamStart: () => {},
    stanza: (el) => elements.push(el),
    streamEnd: () => (ended = true),
    error: ({ condition, text: detail }) => (failure = `${condition}: ${detail}`),
  });
  parser.write(STREAM_OPEN + text + STREAM_CLOSE);
  if (failure !== undefined) throw new Error(`cannot parse XML (${failure}): ${text}`);
  if (!ended || elements.length !== 1) throw new Error(`expected exactly one complete element, got ${elements.length}: ${text}`);
  return elements[0]!;
}

/** `el` as a peer receives it: serialised by Parley, then parsed again. */
export function reparse(el: Element): Element {
  return parseXml(serialize(el));
}
