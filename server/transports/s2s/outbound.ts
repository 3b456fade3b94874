// Outgoing server-to-server streams: RFC 6120 §4-§6 as the initiating entity (STARTTLS, then
// SASL EXTERNAL when the peer's certificate is valid for its domain, XEP-0178 v1.2), Server
// Dialback as the originating server (XEP-0220 v1.1.1, keys from XEP-0185), piggybacking further
// local domains on one stream (XEP-0220 §2.6), and db:verify sent for inbound streams.
//
// An OutboundLink exists per remote domain and outlives its streams: it holds the stanzas
// waiting for a stream (bounded, in order), opens a stream when needed, and bounces what cannot
// be delivered. An OutboundStream is one TCP/TLS connection. With XEP-0288 v1.0.1 the link may
// instead answer over a bidirectional stream the peer opened, and an outbound stream that
// negotiated it carries the peer's stanzas to us as well.
import net from "node:net";
import tls from "node:tls";
import { xml, type Element } from "../../../protocol/xml/element.ts";
import type { StreamHeader } from "../../../protocol/xml/parser.ts";
import { NS } from "../../../protocol/ns.ts";
import { StanzaError, parseStreamError, type StanzaErrorCondition } from "../../../protocol/errors.ts";
import { dialbackElement, dialbackKey, parseDialback, type DialbackElement } from "../../../protocol/dialback.ts";
import { tryParseJid } from "../../../protocol/jid.ts";
import { STANZA_KINDS } from "../../core/router.ts";
import { S2sStream, checkHeader, type Undelivered } from "./stream.ts";
import type { InboundStream } from "./inbound.ts";
import type { S2sEndpoint } from "./resolver.ts";
import type { S2sManager } from "./index.ts";

interface Waiting {
  stanza: Element;
  local: string;
  /** Already carried over once to a new stream after its stream closed: it bounces next time. */
  retried?: boolean;
}

/** What a db:verify we sent came back as. */
export type VerifyOutcome = "valid" | "invalid" | StanzaError;

interface PendingVerify {
  resolve(outcome: VerifyOutcome): void;
}

/** Every stanza and verification for one remote domain, across reconnections. */
export class OutboundLink {
  stream: OutboundStream | null = null;
  private connecting = false;
  private waiting: Waiting[] = [];
  private verifies: Array<{ request: DialbackElement; pending: PendingVerify }> = [];
  readonly sentVerifies = new Map<string, PendingVerify>();
  /** XEP-0288: an inbound stream from this domain that carries our stanzas back. */
  private bidi: InboundStream | null = null;

  constructor(
    readonly domain: string,
    private readonly manager: S2sManager,
  ) {}

  get queued(): number {
    return this.waiting.length;
  }

  get hasBidi(): boolean {
    return this.bidi !== null;
  }

  attachBidi(stream: InboundStream): void {
    this.bidi = stream;
    const rest: Waiting[] = [];
    for (const w of this.waiting) {
      if (w.local !== stream.localDomain || !stream.writeStanza(w.stanza, w.local)) rest.push(w);
    }
    this.waiting = rest;
  }

  detachBidi(stream: InboundStream): void {
    if (this.bidi !== stream) return;
    this.bidi = null;
    this.manager.linkIdle(this);
  }

  send(stanza: Element, local: string): void {
    const bidi = this.bidi;
    if (bidi && !bidi.closed && bidi.localDomain === local && bidi.writeStanza(stanza, local)) return;
    const stream = this.stream;
    if (stream && !stream.closed && stream.isAuthenticated(local) && this.waitingFor(local) === 0 && stream.writeStanza(stanza, local)) return;
    if (this.waiting.length >= this.manager.config.maxQueue) {
      this.manager.bounce(stanza, new StanzaError("remote-server-timeout", `too many stanzas are waiting for ${this.domain}`));
      return;
    }
    this.waiting.push({ stanza, local });
    this.kick(local);
  }

  /** Asks the authoritative server (this remote domain) whether a dialback key is valid. */
  verify(request: DialbackElement): Promise<VerifyOutcome> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.sentVerifies.delete(verifyKey(request.to, request.from, request.id ?? ""));
        this.verifies = this.verifies.filter((v) => v.request !== request);
        resolve(new StanzaError("remote-server-timeout", `${this.domain} did not answer the dialback verification`));
      }, this.manager.config.authTimeoutMs);
      timer.unref();
      const pending: PendingVerify = {
        resolve: (o) => {
          clearTimeout(timer);
          resolve(o);
        },
      };
      const stream = this.stream;
      if (stream && stream.usable && !stream.closed) this.sendVerify(stream, request, pending);
      else {
        this.verifies.push({ request, pending });
        this.kick(request.from);
      }
    });
  }

  private sendVerify(stream: OutboundStream, request: DialbackElement, pending: PendingVerify): void {
    this.sentVerifies.set(verifyKey(request.to, request.from, request.id ?? ""), pending);
    stream.writeDialback(request);
  }

  private waitingFor(local: string): number {
    let n = 0;
    for (const w of this.waiting) if (w.local === local) n++;
    return n;
  }

  private kick(local: string): void {
    const stream = this.stream;
    if (stream && !stream.closed) {
      if (stream.usable) stream.authenticate(local);
      return;
    }
    if (this.connecting) return;
    this.connecting = true;
    void this.connect(local).finally(() => {
      this.connecting = false;
    });
  }

  private async connect(local: string): Promise<void> {
    let endpoints: S2sEndpoint[] = [];
    try {
      endpoints = await this.manager.resolver.resolve(this.domain);
    } catch (err) {
      this.manager.log.info({ domain: this.domain, err: (err as Error).message }, "s2s resolution failed");
    }
    if (endpoints.length === 0) return this.failAll("remote-server-not-found", `${this.domain} has no XMPP server`);
    let timedOut = false;
    for (const endpoint of endpoints) {
      try {
        const socket = await this.manager.connectEndpoint(endpoint, local, this.domain);
        const stream = new OutboundStream(socket, this, this.manager, local, endpoint.directTls);
        this.stream = stream;
        stream.onceClosed(() => this.streamClosed(stream));
        stream.start();
        return;
      } catch (err) {
        if ((err as Error).message === "timeout") timedOut = true;
        this.manager.log.info({ domain: this.domain, host: endpoint.host, port: endpoint.port, err: (err as Error).message }, "s2s connection attempt failed");
      }
    }
    this.failAll(timedOut ? "remote-server-timeout" : "remote-server-not-found", `${this.domain} cannot be reached`);
  }

  /** The stream may now carry db:verify requests. */
  streamUsable(stream: OutboundStream): void {
    const verifies = this.verifies;
    this.verifies = [];
    for (const v of verifies) this.sendVerify(stream, v.request, v.pending);
    const locals = new Set(this.waiting.map((w) => w.local));
    for (const local of locals) stream.authenticate(local);
  }

  /** `local` may now send: the stanzas it queued go out in order. */
  authenticated(stream: OutboundStream, local: string): void {
    const rest: Waiting[] = [];
    for (const w of this.waiting) {
      if (w.local !== local || !stream.writeStanza(w.stanza, w.local)) rest.push(w);
    }
    this.waiting = rest;
  }

  /** Authentication of `local` failed: its stanzas bounce. */
  authenticationFailed(local: string, condition: StanzaErrorCondition, text: string): void {
    const rest: Waiting[] = [];
    for (const w of this.waiting) {
      if (w.local === local) this.manager.bounce(w.stanza, new StanzaError(condition, text));
      else rest.push(w);
    }
    this.waiting = rest;
  }

  answerVerify(d: DialbackElement): void {
    const key = verifyKey(d.from, d.to, d.id ?? "");
    const pending = this.sentVerifies.get(key);
    if (!pending) return;
    this.sentVerifies.delete(key);
    pending.resolve(d.type === "valid" ? "valid" : d.type === "invalid" ? "invalid" : new StanzaError("remote-server-not-found", "the authoritative server answered with an error"));
  }

  private streamClosed(stream: OutboundStream): void {
    if (this.stream === stream) this.stream = null;
    for (const [key, pending] of this.sentVerifies) {
      this.sentVerifies.delete(key);
      pending.resolve(new StanzaError("remote-server-timeout", `the stream to ${this.domain} closed`));
    }
    if (stream.wasReady && !stream.failure && !this.manager.shuttingDown && this.waiting.length > 0) {
      // The peer ended a working stream (idle timeout, restart) while stanzas waited for another
      // local domain's dialback: they get one new stream; those already carried over once bounce.
      const again: Waiting[] = [];
      for (const w of this.waiting) {
        if (w.retried) this.manager.bounce(w.stanza, new StanzaError("remote-server-timeout", `the stream to ${this.domain} closed twice before the stanza could be sent`));
        else again.push({ ...w, retried: true });
      }
      this.waiting = again;
      if (again.length > 0) return this.kick(again[0].local);
    }
    const condition: StanzaErrorCondition = stream.wasReady || stream.timedOut ? "remote-server-timeout" : "remote-server-not-found";
    this.failAll(condition, stream.failure ?? `the stream to ${this.domain} closed before the stanza could be sent`);
    this.manager.linkIdle(this);
  }

  private failAll(condition: StanzaErrorCondition, text: string): void {
    const waiting = this.waiting;
    this.waiting = [];
    for (const w of waiting) this.manager.bounce(w.stanza, new StanzaError(condition, text));
    const verifies = this.verifies;
    this.verifies = [];
    for (const v of verifies) v.pending.resolve(new StanzaError(condition, text));
    if (!this.stream) this.manager.linkIdle(this);
  }

  close(): void {
    this.stream?.close("system-shutdown");
  }
}

function verifyKey(remote: string, local: string, id: string): string {
  return `${remote}\u0000${local}\u0000${id}`;
}

type Phase = "opening" | "tls" | "sasl" | "ready";

export class OutboundStream extends S2sStream {
  readonly remote: string;
  private phase: Phase = "opening";
  private streamId = "";
  private dialbackOffered = false;
  /** XEP-0288 negotiated: the peer may send its stanzas on this stream. */
  private bidi = false;
  private saslTried = false;
  private saslDone = false;
  private certificateValid = false;
  /** Local domains the peer has accepted on this stream. */
  private readonly authed = new Set<string>();
  /** How each local domain authenticated (for logs, metrics and specs). */
  readonly methods = new Map<string, "external" | "dialback">();
  /** Local domains whose db:result is waiting for an answer. */
  private readonly pendingResults = new Map<string, NodeJS.Timeout>();
  /** Whether db:verify (and piggybacked db:result) may be sent. */
  usable = false;
  wasReady = false;
  failure: string | undefined;

  constructor(
    socket: net.Socket,
    private readonly link: OutboundLink,
    private readonly manager: S2sManager,
    private readonly local: string,
    directTls: boolean,
  ) {
    super(socket, manager.limits, manager.log.child({ s2s: "out", remote: link.domain }));
    this.remote = link.domain;
    this.secure = directTls;
    if (directTls) this.certificateValid = manager.certificateValid(socket as tls.TLSSocket, this.remote);
  }

  start(): void {
    this.sendHeader({ from: this.local, to: this.remote });
  }

  protected override headerForError(): Record<string, string | undefined> {
    return { from: this.local, to: this.remote };
  }

  /** Whether stanzas from `local` may be written now (after SASL, once the new stream is up). */
  isAuthenticated(local: string): boolean {
    return this.usable && this.authed.has(local);
  }

  get authenticatedDomains(): ReadonlySet<string> {
    return this.authed;
  }

  protected onStreamStart(h: StreamHeader): void {
    const bad = checkHeader(h);
    if (bad) {
      this.failure = bad.text;
      return this.close(bad.condition, bad.text);
    }
    this.streamId = h.attrs.id ?? "";
    if (h.attrs["xmlns:db"] === NS.dialback) this.dialbackOffered = true;
  }

  protected onElement(el: Element): void {
    const ns = el.getNS();
    const name = el.getName();
    if (ns === NS.stream && name === "features") return this.onFeatures(el);
    if (ns === NS.stream && name === "error") {
      const e = parseStreamError(el);
      this.failure = `${this.remote} closed the stream: ${e?.condition ?? "error"}${e?.text ? ` (${e.text})` : ""}`;
      this.log.info({ condition: e?.condition, text: e?.text }, "stream error from the remote server");
      this.peerFailed();
      return this.close();
    }
    if (ns === NS.tls && name === "proceed" && this.phase === "tls") return this.upgrade();
    if (ns === NS.tls && name === "failure") {
      this.failure = `${this.remote} refused TLS`;
      return this.close();
    }
    if (ns === NS.sasl && this.phase === "sasl") return this.onSasl(el);
    const d = parseDialback(el);
    if (d && d.type) {
      if (d.kind === "verify") return this.link.answerVerify(d);
      return this.onResultAnswer(d);
    }
    if (this.bidi && STANZA_KINDS.has(el.name)) return this.onBidiStanza(el);
    // XEP-0288 is not negotiated, so nothing else may come this way.
    this.close("unsupported-stanza-type", "this stream carries no stanzas towards its initiator");
  }

  private onFeatures(features: Element): void {
    const policy = this.manager.policyFor(this.remote);
    if (!this.secure) {
      if (features.getChild("starttls", NS.tls)) {
        this.phase = "tls";
        this.writeElement(xml("starttls", { xmlns: NS.tls }));
        return;
      }
      if (policy.requireEncryption) {
        this.failure = `${this.remote} does not offer TLS, which this server requires`;
        return this.close("policy-violation", "TLS is required");
      }
    }
    if (this.secure && policy.requireValidCertificate && !this.certificateValid) {
      this.failure = `the certificate of ${this.remote} is not valid for it`;
      return this.close("policy-violation", "your certificate is not valid for your domain");
    }
    if (features.getChild("dialback", NS.dialbackFeature)) this.dialbackOffered = true;
    if (this.saslDone) return this.becomeUsable();
    if (!this.bidi && this.manager.config.bidi && features.getChild("bidi", NS.bidiFeature)) {
      // XEP-0288 §2: requested before authentication, no answer expected.
      this.bidi = true;
      this.writeElement(xml("bidi", { xmlns: NS.bidi }));
    }
    const mechanisms = features.getChild("mechanisms", NS.sasl)?.getChildren("mechanism").map((m) => m.getText().trim()) ?? [];
    if (this.secure && this.certificateValid && !this.saslTried && mechanisms.includes("EXTERNAL")) {
      this.saslTried = true;
      this.phase = "sasl";
      // XEP-0178 §3: the authorization identity is the originating domain.
      this.writeElement(xml("auth", { xmlns: NS.sasl, mechanism: "EXTERNAL" }, Buffer.from(this.local, "utf8").toString("base64")));
      return;
    }
    if (!this.dialbackOffered) {
      this.failure = `${this.remote} offers no authentication this server can use`;
      return this.close("policy-violation", "no usable authentication method");
    }
    this.becomeUsable();
  }

  private becomeUsable(): void {
    this.phase = "ready";
    this.usable = true;
    this.wasReady = true;
    if (this.authed.has(this.local)) this.link.authenticated(this, this.local);
    // Only domains with stanzas waiting authenticate: a stream opened just to carry db:verify
    // (or whose stanzas went out over a bidirectional stream meanwhile) stays unauthenticated.
    this.link.streamUsable(this);
  }

  private upgrade(): void {
    const raw = this.socket;
    const secure = tls.connect({ socket: raw, ...this.manager.clientTlsOptions(this.local, this.remote) });
    this.replaceSocket(secure);
    secure.once("secureConnect", () => {
      this.secure = true;
      this.certificateValid = this.manager.certificateValid(secure, this.remote);
      this.log.debug({ protocol: secure.getProtocol(), certificateValid: this.certificateValid }, "TLS established");
      this.sendHeader({ from: this.local, to: this.remote });
    });
  }

  private onSasl(el: Element): void {
    if (el.getName() === "success") {
      this.saslDone = true;
      this.authed.add(this.local);
      this.methods.set(this.local, "external");
      this.log.info({ local: this.local }, "authenticated with SASL EXTERNAL");
      // RFC 6120 §6.4.6: a new stream; stanzas wait for its features (becomeUsable).
      this.resetParser();
      this.sendHeader({ from: this.local, to: this.remote });
      return;
    }
    if (el.getName() === "failure") {
      this.log.info({ condition: el.children.find((c) => typeof c !== "string")?.toString() }, "SASL EXTERNAL refused; trying dialback");
      if (!this.dialbackOffered) {
        this.failure = `${this.remote} refused our certificate`;
        return this.close();
      }
      this.becomeUsable();
      return;
    }
    if (el.getName() === "challenge") this.writeElement(xml("response", { xmlns: NS.sasl }, "="));
  }

  /** Dialback for `local` (the stream's own domain, or one piggybacked on it). */
  authenticate(local: string): void {
    if (this.closed || !this.usable || this.authed.has(local) || this.pendingResults.has(local)) return;
    if (!this.dialbackOffered) {
      this.link.authenticationFailed(local, "remote-server-not-found", `${this.remote} offers no dialback for ${local}`);
      return;
    }
    const key = dialbackKey(this.manager.secret, this.remote, local, this.streamId);
    const timer = setTimeout(() => {
      this.pendingResults.delete(local);
      this.link.authenticationFailed(local, "remote-server-timeout", `${this.remote} did not answer dialback`);
      if (this.authed.size === 0) {
        this.failure = `${this.remote} did not answer dialback`;
        this.close("connection-timeout", "no dialback answer in time");
      }
    }, this.manager.config.authTimeoutMs);
    timer.unref();
    this.pendingResults.set(local, timer);
    this.writeDialback({ kind: "result", from: local, to: this.remote, key });
  }

  private onResultAnswer(d: DialbackElement): void {
    const local = d.to;
    const timer = this.pendingResults.get(local);
    if (timer === undefined || d.from !== this.remote) return;
    clearTimeout(timer);
    this.pendingResults.delete(local);
    if (d.type === "valid") {
      this.authed.add(local);
      this.methods.set(local, "dialback");
      this.log.info({ local }, "authenticated with dialback");
      this.link.authenticated(this, local);
      return;
    }
    const text = d.type === "invalid" ? `${this.remote} refused ${local}'s dialback key` : `${this.remote} could not verify ${local}`;
    this.link.authenticationFailed(local, "remote-server-not-found", text);
    if (this.authed.size === 0 && this.pendingResults.size === 0) {
      this.failure = text;
      this.close();
    }
  }

  timedOut = false;

  /** The peer did not get the stream ready in time (no header, features or TLS). */
  timeOut(): void {
    this.timedOut = true;
    this.failure = `${this.remote} did not set up the stream in time`;
    this.close("connection-timeout", "the stream was not set up in time");
  }

  /**
   * XEP-0288: the peer's stanzas on our stream. We reached it through its domain's address, as
   * dialback trusts, so it may send from exactly that domain to our authenticated domains.
   */
  private onBidiStanza(el: Element): void {
    const from = el.attrs.from ? tryParseJid(el.attrs.from) : null;
    const to = el.attrs.to ? tryParseJid(el.attrs.to) : null;
    if (!from || !to) return this.close("improper-addressing", "stanzas between servers carry valid from and to addresses");
    if (!this.usable || from.domain !== this.remote) return this.close("invalid-from", `only ${this.remote} may send on this stream`);
    if (!this.authed.has(to.domain)) return this.close("host-unknown", `${to.domain} is not authenticated on this stream`);
    if (el.attrs.xmlns === NS.server) el.attrs.xmlns = NS.client;
    this.lastActivity = Date.now();
    void this.manager.routeInbound(el);
  }

  writeDialback(d: DialbackElement): void {
    this.writeElement(dialbackElement(d));
  }

  protected get established(): boolean {
    return this.usable;
  }

  protected onUndelivered(lost: Undelivered): void {
    this.manager.undelivered(this.remote, lost);
  }

  protected onClosed(): void {
    for (const t of this.pendingResults.values()) clearTimeout(t);
    this.pendingResults.clear();
  }
}
