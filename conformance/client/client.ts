// A small XMPP client over real sockets (RFC 6120 §4-§7): STARTTLS or Direct TLS (XEP-0368),
// SASL SCRAM-SHA-1/-256 with and without -PLUS, PLAIN, resource binding. It knows nothing of
// Parley: the conformance runner drives any server with it, and Parley's end-to-end specs use it
// to see exactly what a client sees. Every wait is bounded by a timeout.
import net from "node:net";
import tls from "node:tls";
import { Element, xml } from "../../protocol/xml/element.ts";
import { XmlStreamParser, type StreamHeader } from "../../protocol/xml/parser.ts";
import { serialize, serializeForStream, streamHeader, STREAM_FOOTER } from "../../protocol/xml/serialize.ts";
import { NS } from "../../protocol/ns.ts";
import { createScramClient, plainClient, type ScramHash } from "../../protocol/sasl/index.ts";
import { parseStreamError, type ReceivedStreamError } from "../../protocol/errors.ts";

export interface ConnectOptions {
  host: string;
  port: number;
  /** The XMPP domain (stream 'to', TLS servername). */
  domain: string;
  /** TLS from the first byte (XEP-0368) instead of STARTTLS. */
  directTls?: boolean;
  /** Do not upgrade with STARTTLS even when offered. */
  noTls?: boolean;
  /** PEM of a CA to trust; `insecure` skips verification (self-signed test servers). */
  ca?: string;
  insecure?: boolean;
  /** Default time to wait for anything, ms. */
  timeout?: number;
  /**
   * Open the TCP (or Direct TLS) connection only: no stream header, no STARTTLS. The caller
   * writes the header itself, to see how a server treats a bad one (RFC 6120 §4.9.3).
   */
  raw?: boolean;
}

export interface LoginOptions {
  username: string;
  password: string;
  resource?: string;
  /** e.g. "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1", "PLAIN"; default: the best the server offers that we speak. */
  mechanism?: string;
  /** Stop after SASL success and the stream restart, without binding. */
  noBind?: boolean;
}

const SUPPORTED = ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"];

export class SaslFailure extends Error {
  /** The <failure/> element as received, when there was one. */
  element?: Element;
  constructor(readonly condition: string, readonly text?: string) {
    super(`SASL failure: ${condition}${text ? ` (${text})` : ""}`);
  }
}

export class StreamClosed extends Error {
  constructor(readonly streamError: ReceivedStreamError | null) {
    super(streamError ? `stream error: ${streamError.condition}` : "stream closed");
  }
}

type Waiter = { match: (el: Element) => boolean; resolve: (el: Element) => void; reject: (e: Error) => void; timer: NodeJS.Timeout };

export class XmppClient {
  socket!: net.Socket;
  header: StreamHeader | null = null;
  features: Element | null = null;
  jid: string | null = null;
  /** Every stanza received and not consumed by a waiter, in order. */
  readonly inbox: Element[] = [];
  streamError: ReceivedStreamError | null = null;
  ended = false;
  closed = false;
  private parser!: XmlStreamParser;
  private waiters: Waiter[] = [];
  private headerWaiters: Array<() => void> = [];
  private closeWaiters: Array<() => void> = [];
  private idCounter = 0;
  readonly timeout: number;

  protected constructor(readonly opts: ConnectOptions) {
    this.timeout = opts.timeout ?? 5000;
  }

  /** Opens the TCP (or TLS) connection and the first stream, and upgrades with STARTTLS if offered. */
  static async connect(opts: ConnectOptions): Promise<XmppClient> {
    const c = new XmppClient(opts);
    await c.open();
    return c;
  }

  get secure(): boolean {
    return this.socket instanceof tls.TLSSocket;
  }

  private tlsOptions(socket?: net.Socket): tls.ConnectionOptions {
    return {
      socket,
      host: this.opts.host,
      port: this.opts.port,
      servername: /^[\d.]+$|:/.test(this.opts.domain) ? undefined : this.opts.domain,
      ca: this.opts.ca,
      rejectUnauthorized: !this.opts.insecure,
      ALPNProtocols: this.opts.directTls ? ["xmpp-client"] : undefined,
    };
  }

  protected async open(): Promise<void> {
    this.socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = this.opts.directTls ? tls.connect(this.tlsOptions()) : net.connect({ host: this.opts.host, port: this.opts.port });
      const timer = setTimeout(() => {
        s.destroy();
        reject(new Error("connect timeout"));
      }, this.timeout);
      s.once(this.opts.directTls ? "secureConnect" : "connect", () => {
        clearTimeout(timer);
        resolve(s);
      });
      s.once("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
    this.attach();
    if (this.opts.raw) return;
    await this.restart();
    if (!this.secure && !this.opts.noTls && this.features?.getChild("starttls", NS.tls)) await this.starttls();
  }

  private attach(): void {
    this.parser = new XmlStreamParser({
      streamStart: (h) => {
        this.header = h;
        for (const w of this.headerWaiters.splice(0)) w();
      },
      stanza: (el) => this.onElement(el),
      streamEnd: () => {
        this.ended = true;
        this.socket.end();
      },
      error: () => this.socket.destroy(),
    }, { maxStanzaSize: 16 * 1024 * 1024 });
    this.socket.on("data", (d: Buffer) => this.parser.write(d));
    this.socket.on("error", () => {});
    this.socket.on("close", () => this.markClosed());
  }

  /** The transport is gone: waiters fail, `waitClosed` resolves. */
  protected markClosed(): void {
    if (this.closed) return;
    this.closed = true;
    const err = new StreamClosed(this.streamError);
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(err);
    }
    for (const w of this.closeWaiters.splice(0)) w();
    for (const w of this.headerWaiters.splice(0)) w();
  }

  protected onElement(el: Element): void {
    if (el.name === "stream:error" || (el.getName() === "error" && el.getNS() === NS.stream)) {
      this.streamError = parseStreamError(el);
    }
    if (el.getName() === "features" && el.getNS() === NS.stream) this.features = el;
    const i = this.waiters.findIndex((w) => w.match(el));
    if (i >= 0) {
      const [w] = this.waiters.splice(i, 1);
      clearTimeout(w.timer);
      w.resolve(el);
      return;
    }
    this.inbox.push(el);
  }

  /** Sends a new stream header and waits for the server's header and features. */
  async restart(): Promise<void> {
    this.header = null;
    this.features = null;
    this.parser.reset();
    this.write(streamHeader({ to: this.opts.domain, version: "1.0", "xml:lang": "en" }, NS.client));
    await this.next((el) => el.getName() === "features" && el.getNS() === NS.stream);
  }

  private async starttls(): Promise<void> {
    this.send(xml("starttls", { xmlns: NS.tls }));
    const answer = await this.next((el) => el.getNS() === NS.tls);
    if (answer.getName() !== "proceed") throw new Error("STARTTLS refused");
    this.socket.removeAllListeners("data");
    this.socket.removeAllListeners("close");
    this.socket = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect(this.tlsOptions(this.socket), () => resolve(s));
      s.once("error", reject);
    });
    this.attach();
    await this.restart();
  }

  mechanisms(): string[] {
    return this.features?.getChild("mechanisms", NS.sasl)?.getChildren("mechanism").map((m) => m.getText()) ?? [];
  }

  /** Channel-binding types the server advertises (XEP-0440); empty when it does not say. */
  channelBindingTypes(): string[] {
    const cb = this.features?.getChild("sasl-channel-binding", NS.saslChannelBinding);
    return cb?.getChildren("channel-binding").map((b) => b.attrs.type).filter((t): t is string => !!t) ?? [];
  }

  /**
   * The strongest offered mechanism this client can use on this connection, if any. -PLUS only
   * when the server says (XEP-0440) that it speaks our binding type: servers that offer -PLUS
   * without saying so may only know tls-unique, which TLS 1.3 does not have.
   */
  chooseMechanism(): string | undefined {
    const offered = this.mechanisms();
    const binding = this.bindingData();
    const usable = binding !== null && this.channelBindingTypes().includes(binding.type);
    return SUPPORTED.find((m) => offered.includes(m) && (!m.endsWith("-PLUS") || usable));
  }

  /** Authenticates and (unless noBind) binds a resource; resolves with the full JID. */
  async login(o: LoginOptions): Promise<string> {
    const mechanism = o.mechanism ?? this.chooseMechanism();
    if (!mechanism) throw new Error(`no usable mechanism among ${this.mechanisms().join(", ")}`);
    await this.authenticate(mechanism, o.username, o.password);
    await this.restart();
    if (o.noBind) return `${o.username}@${this.opts.domain}`;
    return this.bind(o.resource);
  }

  protected bindingData(): { type: string; data: Buffer } | null {
    if (!(this.socket instanceof tls.TLSSocket)) return null;
    if (this.socket.getProtocol() === "TLSv1.3") {
      return { type: "tls-exporter", data: this.socket.exportKeyingMaterial(32, "EXPORTER-Channel-Binding", Buffer.alloc(0)) };
    }
    return null;
  }

  async authenticate(mechanism: string, username: string, password: string): Promise<void> {
    if (mechanism === "PLAIN") {
      this.send(xml("auth", { xmlns: NS.sasl, mechanism }, plainClient(username, password).toString("base64")));
      const r = await this.next((el) => el.getNS() === NS.sasl);
      if (r.getName() !== "success") throw failureOf(r);
      return;
    }
    const m = /^SCRAM-(SHA-1|SHA-256)(-PLUS)?$/.exec(mechanism);
    if (!m) throw new Error(`unsupported mechanism ${mechanism}`);
    const binding = m[2] ? this.bindingData() : null;
    if (m[2] && !binding) throw new Error("no channel binding available");
    const scram = createScramClient(m[1] as ScramHash, {
      username,
      password,
      channelBinding: binding ?? undefined,
      serverSupportsPlus: this.mechanisms().some((x) => x.endsWith("-PLUS")),
    });
    this.send(xml("auth", { xmlns: NS.sasl, mechanism }, scram.first().toString("base64")));
    const challenge = await this.next((el) => el.getNS() === NS.sasl);
    if (challenge.getName() !== "challenge") throw failureOf(challenge);
    this.send(xml("response", { xmlns: NS.sasl }, scram.final(Buffer.from(challenge.getText(), "base64")).toString("base64")));
    const outcome = await this.next((el) => el.getNS() === NS.sasl);
    if (outcome.getName() !== "success") throw failureOf(outcome);
    if (!scram.verify(Buffer.from(outcome.getText(), "base64"))) throw new Error("server signature did not verify");
  }

  async bind(resource?: string): Promise<string> {
    const r = await this.iq(xml("iq", { type: "set" }, xml("bind", { xmlns: NS.bind }, resource ? xml("resource", {}, resource) : null)));
    if (r.attrs.type !== "result") throw new Error(`bind failed: ${serialize(r)}`);
    this.jid = r.getChild("bind", NS.bind)?.getChildText("jid") ?? null;
    if (!this.jid) throw new Error("bind result without a JID");
    return this.jid;
  }

  nextId(): string {
    return `c${++this.idCounter}`;
  }

  /** Sends an IQ and waits for the result or error with the same id. */
  async iq(iq: Element, timeout = this.timeout): Promise<Element> {
    if (!iq.attrs.id) iq.attrs.id = this.nextId();
    const id = iq.attrs.id;
    const p = this.next((el) => el.name === "iq" && el.attrs.id === id && (el.attrs.type === "result" || el.attrs.type === "error"), timeout);
    this.send(iq);
    return p;
  }

  send(el: Element): void {
    this.write(serializeForStream(el, NS.client));
  }

  write(data: string | Buffer): void {
    if (!this.socket.destroyed) this.socket.write(data);
  }

  /** The next element (already received or still to come) that matches, within the timeout. */
  next(match: (el: Element) => boolean = () => true, timeout = this.timeout): Promise<Element> {
    const i = this.inbox.findIndex(match);
    if (i >= 0) return Promise.resolve(this.inbox.splice(i, 1)[0]);
    if (this.closed) return Promise.reject(new StreamClosed(this.streamError));
    return new Promise((resolve, reject) => {
      const w: Waiter = {
        match,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          reject(new Error(`timed out after ${timeout} ms waiting for a stanza`));
        }, timeout),
      };
      this.waiters.push(w);
    });
  }

  /** Resolves true if nothing matching arrives within `ms` (and leaves the inbox untouched). */
  async nothing(match: (el: Element) => boolean = () => true, ms = 300): Promise<boolean> {
    try {
      const el = await this.next(match, ms);
      this.inbox.unshift(el);
      return false;
    } catch (e) {
      if (e instanceof StreamClosed) return true;
      return true;
    }
  }

  /** Waits until the server has closed the connection; returns the stream error it sent, if any. */
  waitClosed(timeout = this.timeout): Promise<ReceivedStreamError | null> {
    if (this.closed) return Promise.resolve(this.streamError);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("the server did not close the stream")), timeout);
      this.closeWaiters.push(() => {
        clearTimeout(timer);
        resolve(this.streamError);
      });
    });
  }

  /** Ends the stream politely and waits for the server to close. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.write(STREAM_FOOTER);
    this.socket.end();
    try {
      await this.waitClosed(2000);
    } catch {
      this.socket.destroy();
    }
  }

  destroy(): void {
    this.socket.destroy();
  }
}

function failureOf(el: Element): SaslFailure {
  const condition = el.getChildElements().find((c) => c.getName() !== "text")?.getName() ?? "unknown";
  const failure = new SaslFailure(condition, el.getChildText("text") ?? undefined);
  failure.element = el;
  return failure;
}
