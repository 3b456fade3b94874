// The conformance runner: plays scenarios (scenario/format.ts) against any XMPP server over
// real sockets, as a black box (RFC 6120 c2s streams only: it knows nothing of the server's
// internals). Before running, it asks the server what it supports (XEP-0030 disco#info on the
// domain, its items and the account's bare JID; the stream features), so that a scenario for a
// feature the server does not have is skipped rather than failed.
import { randomBytes } from "node:crypto";
import { Element, xml } from "../protocol/xml/element.ts";
import { serialize } from "../protocol/xml/serialize.ts";
import { NS } from "../protocol/ns.ts";
import { XmppClient, SaslFailure, StreamClosed, type ConnectOptions } from "./client/client.ts";
import { WebSocketXmppClient } from "./client/websocket.ts";
import { BoshXmppClient } from "./client/bosh.ts";
import type { ClientDecl, Scenario, Step } from "./scenario/format.ts";
import { instantiate, matchElement, substitute, tokenize, type Vars } from "./scenario/pattern.ts";

export interface Account {
  username: string;
  password: string;
  /** An account of the peer server (TargetServer.peer), not of the server under test. */
  peer?: boolean;
}

/**
 * A second server federating with the one under test, for scenarios across servers (RFC 6121
 * presence between domains). A scenario uses it through account roles named `peer-…`
 * (`clients: romeo, juliet = peer-juliet`): they map onto the peer's accounts in order, and the
 * scenario is skipped when no peer is given. `{peerdomain}` is the peer's domain.
 */
export interface PeerServer {
  host: string;
  port: number;
  domain: string;
  accounts: Account[];
  ca?: string;
  insecure?: boolean;
}

/** Account roles that live on the peer server. */
export function isPeerRole(role: string): boolean {
  return role.startsWith("peer-");
}

export interface TargetServer {
  host: string;
  port: number;
  domain: string;
  /** Port for Direct TLS (XEP-0368); scenarios that need it are skipped without one. */
  directTlsPort?: number;
  accounts: Account[];
  /** PEM of the CA that signed the server's certificate. */
  ca?: string;
  /** Accept any certificate (self-signed test servers). */
  insecure?: boolean;
  /** How long `receives` waits, ms (default 5000). */
  timeout?: number;
  /** RFC 7395 endpoint (ws:// or wss://); scenarios with `websocket` clients are skipped without it. */
  websocketUrl?: string;
  /** XEP-0206 endpoint (http:// or https://); scenarios with `bosh` clients are skipped without it. */
  boshUrl?: string;
  /** A federating second server; scenarios with `peer-` accounts are skipped without it. */
  peer?: PeerServer;
}

export type Outcome = "pass" | "fail" | "skip" | "error";

export interface StepFailure {
  line: number;
  step: string;
  message: string;
  /** The pattern that was expected, as written in the scenario. */
  expected?: string;
  /** What the client had received and not consumed when the step gave up. */
  received: string[];
}

export interface ScenarioResult {
  scenario: Scenario;
  outcome: Outcome;
  /** Why it was skipped, or what went wrong. */
  reason?: string;
  failure?: StepFailure;
  /** Problems in cleanup steps (they do not change the outcome, but state may have leaked). */
  cleanupProblems: string[];
  ms: number;
}

export interface Discovery {
  /** Everything the server says it has: disco features of the domain and the account, stream feature namespaces, identities as "identity:category/type". */
  features: Set<string>;
  serverFeatures: string[];
  accountFeatures: string[];
  accountIdentities: string[];
  serverIdentities: string[];
  streamFeatures: string[];
  /** Disco items of the domain (components: MUC, upload, ...) with their features and identities. */
  items: Array<{ jid: string; features: string[]; identities: string[] }>;
  software?: { name: string; version: string };
}

export interface RunnerEvents {
  onStart?(scenario: Scenario, index: number, total: number): void;
  onResult?(result: ScenarioResult, index: number, total: number): void;
}

class Failed extends Error {
  constructor(readonly failure: Omit<StepFailure, "line" | "step">) {
    super(failure.message);
  }
}

const MAX_SHOWN = 20;
const SHOW_CHARS = 4000;

function show(el: Element): string {
  const s = serialize(el);
  return s.length > SHOW_CHARS ? s.slice(0, SHOW_CHARS) + "…" : s;
}

function unboundVariables(pattern: Element, vars: Vars): string[] {
  const missing: string[] = [];
  const captured = new Set<string>();
  const visit = (value: string) => {
    for (const t of tokenize(value)) {
      if (t.kind === "capture") captured.add(t.name);
      if (t.kind === "var" && !vars.has(t.name) && !captured.has(t.name) && t.name !== "absent") missing.push(t.name);
    }
  };
  const walk = (el: Element) => {
    for (const v of Object.values(el.attrs)) if (typeof v === "string") visit(v);
    for (const c of el.children) typeof c === "string" ? visit(c) : walk(c);
  };
  walk(pattern);
  return missing;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

interface LiveClient {
  decl: ClientDecl;
  conn: XmppClient | null;
}

export class ConformanceRunner {
  readonly timeout: number;
  private discovery: Discovery | null = null;
  private probeCache = new Map<string, boolean>();
  /** Results of the probe scenarios run so far (not counted in the reports). */
  readonly probeResults: ScenarioResult[] = [];
  private opened: XmppClient[] = [];

  constructor(
    readonly target: TargetServer,
    /** Every loaded scenario; those with `provides:` are probes, consulted for requirements disco does not answer. */
    readonly scenarios: Scenario[],
  ) {
    this.timeout = target.timeout ?? 5000;
  }

  private connectOptions(decl: Pick<ClientDecl, "directTls">, extra: Partial<ConnectOptions> = {}): ConnectOptions {
    const directTls = decl.directTls;
    if (directTls && !this.target.directTlsPort) throw new Error("no Direct TLS port given (--direct-tls-port)");
    return {
      host: this.target.host,
      port: directTls ? this.target.directTlsPort! : this.target.port,
      domain: this.target.domain,
      ca: this.target.ca,
      insecure: this.target.insecure,
      directTls,
      timeout: this.timeout,
      ...extra,
    };
  }

  private async open(decl: Pick<ClientDecl, "directTls" | "transport" | "noSubprotocol">, extra: Partial<ConnectOptions> = {}): Promise<XmppClient> {
    const c = await this.connectOver(decl, extra);
    this.opened.push(c);
    return c;
  }

  /** A client over the transport the scenario names: TCP, RFC 7395 WebSocket or XEP-0206 BOSH. */
  private connectOver(decl: Pick<ClientDecl, "directTls" | "transport" | "noSubprotocol">, extra: Partial<ConnectOptions>): Promise<XmppClient> {
    if (decl.transport === "websocket") {
      if (!this.target.websocketUrl) throw new Error("no WebSocket URL given (--websocket-url)");
      return WebSocketXmppClient.connect({ ...this.connectOptions({ directTls: false }, extra), url: this.target.websocketUrl, noSubprotocol: decl.noSubprotocol });
    }
    if (decl.transport === "bosh") {
      if (!this.target.boshUrl) throw new Error("no BOSH URL given (--bosh-url)");
      return BoshXmppClient.connect({ ...this.connectOptions({ directTls: false }, extra), url: this.target.boshUrl });
    }
    return XmppClient.connect(this.connectOptions(decl, extra));
  }

  /** Logs in as the first account and asks the server what it supports. */
  async discover(): Promise<Discovery> {
    if (this.discovery) return this.discovery;
    const account = this.target.accounts[0];
    if (!account) throw new Error("at least one account is needed");
    const c = await this.open({ directTls: false });
    try {
      const streamFeatures = new Set<string>();
      const addStreamFeatures = () => {
        for (const f of c.features?.getChildElements() ?? []) if (f.getNS()) streamFeatures.add(f.getNS()!);
      };
      addStreamFeatures();
      const mechanisms = c.mechanisms();
      await c.login({ username: account.username, password: account.password, resource: `discovery-${randomBytes(4).toString("hex")}` });
      addStreamFeatures();
      const info = async (jid: string) => {
        try {
          const r = await c.iq(xml("iq", { type: "get", to: jid }, xml("query", { xmlns: NS.discoInfo })), this.timeout);
          const q = r.attrs.type === "result" ? r.getChild("query", NS.discoInfo) : undefined;
          return {
            features: q?.getChildren("feature").map((f) => f.attrs.var).filter((v): v is string => !!v) ?? [],
            identities: q?.getChildren("identity").map((i) => `${i.attrs.category}/${i.attrs.type}`) ?? [],
          };
        } catch {
          return { features: [], identities: [] };
        }
      };
      const server = await info(this.target.domain);
      const bare = `${account.username}@${this.target.domain}`;
      const accountInfo = await info(bare);
      const items: Discovery["items"] = [];
      try {
        const r = await c.iq(xml("iq", { type: "get", to: this.target.domain }, xml("query", { xmlns: NS.discoItems })), this.timeout);
        const jids = (r.getChild("query", NS.discoItems)?.getChildren("item") ?? []).map((i) => i.attrs.jid).filter((j): j is string => !!j);
        for (const jid of jids.slice(0, 20)) items.push({ jid, ...(await info(jid)) });
      } catch {
        // No disco#items: no components to report.
      }
      let software: Discovery["software"];
      try {
        const r = await c.iq(xml("iq", { type: "get", to: this.target.domain }, xml("query", { xmlns: NS.version })), this.timeout);
        const q = r.getChild("query", NS.version);
        if (r.attrs.type === "result" && q) software = { name: q.getChildText("name") ?? "?", version: q.getChildText("version") ?? "?" };
      } catch {
        // Software version is optional (XEP-0092).
      }
      const features = new Set<string>([...server.features, ...accountInfo.features, ...streamFeatures]);
      for (const m of mechanisms) features.add(`sasl:${m}`);
      for (const i of [...server.identities, ...accountInfo.identities]) features.add(`identity:${i}`);
      if (this.target.directTlsPort) features.add("direct-tls");
      if (this.target.websocketUrl) features.add("websocket");
      if (this.target.boshUrl) features.add("bosh");
      this.discovery = {
        features,
        serverFeatures: server.features,
        accountFeatures: accountInfo.features,
        serverIdentities: server.identities,
        accountIdentities: accountInfo.identities,
        streamFeatures: [...streamFeatures],
        items,
        software,
      };
      return this.discovery;
    } finally {
      await c.close();
    }
  }

  /** Does the server have `feature`? Disco and stream features first, then probe scenarios. */
  async has(feature: string): Promise<boolean> {
    const d = await this.discover();
    if (d.features.has(feature)) return true;
    const cached = this.probeCache.get(feature);
    if (cached !== undefined) return cached;
    let found = false;
    for (const probe of this.scenarios.filter((s) => s.provides.includes(feature))) {
      const r = await this.runOne(probe, true);
      this.probeResults.push(r);
      if (r.outcome === "pass") {
        found = true;
        break;
      }
    }
    this.probeCache.set(feature, found);
    return found;
  }

  /** Runs the scenarios one after another (they share accounts, so never in parallel). */
  async run(selected: Scenario[], events: RunnerEvents = {}): Promise<ScenarioResult[]> {
    await this.discover();
    const results: ScenarioResult[] = [];
    for (let i = 0; i < selected.length; i++) {
      events.onStart?.(selected[i], i, selected.length);
      const r = await this.runOne(selected[i], false);
      results.push(r);
      events.onResult?.(r, i, selected.length);
    }
    return results;
  }

  /** Connection options that point a client of a peer account at the peer server. */
  private serverOf(account: Account | undefined): Partial<ConnectOptions> {
    const p = this.target.peer;
    if (!account?.peer || !p) return {};
    return { host: p.host, port: p.port, domain: p.domain, ca: p.ca, insecure: p.insecure, directTls: false };
  }

  private async skipReason(s: Scenario): Promise<string | null> {
    const local = s.accounts.filter((r) => !isPeerRole(r)).length;
    const remote = s.accounts.length - local;
    if (local > this.target.accounts.length) return `needs ${local} accounts, ${this.target.accounts.length} given`;
    if (remote > 0 && !this.target.peer) return "needs a peer server (--peer-host, --peer-domain, --peer-accounts)";
    if (remote > (this.target.peer?.accounts.length ?? 0)) return `needs ${remote} peer accounts, ${this.target.peer?.accounts.length ?? 0} given`;
    if (s.clients.some((c) => c.directTls) && !this.target.directTlsPort) return "needs a Direct TLS port (--direct-tls-port)";
    if (s.clients.some((c) => c.transport === "websocket") && !this.target.websocketUrl) return "needs a WebSocket URL (--websocket-url)";
    if (s.clients.some((c) => c.transport === "bosh") && !this.target.boshUrl) return "needs a BOSH URL (--bosh-url)";
    for (const f of s.requires) if (!(await this.has(f))) return `the server does not have ${f}`;
    return null;
  }

  async runOne(s: Scenario, asProbe: boolean): Promise<ScenarioResult> {
    const started = Date.now();
    const done = (r: Omit<ScenarioResult, "scenario" | "ms" | "cleanupProblems"> & { cleanupProblems?: string[] }): ScenarioResult => ({
      scenario: s,
      cleanupProblems: [],
      ...r,
      ms: Date.now() - started,
    });
    if (!asProbe) {
      try {
        const reason = await this.skipReason(s);
        if (reason) return done({ outcome: "skip", reason });
      } catch (e) {
        return done({ outcome: "error", reason: `could not check the requirements: ${(e as Error).message}` });
      }
    }
    const unique = randomBytes(4).toString("hex");
    let vars = new Map<string, string>([
      ["domain", this.target.domain],
      ["unique", unique],
    ]);
    if (this.target.peer) vars.set("peerdomain", this.target.peer.domain);
    const accountOf = new Map<string, Account>();
    const domainOf = (a: Account) => (a.peer && this.target.peer ? this.target.peer.domain : this.target.domain);
    let nextLocal = 0;
    let nextPeer = 0;
    s.accounts.forEach((role) => {
      const a = isPeerRole(role) ? { ...this.target.peer!.accounts[nextPeer++], peer: true } : this.target.accounts[nextLocal++];
      accountOf.set(role, a);
      const bare = `${a.username}@${domainOf(a)}`;
      vars.set(role, bare);
      vars.set(`${role}.bare`, bare);
      vars.set(`${role}.user`, a.username);
      vars.set(`${role}.password`, a.password);
    });
    const clients = new Map<string, LiveClient>();
    for (const decl of s.clients) {
      const a = accountOf.get(decl.account)!;
      const bare = `${a.username}@${domainOf(a)}`;
      vars.set(decl.name, bare);
      vars.set(`${decl.name}.bare`, bare);
      vars.set(`${decl.name}.user`, a.username);
      vars.set(`${decl.name}.password`, a.password);
      vars.set(`${decl.name}.resource`, `${decl.name}-${unique}`);
      clients.set(decl.name, { decl, conn: null });
    }
    const cleanupProblems: string[] = [];
    if (s.reset.includes("roster")) await this.resetRosters(s.accounts.map((r) => accountOf.get(r)!), cleanupProblems);

    const ctx: StepContext = {
      get vars() {
        return vars;
      },
      set vars(v) {
        vars = v;
      },
      clients,
      accountOf,
    };
    let outcome: Outcome = "pass";
    let failure: StepFailure | undefined;
    let reason: string | undefined;
    try {
      for (const decl of s.clients) {
        try {
          await this.startClient(ctx, clients.get(decl.name)!);
        } catch (e) {
          throw new Failed({ message: `${decl.name} could not start (${decl.start}): ${(e as Error).message}`, received: [] });
        }
      }
      for (const step of s.steps) {
        try {
          await this.runStep(ctx, step);
        } catch (e) {
          const f = e instanceof Failed ? e.failure : { message: (e as Error).message, received: [] };
          failure = { line: step.line, step: step.source, ...f };
          outcome = "fail";
          reason = f.message;
          break;
        }
      }
    } catch (e) {
      const f = e instanceof Failed ? e.failure : { message: (e as Error).message, received: [] };
      failure = { line: 0, step: "(start)", ...f };
      outcome = "fail";
      reason = f.message;
    }
    for (const step of s.cleanup) {
      try {
        await this.runStep(ctx, step);
      } catch (e) {
        cleanupProblems.push(`line ${step.line}: ${(e as Error).message}`);
      }
    }
    await Promise.all([...clients.values()].map((c) => c.conn?.close().catch(() => c.conn?.destroy())));
    if (s.reset.includes("roster")) await this.resetRosters(s.accounts.map((r) => accountOf.get(r)!), cleanupProblems);
    this.opened = this.opened.filter((c) => !c.closed);
    return done({ outcome, reason, failure, cleanupProblems });
  }

  private async startClient(ctx: StepContext, live: LiveClient): Promise<void> {
    const { decl } = live;
    const server = this.serverOf(ctx.accountOf.get(decl.account));
    switch (decl.start) {
      case "offline":
        return;
      case "tcp":
        live.conn = await this.open(decl, { raw: true, ...server });
        return;
      case "plaintext":
        live.conn = await this.open(decl, { noTls: true, ...server });
        return;
      case "connected":
        live.conn = await this.open(decl, server);
        return;
      case "online":
        live.conn = await this.open(decl, server);
        await this.login(ctx, live);
        return;
    }
  }

  private async login(ctx: StepContext, live: LiveClient, username?: string, password?: string): Promise<void> {
    const account = ctx.accountOf.get(live.decl.account)!;
    const resource = ctx.vars.get(`${live.decl.name}.resource`)!;
    if (!live.conn || live.conn.closed) live.conn = await this.open(live.decl, this.serverOf(account));
    const jid = await live.conn.login({ username: username ?? account.username, password: password ?? account.password, resource });
    const vars = new Map(ctx.vars);
    vars.set(`${live.decl.name}.full`, jid);
    const slash = jid.indexOf("/");
    if (slash >= 0) vars.set(`${live.decl.name}.resource`, jid.slice(slash + 1));
    if (username !== undefined) {
      // Logged in as some other account (one the scenario registered): name it after the client.
      const bare = slash >= 0 ? jid.slice(0, slash) : jid;
      vars.set(live.decl.name, bare);
      vars.set(`${live.decl.name}.bare`, bare);
      vars.set(`${live.decl.name}.user`, username);
      vars.set(`${live.decl.name}.password`, password ?? "");
    }
    ctx.vars = vars;
  }

  private connected(ctx: StepContext, name: string): XmppClient {
    const live = ctx.clients.get(name)!;
    if (!live.conn) throw new Failed({ message: `${name} is not connected`, received: [] });
    return live.conn;
  }

  private async runStep(ctx: StepContext, step: Step): Promise<void> {
    const t = this.timeout;
    switch (step.kind) {
      case "wait":
        await sleep(step.ms);
        return;
      case "send": {
        const c = this.connected(ctx, step.client);
        if (c.closed) throw new Failed({ message: `${step.client}'s stream is closed${c.streamError ? ` (stream error ${c.streamError.condition})` : ""}`, received: c.inbox.map(show) });
        c.send(instantiate(step.stanza, ctx.vars));
        return;
      }
      case "send-raw": {
        const c = this.connected(ctx, step.client);
        c.write(substitute(step.text, ctx.vars));
        return;
      }
      case "receive": {
        const c = this.connected(ctx, step.client);
        const missing = unboundVariables(step.pattern, ctx.vars);
        if (missing.length) throw new Failed({ message: `unknown variable {${missing[0]}}`, received: [] });
        let captured: Map<string, string> | null = null;
        const vars = ctx.vars;
        try {
          await c.next((el) => {
            const m = safeMatch(step.pattern, el, vars);
            if (m) captured = m;
            return m !== null;
          }, step.within ?? t);
        } catch (e) {
          const closed = e instanceof StreamClosed;
          throw new Failed({
            message: closed
              ? `${step.client}'s stream was closed${c.streamError ? ` with stream error <${c.streamError.condition}/>` : ""} before a matching stanza came`
              : `${step.client} received no matching stanza within ${step.within ?? t} ms`,
            expected: show(step.pattern),
            received: c.inbox.slice(0, MAX_SHOWN).map(show),
          });
        }
        ctx.vars = captured!;
        return;
      }
      case "nothing": {
        const c = this.connected(ctx, step.client);
        const vars = ctx.vars;
        const match = (el: Element) => (step.pattern ? safeMatch(step.pattern, el, vars) !== null : true);
        const quiet = await c.nothing(match, step.within ?? 500);
        if (!quiet) {
          const offending = c.inbox.find(match);
          throw new Failed({
            message: `${step.client} received a stanza it should not have`,
            expected: step.pattern ? `nothing like ${show(step.pattern)}` : "nothing",
            received: offending ? [show(offending)] : [],
          });
        }
        return;
      }
      case "discard": {
        const c = this.connected(ctx, step.client);
        const vars = ctx.vars;
        for (let i = c.inbox.length - 1; i >= 0; i--) if (safeMatch(step.pattern, c.inbox[i], vars)) c.inbox.splice(i, 1);
        return;
      }
      case "features": {
        const c = this.connected(ctx, step.client);
        const m = c.features ? safeMatch(step.pattern, c.features, ctx.vars) : null;
        if (!m) throw new Failed({ message: "the stream features do not match", expected: show(step.pattern), received: c.features ? [show(c.features)] : [] });
        ctx.vars = m;
        return;
      }
      case "connect": {
        const live = ctx.clients.get(step.client)!;
        live.conn?.destroy();
        const flags = live.decl.start === "plaintext" ? { noTls: true } : live.decl.start === "tcp" ? { raw: true } : {};
        live.conn = await this.open(live.decl, { ...flags, ...this.serverOf(ctx.accountOf.get(live.decl.account)) }).catch((e: Error) => {
          throw new Failed({ message: `${step.client} could not connect: ${e.message}`, received: [] });
        });
        return;
      }
      case "login": {
        const live = ctx.clients.get(step.client)!;
        const username = step.username !== undefined ? substitute(step.username, ctx.vars) : undefined;
        const password = step.password !== undefined ? substitute(step.password, ctx.vars) : undefined;
        try {
          await this.login(ctx, live, username, password);
        } catch (e) {
          throw new Failed({ message: `${step.client} could not log in: ${(e as Error).message}`, received: live.conn?.inbox.map(show) ?? [] });
        }
        return;
      }
      case "authenticate": {
        const c = this.connected(ctx, step.client);
        const mechanism = step.mechanism ?? c.chooseMechanism();
        if (!mechanism) throw new Failed({ message: `no usable SASL mechanism among ${c.mechanisms().join(", ")}`, received: [] });
        try {
          await c.authenticate(mechanism, substitute(step.username, ctx.vars), substitute(step.password, ctx.vars));
        } catch (e) {
          if (e instanceof SaslFailure && e.element) {
            // Left for the scenario to match with `receives:`.
            c.inbox.unshift(e.element);
            return;
          }
          throw new Failed({ message: `authentication did not complete: ${(e as Error).message}`, received: c.inbox.map(show) });
        }
        await c.restart();
        return;
      }
      case "disconnect": {
        const c = this.connected(ctx, step.client);
        await c.close();
        return;
      }
      case "disconnected": {
        const c = this.connected(ctx, step.client);
        try {
          await c.waitClosed(step.within ?? t);
        } catch {
          throw new Failed({ message: `the server did not close ${step.client}'s stream within ${step.within ?? t} ms`, received: c.inbox.map(show) });
        }
        return;
      }
      case "sync": {
        const c = this.connected(ctx, step.client);
        const own = ctx.accountOf.get(ctx.clients.get(step.client)!.decl.account);
        try {
          await c.iq(xml("iq", { type: "get", to: own?.peer && this.target.peer ? this.target.peer.domain : this.target.domain, id: `sync-${randomBytes(3).toString("hex")}` }, xml("ping", { xmlns: NS.ping })), t);
        } catch (e) {
          throw new Failed({ message: `${step.client} got no answer to an IQ sent to sync: ${(e as Error).message}`, received: c.inbox.map(show) });
        }
        return;
      }
    }
  }

  /** Removes every roster item (and with it every subscription, RFC 6121 §2.5.3) of these accounts. */
  private async resetRosters(accounts: Account[], problems: string[]): Promise<void> {
    for (const a of accounts) {
      let c: XmppClient | null = null;
      try {
        c = await this.open({ directTls: false }, this.serverOf(a));
        await c.login({ username: a.username, password: a.password, resource: `reset-${randomBytes(3).toString("hex")}` });
        const r = await c.iq(xml("iq", { type: "get" }, xml("query", { xmlns: NS.roster })));
        const items = r.getChild("query", NS.roster)?.getChildren("item") ?? [];
        for (const item of items.slice(0, 200)) {
          await c.iq(xml("iq", { type: "set" }, xml("query", { xmlns: NS.roster }, xml("item", { jid: item.attrs.jid, subscription: "remove" }))));
        }
      } catch (e) {
        problems.push(`resetting ${a.username}'s roster: ${(e as Error).message}`);
      } finally {
        await c?.close().catch(() => c?.destroy());
      }
    }
  }

  /** Closes any connection a failed scenario left open. */
  destroy(): void {
    for (const c of this.opened) c.destroy();
    this.opened = [];
  }
}

interface StepContext {
  vars: Map<string, string>;
  clients: Map<string, LiveClient>;
  accountOf: Map<string, Account>;
}

function safeMatch(pattern: Element, el: Element, vars: Vars): Map<string, string> | null {
  try {
    return matchElement(pattern, el, vars);
  } catch {
    return null;
  }
}

/** Creates the accounts with in-band registration (XEP-0077 §3.1); an existing account is fine. */
export async function registerAccounts(target: TargetServer): Promise<string[]> {
  const notes: string[] = [];
  for (const a of target.accounts) {
    const c = await XmppClient.connect({ host: target.host, port: target.port, domain: target.domain, ca: target.ca, insecure: target.insecure, timeout: target.timeout });
    try {
      const r = await c.iq(
        xml("iq", { type: "set", to: target.domain }, xml("query", { xmlns: NS.register }, xml("username", {}, a.username), xml("password", {}, a.password))),
      );
      if (r.attrs.type === "result") notes.push(`registered ${a.username}`);
      else {
        const condition = r.getChild("error")?.getChildElements().find((e) => e.getNS() === NS.stanzas)?.getName() ?? "unknown";
        if (condition === "conflict") notes.push(`${a.username} already exists`);
        else throw new Error(`registering ${a.username} failed: ${condition}`);
      }
    } finally {
      await c.close();
    }
  }
  return notes;
}
