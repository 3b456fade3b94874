// The Element model: @xmpp/xml's (ltx) Element, the one class every part of Parley shares.
// Import Element and xml() from here, never from "ltx" directly: ltx's ESM entry point is a
// different class from the CommonJS one @xmpp/xml uses, and `instanceof` would disagree.
import xmlImpl, { Element } from "@xmpp/xml";
import type { Node, Attrs } from "@xmpp/xml";

export { Element };
export type { Node, Attrs };

/** Builds an element: xml("message", { to, type: "chat" }, xml("body", {}, "hi")). */
export const xml = xmlImpl;

/** A deep copy with no parent, safe to modify and to send elsewhere. */
export function clone(el: Element): Element {
  const copy = new Element(el.name, { ...el.attrs });
  for (const child of el.children) {
    copy.children.push(typeof child === "string" ? child : adopt(copy, clone(child)));
  }
  return copy;
}

function adopt(parent: Element, child: Element): Element {
  child.parent = parent;
  return child;
}

/** The child elements only, skipping text. */
export function childElements(el: Element): Element[] {
  return el.children.filter((c): c is Element => typeof c !== "string");
}
