// What inbound and outbound server-to-server streams share: RFC 6120 §4 (streams in the
// jabber:server namespace, with the dialback prefix of XEP-0220 declared on the header), the
// strict limited parser, writing, closing with a stream error, idle accounting and whitespace
// keepalives (§4.6.1).
//
// Closing follows §4.4: after our closing tag we write nothing more but go on reading and
// processing what the peer sends until its own closing tag (or CLOSE_GRACE_MS). There is no
// stream management on s2s, so every stanza written is kept for IN_FLIGHT_MS: when the stream
// then ends without the peer's closing tag, or with a socket error or a stream error from the
// peer, the stanzas it may not have processed are handed back (settle): those never handed to
// the operating system go out again on a new stream, the others bounce to their senders.
import { randomBytes } from "node:crypto";
import type net from "node:net";
import type { Element } from "../../../protocol/xml/element.ts";
import { XmlStreamParser, type StreamHeader, type XmlStreamErrorInfo } from "../../../protocol/xml/parser.ts";
import { serialize, serializeForStream, streamHeader, STREAM_FOOTER } from "../../../protocol/xml/serialize.ts";
import { StreamError, type StreamErrorCondition } from "../../../protocol/errors.ts";
import { NS } from "../../../protocol/ns.ts";
import type { Logger } from "../../core/log.ts";
import type { LimitsConfig } from "../../core/config.ts";

const CLOSE_GRACE_MS = 2000;
/** How long after it is written a stanza counts as possibly unprocessed if the stream breaks. */
export const IN_FLIGHT_MS = 3000;

/** A stanza written on a stream, until the stream is known to have carried it. */
export interface InFlight {
  readonly stanza: Element;
  /** The local domain it was sent from. */
  readonly local: string;
  readonly at: number;
  /** Handed to the operating system (the write callback came back without an error). */
  flushed: boolean;
}

/** What a closed stream may not have delivered: `unsent` never left us, `uncertain` may have been lost. */
export interface Undelivered {
  readonly unsent: InFlight[];
  readonly uncertain: InFlight[];
}

export abstract class S2sStream {
  readonly id = randomBytes(9).toString("base64url");
  protected socket: net.Socket;
  protected parser: XmlStreamParser;
  /** Our header is written (so a stream error can follow it). */
  protected headerSent = false;
  closed = false;
  secure = false;
  readonly openedAt = Date.now();
  /** Last stanza read or written: idle streams are closed after s2s.idle_timeout_s. */
  lastActivity = Date.now();
  /** Last byte written (keepalives included): a space goes out after s2s.keepalive_s of silence. */
  lastWrite = Date.now();
  protected closeListeners: Array<() => void> = [];
  /** Our closing tag is written: nothing more may be (RFC 6120 §4.4). */
  private footerSent = false;
  /** Incoming data is no longer processed (after a stream error either way, or the peer's closing tag). */
  protected discarding = false;
  /** A stream error went either way: elements parsed before it but not yet handled are dropped too. */
  protected streamFailed = false;
  /** The peer closed its stream with its closing tag, without a stream error. */
  private peerClosedCleanly = false;
  /** The parser saw the peer's closing tag or failed: later bytes are not read. */
  private parserDone = false;
  /** The connection broke: a socket error, a stream error from the peer, or TCP closed without a closing tag. */
  private broken = false;
  private brokenAt = 0;
  private inFlight: InFlight[] = [];
  /**
   * Last time Node held written bytes back: the kernel's buffers were full, so what had been
   * written before may still sit unread in them however long ago it was written.
   */
  private lastBackloggedAt = 0;
  private settled = false;

  constructor(
    socket: net.Socket,
    protected readonly limits: LimitsConfig,
    protected readonly log: Logger,
  ) {
    this.socket = socket;
    this.parser = this.newParser();
    this.attach(socket);
  }

  private newParser(): XmlStreamParser {
    return new XmlStreamParser(
      {
        streamStart: (h) => this.guard(() => this.onStreamStart(h)),
        stanza: (el) => {
          if (!this.discarding) this.guard(() => this.onElement(el));
        },
        streamEnd: () => {
          this.parserDone = true;
          this.discarding = true;
          this.peerClosedCleanly = !this.broken;
          this.close();
        },
        error: (e: XmlStreamErrorInfo) => {
          this.parserDone = true;
          this.log.info({ condition: e.condition, text: e.text }, "s2s stream error from the parser");
          this.close(e.condition, e.text);
        },
      },
      { maxStanzaSize: this.limits.maxStanzaSize, maxDepth: this.limits.maxDepth },
    );
  }

  private guard(fn: () => void | Promise<void>): void {
    try {
      const r = fn();
      if (r instanceof Promise) r.catch((err: unknown) => this.fail(err));
    } catch (err) {
      this.fail(err);
    }
  }

  private fail(err: unknown): void {
    if (err instanceof StreamError) return this.close(err.condition, err.text);
    this.log.error({ err }, "s2s stream failed");
    this.close("internal-server-error");
  }

  protected attach(socket: net.Socket): void {
    socket.on("data", (chunk: Buffer) => {
      // Read to the peer's closing tag even when its elements are no longer processed.
      if (this.parserDone || this.settled) return;
      this.parser.write(chunk);
    });
    socket.on("error", (err) => {
      this.log.debug({ err: err.message }, "s2s socket error");
      this.markBroken();
      // Nothing more can be written: the stanzas routed from now on wait for a new stream.
      this.onSocketClosed();
    });
    socket.on("close", () => this.onSocketClosed());
    socket.on("drain", () => (this.lastBackloggedAt = Date.now()));
  }

  /** Swaps the socket for its TLS wrapper (STARTTLS): the parser starts over (RFC 6120 §5.4.3.3). */
  protected replaceSocket(socket: net.Socket): void {
    const raw = this.socket;
    raw.removeAllListeners("data");
    raw.removeAllListeners("close");
    raw.removeAllListeners("error");
    this.parser.reset();
    this.socket = socket;
    this.headerSent = false;
    this.attach(socket);
  }

  /** RFC 6120 §4.3.3 / §6.4.6: after TLS or SASL both sides start a fresh stream. */
  protected resetParser(): void {
    this.parser.reset();
  }

  protected abstract onStreamStart(h: StreamHeader): void | Promise<void>;
  protected abstract onElement(el: Element): void | Promise<void>;
  protected abstract onClosed(): void;

  protected sendHeader(attrs: Record<string, string | undefined>): void {
    this.headerSent = true;
    this.write(streamHeader({ ...attrs, "xmlns:db": NS.dialback, version: "1.0" }, NS.server));
  }

  /** Writes unless our closing tag is out or the socket is gone; `done` learns whether it was flushed. */
  protected write(data: string, done?: (err?: Error | null) => void): boolean {
    if (this.footerSent || this.socket.destroyed || this.socket.writableEnded) return false;
    this.lastWrite = Date.now();
    this.socket.write(data, done);
    return true;
  }

  protected writeElement(el: Element): void {
    this.write(serialize(el));
  }

  /**
   * A stanza from `local`, with jabber:client rewritten to the stream's jabber:server. False when
   * the stream can no longer carry it (closing or closed): the caller queues it for a new stream.
   */
  writeStanza(el: Element, local: string): boolean {
    if (this.closed || this.footerSent || this.socket.destroyed || this.socket.writableEnded) return false;
    const now = Date.now();
    this.lastActivity = now;
    this.forget(now);
    const entry: InFlight = { stanza: el, local, at: now, flushed: false };
    this.inFlight.push(entry);
    this.write(serializeForStream(el, NS.server), (err) => {
      if (!err) entry.flushed = true;
    });
    if (this.socket.writableLength > 0) this.lastBackloggedAt = now;
    return true;
  }

  /**
   * Drops the stanzas that count as carried: flushed, written IN_FLIGHT_MS ago, and no backlog
   * for IN_FLIGHT_MS (a peer that stops reading leaves megabytes in the kernel's buffers).
   */
  private forget(now: number): void {
    if (now - this.lastBackloggedAt <= IN_FLIGHT_MS) return;
    let n = 0;
    while (n < this.inFlight.length && this.inFlight[n].flushed && now - this.inFlight[n].at > IN_FLIGHT_MS) n++;
    if (n > 0) this.inFlight.splice(0, n);
  }

  /** RFC 6120 §4.6.1: a single space on an established stream that has been silent for `afterMs`. */
  keepalive(now: number, afterMs: number): void {
    if (this.closed || !this.headerSent || !this.established || now - this.lastWrite < afterMs) return;
    this.write(" ");
  }

  /** Whether the stream is past negotiation (a space cannot land inside a TLS or SASL exchange). */
  protected abstract get established(): boolean;

  /** Ends the stream, with a stream error when `condition` is given (RFC 6120 §4.9). */
  close(condition?: StreamErrorCondition, text?: string): void {
    if (this.closed) return;
    this.closed = true;
    if (condition) {
      // §4.9.1.1: nothing the peer sends after a stream error is processed.
      this.discarding = true;
      this.streamFailed = true;
      if (!this.headerSent) this.sendHeader(this.headerForError());
      this.writeElement(new StreamError(condition, text).toElement());
    }
    if (this.headerSent || condition) this.write(STREAM_FOOTER);
    this.footerSent = true;
    // Half-close: the peer may still be sending (and we still process) until its closing tag.
    this.socket.end();
    setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS).unref();
    this.notifyClosed();
  }

  /** The peer sent a stream error: what was in flight may not have been processed. */
  protected peerFailed(): void {
    this.discarding = true;
    this.streamFailed = true;
    this.markBroken();
  }

  private markBroken(): void {
    if (this.broken) return;
    this.broken = true;
    this.brokenAt = Date.now();
  }

  protected headerForError(): Record<string, string | undefined> {
    return {};
  }

  private onSocketClosed(): void {
    this.closed = true;
    this.discarding = true;
    this.notifyClosed();
    if (this.socket.destroyed) this.settle();
  }

  /**
   * Once the socket is gone: which stanzas this stream may not have delivered. A stream that
   * ended with the peer's closing tag and no error delivered everything written before our own
   * closing tag (§4.4: the peer processes data until it sees ours).
   */
  private settle(): void {
    if (this.settled) return;
    this.settled = true;
    if (!this.peerClosedCleanly) this.markBroken();
    const unsent: InFlight[] = [];
    const uncertain: InFlight[] = [];
    const backlogged = this.brokenAt - this.lastBackloggedAt <= IN_FLIGHT_MS;
    for (const e of this.inFlight) {
      if (!e.flushed) unsent.push(e);
      else if (this.broken && (backlogged || this.brokenAt - e.at <= IN_FLIGHT_MS)) uncertain.push(e);
    }
    this.inFlight = [];
    if (unsent.length > 0 || uncertain.length > 0) {
      this.log.info({ unsent: unsent.length, uncertain: uncertain.length }, "s2s stream ended with stanzas it may not have delivered");
      this.onUndelivered({ unsent, uncertain });
    }
  }

  /** Stanzas this stream may not have delivered (see settle). */
  protected abstract onUndelivered(lost: Undelivered): void;

  private notified = false;
  private notifyClosed(): void {
    if (this.notified) return;
    this.notified = true;
    try {
      this.onClosed();
    } finally {
      for (const fn of this.closeListeners) fn();
    }
  }

  onceClosed(fn: () => void): void {
    if (this.notified) fn();
    else this.closeListeners.push(fn);
  }

  /** Resolves once the socket has closed. */
  socketClosed(): Promise<void> {
    if (this.socket.destroyed) return Promise.resolve();
    return new Promise((resolve) => this.socket.once("close", () => resolve()));
  }

  /** Bytes written but still held by Node (the peer is not reading fast enough). */
  get bufferedBytes(): number {
    return this.socket.writableLength;
  }

  get remoteAddress(): string {
    return this.socket.remoteAddress ?? "";
  }
}

/** RFC 6120 §4.7.5: only version 1.0 streams (with features) are spoken. */
export function checkHeader(h: StreamHeader): StreamError | null {
  if (h.defaultNs !== NS.server) return new StreamError("invalid-namespace", "a server stream's content namespace is jabber:server");
  const major = /^(\d+)\.\d+$/.exec(h.attrs.version ?? "")?.[1];
  if (major !== "1") return new StreamError("unsupported-version", "Parley speaks XMPP version 1.0");
  return null;
}

export function normalizeDomain(value: string | undefined): string {
  return (value ?? "").toLowerCase().replace(/\.$/, "");
}

