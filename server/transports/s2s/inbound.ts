// Incoming server-to-server streams: RFC 6120 §4-§6 as the receiving entity (STARTTLS; SASL
// EXTERNAL offered only when the peer's certificate is valid for the domain it claims, XEP-0178
// v1.2), Server Dialback as receiving and authoritative server (XEP-0220 v1.1.1, XEP-0185), and
// the rule that a peer may only send stanzas from domains it has authenticated on this stream
// (RFC 6120 §4.9.3.9 <invalid-from/>) to domains this server serves (<host-unknown/>), and only
// for the (sender, target) pairs authorised on it: dialback validates a domain pair (XEP-0220
// §2.1, §2.6), SASL EXTERNAL the peer's domain towards the stream's `to`.
// With XEP-0288 v1.0.1 (bidirectional streams) negotiated, the stream also carries this
// server's stanzas from the addressed domain back to the authenticated peer domains.
import { randomBytes } from "node:crypto";
import type net from "node:net";
import tls from "node:tls";
import { xml, type Element } from "../../../protocol/xml/element.ts";
import type { StreamHeader } from "../../../protocol/xml/parser.ts";
import { NS } from "../../../protocol/ns.ts";
import { StanzaError } from "../../../protocol/errors.ts";
import { tryParseJid } from "../../../protocol/jid.ts";
import { dialbackElement, dialbackKey, dialbackKeyMatches, parseDialback, type DialbackElement } from "../../../protocol/dialback.ts";
import { STANZA_KINDS } from "../../core/router.ts";
import { S2sStream, checkHeader, normalizeDomain, type Undelivered } from "./stream.ts";
import type { S2sManager } from "./index.ts";

export class InboundStream extends S2sStream {
  /** The domain the peer's header names (`from`), if any. */
  private peer = "";
  /** The local domain the peer's header addresses. */
  private host = "";
  private streamId = "";
  private saslDone = false;
  private processing: Promise<void> = Promise.resolve();
  /** Remote domains authenticated on this stream (SASL EXTERNAL or dialback). */
  readonly authed = new Set<string>();
  /** The (remote, local) pairs remote domains may send on, as `pairKey(remote, local)`. */
  private readonly pairs = new Set<string>();
  /** How each remote domain authenticated (for logs, metrics and specs). */
  readonly methods = new Map<string, "external" | "dialback">();
  private readonly pendingResults = new Set<string>();
  readonly ip: string;
  /** XEP-0288: the peer asked for stanzas to flow back on this stream. */
  bidi = false;
  /** The peer uses this stream to check keys with us (XEP-0220 §2.3): it need not authenticate. */
  servesVerification = false;

  constructor(
    socket: net.Socket,
    private readonly manager: S2sManager,
    directTls: boolean,
  ) {
    super(socket, manager.limits, manager.log.child({ s2s: "in", ip: socket.remoteAddress }));
    this.secure = directTls;
    this.ip = socket.remoteAddress ?? "";
  }

  protected override headerForError(): Record<string, string | undefined> {
    return { from: this.host || this.manager.defaultHost, to: this.peer || undefined, id: this.streamId || randomBytes(12).toString("base64url") };
  }

  protected onStreamStart(h: StreamHeader): void {
    const to = normalizeDomain(h.attrs.to);
    const from = normalizeDomain(h.attrs.from);
    this.peer = from;
    const bad = checkHeader(h);
    if (bad) return this.close(bad.condition, bad.text);
    if (!to || !this.manager.isLocalDomain(to)) {
      this.host = "";
      return this.close("host-unknown", to ? `this server does not serve ${to}` : "the stream header needs a 'to'");
    }
    if (this.host && to !== this.host) return this.close("host-unknown", "the restarted stream must be to the same domain");
    this.host = to;
    if (from && !this.manager.policyFor(from).allowed) return this.close("policy-violation", `${this.host} does not federate with ${from}`);
    this.streamId = randomBytes(12).toString("base64url");
    this.sendHeader({ from: this.host, to: from || undefined, id: this.streamId });
    this.writeElement(this.features());
  }

  private features(): Element {
    const features = xml("stream:features", {});
    if (!this.secure) {
      const required = this.peer ? this.manager.policyFor(this.peer).requireEncryption : this.manager.config.requireEncryption;
      features.append(xml("starttls", { xmlns: NS.tls }, required ? xml("required", {}) : null));
      if (required) return features;
    }
    if (!this.saslDone) {
      if (this.secure && this.peer && this.peerCertificateValid(this.peer)) {
        features.append(xml("mechanisms", { xmlns: NS.sasl }, xml("mechanism", {}, "EXTERNAL")));
      }
      features.append(xml("dialback", { xmlns: NS.dialbackFeature }, xml("errors", {})));
      if (this.manager.config.bidi) features.append(xml("bidi", { xmlns: NS.bidiFeature }));
    }
    return features;
  }

  private peerCertificateValid(domain: string): boolean {
    return this.secure && this.socket instanceof tls.TLSSocket && this.manager.certificateValid(this.socket, domain);
  }

  protected onElement(el: Element): void {
    // One at a time, in order: a stanza must not overtake the dialback answer before it.
    this.processing = this.processing.then(() => this.handle(el)).catch((err: unknown) => {
      this.log.error({ err }, "failed to handle an s2s element");
      this.close("internal-server-error");
    });
  }

  private async handle(el: Element): Promise<void> {
    // Elements parsed before the peer's closing tag are still handled; none after a stream error.
    if (this.streamFailed) return;
    // After our closing tag, stanzas the peer had already sent are still processed (RFC 6120
    // §4.4); negotiation is over.
    if (this.closed && !STANZA_KINDS.has(el.name)) return;
    const ns = el.getNS();
    const name = el.getName();
    if (!this.secure) {
      if (ns === NS.tls && name === "starttls") return this.startTls();
      const required = this.peer ? this.manager.policyFor(this.peer).requireEncryption : this.manager.config.requireEncryption;
      if (required) return this.close("policy-violation", "STARTTLS is required first");
    }
    if (ns === NS.sasl) return this.onSasl(el);
    if (ns === NS.bidi && name === "bidi") {
      // XEP-0288 §2: asked for before authentication; later requests change nothing.
      if (this.manager.config.bidi && !this.authenticated) this.bidi = true;
      return;
    }
    if (ns === NS.dialback) {
      const d = parseDialback(el);
      if (!d) return this.close("invalid-xml", "a dialback element needs from and to");
      if (d.kind === "verify") return this.onVerifyRequest(d);
      return this.onResultRequest(d);
    }
    if (STANZA_KINDS.has(el.name)) return this.onStanza(el);
    if (ns === NS.stream && name === "error") {
      this.peerFailed();
      return this.close();
    }
    this.close("unsupported-stanza-type", `<${el.name}/> is not something Parley handles`);
  }

  private startTls(): void {
    this.writeElement(xml("proceed", { xmlns: NS.tls }));
    const secure = new tls.TLSSocket(this.socket, { isServer: true, ...this.manager.serverTlsOptions() });
    this.replaceSocket(secure);
    secure.once("secure", () => {
      this.secure = true;
      this.log.debug({ protocol: secure.getProtocol() }, "TLS established");
    });
  }

  // ---- SASL EXTERNAL (RFC 6120 §6, XEP-0178) ------------------------------------------------

  private onSasl(el: Element): void {
    const failure = (condition: string) => {
      this.writeElement(xml("failure", { xmlns: NS.sasl }, xml(condition, {})));
    };
    if (el.getName() !== "auth") {
      if (el.getName() === "abort") return failure("aborted");
      return this.close("unsupported-stanza-type", "only EXTERNAL is offered");
    }
    if (this.saslDone || el.attrs.mechanism !== "EXTERNAL") return failure("invalid-mechanism");
    const text = el.getText().trim();
    const authzid = text === "" || text === "=" ? this.peer : normalizeDomain(Buffer.from(text, "base64").toString("utf8"));
    if (!authzid || (this.peer && authzid !== this.peer)) return failure("invalid-authzid");
    const policy = this.manager.policyFor(authzid);
    if (!policy.allowed) return failure("not-authorized");
    if (!this.peerCertificateValid(authzid)) return failure("not-authorized");
    this.saslDone = true;
    this.peer = authzid;
    this.authed.add(authzid);
    this.pairs.add(pairKey(authzid, this.host));
    this.methods.set(authzid, "external");
    if (this.bidi) this.manager.bidiReady(this, authzid);
    this.log.info({ peer: authzid }, "peer authenticated with SASL EXTERNAL");
    this.writeElement(xml("success", { xmlns: NS.sasl }));
    this.resetParser();
    this.headerSent = false;
  }

  // ---- dialback (XEP-0220) --------------------------------------------------------------------

  /** As authoritative server: was this key made by us for that stream? (XEP-0220 §2.3) */
  private onVerifyRequest(d: DialbackElement): void {
    if (d.type !== undefined) return; // an answer on a stream we did not ask on
    if (!this.manager.isLocalDomain(d.to)) {
      return this.writeElement(dialbackElement({ kind: "verify", from: d.to, to: d.from, id: d.id, type: "invalid" }));
    }
    this.servesVerification = true;
    this.lastActivity = Date.now();
    const expected = dialbackKey(this.manager.secret, d.from, d.to, d.id ?? "");
    const valid = d.key !== undefined && dialbackKeyMatches(expected, d.key);
    this.writeElement(dialbackElement({ kind: "verify", from: d.to, to: d.from, id: d.id, type: valid ? "valid" : "invalid" }));
  }

  /** As receiving server: the peer claims `d.from`; ask that domain's server (XEP-0220 §2.1.2). */
  private async onResultRequest(d: DialbackElement): Promise<void> {
    if (d.type !== undefined || d.key === undefined) return this.close("invalid-xml", "a db:result request carries a key");
    const answer = (type: "valid" | "invalid" | "error", error?: StanzaError) => {
      const el = dialbackElement({ kind: "result", from: d.to, to: d.from, type });
      if (error) el.append(error.toElement());
      this.writeElement(el);
    };
    if (!this.manager.isLocalDomain(d.to)) return answer("error", new StanzaError("item-not-found", `this server does not serve ${d.to}`));
    const policy = this.manager.policyFor(d.from);
    if (!policy.allowed) return answer("error", new StanzaError("not-allowed", `${d.to} does not federate with ${d.from}`));
    if (policy.requireValidCertificate && !this.peerCertificateValid(d.from)) {
      return answer("error", new StanzaError("not-authorized", `a certificate valid for ${d.from} is required`));
    }
    const pair = pairKey(d.from, d.to);
    if (this.pairs.has(pair)) return answer("valid");
    if (this.pendingResults.has(pair)) return;
    this.pendingResults.add(pair);
    // Not awaited inline: other domains piggybacked on this stream go on meanwhile.
    void this.manager.verifyDialback({ kind: "verify", from: d.to, to: d.from, id: this.streamId, key: d.key }).then((outcome) => {
      this.pendingResults.delete(pair);
      if (this.closed) return;
      if (outcome === "valid") {
        this.authed.add(d.from);
        this.pairs.add(pair);
        this.methods.set(d.from, "dialback");
        if (this.bidi) this.manager.bidiReady(this, d.from);
        this.log.info({ peer: d.from, host: d.to }, "peer authenticated with dialback");
        return answer("valid");
      }
      if (outcome === "invalid") {
        // XEP-0220 §2.2.1: the peer tried to spoof d.from; answer, log, and close the stream
        // (with whatever other domain pairs it carried).
        this.log.warn({ peer: d.from, host: d.to, ip: this.remoteAddress }, "dialback key rejected by the authoritative server: closing the stream");
        answer("invalid");
        return this.close();
      }
      answer("error", outcome);
    });
  }

  // ---- stanzas --------------------------------------------------------------------------------

  private async onStanza(el: Element): Promise<void> {
    const from = el.attrs.from ? tryParseJid(el.attrs.from) : null;
    const to = el.attrs.to ? tryParseJid(el.attrs.to) : null;
    if (!from || !to) return this.close("improper-addressing", "stanzas between servers carry valid from and to addresses");
    if (!this.authed.has(from.domain)) return this.close("invalid-from", `${from.domain} is not authenticated on this stream`);
    if (!this.manager.isLocalDomain(to.domain)) return this.close("host-unknown", `this server does not serve ${to.domain}`);
    if (!this.pairs.has(pairKey(from.domain, to.domain))) {
      return this.close("invalid-from", `${from.domain} is not authenticated for ${to.domain} on this stream (one db:result per domain pair)`);
    }
    if (el.attrs.xmlns === NS.server) el.attrs.xmlns = NS.client;
    this.lastActivity = Date.now();
    await this.manager.routeInbound(el);
  }

  /** The local domain the peer's stream is addressed to. */
  get localDomain(): string {
    return this.host;
  }

  get authenticated(): boolean {
    return this.authed.size > 0;
  }

  protected get established(): boolean {
    return this.authenticated || this.servesVerification;
  }

  protected onUndelivered(lost: Undelivered): void {
    this.manager.undelivered(this.peer, lost);
  }

  protected onClosed(): void {
    this.manager.inboundClosed(this);
  }
}

function pairKey(remote: string, local: string): string {
  return `${remote}\u0000${local}`;
}
