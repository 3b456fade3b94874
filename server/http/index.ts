// The daemon's one HTTP server (shared/DESIGN.md "server/http"): HTTP/1.1 (RFC 9110, RFC 9112)
// over plain TCP and over TLS with the c2s certificates, and a router of path prefixes that the
// rest of the daemon registers on: file upload (XEP-0363), /health, /metrics, and the web
// transports: XMPP over WebSocket (RFC 7395) at /xmpp-websocket, BOSH (XEP-0206) at /http-bind,
// and their discovery (XEP-0156) at /.well-known/host-meta(.json) — see hostmeta.ts.
//
// How a module gets a route: it hooks HTTP_ROUTES_EVENT ("http/routes") in its setup; when the
// HTTP server starts it fires the event once with { register, baseUrl }, and the module calls
// `register("/upload", handler, { maxBodyBytes })`. The handler must not return true from the
// hook (that would stop other modules from registering).
//
// Limits: headers must arrive within `headersTimeoutMs` and a whole request within
// `requestTimeoutMs` (slowloris), headers are at most 16 KiB, a body is refused with 413 before
// it is read when its Content-Length exceeds the route's maxBodyBytes, and a body without a
// Content-Length (chunked) gets 411, so no route has to count bytes it never agreed to take.
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import https from "node:https";
import type net from "node:net";
import type { Duplex } from "node:stream";
import { monitorEventLoopDelay, type IntervalHistogram } from "node:perf_hooks";
import { serverEndPoints, serverTlsOptions, type DomainCertificates } from "../core/tls.ts";
import { MetricsRegistry, metrics as processMetrics } from "../core/metrics.ts";
import type { HttpConfig } from "../core/config.ts";
import type { Server, Transport } from "../core/server.ts";
import type { Logger } from "../core/log.ts";
import { WebSocketTransport, WEBSOCKET_PATH } from "../transports/websocket.ts";
import { BoshTransport, BOSH_PATH } from "../transports/bosh.ts";
import { hostMetaHandler } from "./hostmeta.ts";

export interface HttpRequestContext {
  /** The request path after the route's prefix ("" or starting with "/"), still percent-encoded. */
  readonly path: string;
  readonly url: URL;
  /** The peer's IP address (IPv4-mapped IPv6 addresses written as IPv4). */
  readonly remoteAddress: string;
  readonly secure: boolean;
}

export type HttpHandler = (req: IncomingMessage, res: ServerResponse, ctx: HttpRequestContext) => void | Promise<void>;

export interface HttpRouteOptions {
  /** Largest request body this route accepts, by Content-Length; default 64 KiB. */
  maxBodyBytes?: number;
}

export interface HttpRoutesEvent {
  /** Serves every path equal to `prefix` or under `prefix/`; the longest prefix wins. */
  register(prefix: string, handler: HttpHandler, opts?: HttpRouteOptions): void;
  /** The URL clients reach this server at, for the XMPP domain `host`, without a trailing slash. */
  baseUrl(host: string): string;
}

/** Fired once when the HTTP server starts; payload HttpRoutesEvent. */
export const HTTP_ROUTES_EVENT = "http/routes";

const DEFAULT_MAX_BODY = 64 * 1024;

interface Route {
  prefix: string;
  handler: HttpHandler;
  maxBodyBytes: number;
}

export class HttpRouter {
  private routes: Route[] = [];

  register(prefix: string, handler: HttpHandler, opts: HttpRouteOptions = {}): void {
    if (!/^\/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$/.test(prefix) || (prefix.length > 1 && prefix.endsWith("/"))) {
      throw new Error(`an HTTP route prefix starts with / and does not end with one: ${JSON.stringify(prefix)}`);
    }
    if (this.routes.some((r) => r.prefix === prefix)) throw new Error(`HTTP route ${prefix} is already registered`);
    this.routes.push({ prefix, handler, maxBodyBytes: opts.maxBodyBytes ?? DEFAULT_MAX_BODY });
    this.routes.sort((a, b) => b.prefix.length - a.prefix.length);
  }

  match(pathname: string): { route: Route; rest: string } | null {
    for (const route of this.routes) {
      if (route.prefix === "/") return { route, rest: pathname };
      if (pathname === route.prefix || pathname.startsWith(`${route.prefix}/`)) return { route, rest: pathname.slice(route.prefix.length) };
    }
    return null;
  }
}

export interface HttpLimits {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  maxHeaderBytes: number;
}

const DEFAULT_LIMITS: HttpLimits = {
  headersTimeoutMs: 10_000,
  // A 100 MB upload at 2 Mbit/s takes under 7 minutes.
  requestTimeoutMs: 10 * 60_000,
  keepAliveTimeoutMs: 5_000,
  maxHeaderBytes: 16 * 1024,
};

export interface HttpOptions {
  certificates: DomainCertificates;
  /** Defaults to the server's `[http]` configuration. */
  config?: HttpConfig;
  limits?: Partial<HttpLimits>;
}

/** Writes a small complete response. */
export function sendText(res: ServerResponse, status: number, body: string, headers: http.OutgoingHttpHeaders = {}): void {
  const data = Buffer.from(body);
  res.writeHead(status, { "Content-Type": "text/plain; charset=utf-8", "Content-Length": data.length, "X-Content-Type-Options": "nosniff", ...headers });
  res.end(res.req.method === "HEAD" ? undefined : data);
}

export function normalizeAddress(address: string | undefined): string {
  if (!address) return "";
  return address.startsWith("::ffff:") && address.includes(".") ? address.slice(7) : address;
}

export class HttpTransport implements Transport {
  readonly name = "http";
  /** Plain ports then TLS ports, per interface in order. */
  readonly ports: number[] = [];
  readonly plainPorts: number[] = [];
  readonly tlsPorts: number[] = [];
  readonly router = new HttpRouter();
  readonly log: Logger;
  private readonly config: HttpConfig;
  private readonly limits: HttpLimits;
  private readonly certificates: DomainCertificates;
  private readonly listeners: http.Server[] = [];
  private readonly sockets = new Set<net.Socket>();
  private readonly ownMetrics = new MetricsRegistry();
  private loopDelay: IntervalHistogram | null = null;
  /** The web client transports, when [http] enables them. */
  readonly websocket: WebSocketTransport | null;
  readonly bosh: BoshTransport | null;

  constructor(private readonly server: Server, opts: HttpOptions) {
    this.log = server.log.child({ part: "http" });
    this.config = opts.config ?? server.config.http;
    this.limits = { ...DEFAULT_LIMITS, ...opts.limits };
    this.certificates = opts.certificates;
    this.defineMetrics();
    this.router.register("/health", (req, res) => this.health(req, res));
    this.router.register("/metrics", (req, res, ctx) => this.metrics(req, res, ctx));
    this.websocket = this.config.websocket ? new WebSocketTransport(server, serverEndPoints(this.certificates, server.hosts[0])) : null;
    const bosh = this.config.bosh ? new BoshTransport(server, { maxWait: this.config.boshMaxWait, inactivity: this.config.boshInactivity }) : null;
    this.bosh = bosh;
    if (bosh) this.router.register(BOSH_PATH, (req, res, ctx) => bosh.handle(req, res, ctx), { maxBodyBytes: bosh.maxBodyBytes });
    if (this.websocket || bosh) {
      const links = { websocket: this.websocket !== null, bosh: bosh !== null };
      this.router.register("/.well-known/host-meta", hostMetaHandler(server, (host, secure) => this.baseUrl(host, secure), links, "xrd"));
      this.router.register("/.well-known/host-meta.json", hostMetaHandler(server, (host, secure) => this.baseUrl(host, secure), links, "json"));
    }
  }

  /** `preferPlain`: a plain-HTTP base when there is one (host-meta asked over plain HTTP on loopback). */
  baseUrl(host: string, preferPlain = false): string {
    if (this.config.publicUrl !== "") return this.config.publicUrl;
    if (this.tlsPorts.length > 0 && !preferPlain) return `https://${host}:${this.tlsPorts[0]}`;
    const iface = this.config.interfaces[0];
    const name = iface === "0.0.0.0" || iface === "::" ? host : iface.includes(":") ? `[${iface}]` : iface;
    return `http://${name}:${this.plainPorts[0]}`;
  }

  async listen(): Promise<void> {
    const serverOptions = {
      headersTimeout: this.limits.headersTimeoutMs,
      requestTimeout: this.limits.requestTimeoutMs,
      keepAliveTimeout: this.limits.keepAliveTimeoutMs,
      maxHeaderSize: this.limits.maxHeaderBytes,
      // How often node looks for requests past their timeouts; the default (30 s) would let a
      // slow client hold a socket for up to 30 s past headersTimeout.
      connectionsCheckingInterval: Math.min(1000, this.limits.headersTimeoutMs),
    };
    const tlsOptions = this.config.tlsPort !== null ? serverTlsOptions(this.certificates, this.server.hosts[0]) : null;
    for (const host of this.config.interfaces) {
      const plain = http.createServer(serverOptions, (req, res) => this.dispatch(req, res, false));
      plain.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => this.upgrade(req, socket, head, false));
      this.listeners.push(plain);
      this.plainPorts.push(await listen(this.track(plain), host, this.config.port));
    }
    if (tlsOptions) {
      for (const host of this.config.interfaces) {
        const secure = https.createServer({ ...serverOptions, ...tlsOptions, ALPNProtocols: ["http/1.1"] }, (req, res) => this.dispatch(req, res, true));
        secure.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => this.upgrade(req, socket, head, true));
        this.listeners.push(secure);
        this.tlsPorts.push(await listen(this.track(secure), host, this.config.tlsPort!));
      }
    }
    this.ports.push(...this.plainPorts, ...this.tlsPorts);
    this.loopDelay = monitorEventLoopDelay({ resolution: 20 });
    this.loopDelay.enable();
    await this.server.hooks.fire<HttpRoutesEvent>(HTTP_ROUTES_EVENT, {
      register: (prefix, handler, opts) => this.router.register(prefix, handler, opts),
      baseUrl: (host) => this.baseUrl(host),
    });
    this.log.info({ plain: this.plainPorts, tls: this.tlsPorts, interfaces: this.config.interfaces }, "http listening");
  }

  async stop(): Promise<void> {
    this.loopDelay?.disable();
    // Web client streams end with <system-shutdown/> while their HTTP connections still work.
    await Promise.all([this.websocket?.stop(), this.bosh?.stop()]);
    const closed = this.listeners.map((l) => new Promise<void>((resolve) => l.close(() => resolve())));
    for (const l of this.listeners) l.closeIdleConnections();
    // In-flight requests get a moment to finish; then their sockets go.
    await Promise.race([Promise.all(closed), new Promise((r) => setTimeout(r, 1000).unref())]);
    for (const socket of this.sockets) socket.destroy();
    await Promise.all(closed);
  }

  private track(server: http.Server): http.Server {
    server.on(server instanceof https.Server ? "secureConnection" : "connection", (socket: net.Socket) => {
      this.sockets.add(socket);
      socket.once("close", () => this.sockets.delete(socket));
    });
    // A TLS handshake that fails (a client distrusting the certificate) is the client's business.
    server.on("tlsClientError", () => {});
    return server;
  }

  /** HTTP/1.1 Upgrade (RFC 9110 §7.8): only /xmpp-websocket takes one. */
  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, secure: boolean): void {
    socket.on("error", () => {});
    let pathname = "";
    try {
      pathname = new URL(req.url ?? "/", "http://parley.invalid").pathname;
    } catch {
      // answered below
    }
    const upgrade = String(req.headers.upgrade ?? "").toLowerCase();
    if (pathname !== WEBSOCKET_PATH || !this.websocket || upgrade !== "websocket") {
      socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
      return;
    }
    this.websocket.handleUpgrade(req, socket, head, normalizeAddress(req.socket.remoteAddress), secure);
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse, secure: boolean): Promise<void> {
    let url: URL;
    try {
      url = new URL(req.url ?? "/", "http://parley.invalid");
    } catch {
      return sendText(res, 400, "bad request\n", { Connection: "close" });
    }
    if (!(req.url ?? "").startsWith("/")) return sendText(res, 400, "bad request\n", { Connection: "close" });
    const found = this.router.match(url.pathname);
    if (!found) return sendText(res, 404, "not found\n");
    const { route, rest } = found;
    if (req.headers["transfer-encoding"] !== undefined && req.headers["content-length"] === undefined) {
      return sendText(res, 411, "a Content-Length is required\n", { Connection: "close" });
    }
    const length = Number(req.headers["content-length"] ?? 0);
    if (length > route.maxBodyBytes) return sendText(res, 413, "request body too large\n", { Connection: "close" });
    const ctx: HttpRequestContext = { path: rest, url, remoteAddress: normalizeAddress(req.socket.remoteAddress), secure };
    try {
      await route.handler(req, res, ctx);
    } catch (err) {
      this.log.error({ err, path: url.pathname }, "HTTP handler failed");
      if (!res.headersSent) sendText(res, 500, "internal server error\n", { Connection: "close" });
      else res.destroy();
    }
  }

  private health(req: IncomingMessage, res: ServerResponse): void {
    if (req.method !== "GET" && req.method !== "HEAD") return sendText(res, 405, "method not allowed\n", { Allow: "GET, HEAD" });
    const body = JSON.stringify({
      status: "ok",
      uptime: Math.floor((Date.now() - this.server.startedAt) / 1000),
      sessions: this.server.sessions.size,
    });
    sendText(res, 200, `${body}\n`, { "Content-Type": "application/json", "Cache-Control": "no-store" });
  }

  private metrics(req: IncomingMessage, res: ServerResponse, ctx: HttpRequestContext): void {
    if (!this.config.metricsAllow.includes(ctx.remoteAddress)) return sendText(res, 403, "forbidden\n");
    if (req.method !== "GET" && req.method !== "HEAD") return sendText(res, 405, "method not allowed\n", { Allow: "GET, HEAD" });
    const text = processMetrics.render() + this.ownMetrics.render();
    this.loopDelay?.reset();
    sendText(res, 200, text, { "Content-Type": "text/plain; version=0.0.4; charset=utf-8", "Cache-Control": "no-store" });
  }

  private defineMetrics(): void {
    const m = this.ownMetrics;
    m.gauge("parley_connections", "Open connections, by transport.", () => {
      const out: Array<[Record<string, string>, number]> = [[{ transport: "http" }, this.sockets.size]];
      for (const t of this.server.transports) {
        const connections = (t as { connections?: unknown }).connections;
        if (connections instanceof Set) out.push([{ transport: t.name }, connections.size]);
      }
      if (this.websocket) out.push([{ transport: "websocket" }, this.websocket.connections.size]);
      if (this.bosh) out.push([{ transport: "bosh" }, this.bosh.connections.size]);
      return out;
    });
    m.gauge("parley_sessions", "Bound client sessions.", () => this.server.sessions.size);
    m.gauge("parley_process_resident_memory_bytes", "Resident set size of the process.", () => process.memoryUsage.rss());
    m.gauge("parley_process_heap_used_bytes", "V8 heap in use.", () => process.memoryUsage().heapUsed);
    m.gauge("parley_event_loop_lag_seconds", "Mean event-loop delay since the last scrape.", () => {
      const mean = this.loopDelay?.mean ?? 0;
      return Number.isFinite(mean) ? mean / 1e9 : 0;
    });
    m.gauge("parley_event_loop_lag_max_seconds", "Largest event-loop delay since the last scrape.", () => (this.loopDelay?.max ?? 0) / 1e9);
  }
}

function listen(server: http.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}
