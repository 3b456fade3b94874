// The router: RFC 6120 §8 (stanza semantics), §10 (server rules for processing XML stanzas) and
// RFC 6121 §8 (routing rules for a local user's bare and full JIDs).
//
// Every stanza, from a client, a module or (later) a remote server, comes through route():
// 1. a client's `from` is replaced by its full JID, so spoofing is impossible (RFC 6120 §8.1.2.1);
// 2. `to` is parsed; a bad one is answered with <jid-malformed/>;
// 3. for stanzas from a local client, `pre-<kind>/<target>` runs first (outbound processing:
//    subscription state, carbons of sent messages, privacy...);
// 4. a stanza to a remote domain goes to `route/remote` (the s2s manager), else
//    <remote-server-not-found/>;
// 5. otherwise `<kind>/<target>` runs (inbound processing and delivery), where target is
//    `self` (no `to`, or an IQ to the sender's own bare JID: handled on the account's behalf),
//    `host` (the server), `bare` or `full`;
// 6. IQ requests not handled by then are dispatched to `iq-<type>/<target>/<ns>:<name>`, and an
//    IQ nobody handles is answered <service-unavailable/> (RFC 6120 §8.4); IQ results and errors
//    are never answered (§8.3.1).
import { Element } from "../../protocol/xml/element.ts";
import { tryParseJid, type Jid } from "../../protocol/jid.ts";
import { StanzaError, errorReply } from "../../protocol/errors.ts";
import type { Hooks } from "./hooks.ts";
import type { ClientSession, SessionRegistry } from "./sessions.ts";
import type { Logger } from "./log.ts";
import { labelsOf, routingDuration, stanzaErrors, stanzasRouted } from "./metrics.ts";

export type StanzaKind = "message" | "presence" | "iq";
export type Target = "self" | "host" | "bare" | "full";

export interface StanzaEvent {
  readonly stanza: Element;
  readonly kind: StanzaKind;
  /** The local client that sent it, or null when it comes from the server or a remote domain. */
  readonly origin: ClientSession | null;
  readonly from: Jid;
  /** The addressee; for `self` events, the sender's bare JID. */
  readonly to: Jid;
  readonly target: Target;
}

export interface IqEvent extends StanzaEvent {
  readonly kind: "iq";
  /** The single child element of an IQ get or set (RFC 6120 §8.2.3). */
  readonly payload: Element;
}

export const STANZA_KINDS: ReadonlySet<string> = new Set(["message", "presence", "iq"]);
const IQ_TYPES = new Set(["get", "set", "result", "error"]);
const MESSAGE_TYPES = new Set(["chat", "error", "groupchat", "headline", "normal"]);
const PRESENCE_TYPES = new Set(["error", "probe", "subscribe", "subscribed", "unavailable", "unsubscribe", "unsubscribed"]);

export interface RouterOptions {
  hooks: Hooks;
  sessions: SessionRegistry;
  log: Logger;
  /** True for a domain this node serves (virtual hosts and components). */
  isLocalDomain(domain: string): boolean;
  /** The handler of a component domain (conference., upload., ...), if `domain` is one. */
  componentFor?(domain: string): ComponentHandler | undefined;
  /** How long a server-originated IQ waits for its answer. */
  iqTimeoutMs?: number;
}

/** A component receives every stanza addressed to its domain, after the sender's pre- hooks. */
export type ComponentHandler = (ev: StanzaEvent) => Promise<void> | void;

interface PendingIq {
  resolve(el: Element): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

export class Router {
  private readonly hooks: Hooks;
  private readonly sessions: SessionRegistry;
  private readonly log: Logger;
  private readonly isLocalDomain: (domain: string) => boolean;
  private readonly componentFor: (domain: string) => ComponentHandler | undefined;
  private readonly iqTimeoutMs: number;
  private readonly pending = new Map<string, PendingIq>();
  private iqCounter = 0;

  constructor(opts: RouterOptions) {
    this.hooks = opts.hooks;
    this.sessions = opts.sessions;
    this.log = opts.log;
    this.isLocalDomain = opts.isLocalDomain;
    this.componentFor = opts.componentFor ?? (() => undefined);
    this.iqTimeoutMs = opts.iqTimeoutMs ?? 30_000;
  }

  /** Routes a stanza; never throws (failures become error replies and log lines). */
  async route(stanza: Element, origin: ClientSession | null): Promise<void> {
    const started = performance.now();
    try {
      await this.routeInner(stanza, origin);
    } catch (err) {
      this.log.error({ err, stanza: stanza.name }, "routing failed");
      this.bounce(stanza, origin, err instanceof StanzaError ? err : new StanzaError("internal-server-error"));
    }
    if (STANZA_KINDS.has(stanza.name)) routingDuration.observe((performance.now() - started) / 1000, labelsOf("kind", stanza.name));
  }

  private async routeInner(stanza: Element, origin: ClientSession | null): Promise<void> {
    const kind = stanza.name as StanzaKind;
    if (!STANZA_KINDS.has(kind)) return;
    stanzasRouted.inc(labelsOf("kind", kind));

    let from: Jid | null;
    if (origin) {
      from = origin.jid ?? null;
      if (!from) return;
      stanza.attrs.from = from.toString();
    } else {
      from = stanza.attrs.from ? tryParseJid(stanza.attrs.from) : null;
      if (!from) {
        this.log.warn({ from: stanza.attrs.from }, "dropping a stanza with no valid from");
        return;
      }
    }

    let to: Jid | null = null;
    if (stanza.attrs.to !== undefined) {
      to = tryParseJid(stanza.attrs.to);
      if (!to) return this.bounce(stanza, origin, new StanzaError("jid-malformed", "the 'to' address is not a valid JID"));
      stanza.attrs.to = to.toString();
    }

    const invalid = this.checkSemantics(stanza, kind);
    if (invalid) return this.bounce(stanza, origin, invalid);

    const target: Target = !to
      ? "self"
      : kind === "iq" && to.equals(from.bare) && this.isLocalDomain(to.domain)
        ? "self"
        : classify(to);
    const ev = this.event(stanza, kind, origin, from, to ?? from.bare, target);

    if (origin && (await this.hooks.fire(`pre-${kind}/${target}`, ev))) return;

    const component = to ? this.componentFor(to.domain) : undefined;
    if (component) {
      if (stanza.attrs.type === "result" || stanza.attrs.type === "error") {
        if (kind === "iq" && to!.local === "" && to!.resource === "") return this.answerPending(stanza);
      }
      await component(ev);
      return;
    }

    if (to && !this.isLocalDomain(to.domain)) {
      if (await this.hooks.fire(`route/remote`, ev)) return;
      return this.bounce(stanza, origin, new StanzaError("remote-server-not-found", `${to.domain} cannot be reached from this server`));
    }

    if (await this.hooks.fire(`${kind}/${target}`, ev)) return;

    if (kind === "iq") return this.dispatchIq(ev as IqEvent);
    if (kind === "message") {
      // RFC 6121 §8.5.2/§8.5.3: nobody took it; tell the sender rather than losing it silently.
      const type = stanza.attrs.type;
      if (type !== "error" && type !== "groupchat" && type !== "headline") this.bounce(stanza, origin, new StanzaError("service-unavailable"));
    }
    // Presence nobody handled is dropped silently (RFC 6121 §4.3.2, §8.5.2.1).
  }

  private async dispatchIq(ev: IqEvent): Promise<void> {
    const { stanza } = ev;
    const type = stanza.attrs.type;
    if (type === "result" || type === "error") {
      // An answer to a client's request goes to that client; one to the server (or to a bare
      // JID, RFC 6121 §8.5.2.1.3: never delivered) may settle a request the server sent.
      if (ev.target === "full") this.sessions.get(ev.to)?.send(stanza);
      else this.answerPending(stanza);
      return;
    }
    if (ev.target === "full") {
      const session = this.sessions.get(ev.to);
      if (session) {
        session.send(stanza);
        return;
      }
      return this.bounce(stanza, ev.origin, new StanzaError("service-unavailable"));
    }
    const event = `iq-${type}/${ev.target}/${ev.payload.getNS() ?? ""}:${ev.payload.getName()}`;
    if (await this.hooks.fire(event, ev)) return;
    this.bounce(stanza, ev.origin, new StanzaError("service-unavailable"));
  }

  private event(stanza: Element, kind: StanzaKind, origin: ClientSession | null, from: Jid, to: Jid, target: Target): StanzaEvent | IqEvent {
    if (kind !== "iq") return { stanza, kind, origin, from, to, target };
    const payload = firstChildElement(stanza);
    return { stanza, kind, origin, from, to, target, payload: payload! };
  }

  /** RFC 6120 §8.1.3, §8.2.3: checks a receiving server must make; returns the error to send. */
  private checkSemantics(stanza: Element, kind: StanzaKind): StanzaError | null {
    const type = stanza.attrs.type;
    if (kind === "iq") {
      if (type === undefined || !IQ_TYPES.has(type)) return new StanzaError("bad-request", "an IQ needs a type of get, set, result or error");
      if (stanza.attrs.id === undefined || stanza.attrs.id === "") return new StanzaError("bad-request", "an IQ needs an id");
      if (type === "get" || type === "set") {
        let count = 0;
        for (const c of stanza.children) if (typeof c !== "string") count++;
        if (count !== 1) return new StanzaError("bad-request", "an IQ get or set carries exactly one payload");
      }
    } else if (kind === "message") {
      if (type !== undefined && !MESSAGE_TYPES.has(type)) return new StanzaError("bad-request", `unknown message type ${type}`);
    } else if (type !== undefined && !PRESENCE_TYPES.has(type)) {
      return new StanzaError("bad-request", `unknown presence type ${type}`);
    }
    return null;
  }

  /** Sends the error reply for a stanza back where it came from (never an error to an error). */
  bounce(stanza: Element, origin: ClientSession | null, err: StanzaError): void {
    const reply = errorReply(stanza, err);
    if (!reply) return;
    stanzaErrors.inc(labelsOf("condition", err.condition));
    if (origin) {
      // The reply comes from whoever the client addressed; to the client itself it needs no `to`.
      reply.attrs.to = origin.jid?.toString() ?? reply.attrs.to;
      origin.send(reply);
      return;
    }
    if (!reply.attrs.from || !reply.attrs.to) return;
    void this.route(reply, null);
  }

  /** Sends an IQ from the server and waits for its result (XEP-0199 pings to clients, ...). */
  request(iq: Element): Promise<Element> {
    const id = iq.attrs.id ?? `parley-${(++this.iqCounter).toString(36)}`;
    iq.attrs.id = id;
    const key = `${iq.attrs.to ?? ""}\u0000${id}`;
    return new Promise<Element>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(key);
        reject(new StanzaError("remote-server-timeout", "no answer in time"));
      }, this.iqTimeoutMs);
      timer.unref();
      this.pending.set(key, { resolve, reject, timer });
      void this.route(iq, null);
    });
  }

  private answerPending(stanza: Element): void {
    const key = `${stanza.attrs.from ?? ""}\u0000${stanza.attrs.id ?? ""}`;
    const waiting = this.pending.get(key);
    if (!waiting) return;
    this.pending.delete(key);
    clearTimeout(waiting.timer);
    waiting.resolve(stanza);
  }

  /** Rejects every IQ still waiting (at shutdown). */
  close(): void {
    for (const [key, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new StanzaError("remote-server-timeout", "server shutting down"));
      this.pending.delete(key);
    }
  }
}

function classify(to: Jid): Target {
  if (to.local === "") return "host";
  return to.resource === "" ? "bare" : "full";
}

function firstChildElement(el: Element): Element | undefined {
  for (const c of el.children) if (typeof c !== "string") return c;
  return undefined;
}
