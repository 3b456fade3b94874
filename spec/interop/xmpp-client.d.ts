// The parts of @xmpp/client (npm, no bundled types) that the interop specs use.
declare module "@xmpp/client" {
  import type { Element } from "@xmpp/xml";
  export { xml } from "@xmpp/xml";
  export interface XmppJsClient {
    on(event: "online", fn: (address: { toString(): string }) => void): void;
    on(event: "error" | "offline" | "stanza", fn: (arg: never) => void): void;
    start(): Promise<unknown>;
    stop(): Promise<unknown>;
    send(el: Element): Promise<void>;
    iqCaller: { request(el: Element, timeout?: number): Promise<Element> };
  }
  export function client(options: Record<string, unknown>): XmppJsClient;
}
