// Types for the parts of @xmpp/xml (ltx's Element model) that Parley uses.
declare module "@xmpp/xml" {
  export type Node = Element | string;
  export type Attrs = Record<string, string>;
  export class Element {
    constructor(name: string, attrs?: Attrs | string);
    name: string;
    parent: Element | null;
    children: Node[];
    attrs: Attrs;
    is(name: string, xmlns?: string): boolean;
    getName(): string;
    getNS(): string | undefined;
    findNS(prefix?: string): string | undefined;
    getAttr(name: string, xmlns?: string): string | undefined;
    getChild(name: string, xmlns?: string): Element | undefined;
    getChildren(name: string, xmlns?: string): Element[];
    getChildElements(): Element[];
    getChildByAttr(attr: string, val: string, xmlns?: string, recursive?: boolean): Element | undefined;
    getText(): string;
    getChildText(name: string, xmlns?: string): string | null;
    root(): Element;
    up(): Element;
    c(name: string, attrs?: Attrs | string): Element;
    cnode<T extends Node>(child: T): T;
    append(...nodes: Node[]): void;
    prepend(...nodes: Node[]): void;
    t(text: string): Element;
    remove(el: Element | string, xmlns?: string): Element;
    text(val?: string): string;
    attr(attr: string, val?: string): string | undefined;
    toString(): string;
  }
  /** ltx's own stream parser: used only as a comparison in bench/parser.ts (it is not strict). */
  export class Parser {
    constructor();
    on(event: "element" | "start" | "end", fn: (el: Element) => void): void;
    on(event: "error", fn: (err: Error) => void): void;
    write(data: string): void;
  }
  export function createElement(
    name: string,
    attrs?: Record<string, string | number | undefined | null> | string | null,
    ...children: Array<Node | Node[] | null | undefined | false>
  ): Element;
  export function escapeXML(s: string): string;
  export function escapeXMLText(s: string): string;
  export function unescapeXML(s: string): string;
  export function unescapeXMLText(s: string): string;
  export default function xml(
    name: string,
    attrs?: Record<string, string | number | undefined | null> | string | null,
    ...children: Array<Node | Node[] | null | undefined | false>
  ): Element;
  export { xml };
}
