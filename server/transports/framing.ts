// How a client stream reaches the session logic of c2s.ts: RFC 6120 §4 streams over TCP, and
// the same stream carried by RFC 7395 (WebSocket framing) and XEP-0124/XEP-0206 (BOSH).
//
// C2sConnection (SASL, binding, stream management, limits, the c2s/* hooks) talks only to a
// StreamFraming: it is told of stream starts, top-level elements, stream ends and lost
// transports, and it writes a header, elements, a keepalive and a close. Each transport turns
// those into its own bytes: the <stream:stream> header on TCP, <open/> on a WebSocket, a <body/>
// wrapper in BOSH.
import net from "node:net";
import tls from "node:tls";
import { xml, type Element } from "../../protocol/xml/element.ts";
import { XmlStreamParser, type StreamHandlers, type StreamHeader, type XmlStreamErrorInfo } from "../../protocol/xml/parser.ts";
import { serializeForStream, streamHeader, STREAM_FOOTER, serialize } from "../../protocol/xml/serialize.ts";
import { NS } from "../../protocol/ns.ts";
import type { StreamErrorCondition } from "../../protocol/errors.ts";
import { serverChannelBindings, type ServerEndPoint, type SniSocket } from "../core/tls.ts";

export type TransportKind = "tcp" | "websocket" | "bosh";

/** What a framing reports to the session that reads it. */
export interface FramingEvents {
  /** The client opened (or, after SASL or STARTTLS, reopened) its stream. */
  streamStart(header: StreamHeader): void;
  /** A complete top-level element: a stanza or a nonza (SASL, SM, CSI...). */
  element(el: Element): void;
  /** The client closed its stream (</stream:stream>, <close/>, a BOSH terminate). */
  streamEnd(): void;
  /** The input broke the framing or the XML rules: the stream ends with this condition. */
  error(condition: StreamErrorCondition, text: string): void;
  /** Bytes arrived (for the read-rate limit and the idle timeout); 0 for a bare poll. */
  read(bytes: number): void;
  /** The underlying transport is gone, with or without a closed stream. */
  lost(): void;
}

/** The attributes of the server's stream header (RFC 6120 §4.7). */
export interface StreamOpenAttrs {
  from: string;
  to?: string;
  id: string;
  version: string;
  "xml:lang": string;
}

export interface StreamFraming {
  readonly kind: TransportKind;
  /** The peer's IP address. */
  readonly remoteAddress: string;
  /** Confidential to the client: TLS, or a transport the configuration trusts (loopback, a TLS proxy). */
  readonly secure: boolean;
  /** STARTTLS can upgrade this transport (TCP only; RFC 7395 §3.6 has none). */
  readonly canStartTls: boolean;
  /** RFC 5929 / RFC 9266 channel-binding data of this transport's TLS, by type. */
  channelBindings(): Record<string, Buffer>;
  /** Drops whatever channelBindings() kept, once SASL is over. */
  forgetChannelBindings?(): void;
  start(events: FramingEvents): void;
  /** Writes the server's stream header. */
  openStream(attrs: StreamOpenAttrs): void;
  /** Writes one top-level element (stanza, features, SASL, stream error...). */
  writeElement(el: Element): void;
  /** Keeps an idle connection alive (whitespace, a WebSocket ping; nothing for BOSH). */
  keepalive(): void;
  /** Both sides start a new stream on the same transport (after SASL success, RFC 6120 §6.4.6). */
  restart(): void;
  /** TCP only: answers <starttls/> with <proceed/> and upgrades the socket (RFC 6120 §5.4.3.3). */
  startTls?(): void;
  /** Ends the stream: the closing element, then the transport after a grace period. */
  close(): void;
  /** Stops or resumes reading (the read-rate limit). */
  pause(): void;
  resume(): void;
  /** True once the transport cannot carry anything more. */
  readonly gone: boolean;
  /** Resolves once the transport has closed. */
  closed(): Promise<void>;
}

export interface TcpFramingOptions {
  maxStanzaSize: number;
  maxDepth: number;
  tlsOptions: tls.TlsOptions;
  /** The tls-server-end-point data of the certificate a TLS socket got, by its SNI name (tls.ts serverEndPoints). */
  serverEndPoint: ServerEndPoint;
  graceMs: number;
}

/** RFC 6120 over a TCP socket (plain, STARTTLS-upgraded or XEP-0368 Direct TLS). */
/**
 * Writes within one event-loop turn go out as one send (the socket is corked until the turn
 * ends), but never more than this many bytes wait: a loaded server can handle thousands of
 * stanzas in one turn, and a per-turn-only cork held every receiver's data until the turn ended
 * (delivery stalls of seconds and a heap full of buffered strings at 3x overload, 2026-11-28).
 */
const FLUSH_BYTES = 16 * 1024;

export class TcpFraming implements StreamFraming {
  readonly kind = "tcp" as const;
  readonly remoteAddress: string;
  readonly canStartTls = true;
  secure: boolean;
  private socket: net.Socket;
  private parser: XmlStreamParser;
  private readonly forward = new ParserForward();

  constructor(socket: net.Socket, directTls: boolean, private readonly opts: TcpFramingOptions) {
    this.socket = socket;
    this.secure = directTls;
    this.remoteAddress = socket.remoteAddress ?? "";
    this.parser = new XmlStreamParser(this.forward, { maxStanzaSize: opts.maxStanzaSize, maxDepth: opts.maxDepth });
  }

  private get events(): FramingEvents | null {
    return this.forward.events;
  }

  start(events: FramingEvents): void {
    this.forward.events = events;
    this.attach(this.socket);
  }

  private attach(socket: net.Socket): void {
    (socket as OwnedSocket)[FRAMING] = this;
    socket.on("data", onSocketData);
    socket.on("error", onSocketError);
    socket.on("close", onSocketClose);
  }

  /** Bytes from the current socket (the module-level "data" listener calls this). */
  received(chunk: Buffer): void {
    this.events?.read(chunk.length);
    this.parser.write(chunk);
  }

  /** The current socket closed (the module-level "close" listener calls this). */
  socketClosed(): void {
    this.events?.lost();
  }

  get gone(): boolean {
    return this.socket.destroyed;
  }

  /** SASL is over: the channel-binding data is not needed again (memory per idle connection). */
  forgetChannelBindings(): void {
    this.bindings = null;
  }

  /** Made once per TLS socket: the features offer and the SASL exchange both ask. */
  private bindings: { socket: net.Socket; data: Record<string, Buffer> } | null = null;

  /** The types are known at once; the tls-exporter data is derived only if a client binds to it. */
  channelBindings(): Record<string, Buffer> {
    const socket = this.socket;
    if (!(socket instanceof tls.TLSSocket)) return {};
    if (this.bindings?.socket !== socket) {
      this.bindings = { socket, data: serverChannelBindings(socket, this.opts.serverEndPoint((socket as SniSocket).servername)) as Record<string, Buffer> };
    }
    return this.bindings.data;
  }

  openStream(attrs: StreamOpenAttrs): void {
    this.write(streamHeader({ ...attrs }, NS.client));
  }

  writeElement(el: Element): void {
    this.write(serializeForStream(el, NS.client));
  }

  keepalive(): void {
    this.write(" "); // RFC 6120 §4.6.1 whitespace keepalive
  }

  restart(): void {
    this.parser.reset();
  }

  startTls(): void {
    this.write(serialize(xml("proceed", { xmlns: NS.tls })));
    const raw = this.socket;
    // off() with the very listeners attach() added, not removeAllListeners(): a socket's _events
    // then stays a fast-mode object (removeAllListeners deletes keys, which turns it into a
    // 448-byte dictionary for as long as the TLS socket above keeps this one alive).
    raw.off("data", onSocketData);
    raw.off("close", onSocketClose);
    raw.off("error", onSocketError);
    // Anything the client pipelined after <starttls/> on the clear channel is dropped (RFC 6120 §5.4.3.3).
    this.parser.reset();
    const secure = new tls.TLSSocket(raw, { isServer: true, ...this.opts.tlsOptions });
    // Node's TLSSocket waits for the wrapped socket's 'connect', which an accepted socket had
    // long before and never emits: the listener (a once-wrapper, its state and a closure, about
    // 170 bytes in a heap snapshot) would stay for the life of every STARTTLS connection.
    for (const listener of raw.listeners("connect")) raw.off("connect", listener as () => void);
    this.socket = secure;
    this.secure = true;
    this.attach(secure);
  }

  close(): void {
    this.write(STREAM_FOOTER);
    this.socket.end();
    // A peer that never closes its side is cut off (RFC 6120 §4.4).
    const socket = this.socket;
    setTimeout(() => socket.destroy(), this.opts.graceMs).unref();
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  closed(): Promise<void> {
    if (this.socket.destroyed) return Promise.resolve();
    return new Promise((resolve) => this.socket.once("close", () => resolve()));
  }

  /** The socket corked for this event-loop turn, if any (writes coalesce into one send). */
  private corked: net.Socket | null = null;
  private flushScheduled = false;

  private write(data: string): void {
    const socket = this.socket;
    if (socket.destroyed) return;
    if (this.corked !== socket) {
      this.corked?.uncork(); // STARTTLS replaced the socket this turn
      socket.cork();
      this.corked = socket;
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(TcpFraming.flush, this);
      }
    }
    socket.write(data);
    if (socket.writableLength >= FLUSH_BYTES) {
      this.corked = null;
      socket.uncork();
    }
  }

  // Static, with the framing as argument: an arrow function per connection, named by tsx's
  // keepNames, cost each idle connection a property table (as did the parser callbacks below).
  private static flush(framing: TcpFraming): void {
    framing.flushScheduled = false;
    const socket = framing.corked;
    framing.corked = null;
    socket?.uncork();
  }
}

// The socket listeners of every TcpFraming: module-level functions (no closures per connection),
// which find their framing through a symbol on the socket, and which startTls() can remove one
// by one with off().
const FRAMING = Symbol("TcpFraming");
type OwnedSocket = net.Socket & { [FRAMING]?: TcpFraming };

function onSocketData(this: OwnedSocket, chunk: Buffer): void {
  this[FRAMING]?.received(chunk);
}

function onSocketError(): void {}

function onSocketClose(this: OwnedSocket): void {
  this[FRAMING]?.socketClosed();
}

/** The stream parser's callbacks for a TcpFraming, as methods (no closures per connection). */
class ParserForward implements StreamHandlers {
  events: FramingEvents | null = null;
  streamStart(h: StreamHeader): void {
    this.events?.streamStart(h);
  }
  stanza(el: Element): void {
    this.events?.element(el);
  }
  streamEnd(): void {
    this.events?.streamEnd();
  }
  error(e: XmlStreamErrorInfo): void {
    this.events?.error(e.condition, e.text);
  }
}

/**
 * Parses text that must hold exactly one complete element (a WebSocket message, a BOSH body),
 * with the stream parser's limits and restricted-XML rules. Only the stream prefix is declared
 * around it: the element names its own namespace (RFC 7395 §3.3.3, XEP-0206 §7).
 */
export function parseOneElement(
  text: Buffer | string,
  limits: { maxStanzaSize: number; maxDepth: number },
): { element: Element } | { error: StreamErrorCondition; text: string } {
  let found: Element | null = null;
  let count = 0;
  let ended = false;
  let failure: XmlStreamErrorInfo | null = null;
  const parser = new XmlStreamParser(
    {
      streamStart: () => {},
      stanza: (el) => {
        count++;
        found ??= el;
      },
      streamEnd: () => {
        ended = true;
      },
      error: (e) => {
        failure ??= e;
      },
    },
    limits,
  );
  parser.write(`<stream:stream xmlns:stream='${STREAM_NS_URI}'>`);
  parser.write(text);
  if (!failure) parser.write(STREAM_FOOTER);
  const f = failure as XmlStreamErrorInfo | null;
  if (f) return { error: f.condition, text: f.text };
  if (!ended || count !== 1 || !found) return { error: "not-well-formed", text: "expected exactly one complete element" };
  return { element: found };
}

const STREAM_NS_URI = "http://etherx.jabber.org/streams";

const STANZAS = new Set(["message", "presence", "iq"]);

/**
 * One element as text that stands on its own outside a <stream:stream>: a WebSocket message
 * (RFC 7395 §3.3.3) or a child of a BOSH <body/> (XEP-0206 §7). Stanzas say jabber:client
 * (a jabber:server one routed from another server is rewritten, as on a TCP stream), and an
 * element with the stream: prefix declares it. The element itself is left as it was.
 */
export function serializeStandalone(el: Element): string {
  const ns = el.attrs.xmlns;
  const fixNs = STANZAS.has(el.name) && ns !== NS.client && (ns === undefined || ns === "jabber:server");
  const fixPrefix = el.name.startsWith("stream:") && el.attrs["xmlns:stream"] === undefined;
  if (!fixNs && !fixPrefix) return serialize(el);
  try {
    if (fixNs) el.attrs.xmlns = NS.client;
    if (fixPrefix) el.attrs["xmlns:stream"] = STREAM_NS_URI;
    return serialize(el);
  } finally {
    if (fixNs) {
      if (ns === undefined) delete el.attrs.xmlns;
      else el.attrs.xmlns = ns;
    }
    if (fixPrefix) delete el.attrs["xmlns:stream"];
  }
}

/** Loopback addresses: a stream from this machine cannot be read on the wire. */
export function isLoopback(address: string): boolean {
  return address.startsWith("127.") || address === "::1" || address.startsWith("::ffff:127.");
}
