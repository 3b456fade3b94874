// XMPP over WebSocket: RFC 7395 (October 2014), on the HTTP server's /xmpp-websocket.
//
// The opening handshake must offer the "xmpp" subprotocol (§3.1; anything else is refused with
// 400 before the upgrade). Every message is one text frame holding exactly one complete
// element (§3.3.3): <open/> and <close/> in urn:ietf:params:xml:ns:xmpp-framing frame the
// stream, stanzas and nonzas carry their own namespace. A message larger than the stanza size
// limit ends the stream with <policy-violation/>. There is no STARTTLS (§3.6); a stream counts
// as encrypted when the HTTP connection is TLS, the peer is on loopback, or `http.behind_tls`
// says a TLS proxy sits in front. Keepalives are WebSocket pings (§3.3.4 forbids whitespace).
// The session itself (SASL, bind, SM, CSI...) is c2s.ts's C2sConnection, unchanged.
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import tls from "node:tls";
import { WebSocketServer, WebSocket, type RawData } from "ws";
import { xml, type Element } from "../../protocol/xml/element.ts";
import { serialize } from "../../protocol/xml/serialize.ts";
import { NS } from "../../protocol/ns.ts";
import { serverChannelBindings, type ServerEndPoint, type SniSocket } from "../core/tls.ts";
import type { Server, Transport } from "../core/server.ts";
import type { Logger } from "../core/log.ts";
import { C2sConnection, CLOSE_GRACE_MS, authFailuresOf, type AuthFailures, type ConnectionHost } from "./c2s.ts";
import { isLoopback, parseOneElement, serializeStandalone, type FramingEvents, type StreamFraming, type StreamOpenAttrs } from "./framing.ts";

export const FRAMING_NS = "urn:ietf:params:xml:ns:xmpp-framing";
export const WEBSOCKET_PATH = "/xmpp-websocket";

interface WsLimits {
  maxStanzaSize: number;
  maxDepth: number;
}

export class WebSocketFraming implements StreamFraming {
  readonly kind = "websocket" as const;
  readonly canStartTls = false;
  private events: FramingEvents | null = null;
  private opened = false;
  private readonly closedPromise: Promise<void>;

  constructor(
    private readonly ws: WebSocket,
    readonly remoteAddress: string,
    readonly secure: boolean,
    private readonly tlsSocket: tls.TLSSocket | null,
    private readonly limits: WsLimits,
    /** The tls-server-end-point data of the certificate the TLS socket got, by its SNI name. */
    private readonly serverEndPoint: ServerEndPoint = () => undefined,
  ) {
    this.closedPromise = new Promise((resolve) => ws.once("close", () => resolve()));
  }

  start(events: FramingEvents): void {
    this.events = events;
    this.ws.on("message", (data: RawData, isBinary: boolean) => this.onMessage(data, isBinary));
    this.ws.on("error", () => {});
    // A pong answers our keepalive ping: the peer is there even when it has nothing to say.
    this.ws.on("pong", () => events.read(0));
    this.ws.on("close", () => events.lost());
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    const events = this.events!;
    const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as Buffer);
    events.read(bytes.length);
    if (isBinary) return events.error("bad-format", "RFC 7395 streams use text frames only");
    if (bytes.length > this.limits.maxStanzaSize) {
      return events.error("policy-violation", `a message may be at most ${this.limits.maxStanzaSize} bytes`);
    }
    const parsed = parseOneElement(bytes, this.limits);
    if ("error" in parsed) return events.error(parsed.error, `${parsed.text} (RFC 7395 §3.3.3: one element per message)`);
    const el = parsed.element;
    if (el.getNS() === FRAMING_NS) {
      if (el.name === "open") {
        this.opened = true;
        const attrs: Record<string, string> = {};
        for (const [k, v] of Object.entries(el.attrs)) if (typeof v === "string" && k !== "xmlns") attrs[k] = v;
        // The framing has no content namespace of its own: the stream is jabber:client (§3.3.2).
        return events.streamStart({ name: "open", attrs, defaultNs: NS.client });
      }
      if (el.name === "close") return events.streamEnd();
    }
    if (!this.opened) return events.error("bad-format", "the stream starts with <open/> (RFC 7395 §3.4)");
    events.element(el);
  }

  get gone(): boolean {
    return this.ws.readyState !== WebSocket.OPEN;
  }

  /** Made once per connection, when the features offer first asks; dropped once SASL is over. */
  private bindings: Record<string, Buffer> | null = null;

  channelBindings(): Record<string, Buffer> {
    if (!this.tlsSocket) return {};
    const socket = this.tlsSocket as SniSocket;
    // The end point comes from the HTTPS listener's certificates, hashed once (tls.ts
    // serverEndPoints), not from this socket's certificate, hashed again for each connection.
    return (this.bindings ??= serverChannelBindings(socket, this.serverEndPoint(socket.servername)) as Record<string, Buffer>);
  }

  forgetChannelBindings(): void {
    this.bindings = null;
  }

  openStream(attrs: StreamOpenAttrs): void {
    this.send(serialize(xml("open", { xmlns: FRAMING_NS, ...attrs })));
  }

  writeElement(el: Element): void {
    this.send(serializeStandalone(el));
  }

  keepalive(): void {
    if (!this.gone) this.ws.ping();
  }

  restart(): void {
    // The client sends a new <open/> (RFC 7395 §3.5); nothing is buffered between messages.
  }

  close(): void {
    this.send(serialize(xml("close", { xmlns: FRAMING_NS })));
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(1000);
    // A peer that never answers the closing handshake is cut off.
    setTimeout(() => this.ws.terminate(), CLOSE_GRACE_MS).unref();
  }

  pause(): void {
    this.ws.pause();
  }

  resume(): void {
    this.ws.resume();
  }

  closed(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return this.closedPromise;
  }

  private send(text: string): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(text);
  }
}

/** The /xmpp-websocket endpoint; the HTTP server hands it its upgrade requests. */
export class WebSocketTransport implements Transport, ConnectionHost {
  readonly name = "websocket";
  readonly ports: number[] = [];
  readonly connections = new Set<C2sConnection>();
  readonly authFailures: AuthFailures;
  readonly log: Logger;
  private readonly wss: WebSocketServer;

  constructor(
    private readonly server: Server,
    /** For connections over the HTTPS listener: tls.ts serverEndPoints of its certificates. */
    private readonly serverEndPoint: ServerEndPoint = () => undefined,
  ) {
    this.log = server.log.child({ part: "websocket" });
    this.authFailures = authFailuresOf(server);
    const limits = server.config.limits;
    this.wss = new WebSocketServer({
      noServer: true,
      // ws refuses frames beyond this outright (close 1009); up to it, a message over the stanza
      // limit gets the XMPP <policy-violation/> the client can show.
      maxPayload: limits.maxStanzaSize + 64 * 1024,
      perMessageDeflate: false,
      handleProtocols: (protocols) => (protocols.has("xmpp") ? "xmpp" : false),
    });
  }

  /** Takes an upgrade request for WEBSOCKET_PATH; `secureHttp` when it came over HTTPS. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, remoteAddress: string, secureHttp: boolean): void {
    const offered = String(req.headers["sec-websocket-protocol"] ?? "").split(",").map((p) => p.trim());
    if (!offered.includes("xmpp")) {
      // RFC 7395 §3.2: only the "xmpp" subprotocol carries XMPP.
      const body = 'the WebSocket subprotocol must be "xmpp"\n';
      socket.end(`HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      const tlsSocket = req.socket instanceof tls.TLSSocket ? req.socket : null;
      const secure = secureHttp || isLoopback(remoteAddress) || this.server.config.http.behindTls;
      const limits = this.server.config.limits;
      const framing = new WebSocketFraming(ws, remoteAddress, secure, tlsSocket, { maxStanzaSize: limits.maxStanzaSize, maxDepth: limits.maxDepth }, this.serverEndPoint);
      const conn = new C2sConnection(this.server, framing, this);
      this.connections.add(conn);
    });
  }

  async stop(): Promise<void> {
    const all = [...this.connections];
    for (const c of all) c.close("system-shutdown", "the server is shutting down");
    await Promise.race([Promise.all(all.map((c) => c.closed())), new Promise((r) => setTimeout(r, CLOSE_GRACE_MS + 100).unref())]);
    await Promise.all(all.map((c) => c.detach()));
    this.wss.close();
  }
}
