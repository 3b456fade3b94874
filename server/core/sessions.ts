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

/** One session of an account, or several by resource (most accounts are online once). */
type Entry = { resource: string; session: ClientSession } | Map<string, ClientSession>;

/**
 * The single-node registry: a map from bare JID to its resources. An account with one session
 * holds it directly, not in a Map of its own (memory per online account).
 */
export class LocalSessionRegistry implements SessionRegistry {
  private readonly byBare = new Map<string, Entry>();
  private count = 0;

  add(session: ClientSession): ClientSession | undefined {
    const jid = session.jid;
    if (!jid) throw new Error("only bound sessions are registered");
    const key = jid.bare.toString();
    const resource = jid.resource;
    const entry = this.byBare.get(key);
    if (entry === undefined) {
      this.byBare.set(key, { resource, session });
      this.count++;
      return undefined;
    }
    if (!(entry instanceof Map)) {
      if (entry.resource === resource) {
        const previous = entry.session;
        entry.session = session;
        return previous;
      }
      this.byBare.set(key, new Map([[entry.resource, entry.session], [resource, session]]));
      this.count++;
      return undefined;
    }
    const previous = entry.get(resource);
    entry.set(resource, session);
    if (!previous) this.count++;
    return previous;
  }

  remove(session: ClientSession): void {
    const jid = session.jid;
    if (!jid) return;
    const key = jid.bare.toString();
    const entry = this.byBare.get(key);
    if (entry === undefined) return;
    if (!(entry instanceof Map)) {
      if (entry.resource !== jid.resource || entry.session !== session) return;
      this.byBare.delete(key);
      this.count--;
      return;
    }
    if (entry.get(jid.resource) !== session) return;
    entry.delete(jid.resource);
    this.count--;
    if (entry.size === 1) {
      const [[resource, only]] = entry;
      this.byBare.set(key, { resource, session: only });
    } else if (entry.size === 0) this.byBare.delete(key);
  }

  get(full: Jid): ClientSession | undefined {
    const entry = this.byBare.get(full.bare.toString());
    if (entry === undefined) return undefined;
    if (entry instanceof Map) return entry.get(full.resource);
    return entry.resource === full.resource ? entry.session : undefined;
  }

  resources(bare: Jid): ClientSession[] {
    const entry = this.byBare.get(bare.bare.toString());
    if (entry === undefined) return [];
    return entry instanceof Map ? [...entry.values()] : [entry.session];
  }

  *all(): IterableIterator<ClientSession> {
    for (const entry of this.byBare.values()) {
      if (entry instanceof Map) yield* entry.values();
      else yield entry.session;
    }
  }

  get size(): number {
    return this.count;
  }
}
