// Client-to-server streams: RFC 6120 §4 (streams), §5 (STARTTLS), §6 (SASL), §7 (resource
// binding), RFC 6121 App. E / RFC 3921 §3 (the legacy session element), XEP-0368 (Direct TLS),
// XEP-0440 (SASL channel-binding type capability).
//
// One C2sConnection per client stream drives the negotiation: header, features, STARTTLS, SASL,
// restart, bind; then it hands stanzas to the router in arrival order. The stream reaches it
// through a StreamFraming (framing.ts): a TCP socket here, a WebSocket (websocket.ts, RFC 7395)
// or a BOSH session (bosh.ts, XEP-0206), so SASL, SM, CSI, carbons and the c2s/* hooks behave
// the same on all three. Limits are enforced here: stanza size and depth (the framing's parser),
// read rate (reading is paused, as Prosody's limits do, so a flood only slows its sender), time
// to log in, idle time, authentication failures.
import { randomBytes } from "node:crypto";
import net from "node:net";
import tls from "node:tls";
import { Element, xml } from "../../protocol/xml/element.ts";
import type { StreamHeader } from "../../protocol/xml/parser.ts";
import { StanzaError, StreamError, errorReply, type StreamErrorCondition } from "../../protocol/errors.ts";
import { NS } from "../../protocol/ns.ts";
import { makeJid, type Jid } from "../../protocol/jid.ts";
import { opaqueString, usernameCaseMapped } from "../../protocol/precis.ts";
import {
  createServerMechanism,
  serverMechanisms,
  unknownUserCredentials,
  verifyScramPassword,
  type SaslServerSession,
  type SaslFailureCondition,
  type ScramHash,
} from "../../protocol/sasl/index.ts";
import { selectXmppClient, serverEndPoints, serverTlsOptions, type DomainCertificates } from "../core/tls.ts";
import { TcpFraming, type TcpFramingOptions, type FramingEvents, type StreamFraming, type TransportKind } from "./framing.ts";
import { STANZA_KINDS } from "../core/router.ts";
import type { ClientSession } from "../core/sessions.ts";
import type { UserRecord } from "../core/storage/index.ts";
import type { Server, Transport } from "../core/server.ts";
import type { Logger } from "../core/log.ts";
import { authFailures, labelsOf, stanzasIn, stanzasOut, streamErrors } from "../core/metrics.ts";

/** Payload of `c2s/features`: modules append their stream features (sm, csi, ver, ...). */
export interface StreamFeaturesEvent {
  session: C2sConnection;
  features: Element;
}

/** Payload of `c2s/nonza`: top-level elements that are not stanzas (sm's <r/>, csi's <active/>). */
export interface NonzaEvent {
  session: C2sConnection;
  element: Element;
}

/** Payload of `c2s/preauth-iq`: an IQ before authentication (XEP-0077 in-band registration). */
export interface PreauthIqEvent {
  session: C2sConnection;
  stanza: Element;
}

/** Payload of `c2s/resuming`: `previous` is about to hand its identity to `session` (XEP-0198). */
export interface ResumeEvent {
  session: C2sConnection;
  previous: C2sConnection;
}

/** Payload of `c2s/bound`, `c2s/hibernating` and `c2s/closed`. */
export interface SessionEvent {
  session: C2sConnection;
  /** For c2s/closed: the stream error condition that ended it, if any. */
  reason?: string;
}

interface FailureCounter {
  count: number;
  resetAt: number;
}

const FAILURE_WINDOW_MS = 15 * 60 * 1000;
const MAX_PENDING_STANZAS = 256;
const CLOSE_GRACE_MS = 2000;
// Shared empty values, so that an idle connection holds no empty array or settled promise of its own.
// Frozen: a push onto the shared queue would throw rather than reach every idle connection
// (drain() shifts only while the queue has elements).
const NO_ELEMENTS = Object.freeze([]) as unknown as Element[];
const NO_STRINGS: readonly string[] = Object.freeze([]);
const NO_FUNCTIONS: readonly never[] = Object.freeze([]);
const RESOLVED: Promise<void> = Promise.resolve();

/** Counts authentication failures per IP across connections, so reconnecting does not reset them. */
export class AuthFailures {
  private readonly byIp = new Map<string, FailureCounter>();

  add(ip: string): number {
    const now = Date.now();
    let c = this.byIp.get(ip);
    if (!c || c.resetAt < now) {
      c = { count: 0, resetAt: now + FAILURE_WINDOW_MS };
      this.byIp.set(ip, c);
    }
    c.count++;
    if (this.byIp.size > 100_000) this.prune(now);
    return c.count;
  }

  get(ip: string): number {
    const c = this.byIp.get(ip);
    return c && c.resetAt >= Date.now() ? c.count : 0;
  }

  private prune(now: number): void {
    for (const [ip, c] of this.byIp) if (c.resetAt < now) this.byIp.delete(ip);
  }
}

/** One AuthFailures per server, shared by TCP, WebSocket and BOSH. */
const failuresByServer = new WeakMap<Server, AuthFailures>();
export function authFailuresOf(server: Server): AuthFailures {
  let f = failuresByServer.get(server);
  if (!f) failuresByServer.set(server, (f = new AuthFailures()));
  return f;
}

// One timer for every connection rather than one each (10,000 idle connections held 10,000
// timers): each connection's tick() runs once a second while it is open.
const ticking = new Set<C2sConnection>();
let ticker: NodeJS.Timeout | null = null;

function startTicking(connection: C2sConnection): void {
  ticking.add(connection);
  if (ticker) return;
  ticker = setInterval(() => {
    for (const c of ticking) {
      try {
        c.tick();
      } catch {
        // One connection's failure (already logged where it happened) never stops the others' clocks.
      }
    }
  }, 1000);
  ticker.unref();
}

function stopTicking(connection: C2sConnection): void {
  ticking.delete(connection);
  if (ticking.size === 0 && ticker) {
    clearInterval(ticker);
    ticker = null;
  }
}

/** What a transport gives its connections: a logger, the failure counter, its connection set. */
export interface ConnectionHost {
  readonly log: Logger;
  readonly authFailures: AuthFailures;
  readonly connections: Set<C2sConnection>;
}

export interface C2sOptions {
  certificates: DomainCertificates;
}

type Phase = "connected" | "open" | "hibernating" | "closing" | "closed";

export class C2sConnection implements ClientSession {
  readonly kind = "c2s" as const;
  readonly id = randomBytes(9).toString("base64url");
  readonly ip: string;
  // Made on first use: most idle sessions never need them (memory per idle connection).
  #directedPresence: Set<string> | null = null;
  #data: Map<string, unknown> | null = null;
  get directedPresence(): Set<string> {
    return (this.#directedPresence ??= new Set());
  }
  get data(): Map<string, unknown> {
    return (this.#data ??= new Map());
  }
  presence: Element | null = null;
  priority = 0;
  interested = false;
  host = "";
  lang = "en";
  jid: Jid | undefined = undefined;
  /** The authenticated account (bare JID), set by SASL success. */
  account: Jid | undefined = undefined;
  readonly connectedAt = Date.now();
  handledCount = 0;
  resumeTimeoutMs: number | null = null;

  /** The transport the stream runs over. */
  readonly via: TransportKind;
  private phase: Phase = "connected";
  private streamOpened = false; // our header sent
  private sasl: SaslServerSession | null = null;
  /** The account row the SASL exchange under way read (its credentials), for its success step. */
  private saslUser: { local: string; user: UserRecord | null } | null = null;
  private offeredMechanisms: readonly string[] = NO_STRINGS;
  private authFailures = 0;
  /** The client tried -PLUS with a channel-binding type this connection cannot provide. */
  private askedUnavailableBinding = false;
  /** NO_ELEMENTS (shared, never pushed to) while empty: an idle connection holds no array of its own. */
  private queue: Element[] = NO_ELEMENTS;
  private processing = false;
  private paused = false;
  private lastRead = Date.now();
  private lastWrite = Date.now();
  private tokens: number;
  private stanzaTokens: number;
  private lastRefill = Date.now();

  /**
   * A logger naming this connection, made when something is logged: a pino child kept per
   * connection was memory every idle connection paid for.
   */
  private get log(): Logger {
    return this.transport.log.child({ conn: this.id, ip: this.ip });
  }

  constructor(
    private readonly server: Server,
    private readonly framing: StreamFraming,
    private readonly transport: ConnectionHost,
  ) {
    this.ip = framing.remoteAddress;
    this.via = framing.kind;
    const limits = server.config.limits;
    this.tokens = limits.c2sBurstBytes;
    this.stanzaTokens = limits.stanzaBurst;
    framing.start(new C2sConnection.Events(this));
    startTicking(this);
  }

  /**
   * What the framing reports, as methods of one small object: an object of arrow functions, each
   * named by tsx's keepNames, cost every idle connection a property table per function.
   */
  private static Events = class implements FramingEvents {
    constructor(private readonly c: C2sConnection) {}
    streamStart(h: StreamHeader): void {
      this.c.onStreamStart(h);
    }
    element(el: Element): void {
      this.c.onElement(el);
    }
    streamEnd(): void {
      this.c.onStreamEnd();
    }
    error(condition: StreamErrorCondition, text: string): void {
      this.c.onParseError(condition, text);
    }
    read(bytes: number): void {
      this.c.onRead(bytes);
    }
    lost(): void {
      this.c.onSocketClosed();
    }
  };

  /** Confidential to the client (TLS, or a transport the configuration trusts). */
  get secure(): boolean {
    return this.framing.secure;
  }

  // ---- input ------------------------------------------------------------------------------

  /** Called before the framing parses what arrived. */
  private onRead(bytes: number): void {
    this.lastRead = Date.now();
    this.tokens -= bytes;
    queueMicrotask(() => this.applyBackpressure());
  }

  private applyBackpressure(): void {
    const over = this.tokens < 0 || this.stanzaTokens < 0 || this.queue.length > MAX_PENDING_STANZAS;
    if (over && !this.paused) {
      this.paused = true;
      this.framing.pause();
    } else if (!over && this.paused) {
      this.paused = false;
      this.framing.resume();
    }
  }

  /** Once a second (the shared ticker below): rate refills, login and idle timeouts, keepalives. */
  tick(): void {
    const now = Date.now();
    const limits = this.server.config.limits;
    const elapsed = (now - this.lastRefill) / 1000;
    this.lastRefill = now;
    this.tokens = Math.min(limits.c2sBurstBytes, this.tokens + elapsed * limits.c2sRateBytesPerSecond);
    this.stanzaTokens = Math.min(limits.stanzaBurst, this.stanzaTokens + elapsed * limits.stanzasPerSecond);
    this.applyBackpressure();
    if (this.phase !== "open" && this.phase !== "connected") return;
    if (!this.jid && now - this.connectedAt > limits.loginTimeoutMs) {
      this.close("connection-timeout", "no login in time");
    } else if (!this.paused && now - this.lastRead > limits.idleTimeoutMs) {
      this.close("connection-timeout", "idle for too long");
    } else if (this.streamOpened && now - this.lastWrite >= limits.keepaliveIntervalMs) {
      this.lastWrite = now;
      this.framing.keepalive();
    }
  }

  private onParseError(condition: StreamErrorCondition, text: string): void {
    if (this.phase === "closing" || this.phase === "closed") return;
    this.log.info({ condition, text }, "stream error from the parser");
    this.close(condition, text);
  }

  private onStreamStart(h: StreamHeader): void {
    if (this.phase === "closing" || this.phase === "closed") return;
    const attrs = h.attrs;
    const restart = this.host !== "";
    const to = (attrs.to ?? "").toLowerCase().replace(/\.$/, "");
    const fail = (condition: StreamErrorCondition, text: string) => {
      this.openStream(this.server.isLocalHost(to) ? to : this.server.hosts[0], attrs.from);
      this.close(condition, text);
    };
    // RFC 6120 §4.8.1: the content namespace of a client stream is jabber:client.
    if (h.defaultNs !== NS.client) return fail("invalid-namespace", "a client stream's content namespace is jabber:client");
    if (!this.server.isLocalHost(to)) return fail("host-unknown", to ? `this server does not serve ${to}` : "the stream header needs a 'to' naming this server's domain");
    if (restart && to !== this.host) return fail("host-unknown", "the restarted stream must be to the same domain");
    // RFC 6120 §4.7.5: a missing version means 0.9, which Parley does not speak.
    const major = /^(\d+)\.\d+$/.exec(attrs.version ?? "")?.[1];
    if (major !== "1") return fail("unsupported-version", "Parley speaks XMPP version 1.0");
    // RFC 7395 §3.6: no STARTTLS on a WebSocket (nor in BOSH): encryption is the HTTP layer's.
    if (!this.secure && !this.framing.canStartTls && this.server.config.c2s.requireEncryption) {
      return fail("policy-violation", "this server requires encryption: connect over HTTPS");
    }
    this.host = to;
    if (attrs["xml:lang"]) this.lang = attrs["xml:lang"];
    this.phase = "open";
    this.openStream(to, attrs.from);
    this.out(this.features());
  }

  private openStream(from: string, to: string | undefined): void {
    if (this.streamOpened && this.phase !== "open") return;
    this.streamOpened = true;
    this.lastWrite = Date.now();
    this.framing.openStream({ from, to: to && !/[<>&'"]/.test(to) ? to : undefined, id: randomBytes(12).toString("base64url"), version: "1.0", "xml:lang": "en" });
  }

  private features(): Element {
    const features = xml("stream:features", {});
    const c2s = this.server.config.c2s;
    if (!this.secure && this.framing.canStartTls) {
      features.append(xml("starttls", { xmlns: NS.tls }, c2s.requireEncryption ? xml("required", {}) : null));
      if (c2s.requireEncryption) return features;
    }
    if (!this.account) {
      const bindings = this.secure ? Object.keys(this.channelBindings()) : [];
      this.offeredMechanisms = serverMechanisms({ tls: this.secure, channelBindings: bindings, allowPlain: c2s.allowPlain, external: false });
      features.append(xml("mechanisms", { xmlns: NS.sasl }, ...this.offeredMechanisms.map((m) => xml("mechanism", {}, m))));
      if (bindings.length > 0) {
        features.append(xml("sasl-channel-binding", { xmlns: NS.saslChannelBinding }, ...bindings.map((type) => xml("channel-binding", { type }))));
      }
    } else {
      features.append(xml("bind", { xmlns: NS.bind }, xml("required", {})));
      // RFC 6121 App. E: old clients still send the session IQ; tell them it is optional.
      features.append(xml("session", { xmlns: NS.session }, xml("optional", {})));
    }
    void this.server.hooks.fire<StreamFeaturesEvent>(this.account ? "c2s/features" : "c2s/features-preauth", { session: this, features });
    return features;
  }

  private channelBindings(): Record<string, Buffer> {
    return this.framing.channelBindings();
  }

  private onStreamEnd(): void {
    this.log.debug("client closed the stream");
    this.close();
  }

  /** Every top-level element, in order; each is handled to the end before the next starts. */
  private onElement(el: Element): void {
    if (this.phase !== "open") return;
    if (STANZA_KINDS.has(el.name)) {
      stanzasIn.inc(labelsOf("transport", this.via));
      this.stanzaTokens--;
      // RFC 6120 §4.8.3: stanzas on a client stream are jabber:client.
      if (el.attrs.xmlns !== NS.client) return this.close("invalid-namespace", "stanzas must be in jabber:client");
    }
    if (this.queue === NO_ELEMENTS) this.queue = [];
    this.queue.push(el);
    if (!this.processing) void this.drain();
  }

  private async drain(): Promise<void> {
    this.processing = true;
    try {
      while (this.queue.length > 0 && this.phase === "open") {
        const el = this.queue.shift()!;
        try {
          await this.handle(el);
          if (this.jid && STANZA_KINDS.has(el.name)) this.countHandled();
        } catch (err) {
          this.log.error({ err }, "failed to handle an element");
          if (err instanceof StreamError) this.close(err.condition, err.text);
          else if (STANZA_KINDS.has(el.name)) {
            const reply = errorReply(el, new StanzaError("internal-server-error"));
            if (reply) this.send(reply);
          }
        }
        this.applyBackpressure();
      }
    } finally {
      this.processing = false;
      // An empty array again, without the capacity a burst gave it (memory per idle connection).
      if (this.queue.length === 0) this.queue = NO_ELEMENTS;
    }
  }

  private acks: Promise<void> = RESOLVED;

  /**
   * XEP-0198 'h' counts a stanza once what its routing wrote (offline storage, archive) has
   * committed: the group-commit writer settles in order, so counting follows arrival order
   * without holding up the stanzas behind it. A failed commit ends the stream unacknowledged,
   * so the client sends again what was lost.
   */
  private countHandled(): void {
    const committed = this.server.storage.writer.sync();
    const chained: Promise<void> = this.acks.then(
      () => committed.then(() => {
        this.handledCount++;
        // Everything handled so far is counted: an idle session keeps no settled promise chain.
        if (this.acks === chained) this.acks = RESOLVED;
      }),
    ).catch((err: unknown) => {
      this.log.error({ err }, "a write for this session's stanzas failed");
      this.close("internal-server-error", "storage failed");
    });
    this.acks = chained;
  }

  /** Resolves when every handled stanza so far is counted (durable or delivered). */
  settled(): Promise<void> {
    return this.acks;
  }

  private async handle(el: Element): Promise<void> {
    const ns = el.getNS();
    if (!this.secure) {
      if (el.name === "starttls" && ns === NS.tls && this.framing.startTls) return this.startTls();
      if (this.server.config.c2s.requireEncryption) {
        if (ns === NS.sasl && el.name === "auth") {
          await this.authFailed("encryption-required", "authenticate after STARTTLS");
          return;
        }
        return this.close("not-authorized", "STARTTLS is required first");
      }
    }
    if (!this.account) {
      if (ns === NS.sasl) return this.handleSasl(el);
      if (el.name === "starttls" && ns === NS.tls) {
        // RFC 6120 §5.4.2.2: TLS is already in place.
        this.out(xml("failure", { xmlns: NS.tls }));
        return this.close();
      }
      if (el.name === "iq" && (await this.server.hooks.fire<PreauthIqEvent>("c2s/preauth-iq", { session: this, stanza: el }))) return;
      return this.close("not-authorized", "authenticate first");
    }
    if (!this.jid) {
      if (el.name === "iq" && el.attrs.type === "set" && el.getChild("bind", NS.bind)) return this.bind(el);
      if (el.name === "iq" && el.attrs.type === "set" && el.getChild("session", NS.session)) {
        return this.send(xml("iq", { type: "result", id: el.attrs.id }));
      }
      if (await this.server.hooks.fire<NonzaEvent>("c2s/nonza-unbound", { session: this, element: el })) return;
      return this.close("not-authorized", "bind a resource first");
    }
    if (STANZA_KINDS.has(el.name)) {
      if (el.name === "iq" && el.attrs.type === "set" && el.getChild("session", NS.session) && !el.attrs.to) {
        return this.send(xml("iq", { type: "result", id: el.attrs.id }));
      }
      return this.server.routeFromClient(el, this);
    }
    if (await this.server.hooks.fire<NonzaEvent>("c2s/nonza", { session: this, element: el })) return;
    this.close("unsupported-stanza-type", `<${el.name}/> is not something Parley handles`);
  }

  // ---- STARTTLS (RFC 6120 §5) --------------------------------------------------------------

  private startTls(): void {
    this.framing.startTls!();
    this.streamOpened = false;
    this.phase = "connected";
  }

  // ---- SASL (RFC 6120 §6) ------------------------------------------------------------------

  private async handleSasl(el: Element): Promise<void> {
    const name = el.getName();
    if (name === "auth") {
      const mechanism = el.attrs.mechanism ?? "";
      if (this.sasl) return this.authFailed("malformed-request", "an exchange is already running");
      if (!this.offeredMechanisms.includes(mechanism)) return this.authFailed("invalid-mechanism", `${mechanism} is not offered`);
      if (mechanism.endsWith("-PLUS")) this.noteRequestedBinding(el.getText().trim());
      const created = createServerMechanism(mechanism, this.saslContext());
      if (!created) return this.authFailed("invalid-mechanism", `${mechanism} is not available`);
      this.sasl = created;
      this.saslUser = null;
      return this.saslStep(el);
    }
    if (name === "response") {
      if (!this.sasl) return this.authFailed("malformed-request", "no exchange is running");
      return this.saslStep(el);
    }
    if (name === "abort") {
      this.sasl = null;
      this.out(xml("failure", { xmlns: NS.sasl }, xml("aborted", {})));
      return;
    }
    this.close("unsupported-stanza-type", `unknown SASL element <${name}/>`);
  }

  private noteRequestedBinding(initialResponse: string): void {
    const gs2 = Buffer.from(initialResponse, "base64").toString("latin1");
    const type = /^p=([A-Za-z0-9.-]+),/.exec(gs2)?.[1];
    if (type && !(type in this.channelBindings())) this.askedUnavailableBinding = true;
  }

  private saslContext() {
    const users = this.server.storage.users;
    const host = this.host;
    const lookup = async (username: string) => {
      const local = prepUsername(username);
      if (local === null) return null;
      const user = await users.get(host, local);
      // Kept for the success step of this same exchange, which would otherwise read the row again.
      this.saslUser = { local, user };
      return user;
    };
    return {
      channelBinding: this.secure ? this.channelBindings() : {},
      // RFC 5802 §6: "y" after we offered -PLUS means the offer was stripped, unless this client
      // saw it and already failed with a binding type we lack (see c2s.strict_channel_binding).
      offeredPlus:
        this.offeredMechanisms.some((m) => m.endsWith("-PLUS")) &&
        (this.server.config.c2s.strictChannelBinding || !this.askedUnavailableBinding),
      getScramCredentials: async (username: string, hash: ScramHash) => {
        const user = await lookup(username);
        if (!user) return null;
        return hash === "SHA-256" ? user.credentials.scramSha256 : user.credentials.scramSha1;
      },
      verifyPlain: async (username: string, password: string) => {
        const user = await lookup(username);
        const creds = user?.credentials.scramSha256 ?? unknownUserCredentials(username, "SHA-256");
        const ok = verifyScramPassword(password, "SHA-256", creds);
        return ok && user !== null;
      },
    };
  }

  private async saslStep(el: Element): Promise<void> {
    const text = el.getText().trim();
    let data: Buffer | null;
    if (text === "") data = el.name === "auth" ? null : Buffer.alloc(0);
    else if (text === "=") data = Buffer.alloc(0);
    else if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) {
      this.sasl = null;
      return this.authFailed("incorrect-encoding", "the data is not base64");
    } else data = Buffer.from(text, "base64");
    const step = await this.sasl!.step(data);
    if (step.kind === "challenge") {
      this.out(xml("challenge", { xmlns: NS.sasl }, step.data.length ? step.data.toString("base64") : "="));
      return;
    }
    this.sasl = null;
    if (step.kind === "failure") return this.authFailed(step.condition, step.text);
    const local = prepUsername(step.username);
    const seen = this.saslUser;
    this.saslUser = null;
    const user = local === null ? null : seen?.local === local ? seen.user : await this.server.storage.users.get(this.host, local);
    if (!user || local === null) return this.authFailed("not-authorized");
    if (user.disabled) return this.authFailed("account-disabled", "this account is disabled");
    const account = makeJid(local, this.host);
    if (step.authzid && step.authzid !== account.toString()) return this.authFailed("invalid-authzid", "you may only act as yourself");
    this.account = account;
    this.offeredMechanisms = NO_STRINGS; // SASL is over on this connection (RFC 6120 §6.4.6)
    this.framing.forgetChannelBindings?.();
    // Every login logs twice: the fields a child logger would bind, without making one each time.
    this.transport.log.info({ conn: this.id, ip: this.ip, account: account.toString() }, "authenticated");
    this.out(xml("success", { xmlns: NS.sasl }, step.data && step.data.length ? step.data.toString("base64") : undefined));
    // RFC 6120 §6.4.6: both sides start a new stream; nothing that was buffered survives.
    this.framing.restart();
    this.streamOpened = false;
  }

  private async authFailed(condition: SaslFailureCondition, text?: string): Promise<void> {
    this.sasl = null;
    this.authFailures++;
    authFailures.inc();
    const ipFailures = this.transport.authFailures.add(this.ip);
    // Each failure from an address costs more time: online guessing gets slow fast.
    const base = this.server.config.limits.authFailureDelayMs;
    const delay = Math.min(base * 2 ** Math.min(ipFailures - 1, 5), 10_000);
    if (delay > 0) await new Promise((r) => setTimeout(r, delay).unref());
    if (this.phase !== "open") return;
    this.out(xml("failure", { xmlns: NS.sasl }, xml(condition, {}), text ? xml("text", { "xml:lang": "en" }, text) : null));
    if (this.authFailures >= this.server.config.limits.authFailuresBeforeClose) {
      this.close("policy-violation", "too many failed authentication attempts");
    }
  }

  // ---- binding (RFC 6120 §7) -----------------------------------------------------------------

  private async bind(iq: Element): Promise<void> {
    const requested = iq.getChild("bind", NS.bind)?.getChildText("resource") ?? "";
    let resource: string;
    if (requested === "") {
      resource = randomBytes(6).toString("base64url");
    } else {
      try {
        resource = opaqueString(requested);
        if (Buffer.byteLength(resource) > 1023) throw new Error("too long");
      } catch {
        return this.send(errorReply(iq, new StanzaError("bad-request", "the resource is not a valid resourcepart"))!);
      }
    }
    // The account may have been deleted between authentication and binding.
    if (!(await this.server.storage.users.exists(this.account!.domain, this.account!.local))) {
      return this.close("not-authorized", "this account no longer exists");
    }
    const jid = this.account!.withResource(resource);
    this.jid = jid;
    const replaced = this.server.sessions.add(this);
    // RFC 6120 §7.7.2.2: Parley lets the new session win and closes the old with <conflict/>.
    if (replaced && replaced !== this) replaced.close("conflict", "replaced by a new connection with the same resource");
    this.send(xml("iq", { type: "result", id: iq.attrs.id }, xml("bind", { xmlns: NS.bind }, xml("jid", {}, jid.toString()))));
    this.transport.log.info({ conn: this.id, ip: this.ip, jid: jid.toString() }, "resource bound");
    await this.server.hooks.fire<SessionEvent>("c2s/bound", { session: this });
  }

  // ---- output --------------------------------------------------------------------------------

  // Copied on change, so an idle connection without filters or observers shares one empty array.
  private outgoingFilters: ReadonlyArray<(stanza: Element) => boolean> = NO_FUNCTIONS;
  private writeObservers: ReadonlyArray<(el: Element) => void> = NO_FUNCTIONS;

  get hibernating(): boolean {
    return this.phase === "hibernating";
  }

  send(stanza: Element): void {
    if (this.phase !== "open" && this.phase !== "hibernating") return;
    for (const filter of this.outgoingFilters) if (!filter(stanza)) return;
    this.sendNow(stanza);
  }

  sendNow(stanza: Element): void {
    if (this.phase !== "open" && this.phase !== "hibernating") return;
    for (const observe of this.writeObservers) observe(stanza);
    if (this.phase === "open") this.out(stanza);
  }

  addOutgoingFilter(filter: (stanza: Element) => boolean): () => void {
    this.outgoingFilters = [...this.outgoingFilters, filter];
    return () => {
      this.outgoingFilters = this.outgoingFilters.filter((f) => f !== filter);
    };
  }

  addWriteObserver(observer: (el: Element) => void): () => void {
    this.writeObservers = [...this.writeObservers, observer];
    return () => {
      this.writeObservers = this.writeObservers.filter((o) => o !== observer);
    };
  }

  /**
   * XEP-0198 §5 resumption: this new, authenticated stream takes over `previous`'s bound
   * session — its full JID, presence, module state and handled count — without the world
   * seeing it go offline. `previous` is closed quietly (no c2s/closed, no unavailable).
   */
  async resumeFrom(previous: C2sConnection): Promise<void> {
    await previous.settled();
    await this.server.hooks.fire<ResumeEvent>("c2s/resuming", { session: this, previous });
    this.jid = previous.jid;
    this.presence = previous.presence;
    this.priority = previous.priority;
    this.interested = previous.interested;
    this.handledCount = previous.handledCount;
    this.resumeTimeoutMs = previous.resumeTimeoutMs;
    if (previous.#directedPresence) for (const j of previous.#directedPresence) this.directedPresence.add(j);
    if (previous.#data) for (const [k, v] of previous.#data) this.data.set(k, v);
    previous.retire();
    this.server.sessions.add(this);
    this.log.info({ jid: this.jid?.toString() }, "session resumed");
  }

  /** Ends a connection whose session now lives on in another one. */
  private retire(): void {
    this.detached = true;
    stopTicking(this);
    if (this.hibernationTimer) clearTimeout(this.hibernationTimer);
    this.transport.connections.delete(this);
    if (this.phase === "open") {
      this.out(new StreamError("conflict", "the session was resumed on another connection").toElement());
      this.framing.close();
    }
    this.phase = "closed";
  }

  private out(el: Element): void {
    if (this.framing.gone) return;
    this.lastWrite = Date.now();
    if (STANZA_KINDS.has(el.name)) stanzasOut.inc(labelsOf("transport", this.via));
    this.framing.writeElement(el);
  }

  close(condition?: StreamErrorCondition, text?: string): void {
    if (this.phase === "closing" || this.phase === "closed") return;
    if (this.hibernationTimer) clearTimeout(this.hibernationTimer);
    if (!this.streamOpened) this.openStream(this.host || this.server.hosts[0], undefined);
    if (condition) {
      streamErrors.inc(labelsOf("condition", condition));
      this.out(new StreamError(condition, text).toElement());
    }
    this.phase = "closing";
    this.queue = NO_ELEMENTS;
    this.closeReason = condition;
    this.framing.close();
    void this.detach();
  }

  private closeReason: string | undefined;
  private detached = false;

  private hibernationTimer: NodeJS.Timeout | null = null;

  private onSocketClosed(): void {
    if (this.phase === "open" && this.jid && this.resumeTimeoutMs !== null) {
      // XEP-0198 §5: the connection died without a closing stream; keep the session a while.
      this.phase = "hibernating";
      this.queue = NO_ELEMENTS;
      this.log.info({ jid: this.jid.toString(), ms: this.resumeTimeoutMs }, "connection lost: session hibernating");
      this.hibernationTimer = setTimeout(() => {
        this.phase = "closed";
        void this.detach();
      }, this.resumeTimeoutMs);
      this.hibernationTimer.unref();
      void this.server.hooks.fire<SessionEvent>("c2s/hibernating", { session: this });
      return;
    }
    if (this.phase === "hibernating") return;
    this.phase = "closed";
    void this.detach();
  }

  private detaching: Promise<void> | null = null;

  /** Leaves the registry and tells modules (presence goes unavailable, last activity is kept). */
  detach(): Promise<void> {
    this.detaching ??= this.runDetach();
    return this.detaching;
  }

  private async runDetach(): Promise<void> {
    if (this.detached) return;
    this.detached = true;
    stopTicking(this);
    this.transport.connections.delete(this);
    if (this.jid) {
      this.server.sessions.remove(this);
      await this.server.hooks.fire<SessionEvent>("c2s/closed", { session: this, reason: this.closeReason });
    }
  }

  /** Resolves once the transport has closed. */
  closed(): Promise<void> {
    return this.framing.closed();
  }
}

function prepUsername(username: string): string | null {
  try {
    const local = usernameCaseMapped(username);
    return Buffer.byteLength(local) <= 1023 ? local : null;
  } catch {
    return null;
  }
}

export { CLOSE_GRACE_MS };

export class C2sTransport implements Transport {
  readonly name = "c2s";
  readonly ports: number[] = [];
  readonly connections = new Set<C2sConnection>();
  readonly authFailures: AuthFailures;
  readonly log: Logger;
  readonly tlsOptions: tls.TlsOptions;
  /** One object shared by every connection's framing (the configuration never changes). */
  private readonly framingOptions: TcpFramingOptions;
  private readonly listeners: net.Server[] = [];

  constructor(private readonly server: Server, opts: C2sOptions) {
    this.log = server.log.child({ part: "c2s" });
    this.authFailures = authFailuresOf(server);
    this.tlsOptions = serverTlsOptions(opts.certificates, server.hosts[0]);
    const limits = server.config.limits;
    this.framingOptions = {
      maxStanzaSize: limits.maxStanzaSize,
      maxDepth: limits.maxDepth,
      tlsOptions: this.tlsOptions,
      serverEndPoint: serverEndPoints(opts.certificates, server.hosts[0]),
      graceMs: CLOSE_GRACE_MS,
    };
  }

  async listen(): Promise<void> {
    const c2s = this.server.config.c2s;
    for (const host of c2s.interfaces) {
      const plain = net.createServer((socket) => this.accept(socket, false));
      await listen(plain, host, c2s.port);
      this.listeners.push(plain);
      this.ports.push((plain.address() as net.AddressInfo).port);
      if (c2s.directTlsPort !== null) {
        const direct = tls.createServer({ ...this.tlsOptions, ALPNCallback: selectXmppClient }, (socket) => this.accept(socket, true));
        await listen(direct, host, c2s.directTlsPort);
        this.listeners.push(direct);
        this.ports.push((direct.address() as net.AddressInfo).port);
      }
    }
    this.log.info({ ports: this.ports, interfaces: c2s.interfaces }, "c2s listening");
  }

  private accept(socket: net.Socket, directTls: boolean): void {
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 60_000);
    const framing = new TcpFraming(socket, directTls, this.framingOptions);
    const conn = new C2sConnection(this.server, framing, this);
    this.connections.add(conn);
  }

  async stop(): Promise<void> {
    for (const l of this.listeners) l.close();
    const all = [...this.connections];
    for (const c of all) c.close("system-shutdown", "the server is shutting down");
    await Promise.race([Promise.all(all.map((c) => c.closed())), new Promise((r) => setTimeout(r, CLOSE_GRACE_MS + 100).unref())]);
    // Modules' c2s/closed work (unavailable presence, unacknowledged messages to offline
    // storage) must finish before storage closes.
    await Promise.all(all.map((c) => c.detach()));
  }
}

function listen(server: net.Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
}
