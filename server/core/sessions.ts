// Client sessions and the registry that finds them: RFC 6120 §7 (resource binding) and
// RFC 6121 §1.5 (available and interested resources). The registry sits behind an interface so
// that a Redis-backed registry can route between Parley nodes without changing any module.
import type { Element } from "../../protocol/xml/element.ts";
import type { Jid } from "../../protocol/jid.ts";
import type { StreamErrorCondition } from "../../protocol/errors.ts";

export interface ClientSession {
  readonly kind: "c2s";
  readonly id: string;
  /** The virtual host the stream was opened to. */
  readonly host: string;
  /** The full JID once a resource is bound; before that undefined. */
  readonly jid: Jid | undefined;
  readonly ip: string;
  readonly secure: boolean;
  /** The stream's xml:lang (RFC 6120 §4.7.4). */
  readonly lang: string;
  /** The last available presence broadcast (RFC 6121 §4.2), or null while unavailable. */
  presence: Element | null;
  /** The priority of that presence (RFC 6121 §4.7.2.3), 0 when absent. */
  priority: number;
  /** True once the client has requested the roster (RFC 6121 §2.1.6 interested resource). */
  interested: boolean;
  /** Full or bare JIDs this session sent directed presence to (RFC 6121 §4.6). */
  readonly directedPresence: Set<string>;
  /** Per-module state, keyed by module name. */
  readonly data: Map<string, unknown>;
  /** Queues a stanza for the client, through the outgoing filters. */
  send(stanza: Element): void;
  /** Writes a stanza to the client at once, past the filters (for a filter's own flush). */
  sendNow(stanza: Element): void;
  /**
   * Adds a filter that sees every stanza `send` is given, in the order added; returning false
   * holds the stanza back (the filter then owns it: it sends it later with sendNow, or drops
   * it). XEP-0352 client state indication and XEP-0198 stream management build on this.
   * Returns the function that removes the filter.
   */
  addOutgoingFilter(filter: (stanza: Element) => boolean): () => void;
  /**
   * Adds an observer of every element written to the client (after the filters), or that would
   * be written while the session hibernates. XEP-0198 keeps its unacknowledged queue with it.
   */
  addWriteObserver(observer: (el: Element) => void): () => void;
  /** Message, presence and IQ stanzas from the client handled to the end since binding (XEP-0198 'h'). */
  readonly handledCount: number;
  /** When set, a connection lost without a closing stream keeps the session this long (ms) to be resumed. */
  resumeTimeoutMs: number | null;
  /** True while the connection is gone and the session waits to be resumed. */
  readonly hibernating: boolean;
  /** Ends the stream, with a stream error when a condition is given. */
  close(condition?: StreamErrorCondition, text?: string): void;
}

export interface SessionRegistry {
  /** Registers a bound session; returns the session it replaced (same full JID), if any. */
  add(session: ClientSession): ClientSession | undefined;
  remove(session: ClientSession): void;
  /** The session bound to exactly this full JID. */
  get(full: Jid): ClientSession | undefined;
  /** Every bound session of an account. */
  resources(bare: Jid): ClientSession[];
  /** Every bound session on this node. */
  all(): IterableIterator<ClientSession>;
  readonly size: number;
}

/** The single-node registry: a map from bare JID to its resources. */
export class LocalSessionRegistry implements SessionRegistry {
  private readonly byBare = new Map<string, Map<string, ClientSession>>();
  private count = 0;

  add(session: ClientSession): ClientSession | undefined {
    const jid = session.jid;
    if (!jid) throw new Error("only bound sessions are registered");
    const key = jid.bare.toString();
    let resources = this.byBare.get(key);
    if (!resources) this.byBare.set(key, (resources = new Map()));
    const previous = resources.get(jid.resource);
    resources.set(jid.resource, session);
    if (!previous) this.count++;
    return previous;
  }

  remove(session: ClientSession): void {
    const jid = session.jid;
    if (!jid) return;
    const key = jid.bare.toString();
    const resources = this.byBare.get(key);
    if (!resources || resources.get(jid.resource) !== session) return;
    resources.delete(jid.resource);
    this.count--;
    if (resources.size === 0) this.byBare.delete(key);
  }

  get(full: Jid): ClientSession | undefined {
    return this.byBare.get(full.bare.toString())?.get(full.resource);
  }

  resources(bare: Jid): ClientSession[] {
    const resources = this.byBare.get(bare.bare.toString());
    return resources ? [...resources.values()] : [];
  }

  *all(): IterableIterator<ClientSession> {
    for (const resources of this.byBare.values()) yield* resources.values();
  }

  get size(): number {
    return this.count;
  }
}
