// The parts of @xmpp/client 0.14 (npm, no bundled types) that the interop specs use.
declare module "@xmpp/client" {
  import type { Element } from "@xmpp/xml";
  export { xml } from "@xmpp/xml";
  export interface XmppJsClient {
    on(event: "online", fn: (address: { toString(): string }) => void): void;
    on(event: "stanza", fn: (el: Element) => void): void;
    on(event: "error", fn: (err: Error & { condition?: string }) => void): void;
    on(event: "status", fn: (status: string, value?: unknown) => void): void;
    on(event: "offline" | "disconnect", fn: (arg: never) => void): void;
    readonly status: string;
    start(): Promise<{ toString(): string }>;
    connect(service: string): Promise<unknown>;
    open(options: { domain: string; lang?: string }): Promise<unknown>;
    stop(): Promise<unknown>;
    send(el: Element): Promise<void>;
    iqCaller: { request(el: Element, timeout?: number): Promise<Element> };
    iqCallee: {
      get(ns: string, name: string, fn: (ctx: { stanza: Element; element: Element }) => Element | true | undefined | Promise<Element | true | undefined>): void;
      set(ns: string, name: string, fn: (ctx: { stanza: Element; element: Element }) => Element | true | undefined | Promise<Element | true | undefined>): void;
    };
    reconnect: { stop(): void; start(): void };
  }
  export function client(options: Record<string, unknown>): XmppJsClient;
}
