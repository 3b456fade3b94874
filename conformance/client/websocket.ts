// The conformance client over RFC 7395 (XMPP over WebSocket): the same XmppClient surface as the
// socket client (SASL, bind, inbox, waits), with the stream framed by <open/> and <close/> in
// urn:ietf:params:xml:ns:xmpp-framing and one complete element per text message (§3.3).
//
// In raw mode (a scenario's `(tcp)` client) the client only does the WebSocket handshake: it
// queues a <handshake/> element (CONFORMANCE_NS) telling what the server answered, then what the
// scenario sends raw goes out as one message each, and every message that comes back, <open/>
// and <close/> included, is queued for `receives`. With `noSubprotocol` the handshake offers no
// subprotocol, to see whether the server refuses it.
import { WebSocket } from "ws";
import { xml, type Element } from "../../protocol/xml/element.ts";
import { serialize } from "../../protocol/xml/serialize.ts";
import { parseStandalone, standaloneXml } from "../../protocol/xml/standalone.ts";
import { NS } from "../../protocol/ns.ts";
import { XmppClient, type ConnectOptions } from "./client.ts";

/** Elements the runner makes up to report what HTTP said (never sent by a server). */
export const CONFORMANCE_NS = "urn:xmpp:parley:conformance";

export interface WebSocketConnectOptions extends ConnectOptions {
  /** ws:// or wss:// URL of the endpoint. */
  url: string;
  /** Offer no subprotocol in the handshake (RFC 7395 §3.1 says a client offers "xmpp"). */
  noSubprotocol?: boolean;
}

export class WebSocketXmppClient extends XmppClient {
  ws!: WebSocket;
  /** What the handshake came to: the HTTP status and the subprotocol the server chose. */
  handshake: { status: number; protocol: string } | null = null;
  /** The server sent <close/> (RFC 7395 §3.6). */
  serverClosed = false;
  private closing = false;

  protected constructor(readonly wsOpts: WebSocketConnectOptions) {
    super(wsOpts);
  }

  static override async connect(opts: WebSocketConnectOptions): Promise<WebSocketXmppClient> {
    const c = new WebSocketXmppClient(opts);
    await c.open();
    return c;
  }

  override get secure(): boolean {
    return this.wsOpts.url.startsWith("wss:");
  }

  protected override bindingData(): { type: string; data: Buffer } | null {
    // The TLS channel of a WebSocket is the HTTP connection's: this client does not bind to it.
    return null;
  }

  protected override async open(): Promise<void> {
    const o = this.wsOpts;
    const ws = new WebSocket(o.url, o.noSubprotocol ? [] : ["xmpp"], {
      ca: o.ca,
      rejectUnauthorized: !o.insecure,
      servername: /^[\d.]+$|:/.test(o.domain) ? undefined : o.domain,
      handshakeTimeout: this.timeout,
      maxPayload: 16 * 1024 * 1024,
    } as WebSocket.ClientOptions);
    this.ws = ws;
    ws.on("error", () => {});
    const refused = await new Promise<number | null>((resolve, reject) => {
      const timer = setTimeout(() => {
        ws.terminate();
        reject(new Error("WebSocket handshake timeout"));
      }, this.timeout);
      ws.once("open", () => {
        clearTimeout(timer);
        resolve(null);
      });
      ws.once("unexpected-response", (req, res) => {
        clearTimeout(timer);
        res.resume();
        req.destroy();
        resolve(res.statusCode ?? 0);
      });
      ws.once("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
    this.handshake = { status: refused ?? 101, protocol: refused === null ? ws.protocol : "" };
    if (refused !== null) {
      this.markClosed();
      if (!o.raw) throw new Error(`WebSocket handshake refused with HTTP ${refused}`);
    } else {
      ws.on("message", (data: Buffer, isBinary: boolean) => this.onMessage(data, isBinary));
      ws.on("close", () => this.markClosed());
    }
    if (o.raw) {
      const attrs: Record<string, string> = { xmlns: CONFORMANCE_NS, status: String(this.handshake.status), accepted: String(refused === null) };
      if (this.handshake.protocol) attrs.protocol = this.handshake.protocol;
      this.onElement(xml("handshake", attrs));
      return;
    }
    if (ws.protocol !== "xmpp") {
      ws.terminate();
      throw new Error(`the server did not choose the xmpp subprotocol (chose "${ws.protocol}")`);
    }
    await this.restart();
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    const text = data.toString("utf8");
    const el = isBinary ? null : parseStandalone(text);
    if (!el) {
      // Not one complete element: a framing error by the server. Report it and leave.
      this.onElement(xml("bad-message", { xmlns: CONFORMANCE_NS, binary: String(isBinary) }, text.slice(0, 200)));
      this.ws.close();
      return;
    }
    if (el.getNS() === NS.framing) {
      if (el.getName() === "open") {
        const attrs: Record<string, string> = {};
        for (const [k, v] of Object.entries(el.attrs)) if (typeof v === "string") attrs[k] = v;
        this.header = { name: "open", attrs, defaultNs: NS.client };
      } else if (el.getName() === "close") {
        this.serverClosed = true;
        this.ended = true;
        // §3.6: the client answers a <close/> with its own, and the server closes the connection;
        // when the client started closing, the server's <close/> ends it and either side may
        // start the WebSocket closing handshake.
        if (!this.wsOpts.raw && this.ws.readyState === WebSocket.OPEN) {
          if (this.closing) this.ws.close(1000);
          else this.ws.send(serialize(xml("close", { xmlns: NS.framing })));
        }
      }
      if (this.wsOpts.raw) this.onElement(el);
      return;
    }
    this.onElement(el);
  }

  /** Opens (or reopens, after SASL) the stream with <open/> and waits for the features. */
  override async restart(): Promise<void> {
    this.header = null;
    this.features = null;
    this.write(serialize(xml("open", { xmlns: NS.framing, to: this.opts.domain, version: "1.0", "xml:lang": "en" })));
    await this.next((el) => el.getName() === "features" && el.getNS() === NS.stream);
  }

  override send(el: Element): void {
    this.write(standaloneXml(el, NS.client));
  }

  /** One WebSocket text message. */
  override write(data: string | Buffer): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(typeof data === "string" ? data : data.toString("utf8"));
  }

  override async close(): Promise<void> {
    if (this.closed) return;
    this.closing = true;
    if (!this.serverClosed) this.write(serialize(xml("close", { xmlns: NS.framing })));
    try {
      await this.waitClosed(2000);
    } catch {
      this.ws.close();
      await this.waitClosed(1000).catch(() => this.ws.terminate());
    }
  }

  override destroy(): void {
    this.ws?.terminate();
  }
}
