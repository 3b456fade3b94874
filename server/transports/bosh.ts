// BOSH: XEP-0124 (Bidirectional-streams Over Synchronous HTTP, v1.11.2) and XEP-0206 (XMPP Over
// BOSH, v1.4), on the HTTP server's /http-bind.
//
// A BOSH session is a client stream carried by HTTP POSTs of <body/> wrappers. Each session is
// a StreamFraming for c2s.ts's C2sConnection, so SASL, binding, SM, CSI and the c2s/* hooks are
// the same as on TCP. What this file adds:
// - sessions by 'sid', requests by 'rid': requests are handled strictly in rid order; one that
//   arrives early waits (within the window of 'requests'), a resent rid gets its response again
//   from a small cache, a rid outside the window ends the session with item-not-found (§14.3);
// - the connection manager holds up to 'hold' requests for at most 'wait' seconds and answers
//   the oldest one as soon as there is something to say or a newer request arrives (§10, §11);
//   'hold' 0 is polling;
// - xmpp:restart='true' restarts the stream after SASL (XEP-0206 §5); type='terminate' ends it,
//   a stream error ends the session with condition='remote-stream-error' (XEP-0206 §9);
// - bounded buffers: what waits for a request is capped, and a session with no request for
//   'inactivity' seconds is lost (XEP-0198 may keep it to be resumed from a new session);
// - overactivity (§11, §12): more unanswered requests than 'requests', an empty request that
//   fills the window less than 'polling' seconds after the one before, or (polling sessions)
//   two empty requests in a row that close together, end the session with policy-violation;
// - acknowledgements (§9) when the creation request asks for them with 'ack': responses carry
//   the highest rid received in order, the client's 'ack' trims the resend cache, and an 'ack'
//   that shows a lost response is answered at once with 'report' and 'time';
// - pause (§10): up to 'maxpause' seconds; every held request is answered at once and the
//   inactivity limit is the pause until the next request;
// - no channel binding (XEP-0440, RFC 5929): the requests of one session may travel on several
//   TLS connections, none of them the session's own, so SCRAM-*-PLUS is never offered;
// - CORS headers, so a web client served from elsewhere can talk to it.
import { randomBytes } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Element } from "../../protocol/xml/element.ts";
import { escapeAttr } from "../../protocol/xml/serialize.ts";
import { NS } from "../../protocol/ns.ts";
import type { Server, Transport } from "../core/server.ts";
import type { Logger } from "../core/log.ts";
import type { HttpRequestContext } from "../http/index.ts";
import { C2sConnection, CLOSE_GRACE_MS, authFailuresOf, type AuthFailures, type ConnectionHost } from "./c2s.ts";
import { isLoopback, parseOneElement, serializeStandalone, type FramingEvents, type StreamFraming, type StreamOpenAttrs } from "./framing.ts";

export const BOSH_PATH = "/http-bind";
export const HTTPBIND_NS = "http://jabber.org/protocol/httpbind";
export const XBOSH_NS = "urn:xmpp:xbosh";
const STREAM_NS = "http://etherx.jabber.org/streams";

/** The largest 'hold' granted: one request waits while the client may send another. */
const MAX_HOLD = 1;
/** Seconds between polls a client is asked to keep ('polling', XEP-0124 §7). */
const POLLING_S = 2;
/** The longest pause a client may ask for ('maxpause', XEP-0124 §10), seconds. */
export const MAX_PAUSE_S = 120;
/** What may wait for the client's next request before the session counts as lost. */
const MAX_PENDING_BYTES = 1024 * 1024;

export const CORS_HEADERS = {
  "Access-Control-Allow-Origin": "*",
  "Access-Control-Allow-Methods": "POST, OPTIONS",
  "Access-Control-Allow-Headers": "Content-Type",
  "Access-Control-Max-Age": "86400",
};

export interface BoshSettings {
  maxWait: number;
  inactivity: number;
  /** The longest pause granted (XEP-0124 §10), seconds; default MAX_PAUSE_S. */
  maxPause?: number;
}

interface Held {
  rid: number;
  res: ServerResponse;
  timer: NodeJS.Timeout;
  /** The request carried nothing (no payload, restart, pause or terminate). */
  empty: boolean;
}

/** Is this an empty request in the sense of XEP-0124 §11: no payload, no pause, no terminate, no restart? */
function isEmptyRequest(body: Element): boolean {
  const a = body.attrs;
  return body.getChildElements().length === 0 && a.pause === undefined && a.type !== "terminate" && a["xmpp:restart"] !== "true";
}

interface Early {
  body: Element;
  res: ServerResponse;
  bytes: number;
}

/** Answers one request with a complete <body/> (text/xml, CORS, never cached). */
function reply(res: ServerResponse, text: string): void {
  if (res.writableEnded || res.destroyed) return;
  const data = Buffer.from(text);
  res.writeHead(200, {
    "Content-Type": "text/xml; charset=utf-8",
    "Content-Length": data.length,
    "Cache-Control": "no-store",
    ...CORS_HEADERS,
  });
  res.end(data);
}

function terminateBody(condition: string): string {
  return `<body xmlns='${HTTPBIND_NS}' type='terminate' condition='${condition}'/>`;
}

export class BoshFraming implements StreamFraming {
  readonly kind = "bosh" as const;
  readonly canStartTls = false;
  readonly sid = randomBytes(16).toString("base64url");
  private events: FramingEvents | null = null;
  private lastRid: number;
  private readonly requests: number;
  private readonly early = new Map<number, Early>();
  private held: Held[] = [];
  private pending: string[] = [];
  private pendingBytes = 0;
  private readonly sent = new Map<number, string>();
  /** Session-creation attributes still to go out on the first response. */
  private creation: Record<string, string> | null;
  private terminating: string | null = null;
  private ended = false;
  private flushScheduled = false;
  private paused = false;
  private inactivityTimer: NodeJS.Timeout | null = null;
  /** The client asked for acknowledgements (§9): 'ack' on the creation request. */
  private readonly acks: boolean;
  /** When each cached response went out, for 'report'/'time' (§9.2). */
  private readonly sentAt = new Map<number, number>();
  private lastAnswered = 0;
  private report: { rid: number; time: number } | null = null;
  /** The inactivity limit of a pause (§10), until the next request. */
  private pauseSeconds: number | null = null;
  /** The newest new request as it arrived, for the overactivity rules (§11, §12). */
  private lastArrival: { rid: number; at: number; empty: boolean } | null = null;
  /** The last empty request answered, and whether its answer carried payloads (§12). */
  private lastEmptyAnswer: { rid: number; payload: boolean } | null = null;
  private resolveClosed!: () => void;
  private readonly closedPromise = new Promise<void>((resolve) => (this.resolveClosed = resolve));

  constructor(
    private readonly transport: BoshTransport,
    readonly remoteAddress: string,
    readonly secure: boolean,
    firstRid: number,
    private readonly wait: number,
    private readonly hold: number,
    private readonly header: Record<string, string>,
    private readonly inactivity: number,
    ack = false,
    private readonly maxPause = MAX_PAUSE_S,
  ) {
    this.lastRid = firstRid - 1;
    this.requests = hold + 1;
    this.acks = ack;
    this.creation = {
      sid: this.sid,
      wait: String(wait),
      hold: String(hold),
      requests: String(this.requests),
      inactivity: String(inactivity),
      polling: String(POLLING_S),
      maxpause: String(maxPause),
      ...(ack ? { ack: String(firstRid) } : {}),
      ver: "1.11",
      secure: secure ? "true" : "false",
      "xmlns:xmpp": XBOSH_NS,
      "xmpp:version": "1.0",
      "xmpp:restartlogic": "true",
    };
  }

  start(events: FramingEvents): void {
    this.events = events;
  }

  get gone(): boolean {
    return this.ended || this.terminating !== null;
  }

  channelBindings(): Record<string, Buffer> {
    // Requests may come over different TLS connections (and through proxies that end TLS):
    // none is the session's own channel, so nothing is offered to bind to and c2s.ts offers
    // no SCRAM-*-PLUS (XEP-0206 has no channel binding; RFC 5929 binds one TLS connection).
    return {};
  }

  /** A request of this session (rid checked against the window), in any order. */
  request(body: Element, res: ServerResponse, bytes: number): void {
    const rid = Number(body.attrs.rid);
    if (this.ended) return reply(res, terminateBody("item-not-found"));
    if (rid <= this.lastRid) {
      // A resent request (XEP-0124 §14.3): the same answer again, if it went out already.
      const cached = this.sent.get(rid);
      if (cached !== undefined) return reply(res, cached);
      if (rid > this.lastRid - this.requests) return reply(res, `<body xmlns='${HTTPBIND_NS}'/>`);
      return this.fail(res, "item-not-found");
    }
    if (rid > this.lastRid + this.requests || this.early.has(rid)) return this.fail(res, "item-not-found");
    const overactive = this.overactive(rid, body);
    if (overactive) {
      this.transport.log.info({ sid: this.sid, rid }, overactive);
      return this.fail(res, "policy-violation");
    }
    this.early.set(rid, { body, res, bytes });
    this.processInOrder();
  }

  /**
   * XEP-0124 §11 and §12 for a new request as it arrives: why it is one too many, or null.
   * Requests that pause or terminate are always let through (§11: "one additional request").
   */
  private overactive(rid: number, body: Element): string | null {
    const now = Date.now();
    const previous = this.lastArrival;
    const empty = isEmptyRequest(body);
    this.lastArrival = { rid, at: now, empty };
    if (body.attrs.pause !== undefined || body.attrs.type === "terminate") return null;
    const unanswered = this.held.length + this.early.size + 1;
    if (unanswered > this.requests) return `${unanswered} simultaneous requests, ${this.requests} allowed`;
    // "The last request" is the newest by rid: an empty one overtaken by a newer one is not it.
    const newest = [...this.early.keys()].every((r) => r < rid);
    if (!empty || !newest || !previous || now - previous.at >= POLLING_S * 1000) return null;
    if (this.hold === 0) {
      // §12: two empty polls in a row, closer than 'polling', the first one answered empty.
      const answer = this.lastEmptyAnswer;
      if (previous.empty && previous.rid === rid - 1 && answer?.rid === previous.rid && !answer.payload) return `polling faster than every ${POLLING_S} s`;
      return null;
    }
    // §11: an empty request that fills the window within 'polling' seconds of the one before.
    if (unanswered === this.requests) return `empty requests faster than every ${POLLING_S} s`;
    return null;
  }

  private processInOrder(): void {
    // While the read-rate limit holds the session, requests wait unanswered: the client's pace.
    if (this.paused) return;
    for (let next = this.early.get(this.lastRid + 1); next && !this.paused; next = this.early.get(this.lastRid + 1)) {
      this.early.delete(this.lastRid + 1);
      this.lastRid++;
      this.process(this.lastRid, next);
    }
  }

  /** The session-creation request (§7.1): the stream starts. */
  begin(body: Element, res: ServerResponse, bytes: number): void {
    this.lastRid++;
    this.holdRequest(this.lastRid, res);
    this.events!.read(bytes);
    this.events!.streamStart({ name: "body", attrs: this.header, defaultNs: NS.client });
    this.afterRequest();
  }

  private process(rid: number, { body, res, bytes }: Early): void {
    const events = this.events!;
    let pause: number | null = null;
    if (body.attrs.pause !== undefined) {
      pause = Number(body.attrs.pause);
      if (!Number.isSafeInteger(pause) || pause < 0 || pause > this.maxPause) return this.fail(res, "policy-violation");
    }
    if (body.attrs.ack !== undefined && this.acks) this.acknowledged(Number(body.attrs.ack));
    this.holdRequest(rid, res, isEmptyRequest(body));
    events.read(bytes);
    if (body.attrs["xmpp:restart"] === "true") {
      // XEP-0206 §5: the client restarts the stream after SASL success; the body is otherwise empty.
      events.streamStart({ name: "body", attrs: { ...this.header, ...(body.attrs.to ? { to: body.attrs.to } : {}) }, defaultNs: NS.client });
    } else {
      for (const child of body.getChildElements()) {
        child.parent = null;
        if (this.ended || this.terminating) break;
        events.element(child);
      }
      if (body.attrs.type === "terminate" && !this.ended && !this.terminating) events.streamEnd();
    }
    if (pause !== null && !this.gone) {
      // §10: every held request is answered now (what waits goes in the older ones, never in
      // the pause's own answer), and the inactivity limit is the pause until the next request.
      this.pauseSeconds = pause;
      const own = this.held.find((h) => h.rid === rid);
      for (const h of this.held.filter((x) => x !== own)) this.answer(h);
      if (own) this.answer(own, false);
      return;
    }
    if (this.report && this.held.length > 0) {
      // §9.2: a response went missing; say so at once rather than when there is news.
      this.answer(this.held[0]);
      return;
    }
    this.afterRequest();
  }

  /** The client has every response up to `ack` (§9.2). */
  private acknowledged(ack: number): void {
    if (!Number.isSafeInteger(ack)) return;
    for (const rid of this.sent.keys()) {
      if (rid <= ack) {
        this.sent.delete(rid);
        this.sentAt.delete(rid);
      }
    }
    const missing = ack + 1;
    const at = this.sentAt.get(missing);
    if (ack < this.lastAnswered && at !== undefined) this.report = { rid: missing, time: Date.now() - at };
  }

  private holdRequest(rid: number, res: ServerResponse, empty = false): void {
    if (this.inactivityTimer) clearTimeout(this.inactivityTimer);
    this.inactivityTimer = null;
    // A request ends a pause (§10).
    this.pauseSeconds = null;
    const held: Held = { rid, res, empty, timer: setTimeout(() => this.answer(held), this.wait * 1000) };
    held.timer.unref();
    this.held.push(held);
    res.once("close", () => {
      if (!res.writableEnded) this.dropHeld(held);
    });
  }

  private afterRequest(): void {
    // More requests held than the client granted: the oldest goes back now (§11).
    while (this.held.length > this.hold) this.answer(this.held[0]);
    this.scheduleFlush();
  }

  openStream(attrs: StreamOpenAttrs): void {
    if (this.creation) {
      this.creation.from = attrs.from;
      this.creation.authid = attrs.id;
    }
  }

  writeElement(el: Element): void {
    if (this.gone) return;
    const text = serializeStandalone(el);
    this.pending.push(text);
    this.pendingBytes += Buffer.byteLength(text);
    if (this.pendingBytes > MAX_PENDING_BYTES && this.held.length === 0) {
      // Nobody is collecting: a bounded buffer, and the session counts as lost.
      this.transport.log.info({ sid: this.sid }, "BOSH client does not collect what it is sent");
      this.pending = [];
      this.pendingBytes = 0;
      this.terminating = "policy-violation";
      this.end();
      this.events?.lost();
      return;
    }
    this.scheduleFlush();
  }

  keepalive(): void {
    // Held requests time out after 'wait' with an empty body: that is BOSH's keepalive.
  }

  restart(): void {
    // The client's next body carries xmpp:restart='true'.
  }

  close(): void {
    if (this.gone) return;
    const streamError = this.pending.some((t) => t.startsWith("<stream:error"));
    this.terminating = streamError ? "remote-stream-error" : "";
    this.flush();
    // A terminate nobody collects is dropped after a while.
    if (!this.ended) setTimeout(() => this.end(), CLOSE_GRACE_MS).unref();
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    if (!this.ended) this.processInOrder();
  }

  closed(): Promise<void> {
    return this.closedPromise;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // Whatever the session writes in this turn of the event loop goes out in one body.
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    if (this.held.length === 0) return;
    if (this.terminating !== null) {
      for (const h of [...this.held]) this.answer(h);
      this.end();
      return;
    }
    if (this.pending.length > 0 || this.creation) this.answer(this.held[0]);
  }

  /** Answers a held request with everything pending (and the terminate, when it is time). */
  private answer(held: Held, withPayload = true): void {
    this.dropHeld(held);
    let attrs = `xmlns='${HTTPBIND_NS}' xmlns:stream='${STREAM_NS}'`;
    if (this.creation) {
      for (const [k, v] of Object.entries(this.creation)) attrs += ` ${k}='${escapeAttr(v)}'`;
      this.creation = null;
    } else if (this.acks && this.lastRid !== held.rid) {
      // §9.1: requests up to lastRid have all arrived, newer than the one answered.
      attrs += ` ack='${this.lastRid}'`;
    }
    if (this.report) {
      attrs += ` report='${this.report.rid}' time='${this.report.time}'`;
      this.report = null;
    }
    if (this.terminating !== null) {
      attrs += ` type='terminate'`;
      if (this.terminating) attrs += ` condition='${this.terminating}'`;
    }
    const children = withPayload ? this.pending.join("") : "";
    if (withPayload) {
      this.pending = [];
      this.pendingBytes = 0;
    }
    const text = children ? `<body ${attrs}>${children}</body>` : `<body ${attrs}/>`;
    this.sent.set(held.rid, text);
    this.sentAt.set(held.rid, Date.now());
    if (held.rid > this.lastAnswered) this.lastAnswered = held.rid;
    if (held.empty) this.lastEmptyAnswer = { rid: held.rid, payload: children !== "" };
    for (const rid of this.sent.keys()) {
      if (rid <= this.lastRid - this.requests) {
        this.sent.delete(rid);
        this.sentAt.delete(rid);
      }
    }
    reply(held.res, text);
    if (this.held.length === 0 && !this.gone) this.startInactivity();
  }

  private dropHeld(held: Held): void {
    clearTimeout(held.timer);
    const i = this.held.indexOf(held);
    if (i >= 0) this.held.splice(i, 1);
    if (this.held.length === 0 && !this.gone && !this.inactivityTimer) this.startInactivity();
  }

  private startInactivity(): void {
    if (this.inactivityTimer) clearTimeout(this.inactivityTimer);
    this.inactivityTimer = setTimeout(() => {
      this.transport.log.debug({ sid: this.sid }, "BOSH session inactive");
      this.end();
      this.events?.lost();
    }, (this.pauseSeconds ?? this.inactivity) * 1000);
    this.inactivityTimer.unref();
  }

  private fail(res: ServerResponse, condition: string): void {
    reply(res, terminateBody(condition));
    if (!this.gone) {
      this.terminating = condition;
      this.flush();
      this.end();
      this.events?.lost();
    }
  }

  /** The session is over: no more requests, its sid is forgotten. */
  private end(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.inactivityTimer) clearTimeout(this.inactivityTimer);
    for (const h of [...this.held]) {
      this.dropHeld(h);
      reply(h.res, terminateBody(this.terminating || "item-not-found"));
    }
    for (const e of this.early.values()) reply(e.res, terminateBody("item-not-found"));
    this.early.clear();
    this.transport.forget(this);
    this.resolveClosed();
  }
}

/** The /http-bind endpoint: session creation, requests by sid, CORS. */
export class BoshTransport implements Transport, ConnectionHost {
  readonly name = "bosh";
  readonly ports: number[] = [];
  readonly connections = new Set<C2sConnection>();
  readonly authFailures: AuthFailures;
  readonly log: Logger;
  private readonly sessions = new Map<string, BoshFraming>();

  constructor(
    private readonly server: Server,
    private readonly settings: BoshSettings,
  ) {
    this.log = server.log.child({ part: "bosh" });
    this.authFailures = authFailuresOf(server);
  }

  /** Largest request body: a stanza at the size limit plus its <body/> wrapper. */
  get maxBodyBytes(): number {
    return this.server.config.limits.maxStanzaSize + 8 * 1024;
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  forget(session: BoshFraming): void {
    if (this.sessions.get(session.sid) === session) this.sessions.delete(session.sid);
  }

  async handle(req: IncomingMessage, res: ServerResponse, ctx: HttpRequestContext): Promise<void> {
    if (ctx.path !== "" && ctx.path !== "/") {
      res.writeHead(404, { "Content-Type": "text/plain; charset=utf-8", ...CORS_HEADERS }).end("not found\n");
      return;
    }
    if (req.method === "OPTIONS") {
      res.writeHead(204, CORS_HEADERS).end();
      return;
    }
    if (req.method !== "POST") {
      res.writeHead(405, { Allow: "POST, OPTIONS", "Content-Type": "text/plain; charset=utf-8", ...CORS_HEADERS }).end("BOSH (XEP-0206) takes POST\n");
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > this.maxBodyBytes) return reply(res, terminateBody("policy-violation"));
      chunks.push(chunk);
    }
    const limits = this.server.config.limits;
    const parsed = parseOneElement(Buffer.concat(chunks), { maxStanzaSize: this.maxBodyBytes, maxDepth: limits.maxDepth + 1 });
    if ("error" in parsed) {
      res.writeHead(400, { "Content-Type": "text/xml; charset=utf-8", ...CORS_HEADERS }).end(terminateBody("bad-request"));
      return;
    }
    const body = parsed.element;
    const rid = Number(body.attrs.rid);
    if (body.name !== "body" || body.getNS() !== HTTPBIND_NS || !Number.isSafeInteger(rid) || rid < 0) {
      return reply(res, terminateBody("bad-request"));
    }
    if (body.attrs.sid === undefined) return this.create(body, res, ctx, size);
    const session = this.sessions.get(body.attrs.sid);
    if (!session) return reply(res, terminateBody("item-not-found"));
    session.request(body, res, size);
  }

  private create(body: Element, res: ServerResponse, ctx: HttpRequestContext, bytes: number): void {
    const a = body.attrs;
    const wait = Math.max(1, Math.min(this.settings.maxWait, Number(a.wait) || this.settings.maxWait));
    // wait='0' asks for a polling session as hold='0' does (§12): nothing is held.
    const hold = a.wait === "0" ? 0 : Math.max(0, Math.min(MAX_HOLD, a.hold === undefined ? 1 : Number(a.hold) || 0));
    const header: Record<string, string> = {};
    if (a.to) header.to = a.to;
    if (a["xmpp:version"]) header.version = a["xmpp:version"];
    if (a["xml:lang"]) header["xml:lang"] = a["xml:lang"];
    const secure = ctx.secure || isLoopback(ctx.remoteAddress) || this.server.config.http.behindTls;
    // §12: a polling session gets a longer inactivity limit, by more than the polling interval.
    const inactivity = hold === 0 ? this.settings.inactivity + 2 * POLLING_S : this.settings.inactivity;
    const framing = new BoshFraming(this, ctx.remoteAddress, secure, Number(a.rid), wait, hold, header, inactivity, a.ack !== undefined, this.settings.maxPause);
    this.sessions.set(framing.sid, framing);
    const conn = new C2sConnection(this.server, framing, this);
    this.connections.add(conn);
    framing.begin(body, res, bytes);
  }

  async stop(): Promise<void> {
    const all = [...this.connections];
    for (const c of all) c.close("system-shutdown", "the server is shutting down");
    await Promise.race([Promise.all(all.map((c) => c.closed())), new Promise((r) => setTimeout(r, CLOSE_GRACE_MS + 100).unref())]);
    await Promise.all(all.map((c) => c.detach()));
  }
}
