// Server-to-server federation (RFC 6120 over jabber:server streams): the transport that hooks
// the router's `route/remote`, keeps one outgoing link per remote domain (queue, connect,
// authenticate, reuse, idle close), listens for incoming streams (STARTTLS port 5269, optional
// Direct TLS port, XEP-0368 v1.1.0), and applies the federation policy of `[s2s]`:
// encryption required by default, certificates validated against a CA store (XEP-0178 v1.2),
// allow/deny lists, per-IP stream limits.
import { randomBytes, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import net from "node:net";
import tls from "node:tls";
import type { SecureContext } from "node:tls";
import type { Element } from "../../../protocol/xml/element.ts";
import { errorReply, StanzaError } from "../../../protocol/errors.ts";
import { selectXmppServer, sniCallback, type CertificatePair, type DomainCertificates } from "../../core/tls.ts";
import type { StanzaEvent } from "../../core/router.ts";
import type { Server, Transport } from "../../core/server.ts";
import { ConfigError, type LimitsConfig, type S2sConfig } from "../../core/config.ts";
import { tryParseJid } from "../../../protocol/jid.ts";
import type { Logger } from "../../core/log.ts";
import type { DialbackElement } from "../../../protocol/dialback.ts";
import { ChainResolver, DnsResolver, StaticResolver, type S2sEndpoint, type S2sResolver } from "./resolver.ts";
import { OutboundLink, type VerifyOutcome } from "./outbound.ts";
import { InboundStream } from "./inbound.ts";
import type { Undelivered } from "./stream.ts";

export type { S2sResolver, S2sEndpoint } from "./resolver.ts";
export { StaticResolver, DnsResolver, ChainResolver } from "./resolver.ts";

const MIN_TLS_VERSION = "TLSv1.2";
const CLOSE_GRACE_MS = 2000;

export interface S2sOptions {
  certificates: DomainCertificates;
  /** How remote domains are found; default: `[s2s.routes]`, then DNS when `s2s.dns` is on. */
  resolver?: S2sResolver;
}

export interface DomainPolicy {
  readonly allowed: boolean;
  readonly requireEncryption: boolean;
  readonly requireValidCertificate: boolean;
}

/** The part of the transport that streams use. */
export interface S2sManager {
  readonly config: S2sConfig;
  readonly limits: LimitsConfig;
  readonly log: Logger;
  readonly secret: string;
  readonly resolver: S2sResolver;
  readonly defaultHost: string;
  isLocalDomain(domain: string): boolean;
  policyFor(domain: string): DomainPolicy;
  certificateValid(socket: tls.TLSSocket, domain: string): boolean;
  serverTlsOptions(): tls.TlsOptions;
  clientTlsOptions(local: string, remote: string): tls.ConnectionOptions;
  connectEndpoint(endpoint: S2sEndpoint, local: string, remote: string): Promise<net.Socket>;
  verifyDialback(request: DialbackElement): Promise<VerifyOutcome>;
  routeInbound(stanza: Element): Promise<void>;
  bounce(stanza: Element, err: StanzaError): void;
  /** Stanzas a closed stream to `remote` may not have delivered: sent again once, or bounced. */
  undelivered(remote: string, lost: Undelivered): void;
  readonly shuttingDown: boolean;
  inboundClosed(stream: InboundStream): void;
  /** XEP-0288: `remote` authenticated on a bidirectional inbound stream, usable for replies. */
  bidiReady(stream: InboundStream, remote: string): void;
  linkIdle(link: OutboundLink): void;
}

export class S2sTransport implements Transport, S2sManager {
  readonly name = "s2s";
  readonly ports: number[] = [];
  readonly config: S2sConfig;
  readonly limits: LimitsConfig;
  readonly log: Logger;
  readonly secret: string;
  readonly resolver: S2sResolver;
  readonly defaultHost: string;
  readonly links = new Map<string, OutboundLink>();
  readonly inbound = new Set<InboundStream>();
  private readonly perIp = new Map<string, number>();
  private readonly listeners: net.Server[] = [];
  private readonly certificates: DomainCertificates;
  private readonly ca: string[] | undefined;
  private readonly contexts = new Map<string, SecureContext>();
  private readonly timer: NodeJS.Timeout;
  private stopping = false;

  constructor(
    private readonly server: Server,
    opts: S2sOptions,
  ) {
    this.config = server.config.s2s;
    this.limits = server.config.limits;
    this.log = server.log.child({ part: "s2s" });
    this.defaultHost = server.hosts[0];
    this.certificates = opts.certificates;
    this.secret = this.config.dialbackSecret || randomBytes(32).toString("hex");
    this.resolver = opts.resolver ?? new ChainResolver(new StaticResolver(this.config.routes), this.config.dns ? new DnsResolver() : null);
    this.ca = this.config.caFile ? readCaFile(this.config.caFile) : undefined;
    for (const [host, pair] of Object.entries(this.certificates)) this.contexts.set(host, this.contextFor(pair));
    server.hooks.on<StanzaEvent>("route/remote", (ev) => this.onRemote(ev));
    this.timer = setInterval(() => this.tick(), 1000);
    this.timer.unref();
  }

  private contextFor(pair: CertificatePair): SecureContext {
    return tls.createSecureContext({ cert: pair.certPem, key: pair.keyPem, ca: this.ca, minVersion: MIN_TLS_VERSION });
  }

  // ---- policy ---------------------------------------------------------------------------------

  isLocalDomain(domain: string): boolean {
    return this.server.isLocalHost(domain) || this.server.components.has(domain);
  }

  policyFor(domain: string): DomainPolicy {
    const c = this.config;
    const listed = (list: readonly string[]) => list.some((d) => domain === d || domain.endsWith(`.${d}`));
    const insecure = listed(c.insecureDomains);
    return {
      allowed: !this.isLocalDomain(domain) && !listed(c.deny) && (c.allow.length === 0 || listed(c.allow)),
      requireEncryption: c.requireEncryption && !insecure,
      requireValidCertificate: !insecure && (c.requireValidCertificates || listed(c.secureDomains)),
    };
  }

  /** XEP-0178 §3: the certificate names the domain and its chain ends at a CA we trust. */
  certificateValid(socket: tls.TLSSocket, domain: string): boolean {
    const peer = socket.getPeerX509Certificate();
    if (!(peer instanceof X509Certificate) || peer.checkHost(domain, { subject: "never" }) === undefined) return false;
    // A client socket (and a tls.Server's) was judged by OpenSSL against our `ca`; a socket we
    // wrapped for STARTTLS on the receiving side is not, so its chain is checked here.
    if (socket.authorized) return true;
    return this.chainTrusted(peer, socket);
  }

  private anchors: X509Certificate[] | null = null;

  private chainTrusted(leaf: X509Certificate, socket: tls.TLSSocket): boolean {
    this.anchors ??= (this.ca ?? tls.rootCertificates).map((pem) => new X509Certificate(pem));
    const presented: X509Certificate[] = [];
    const seen = new Set<string>();
    for (let c = socket.getPeerCertificate(true) as tls.DetailedPeerCertificate | undefined; c?.raw && !seen.has(c.fingerprint256); c = c.issuerCertificate) {
      seen.add(c.fingerprint256);
      presented.push(new X509Certificate(c.raw));
    }
    const now = Date.now();
    const current = (x: X509Certificate) => Date.parse(x.validFrom) <= now && now <= Date.parse(x.validTo);
    const issues = (issuer: X509Certificate, cert: X509Certificate) => issuer.ca && cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
    let cert = leaf;
    for (let depth = 0; depth < 8; depth++) {
      if (!current(cert)) return false;
      if (this.anchors.some((anchor) => current(anchor) && issues(anchor, cert))) return true;
      const next = presented.find((p) => p !== cert && p.fingerprint256 !== cert.fingerprint256 && issues(p, cert));
      if (!next) return false;
      cert = next;
    }
    return false;
  }

  private pairFor(domain: string): CertificatePair {
    const labels = domain.split(".");
    for (let i = 0; i < labels.length; i++) {
      const pair = this.certificates[labels.slice(i).join(".")];
      if (pair) return pair;
    }
    return this.certificates[this.defaultHost];
  }

  serverTlsOptions(): tls.TlsOptions {
    const pair = this.certificates[this.defaultHost];
    return {
      cert: pair.certPem,
      key: pair.keyPem,
      ca: this.ca,
      secureContext: this.contexts.get(this.defaultHost),
      SNICallback: sniCallback(this.contexts, this.defaultHost),
      minVersion: MIN_TLS_VERSION,
      // XEP-0178: the peer's certificate is asked for and judged by us, not by OpenSSL's handshake,
      // so that a self-signed peer can still fall back to dialback.
      requestCert: true,
      rejectUnauthorized: false,
    };
  }

  clientTlsOptions(local: string, remote: string): tls.ConnectionOptions {
    const pair = this.pairFor(local);
    return {
      servername: remote,
      cert: pair.certPem,
      key: pair.keyPem,
      ca: this.ca,
      minVersion: MIN_TLS_VERSION,
      rejectUnauthorized: false,
    };
  }

  // ---- outgoing -------------------------------------------------------------------------------

  private onRemote(ev: StanzaEvent): boolean {
    const remote = ev.to.domain;
    const local = ev.from.domain;
    if (this.stopping) return false;
    if (!this.isLocalDomain(local)) return false; // never relay between two remote domains
    const policy = this.policyFor(remote);
    if (!policy.allowed) return false; // the router answers remote-server-not-found
    this.linkFor(remote).send(ev.stanza, local);
    return true;
  }

  async connectEndpoint(endpoint: S2sEndpoint, local: string, remote: string): Promise<net.Socket> {
    return new Promise((resolve, reject) => {
      let socket: net.Socket = net.connect({ host: endpoint.host, port: endpoint.port, localAddress: this.sourceAddress(endpoint.host) });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error("timeout"));
      }, this.config.connectTimeoutMs);
      timer.unref();
      const fail = (err: Error) => {
        clearTimeout(timer);
        socket.destroy();
        reject(err);
      };
      const done = () => {
        clearTimeout(timer);
        socket.removeAllListeners("error");
        resolve(socket);
      };
      socket.once("error", fail);
      socket.once("connect", () => {
        socket.setNoDelay(true);
        socket.setKeepAlive(true, 60_000);
        if (!endpoint.directTls) return done();
        // XEP-0368: TLS from the first byte, ALPN "xmpp-server", SNI naming the remote domain.
        socket.removeAllListeners("error");
        socket = tls.connect({ socket, ALPNProtocols: ["xmpp-server"], ...this.clientTlsOptions(local, remote) });
        socket.once("error", fail);
        socket.once("secureConnect", done);
      });
    });
  }

  /**
   * Outgoing streams leave from the address s2s listens on when it is a single, specific one
   * of the target's family: peers then see the address they would connect back to.
   */
  private sourceAddress(target: string): string | undefined {
    const family = net.isIP(target);
    const candidates = this.config.interfaces.filter((i) => net.isIP(i) === family && i !== "0.0.0.0" && i !== "::");
    if (family === 0 || candidates.length !== 1) return undefined;
    const loopback = (ip: string) => ip.startsWith("127.") || ip === "::1";
    // A loopback source cannot reach another host, and a public one should not reach loopback.
    return loopback(candidates[0]) === loopback(target) ? candidates[0] : undefined;
  }

  verifyDialback(request: DialbackElement): Promise<VerifyOutcome> {
    return this.linkFor(request.to).verify(request);
  }

  bounce(stanza: Element, err: StanzaError): void {
    const reply = errorReply(stanza, err);
    if (!reply || !reply.attrs.from || !reply.attrs.to) return;
    void this.server.router.route(reply, null);
  }

  get shuttingDown(): boolean {
    return this.stopping;
  }

  private readonly resent = new WeakSet<Element>();

  undelivered(remote: string, lost: Undelivered): void {
    // Never handed to the operating system: the peer cannot have seen them, so a new stream
    // carries them (once; a second loss bounces).
    for (const e of lost.unsent) {
      const to = tryParseJid(e.stanza.attrs.to ?? "");
      if (to && !this.stopping && !this.resent.has(e.stanza) && this.onRemoteAgain(e.stanza, e.local, to.domain)) continue;
      this.bounce(e.stanza, new StanzaError("remote-server-timeout", `the connection to ${remote} broke before the stanza could be sent`));
    }
    // Written, but the stream broke before the peer could have processed them (RFC 6120 §4.4):
    // sending again could duplicate, so the sender learns it may not have arrived.
    for (const e of lost.uncertain) {
      this.bounce(e.stanza, new StanzaError("remote-server-timeout", `the connection to ${remote} broke; the stanza may not have been delivered`));
    }
  }

  private onRemoteAgain(stanza: Element, local: string, remote: string): boolean {
    if (!this.isLocalDomain(local) || !this.policyFor(remote).allowed) return false;
    this.resent.add(stanza);
    this.linkFor(remote).send(stanza, local);
    return true;
  }

  linkIdle(link: OutboundLink): void {
    if (!link.stream && !link.hasBidi && link.queued === 0 && this.links.get(link.domain) === link && link.sentVerifies.size === 0) this.links.delete(link.domain);
  }

  // ---- incoming -------------------------------------------------------------------------------

  async listen(): Promise<void> {
    const c = this.config;
    for (const host of c.interfaces) {
      const plain = net.createServer((socket) => this.accept(socket, false));
      await listen(plain, host, c.port);
      this.listeners.push(plain);
      this.ports.push((plain.address() as net.AddressInfo).port);
      if (c.directTlsPort !== null) {
        const direct = tls.createServer({ ...this.serverTlsOptions(), ALPNCallback: selectXmppServer }, (socket) => this.accept(socket, true));
        await listen(direct, host, c.directTlsPort);
        this.listeners.push(direct);
        this.ports.push((direct.address() as net.AddressInfo).port);
      }
    }
    this.log.info({ ports: this.ports, interfaces: c.interfaces }, "s2s listening");
  }

  private accept(socket: net.Socket, directTls: boolean): void {
    const ip = socket.remoteAddress ?? "";
    const count = (this.perIp.get(ip) ?? 0) + 1;
    if (count > this.config.maxStreamsPerIp || this.stopping) {
      // Refused before any parsing: a flood of streams costs us one write each.
      socket.on("error", () => {});
      socket.end(`<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'><stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>too many streams from ${ip.replace(/[^0-9a-fA-F:.]/g, "")}</text></stream:error></stream:stream>`);
      setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
      return;
    }
    this.perIp.set(ip, count);
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 60_000);
    this.inbound.add(new InboundStream(socket, this, directTls));
  }

  bidiReady(stream: InboundStream, remote: string): void {
    this.linkFor(remote).attachBidi(stream);
  }

  private linkFor(remote: string): OutboundLink {
    let link = this.links.get(remote);
    if (!link) {
      link = new OutboundLink(remote, this);
      this.links.set(remote, link);
    }
    return link;
  }

  inboundClosed(stream: InboundStream): void {
    for (const link of this.links.values()) link.detachBidi(stream);
    if (!this.inbound.delete(stream)) return;
    const n = (this.perIp.get(stream.ip) ?? 1) - 1;
    if (n <= 0) this.perIp.delete(stream.ip);
    else this.perIp.set(stream.ip, n);
  }

  async routeInbound(stanza: Element): Promise<void> {
    await this.server.router.route(stanza, null);
  }

  // ---- timers ---------------------------------------------------------------------------------

  private tick(): void {
    const now = Date.now();
    const keepalive = this.config.keepaliveMs;
    if (keepalive > 0) {
      for (const s of this.inbound) s.keepalive(now, keepalive);
      for (const link of this.links.values()) link.stream?.keepalive(now, keepalive);
    }
    for (const s of this.inbound) {
      if (!s.authenticated && !s.servesVerification && now - s.openedAt > this.config.authTimeoutMs) s.close("connection-timeout", "not authenticated in time");
      else if (now - s.lastActivity > this.config.idleTimeoutMs) s.close();
    }
    for (const link of this.links.values()) {
      const s = link.stream;
      if (s && !s.closed && !s.wasReady && now - s.openedAt > this.config.authTimeoutMs) s.timeOut();
      else if (s && !s.closed && link.queued === 0 && link.sentVerifies.size === 0 && now - s.lastActivity > this.config.idleTimeoutMs) s.close();
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.timer);
    for (const l of this.listeners) l.close();
    const streams = [...this.inbound, ...[...this.links.values()].flatMap((l) => (l.stream ? [l.stream] : []))];
    for (const s of streams) s.close("system-shutdown", "the server is shutting down");
    await Promise.race([Promise.all(streams.map((s) => s.socketClosed())), new Promise((r) => setTimeout(r, CLOSE_GRACE_MS + 100).unref())]);
  }
}

/** The CA certificates of `s2s.ca_file`; a ConfigError naming the key when unusable. */
function readCaFile(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new ConfigError([`s2s.ca_file: cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`]);
  }
  const pems = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (pems.length === 0) throw new ConfigError([`s2s.ca_file: ${path} holds no PEM certificate`]);
  return pems;
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
