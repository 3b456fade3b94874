// RFC 6120 (XMPP Core) §8.3 stanza errors and §4.9 stream errors.
// Handlers throw `new StanzaError("item-not-found")`; the core turns it into an error reply
// with errorReply(). Stream errors are thrown as StreamError and end the stream.
import { Element, xml, clone, childElements } from "./xml/element.ts";
import { NS } from "./ns.ts";

/** RFC 6120 §8.3.2: the 'type' attribute of <error/>, which tells the sender what to do next. */
export type StanzaErrorType = "auth" | "cancel" | "continue" | "modify" | "wait";

const STANZA_ERROR_TYPES: ReadonlySet<string> = new Set<StanzaErrorType>(["auth", "cancel", "continue", "modify", "wait"]);

/**
 * RFC 6120 §8.3.3: the 22 defined conditions, each with the type the RFC says it SHOULD carry.
 * (RFC 3920 had a 23rd, payment-required, which RFC 6120 removed; a received one is read as
 * undefined-condition.) Where the RFC allows two types, the first one it names is used:
 * feature-not-implemented and gone "cancel", policy-violation "modify", unexpected-request
 * "wait". internal-server-error is "cancel" in RFC 6120 (it was "wait" in RFC 3920).
 * undefined-condition may carry any type; "cancel" is the default here because a sender told
 * nothing useful should not retry or resend unchanged.
 */
const STANZA_ERROR_DEFAULT_TYPES = {
  "bad-request": "modify",
  conflict: "cancel",
  "feature-not-implemented": "cancel",
  forbidden: "auth",
  gone: "cancel",
  "internal-server-error": "cancel",
  "item-not-found": "cancel",
  "jid-malformed": "modify",
  "not-acceptable": "modify",
  "not-allowed": "cancel",
  "not-authorized": "auth",
  "policy-violation": "modify",
  "recipient-unavailable": "wait",
  redirect: "modify",
  "registration-required": "auth",
  "remote-server-not-found": "cancel",
  "remote-server-timeout": "wait",
  "resource-constraint": "wait",
  "service-unavailable": "cancel",
  "subscription-required": "auth",
  "undefined-condition": "cancel",
  "unexpected-request": "wait",
} as const satisfies Record<string, StanzaErrorType>;

export type StanzaErrorCondition = keyof typeof STANZA_ERROR_DEFAULT_TYPES;

export const STANZA_ERROR_CONDITIONS = Object.keys(STANZA_ERROR_DEFAULT_TYPES) as readonly StanzaErrorCondition[];

/** RFC 6120 §4.9.3: the 25 defined stream error conditions. */
export const STREAM_ERROR_CONDITIONS = [
  "bad-format",
  "bad-namespace-prefix",
  "conflict",
  "connection-timeout",
  "host-gone",
  "host-unknown",
  "improper-addressing",
  "internal-server-error",
  "invalid-from",
  "invalid-namespace",
  "invalid-xml",
  "not-authorized",
  "not-well-formed",
  "policy-violation",
  "remote-connection-failed",
  "reset",
  "resource-constraint",
  "restricted-xml",
  "see-other-host",
  "system-shutdown",
  "undefined-condition",
  "unsupported-encoding",
  "unsupported-feature",
  "unsupported-stanza-type",
  "unsupported-version",
] as const;

export type StreamErrorCondition = (typeof STREAM_ERROR_CONDITIONS)[number];

const STREAM_CONDITION_SET: ReadonlySet<string> = new Set(STREAM_ERROR_CONDITIONS);

export function isStanzaErrorCondition(s: unknown): s is StanzaErrorCondition {
  return typeof s === "string" && Object.hasOwn(STANZA_ERROR_DEFAULT_TYPES, s);
}

export function isStreamErrorCondition(s: unknown): s is StreamErrorCondition {
  return typeof s === "string" && STREAM_CONDITION_SET.has(s);
}

/** The type RFC 6120 §8.3.3 gives a condition when the sender is told nothing more specific. */
export function defaultErrorType(condition: StanzaErrorCondition): StanzaErrorType {
  return STANZA_ERROR_DEFAULT_TYPES[condition];
}

export interface StanzaErrorOptions {
  /** Overrides the condition's default type (e.g. policy-violation "wait" for rate limits). */
  type?: StanzaErrorType;
  /** Human-readable <text/>: for people and logs, never for program logic (RFC 6120 §8.3.2). */
  text?: string;
  /** xml:lang of the text; "en" when text is given without one. */
  lang?: string;
  /** The entity that generated the error, when it is not the one the reply comes from. */
  by?: string;
  /** An application-specific condition element (its own namespace), e.g. pubsub#errors. */
  appSpecific?: Element;
  /** For gone and redirect: the new or alternate address, an XMPP URI (RFC 6120 §8.3.3.5, .14). */
  newAddress?: string;
}

/** A stanza-level failure, thrown by handlers and turned into an error reply by the core. */
export class StanzaError extends Error {
  override readonly name = "StanzaError";
  readonly condition: StanzaErrorCondition;
  readonly type: StanzaErrorType;
  readonly text?: string;
  readonly lang?: string;
  readonly by?: string;
  readonly appSpecific?: Element;
  readonly newAddress?: string;

  /** The second argument may be just the text: `new StanzaError("bad-request", "max must be >= 0")`. */
  constructor(condition: StanzaErrorCondition, options: StanzaErrorOptions | string = {}) {
    const opts = typeof options === "string" ? { text: options } : options;
    if (!isStanzaErrorCondition(condition)) {
      // A programming error in the server, not something a peer can cause.
      throw new TypeError(`unknown stanza error condition: ${String(condition)}`);
    }
    if (opts.type !== undefined && !STANZA_ERROR_TYPES.has(opts.type)) {
      throw new TypeError(`unknown stanza error type: ${String(opts.type)}`);
    }
    super(opts.text ? `${condition}: ${opts.text}` : condition);
    this.condition = condition;
    this.type = opts.type ?? defaultErrorType(condition);
    this.text = opts.text;
    this.lang = opts.lang;
    this.by = opts.by;
    this.appSpecific = opts.appSpecific;
    this.newAddress = opts.newAddress;
  }

  /** The <error/> child, in no namespace of its own so it inherits the stanza's (RFC 6120 §8.3.2). */
  toElement(): Element {
    const error = xml("error", { type: this.type, by: this.by });
    const conditionChildren = this.newAddress && (this.condition === "gone" || this.condition === "redirect") ? [this.newAddress] : [];
    error.append(xml(this.condition, { xmlns: NS.stanzas }, ...conditionChildren));
    if (this.text !== undefined && this.text !== "") {
      error.append(xml("text", { xmlns: NS.stanzas, "xml:lang": this.lang ?? "en" }, this.text));
    }
    // A copy, so that calling toElement() twice does not move the element between parents.
    if (this.appSpecific) error.append(clone(this.appSpecific));
    return error;
  }
}

/** The <error/> element for a condition, without making a StanzaError first. */
export function stanzaErrorElement(condition: StanzaErrorCondition, opts?: StanzaErrorOptions | string): Element {
  return new StanzaError(condition, opts).toElement();
}

export interface ErrorReplyOptions extends StanzaErrorOptions {
  /**
   * Echo the original payload back. Default: true for message and presence, false for iq.
   * See errorReply.
   */
  includePayload?: boolean;
  /** The reply's 'from' when it must differ from the original 'to' (e.g. the original had no 'to'). */
  from?: string;
}

/**
 * The error stanza answering `stanza` (RFC 6120 §8.3.1): same element name and id, to/from
 * swapped, type="error", exactly one <error/> child. Returns null when the stanza is itself an
 * error: an error is never answered with an error, which is what stops error loops between
 * two servers.
 *
 * Payload (the RFC says the original XML MAY be included): echoed for message and presence,
 * not for iq. A message or presence need not carry an id (RFC 6120 §8.1.3), so the echoed
 * payload (the <body/>, the MUC <x/>) is often the only way a client can tell which one failed,
 * and clients show the bounced body to the user. An iq always has an id that correlates the
 * reply, and its payloads are the large ones (vCard photos, pubsub items, archive queries), so
 * echoing them would only cost bandwidth. `opts.includePayload` overrides either default.
 * The error fields of `opts` (text, by, ...) are used only when `err` is a condition name.
 */
export function errorReply(stanza: Element, err: StanzaError | StanzaErrorCondition, opts: ErrorReplyOptions = {}): Element | null {
  if (stanza.attrs.type === "error") return null;
  const { includePayload, from, ...errorOptions } = opts;
  const error = typeof err === "string" ? new StanzaError(err, errorOptions) : err;
  const name = stanza.getName();
  const reply = new Element(stanza.name, {});
  // Namespace declarations first, so echoed children resolve their prefixes as they did before.
  for (const attr of Object.keys(stanza.attrs)) {
    if (attr === "xmlns" || attr.startsWith("xmlns:")) copyAttr(stanza, reply, attr);
  }
  if (from !== undefined) reply.attrs.from = from;
  else if (stanza.attrs.to !== undefined) reply.attrs.from = stanza.attrs.to;
  if (stanza.attrs.from !== undefined) reply.attrs.to = stanza.attrs.from;
  reply.attrs.type = "error";
  copyAttr(stanza, reply, "id");
  copyAttr(stanza, reply, "xml:lang");
  if (includePayload ?? name !== "iq") {
    for (const child of childElements(stanza)) {
      // The original cannot legally carry an <error/> (RFC 6120 §8.3.1), but a peer may send one
      // anyway; dropping it keeps the reply to exactly one error.
      if (child.getName() === "error") continue;
      reply.append(clone(child));
    }
  }
  reply.append(error.toElement());
  return reply;
}

export interface ReceivedStanzaError {
  condition: StanzaErrorCondition;
  type: StanzaErrorType;
  text?: string;
  lang?: string;
  by?: string;
  /** The first child in a namespace other than the stanzas one, if any. */
  appSpecific?: Element;
  /** For gone and redirect: the address carried in the condition element. */
  newAddress?: string;
}

/**
 * Reads the error of a received type="error" stanza, or null when it is not one. Lenient, since
 * it reads what others wrote: a missing or unknown condition becomes undefined-condition, a
 * missing or unknown type becomes the condition's default.
 */
export function parseStanzaError(stanza: Element): ReceivedStanzaError | null {
  if (stanza.attrs.type !== "error") return null;
  const error = childElements(stanza).find((c) => c.getName() === "error" && isContentNamespace(c.getNS()));
  if (!error) return null;
  let condition: StanzaErrorCondition = "undefined-condition";
  let newAddress: string | undefined;
  let text: string | undefined;
  let lang: string | undefined;
  let appSpecific: Element | undefined;
  let conditionFound = false;
  for (const child of childElements(error)) {
    const childName = child.getName();
    if (child.getNS() !== NS.stanzas) {
      appSpecific ??= child;
    } else if (childName === "text") {
      if (text === undefined) {
        text = child.getText();
        lang = child.attrs["xml:lang"];
      }
    } else if (!conditionFound && isStanzaErrorCondition(childName)) {
      conditionFound = true;
      condition = childName;
      const address = child.getText().trim();
      if (address !== "" && (childName === "gone" || childName === "redirect")) newAddress = address;
    }
  }
  const typeAttr = error.attrs.type;
  const type = typeAttr !== undefined && STANZA_ERROR_TYPES.has(typeAttr) ? (typeAttr as StanzaErrorType) : defaultErrorType(condition);
  const result: ReceivedStanzaError = { condition, type };
  if (text !== undefined) result.text = text;
  if (lang !== undefined) result.lang = lang;
  if (error.attrs.by !== undefined) result.by = error.attrs.by;
  if (appSpecific) result.appSpecific = appSpecific;
  if (newAddress !== undefined) result.newAddress = newAddress;
  return result;
}

export interface StreamErrorOptions {
  /** Human-readable <text/>, for logs and people. */
  text?: string;
  /** xml:lang of the text; "en" when text is given without one. */
  lang?: string;
  /** An application-specific condition element (its own namespace). */
  appSpecific?: Element;
  /** For see-other-host: where the peer should reconnect (RFC 6120 §4.9.3.19), "host" or "host:port". */
  otherHost?: string;
}

/** A stream-level failure: the stream is closed after sending toElement(). */
export class StreamError extends Error {
  override readonly name = "StreamError";
  readonly condition: StreamErrorCondition;
  readonly text?: string;
  readonly lang?: string;
  readonly appSpecific?: Element;
  readonly otherHost?: string;

  constructor(condition: StreamErrorCondition, options: StreamErrorOptions | string = {}) {
    const opts = typeof options === "string" ? { text: options } : options;
    if (!isStreamErrorCondition(condition)) {
      throw new TypeError(`unknown stream error condition: ${String(condition)}`);
    }
    super(opts.text ? `${condition}: ${opts.text}` : condition);
    this.condition = condition;
    this.text = opts.text;
    this.lang = opts.lang;
    this.appSpecific = opts.appSpecific;
    this.otherHost = opts.otherHost;
  }

  /**
   * <stream:error xmlns:stream="http://etherx.jabber.org/streams">. The prefix is declared on
   * the element itself so it is well-formed on its own: inside a TCP stream the redundant
   * declaration is harmless, and over WebSocket (RFC 7395 §3.6) and BOSH there is no stream
   * header to inherit it from.
   */
  toElement(): Element {
    const el = xml("stream:error", { "xmlns:stream": NS.stream });
    const conditionChildren = this.condition === "see-other-host" && this.otherHost ? [this.otherHost] : [];
    el.append(xml(this.condition, { xmlns: NS.streams }, ...conditionChildren));
    if (this.text !== undefined && this.text !== "") {
      el.append(xml("text", { xmlns: NS.streams, "xml:lang": this.lang ?? "en" }, this.text));
    }
    if (this.appSpecific) el.append(clone(this.appSpecific));
    return el;
  }
}

/** The <stream:error/> element for a condition. The second argument may be just the text. */
export function streamErrorElement(condition: StreamErrorCondition, text?: string | StreamErrorOptions, appSpecific?: Element): Element {
  const opts: StreamErrorOptions = typeof text === "string" ? { text } : { ...text };
  if (appSpecific) opts.appSpecific = appSpecific;
  return new StreamError(condition, opts).toElement();
}

export interface ReceivedStreamError {
  condition: StreamErrorCondition;
  text?: string;
  otherHost?: string;
  appSpecific?: Element;
}

/**
 * Reads a received <stream:error/> (e.g. from a remote server on an outgoing s2s stream), or
 * null when `el` is not one. An unknown or missing condition becomes undefined-condition.
 */
export function parseStreamError(el: Element): ReceivedStreamError | null {
  if (el.getName() !== "error" || el.getNS() !== NS.stream) return null;
  let condition: StreamErrorCondition = "undefined-condition";
  let conditionFound = false;
  const result: Omit<ReceivedStreamError, "condition"> = {};
  for (const child of childElements(el)) {
    const childName = child.getName();
    if (child.getNS() !== NS.streams) {
      result.appSpecific ??= child;
    } else if (childName === "text") {
      result.text ??= child.getText();
    } else if (!conditionFound && isStreamErrorCondition(childName)) {
      conditionFound = true;
      condition = childName;
      const host = child.getText().trim();
      if (childName === "see-other-host" && host !== "") result.otherHost = host;
    }
  }
  return { condition, ...result };
}

/**
 * RFC 6120 §8.3.2: <error/> is qualified by the content namespace of the stream. A stanza cut out
 * of a stream may have lost its parent, in which case the namespace is simply undeclared.
 */
function isContentNamespace(ns: string | undefined): boolean {
  return ns === undefined || ns === NS.client || ns === NS.server || ns === NS.componentAccept;
}

function copyAttr(from: Element, to: Element, name: string): void {
  const value = from.attrs[name];
  if (value !== undefined) to.attrs[name] = value;
}

