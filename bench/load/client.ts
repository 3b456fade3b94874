// One simulated client of the load generator: an RFC 6120 client stream over a raw socket,
// negotiated by hand. STARTTLS (§5) or Direct TLS from the first byte (XEP-0368 v1.1.0), SASL
// SCRAM-SHA-1 (§6, RFC 5802), stream restart, resource binding (§7), initial presence
// (RFC 6121 §4.2); then it only reports the messages it receives and answers IQs it is asked.
// Works against any XMPP server given an address, ports and a domain. Everything it waits for
// is bounded by a timeout; it connects only to loopback addresses.
import net from "node:net";
import tls from "node:tls";
import { performance } from "node:perf_hooks";
import { StringDecoder } from "node:string_decoder";
import { StreamScanner, attribute, childText, type TopLevel } from "./scanner.ts";
import { MECHANISM, scramSha1, type ScramLogin } from "./scram.ts";
import { BIND_ID, INITIAL_PRESENCE, STARTTLS, STREAM_CLOSE, bind, iqResult, saslAuth, saslResponse, streamOpen } from "./stanzas.ts";

export interface ServerAddress {
  /** A 127.0.0.0/8 address. */
  host: string;
  /** The port offering STARTTLS. */
  port: number;
  /** The Direct TLS port (XEP-0368). */
  directTlsPort: number;
  /** The XMPP domain the accounts live on. */
  domain: string;
}

export type TlsMode = "starttls" | "direct-tls";

export interface Credentials {
  username: string;
  password: string;
  resource: string;
}

/** Called for every <message/> that reaches a logged-in client, with the time it was scanned. */
export type MessageHandler = (tag: string, raw: string, receivedAt: number) => void;
/** Likewise for <presence/>, and for <iq/> results and errors (gets and sets are answered here). */
export type StanzaHandler = (tag: string, raw: string, receivedAt: number) => void;

type Phase = "connecting" | "features-plain" | "proceed" | "features-auth" | "challenge" | "success" | "features-bind" | "bind" | "ready" | "closed";

/**
 * One TLS context for every connection: without it each tls.connect() builds its own, loading
 * the system CA store every time, which made context creation the generator's largest cost.
 */
let sharedContext: tls.SecureContext | null = null;
function clientContext(): tls.SecureContext {
  sharedContext ??= tls.createSecureContext({});
  return sharedContext;
}

export class LoginError extends Error {
  override readonly name = "LoginError";
  constructor(
    /** A short word for grouping failures in a report (timeout, refused, sasl-failure, ...). */
    readonly reason: string,
    detail: string,
  ) {
    super(`${reason}: ${detail}`);
  }
}

/** Only loopback: the benchmark must never send its load anywhere else. */
export function assertLoopback(host: string): void {
  if (net.isIPv4(host) && host.startsWith("127.")) return;
  throw new Error(`the load generator only connects to 127.0.0.0/8 addresses, not "${host}"`);
}

export class BenchClient {
  jid = "";
  onMessage: MessageHandler | null = null;
  /** Presence after login (the muc scenario's joins); ignored when null. */
  onPresence: StanzaHandler | null = null;
  /** IQ results and errors after login (answers to what a scenario asked); ignored when null. */
  onIq: StanzaHandler | null = null;
  /** Set when the server ended the stream or the connection after login. */
  onClosed: ((reason: string) => void) | null = null;

  private socket: net.Socket | null = null;
  private decoder = new StringDecoder("utf8");
  private readonly scanner = new StreamScanner();
  private phase: Phase = "connecting";
  private scram: ScramLogin | null = null;
  private settle: { resolve: (ms: number) => void; reject: (e: LoginError) => void } | null = null;
  private startedAt = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    readonly address: ServerAddress,
    readonly credentials: Credentials,
  ) {
    assertLoopback(address.host);
  }

  get ready(): boolean {
    return this.phase === "ready";
  }

  /** Connects and logs in; resolves with the milliseconds from connect() to the bind result. */
  login(mode: TlsMode, timeoutMs: number): Promise<number> {
    if (this.phase !== "connecting" || this.settle) return Promise.reject(new LoginError("misuse", "login() runs once per client"));
    return new Promise<number>((resolve, reject) => {
      this.settle = { resolve, reject };
      this.startedAt = performance.now();
      this.timer = setTimeout(() => this.fail("timeout", `no login within ${timeoutMs} ms (phase ${this.phase})`), timeoutMs);
      const { host, domain } = this.address;
      if (mode === "starttls") {
        const socket = net.connect({ host, port: this.address.port });
        this.socket = socket;
        socket.setNoDelay(true);
        socket.once("connect", () => {
          this.phase = "features-plain";
          socket.write(streamOpen(domain));
        });
        this.listen(socket);
      } else {
        const socket = tls.connect({
          host,
          port: this.address.directTlsPort,
          servername: domain,
          secureContext: clientContext(),
          ALPNProtocols: ["xmpp-client"],
          // Self-signed certificates on loopback: the benchmark measures, it does not verify.
          rejectUnauthorized: false,
        });
        this.socket = socket;
        socket.setNoDelay(true);
        socket.once("secureConnect", () => {
          this.phase = "features-auth";
          socket.write(streamOpen(domain));
        });
        this.listen(socket);
      }
    });
  }

  /** Sends raw XML on a logged-in stream; false if the stream is gone. */
  write(data: string): boolean {
    if (this.phase !== "ready" || !this.socket || this.socket.destroyed) return false;
    this.socket.write(data);
    return true;
  }

  /** Ends the stream politely; the socket is destroyed after `graceMs` if the server lingers. */
  close(graceMs = 2000): Promise<void> {
    const socket = this.socket;
    if (!socket || socket.destroyed) {
      this.phase = "closed";
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(kill);
        resolve();
      };
      const kill = setTimeout(() => {
        socket.destroy();
        resolve();
      }, graceMs);
      kill.unref();
      socket.once("close", done);
      if (this.phase === "ready") socket.write(STREAM_CLOSE);
      this.phase = "closed";
      socket.end();
    });
  }

  destroy(): void {
    this.phase = "closed";
    this.socket?.destroy();
  }

  private listen(socket: net.Socket): void {
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("error", (err: NodeJS.ErrnoException) => this.onGone(err.code === "ECONNREFUSED" ? "refused" : "socket-error", err.message));
    socket.on("close", () => this.onGone("closed", "the connection closed"));
  }

  private onData(chunk: Buffer): void {
    try {
      this.scanner.push(this.decoder.write(chunk));
      const now = performance.now();
      // Bounded: each call consumes buffered text.
      for (let item = this.scanner.next(); item !== null; item = this.phase === "closed" ? null : this.scanner.next()) {
        this.onItem(item, now);
      }
    } catch (err) {
      this.fail("protocol", (err as Error).message);
    }
  }

  private onItem(item: TopLevel, now: number): void {
    if (item.kind === "open") return;
    if (item.kind === "close") return this.onGone("stream-closed", "the server closed the stream");
    const { name, tag, raw } = item;
    if (this.phase === "ready") {
      if (name === "message") this.onMessage?.(tag, raw, now);
      else if (name === "presence") this.onPresence?.(tag, raw, now);
      else if (name === "iq") {
        const type = attribute(tag, "type");
        const id = attribute(tag, "id");
        if ((type === "get" || type === "set") && id !== undefined) this.socket!.write(iqResult(id, attribute(tag, "from")));
        else this.onIq?.(tag, raw, now);
      } else if (name === "stream:error") this.onGone("stream-error", raw);
      return;
    }
    if (name === "stream:error") return this.fail("stream-error", raw);
    switch (this.phase) {
      case "features-plain":
        if (name !== "stream:features") return;
        if (!raw.includes("<starttls")) return this.fail("no-starttls", "the server offers no STARTTLS");
        this.phase = "proceed";
        this.socket!.write(STARTTLS);
        return;
      case "proceed":
        if (name === "proceed") return this.upgrade();
        return this.fail("starttls-failure", raw);
      case "features-auth":
        if (name !== "stream:features") return;
        if (!raw.includes(`>${MECHANISM}<`)) return this.fail("no-scram", "the server does not offer SCRAM-SHA-1");
        this.scram = scramSha1(this.credentials.username, this.credentials.password);
        this.phase = "challenge";
        this.socket!.write(saslAuth(MECHANISM, this.scram.initialResponse));
        return;
      case "challenge":
        if (name !== "challenge") return this.fail("sasl-failure", raw);
        this.phase = "success";
        this.socket!.write(saslResponse(this.scram!.respond(childContent(raw))));
        return;
      case "success":
        if (name !== "success") return this.fail("sasl-failure", raw);
        if (!this.scram!.verify(childContent(raw))) return this.fail("sasl-failure", "the server's signature is wrong");
        // RFC 6120 §6.4.6: a new stream on the same connection; nothing after <success/> survives.
        this.scanner.reset();
        this.phase = "features-bind";
        this.socket!.write(streamOpen(this.address.domain));
        return;
      case "features-bind":
        if (name !== "stream:features") return;
        if (!raw.includes("<bind")) return this.fail("no-bind", "the server offers no resource binding");
        this.phase = "bind";
        this.socket!.write(bind(this.credentials.resource));
        return;
      case "bind":
        if (name !== "iq" || attribute(tag, "id") !== BIND_ID) return;
        if (attribute(tag, "type") !== "result") return this.fail("bind-failure", raw);
        this.jid = childText(raw, "jid") ?? "";
        this.phase = "ready";
        this.socket!.write(INITIAL_PRESENCE);
        this.succeed();
        return;
    }
  }

  private upgrade(): void {
    const raw = this.socket!;
    raw.removeAllListeners("data");
    raw.removeAllListeners("error");
    raw.removeAllListeners("close");
    this.scanner.reset();
    this.decoder = new StringDecoder("utf8");
    const secure = tls.connect({ socket: raw, servername: this.address.domain, secureContext: clientContext(), rejectUnauthorized: false });
    this.socket = secure;
    secure.once("secureConnect", () => {
      this.phase = "features-auth";
      secure.write(streamOpen(this.address.domain));
    });
    this.listen(secure);
  }

  private succeed(): void {
    if (this.timer) clearTimeout(this.timer);
    const settle = this.settle;
    this.settle = null;
    settle?.resolve(performance.now() - this.startedAt);
  }

  private fail(reason: string, detail: string): void {
    if (this.timer) clearTimeout(this.timer);
    const settle = this.settle;
    this.settle = null;
    const wasClosed = this.phase === "closed";
    this.phase = "closed";
    this.socket?.destroy();
    if (settle) settle.reject(new LoginError(reason, detail.slice(0, 300)));
    // After login nobody awaits the promise: a scenario must still learn this client is gone,
    // or its missing deliveries look like the server's loss.
    else if (!wasClosed) this.onClosed?.(`${reason}: ${detail.slice(0, 120)}`);
  }

  private onGone(reason: string, detail: string): void {
    if (this.settle) return this.fail(reason, detail);
    if (this.phase === "closed") return;
    this.phase = "closed";
    this.socket?.destroy();
    this.onClosed?.(reason);
  }
}

/** The base64 text of a SASL element (<challenge>, <success>), "" when it is empty or "=". */
function childContent(raw: string): string {
  const start = raw.indexOf(">");
  if (raw.charCodeAt(start - 1) === 47) return "";
  const end = raw.lastIndexOf("</");
  const text = raw.slice(start + 1, end).trim();
  return text === "=" ? "" : text;
}
