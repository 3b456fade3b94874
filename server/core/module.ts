// The module API (shared/DESIGN.md "Modules"): a module states what it is, which specifications
// it implements, and which events and IQs it wants; the core does the wiring and unwiring.
// `m` is the only door into the core.
//
// IQ handlers follow xmpp.js's iq-callee rules (RFC 6120 §8.2.3): return an Element and it is
// the result's payload, return true for an empty result, return nothing to let the next
// handler (or <service-unavailable/>) answer; throw a StanzaError for that error, and anything
// else thrown is <internal-server-error/>.
import { Element, xml } from "../../protocol/xml/element.ts";
import { StanzaError, errorReply } from "../../protocol/errors.ts";
import type { Jid } from "../../protocol/jid.ts";
import type { HookHandler } from "./hooks.ts";
import type { ComponentHandler, IqEvent, StanzaEvent, Target } from "./router.ts";
import type { ClientSession, SessionRegistry } from "./sessions.ts";
import type { Storage } from "./storage/index.ts";
import type { KeyValueStore, JsonValue } from "./storage/index.ts";
import type { Config, ModuleSettings } from "./config.ts";
import type { Logger } from "./log.ts";

export interface SpecClaim {
  /** A XEP number, or an RFC as "RFC 6121". */
  xep: number | string;
  version: string;
  status: "complete" | "partial" | "planned";
  note?: string;
}

export interface ModuleDefinition {
  name: string;
  /** What this module implements: the DOAP file and the README table are generated from it. */
  xeps: SpecClaim[];
  depends?: string[];
  setup(m: ModuleApi): void | Promise<void>;
}

export function defineModule(def: ModuleDefinition): ModuleDefinition {
  return def;
}

export type IqHandlerResult = Element | true | void | undefined;
export type IqHandler = (ev: IqEvent) => IqHandlerResult | Promise<IqHandlerResult>;

export interface Identity {
  category: string;
  type: string;
  name?: string;
}

export interface DiscoInfo {
  features: Set<string>;
  identities: Identity[];
}

/** What the core offers modules. */
export interface ModuleApi {
  readonly name: string;
  /** This module's `[modules.<name>]` table (snake_case keys as written). */
  readonly config: ModuleSettings;
  /** The whole server configuration, read-only. */
  readonly serverConfig: Config;
  readonly log: Logger;
  readonly storage: Storage;
  readonly sessions: SessionRegistry;
  /** The virtual hosts this server serves. */
  readonly hosts: readonly string[];
  isLocalHost(domain: string): boolean;

  hook<P = StanzaEvent>(event: string, fn: HookHandler<P>, priority?: number): void;
  fire<P>(event: string, payload: P): Promise<boolean>;
  /**
   * Answers IQs of a type and payload. `targets` says which addressees: the server (`host`,
   * the default), the sender's own account (`self`: no `to`, or the own bare JID), or another
   * local account's bare JID (`bare`).
   */
  onIq(type: "get" | "set", ns: string, name: string, fn: IqHandler, opts?: { targets?: Target[]; priority?: number }): void;

  /** What disco#info shows for the server and for accounts, as the loaded modules declared it. */
  readonly disco: { readonly host: DiscoInfo; readonly account: DiscoInfo };
  /** A disco#info feature (XEP-0030) of the server (`host`) or of every account (`account`). */
  addFeature(ns: string, on?: "host" | "account"): void;
  addIdentity(identity: Identity, on?: "host" | "account"): void;

  /**
   * Serves a component domain (conference.<host>, upload.<host>): every stanza to it, and to
   * any JID at it, goes to `handler` after the sender's pre- hooks (XEP-0114-style internal
   * component). Replies are routed with m.send.
   */
  addComponent(domain: string, handler: ComponentHandler): void;
  /** Routes a stanza from the server (origin null): the same rules as a client's. */
  send(stanza: Element): Promise<void>;
  /** Routes a stanza on behalf of a session (as if the client had sent it). */
  route(stanza: Element, origin: ClientSession | null): Promise<void>;
  /** Sends an IQ from the server and resolves with the answer (result or error). */
  request(iq: Element): Promise<Element>;
  /** Answers `ev` with an error (never an error to an error). */
  bounce(ev: StanzaEvent, err: StanzaError): void;

  /** This module's small JSON data, per account (`m.store(name)` of DESIGN.md). */
  store(name?: string): ModuleStore;
  /** A timer cleared when the server stops. */
  timer(ms: number, fn: () => void, opts?: { repeat?: boolean }): { cancel(): void };
  /** Runs when the server stops, before storage closes. */
  onStop(fn: () => void | Promise<void>): void;
}

export interface ModuleStore {
  get(jid: Jid, key: string): Promise<JsonValue | undefined>;
  set(jid: Jid, key: string, value: JsonValue): Promise<void>;
  delete(jid: Jid, key: string): Promise<void>;
}

export function moduleStore(kv: KeyValueStore, module: string): ModuleStore {
  return {
    get: async (jid, key) => (await kv.get(module, jid.domain, jid.local, key)) ?? undefined,
    set: (jid, key, value) => kv.set(module, jid.domain, jid.local, key, value),
    delete: async (jid, key) => {
      await kv.delete(module, jid.domain, jid.local, key);
    },
  };
}

/** The result for an IQ get/set, addressed back to its sender (RFC 6120 §8.2.3). */
export function iqResult(iq: Element, payload?: Element): Element {
  const reply = xml("iq", { xmlns: iq.attrs.xmlns, type: "result", id: iq.attrs.id, to: iq.attrs.from, from: iq.attrs.to });
  if (payload) reply.append(payload);
  return reply;
}

/** Turns what an IQ handler returned or threw into the reply to send, or null to pass. */
export async function runIqHandler(fn: IqHandler, ev: IqEvent, log: Logger): Promise<Element | null> {
  try {
    const out = await fn(ev);
    if (out === undefined) return null;
    return iqResult(ev.stanza, out === true ? undefined : out);
  } catch (err) {
    if (err instanceof StanzaError) return errorReply(ev.stanza, err);
    log.error({ err }, "IQ handler failed");
    return errorReply(ev.stanza, new StanzaError("internal-server-error"));
  }
}

export { Element };
