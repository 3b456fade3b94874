// What inbound and outbound server-to-server streams share: RFC 6120 §4 (streams in the
// jabber:server namespace, with the dialback prefix of XEP-0220 declared on the header), the
// strict limited parser, writing, closing with a stream error, and idle accounting.
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
  protected closeListeners: Array<() => void> = [];

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
        stanza: (el) => this.guard(() => this.onElement(el)),
        streamEnd: () => this.close(),
        error: (e: XmlStreamErrorInfo) => {
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
      if (this.closed) return;
      this.parser.write(chunk);
    });
    socket.on("error", (err) => this.log.debug({ err: err.message }, "s2s socket error"));
    socket.on("close", () => this.onSocketClosed());
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

  protected write(data: string): void {
    if (this.socket.destroyed) return;
    this.socket.write(data);
  }

  protected writeElement(el: Element): void {
    this.write(serialize(el));
  }

  /** A stanza, with jabber:client rewritten to the stream's jabber:server. */
  writeStanza(el: Element): void {
    this.lastActivity = Date.now();
    this.write(serializeForStream(el, NS.server));
  }

  /** Ends the stream, with a stream error when `condition` is given (RFC 6120 §4.9). */
  close(condition?: StreamErrorCondition, text?: string): void {
    if (this.closed) return;
    this.closed = true;
    if (condition) {
      if (!this.headerSent) this.sendHeader(this.headerForError());
      this.writeElement(new StreamError(condition, text).toElement());
    }
    if (this.headerSent || condition) this.write(STREAM_FOOTER);
    this.socket.end();
    setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS).unref();
    this.notifyClosed();
  }

  protected headerForError(): Record<string, string | undefined> {
    return {};
  }

  private onSocketClosed(): void {
    this.closed = true;
    this.notifyClosed();
  }

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

