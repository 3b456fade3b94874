// XML stream parser for XMPP: RFC 6120 §4 (streams) and §11 (XML usage), XML 1.0 (5th ed.)
// and Namespaces in XML 1.0 (3rd ed.).
//
// A hand-written tokenizer over bytes, written for hostile input:
// - bytes may arrive in any chunking (inside a UTF-8 sequence, an entity or a tag): the
//   unconsumed tail is kept in a growable buffer and every scan resumes where it stopped, so
//   one byte at a time costs linear time, not quadratic;
// - RFC 6120 §11.1 restricted XML (comments, processing instructions, DOCTYPE/DTD, entity
//   references other than the five predefined ones) ends the stream with <restricted-xml/>;
//   nothing is ever expanded, so entity bombs cost nothing;
// - malformed XML, unbound prefixes, illegal characters and invalid UTF-8 are <not-well-formed/>;
// - a stanza larger than maxStanzaSize bytes, or nested deeper than maxDepth, is
//   <policy-violation/> as soon as the bytes that cross the limit arrive: a stanza that is too
//   big never reaches memory.
// The stream header is reported on its own; each depth-1 child is reported as a complete
// Element that carries its namespace (the stream's default namespace and any prefixes declared
// on the header are copied onto it), so it can be routed and serialised on its own.
import { isUtf8 } from "node:buffer";
import { Element } from "./element.ts";

export const STREAM_NS = "http://etherx.jabber.org/streams";
const XML_NS = "http://www.w3.org/XML/1998/namespace";

/** The stream error conditions (RFC 6120 §4.9.3) that the parser itself can raise. */
export type XmlStreamErrorCondition =
  | "not-well-formed"
  | "restricted-xml"
  | "policy-violation"
  | "invalid-namespace"
  | "bad-format"
  | "unsupported-encoding";

export interface XmlStreamErrorInfo {
  condition: XmlStreamErrorCondition;
  text: string;
}

export interface StreamHeader {
  /** The qualified name as sent, usually "stream:stream". */
  name: string;
  /** Attributes as sent, namespace declarations included. */
  attrs: Record<string, string>;
  /** The default namespace of the stream's content: jabber:client, jabber:server, ... */
  defaultNs: string | undefined;
}

export interface StreamHandlers {
  streamStart(header: StreamHeader): void;
  stanza(el: Element): void;
  streamEnd(): void;
  error(err: XmlStreamErrorInfo): void;
}

export interface StreamParserOptions {
  /** Largest stanza (a depth-1 element), and largest stream header, in bytes. */
  maxStanzaSize?: number;
  /** Deepest element nesting inside a stanza (the stanza itself is depth 1). */
  maxDepth?: number;
}

export const DEFAULT_MAX_STANZA_SIZE = 256 * 1024;
export const DEFAULT_MAX_DEPTH = 64;

const LT = 0x3c, GT = 0x3e, AMP = 0x26, SEMI = 0x3b, SLASH = 0x2f, BANG = 0x21, QMARK = 0x3f;
const QUOT = 0x22, APOS = 0x27, EQ = 0x3d, RSQB = 0x5d, COLON = 0x3a;

// Kinds of character runs, and what scanning one found.
const RUN_TEXT = 0, RUN_ATTR = 1, RUN_CDATA = 2;
const RUN_HIGH = 1, RUN_SPECIAL = 2;

class Fail extends Error {
  constructor(readonly condition: XmlStreamErrorCondition, text: string) {
    super(text);
  }
}

interface OpenElement {
  el: Element;
  /** Namespace declarations made on this element: prefix ("" for default) -> URI. */
  decls: Map<string, string> | null;
}

const PREDEFINED: Record<string, string> = { lt: "<", gt: ">", amp: "&", quot: '"', apos: "'" };

// XML 1.0 NameStartChar / NameChar beyond ASCII (§2.3), checked only on non-ASCII names.
const NAME_RE =
  /^[:A-Z_a-z\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u02FF\u0370-\u037D\u037F-\u1FFF\u200C-\u200D\u2070-\u218F\u2C00-\u2FEF\u3001-\uD7FF\uF900-\uFDCF\uFDF0-\uFFFD\u{10000}-\u{EFFFF}][-.0-9:A-Z_a-z\u00B7\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u037D\u037F-\u1FFF\u200C-\u200D\u203F-\u2040\u2070-\u218F\u2C00-\u2FEF\u3001-\uD7FF\uF900-\uFDCF\uFDF0-\uFFFD\u{10000}-\u{EFFFF}]*$/u;

// ASCII name bytes: 1 = may start a name, 2 = may continue one.
const NAME_BYTE = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  const ch = String.fromCharCode(c);
  if (/[A-Za-z_:]/.test(ch)) NAME_BYTE[c] = 3;
  else if (/[0-9.\-]/.test(ch)) NAME_BYTE[c] = 2;
}

function isSpace(b: number): boolean {
  return b === 0x20 || b === 0x0a || b === 0x09 || b === 0x0d;
}

function isXmlChar(cp: number): boolean {
  return (
    cp === 0x9 || cp === 0xa || cp === 0xd ||
    (cp >= 0x20 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff)
  );
}

type State =
  | "prolog" // before the stream header: XML declaration, whitespace
  | "stream" // inside the stream
  | "ended" // after </stream:stream>
  | "failed";

const EMPTY = Buffer.alloc(0);

/**
 * Stream headers declare the same namespaces on almost every connection (jabber:client and the
 * streams prefix): parsers share one read-only map per distinct set, not a Map each (memory per
 * idle connection). Bounded: a peer cannot grow it past MAX_SHARED_DECLS sets.
 */
const sharedDeclSets = new Map<string, ReadonlyMap<string, string>>();
const MAX_SHARED_DECLS = 64;
const NO_DECLS: ReadonlyMap<string, string> = new Map();

function sharedDecls(decls: Map<string, string> | null): ReadonlyMap<string, string> {
  if (decls === null || decls.size === 0) return NO_DECLS;
  const key = [...decls].map(([p, ns]) => `${p}\u0000${ns}`).join("\u0001");
  const known = sharedDeclSets.get(key);
  if (known) return known;
  if (sharedDeclSets.size < MAX_SHARED_DECLS) sharedDeclSets.set(key, decls);
  return decls;
}
/** The smallest buffer made for an incomplete token carried over to the next write. */
const MIN_PENDING_BUFFER = 1024;

export class XmlStreamParser {
  private readonly maxStanzaSize: number;
  private readonly maxDepth: number;

  // Unconsumed bytes live in buf[start, end); `consumed` counts bytes before buf[0]. Between
  // writes the parser holds only what an incomplete token needs (nothing, most of the time: an
  // idle connection keeps no buffer), and a chunk that arrives with nothing pending is parsed
  // where it lies, without a copy.
  private buf: Buffer = EMPTY;
  private start = 0;
  private end = 0;
  private consumed = 0;
  private streamStartAbs = 0; // absolute offset where the current stream began

  // Resumable scanning of an incomplete token that starts at buf[start].
  private scanPos = 0; // offset from `start` already scanned
  private scanQuote = 0; // quote byte we are inside of, while scanning a tag

  /** Whether buf is the parser's own (else it is the chunk being parsed, the caller's). */
  private owned = false;
  private state: State = "prolog";
  private sawXmlDecl = false;
  private stack: OpenElement[] = [];
  private headerDecls: ReadonlyMap<string, string> = NO_DECLS;
  private stanzaStartAbs = -1; // absolute offset of the current stanza's '<'
  private usedHeaderPrefixes: Set<string> | null = null;

  constructor(private readonly handlers: StreamHandlers, opts: StreamParserOptions = {}) {
    this.maxStanzaSize = opts.maxStanzaSize ?? DEFAULT_MAX_STANZA_SIZE;
    this.maxDepth = opts.maxDepth ?? DEFAULT_MAX_DEPTH;
  }

  /** True once the parser has reported an error; later input is ignored. */
  get failed(): boolean {
    return this.state === "failed";
  }

  /** Starts a new stream on the same connection (after STARTTLS or SASL success, RFC 6120 §4.3.3). */
  reset(): void {
    if (this.state === "failed") return;
    this.consumed += this.end;
    this.streamStartAbs = this.consumed;
    this.start = this.end = 0;
    this.scanPos = 0;
    this.scanQuote = 0;
    this.state = "prolog";
    this.sawXmlDecl = false;
    this.stack = [];
    this.headerDecls = NO_DECLS;
    this.stanzaStartAbs = -1;
  }

  write(chunk: Uint8Array | string): void {
    if (this.state === "failed") return;
    const bytes = typeof chunk === "string" ? Buffer.from(chunk, "utf8") : Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (bytes.length === 0) return;
    this.append(bytes);
    try {
      this.run();
      this.checkPendingSize();
    } catch (e) {
      if (e instanceof Fail) this.fail(e.condition, e.message);
      else this.fail("not-well-formed", "could not parse the stream");
    }
    this.keepPending();
  }

  /** After a write: nothing kept when nothing is pending; else the pending bytes, in a buffer of the parser's own. */
  private keepPending(): void {
    if (this.state === "failed") return;
    const pending = this.end - this.start;
    if (pending === 0) {
      this.consumed += this.start;
      this.start = this.end = 0;
      this.buf = EMPTY;
      this.owned = false;
      if (this.stack.length === 0) this.stack = []; // without the capacity the last stanza gave it
      return;
    }
    if (this.owned) return;
    // Still the caller's chunk: copy out what is pending (a chunk may be a slice of a larger one).
    const own = Buffer.allocUnsafe(Math.max(pending, MIN_PENDING_BUFFER));
    this.buf.copy(own, 0, this.start, this.end);
    this.consumed += this.start;
    this.start = 0;
    this.end = pending;
    this.buf = own;
    this.owned = true;
  }

  private fail(condition: XmlStreamErrorCondition, text: string): void {
    this.state = "failed";
    this.stack = [];
    this.buf = Buffer.alloc(0);
    this.start = this.end = 0;
    this.handlers.error({ condition, text });
  }

  private append(bytes: Buffer): void {
    const pending = this.end - this.start;
    if (pending === 0) {
      this.consumed += this.start;
      this.buf = bytes;
      this.owned = false;
      this.start = 0;
      this.end = bytes.length;
      return;
    }
    if (this.end + bytes.length > this.buf.length) {
      if (pending + bytes.length <= this.buf.length && this.start > 0) {
        this.buf.copy(this.buf, 0, this.start, this.end);
      } else {
        const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, pending + bytes.length));
        this.buf.copy(grown, 0, this.start, this.end);
        this.buf = grown;
      }
      this.consumed += this.start;
      this.start = 0;
      this.end = pending;
    }
    this.buf.set(bytes, this.end);
    this.end += bytes.length;
  }

  /** Bytes still held for an incomplete token count against the stanza or header limit. */
  private checkPendingSize(): void {
    if (this.state === "failed") return;
    const from = this.stanzaStartAbs >= 0 ? this.stanzaStartAbs : this.consumed + this.start;
    if (this.consumed + this.end - from > this.maxStanzaSize) {
      throw new Fail("policy-violation", `stanza larger than ${this.maxStanzaSize} bytes`);
    }
  }

  private consume(n: number): void {
    this.start += n;
    this.scanPos = 0;
    this.scanQuote = 0;
    if (this.start === this.end) {
      this.consumed += this.start;
      this.start = this.end = 0;
    }
  }

  private run(): void {
    const buf = this.buf;
    while (this.start < this.end && this.state !== "failed") {
      const b = buf[this.start];
      if (b === LT) {
        if (!this.markup()) return;
      } else {
        if (!this.text()) return;
      }
    }
  }

  // ---- character data -------------------------------------------------------------------

  /** Consumes text up to the next '<' (or a safe cut point); false when more bytes are needed. */
  private text(): boolean {
    const buf = this.buf;
    const s = this.start;
    let lt = buf.indexOf(LT, s + this.scanPos);
    let stop = lt === -1 || lt >= this.end ? this.end : lt;
    const complete = stop !== this.end;
    if (!complete) {
      // Keep back an incomplete entity or UTF-8 sequence for the next chunk.
      stop = this.safeTextEnd(s, stop);
      if (stop === s) {
        this.scanPos = this.end - s;
        return false;
      }
    }
    if (this.stack.length === 0) {
      // Between stanzas only whitespace (keepalives) is allowed.
      for (let i = s; i < stop; i++) {
        const c = buf[i];
        if (!isSpace(c)) {
          if (this.state === "prolog" && i === s && c === 0xef && stop - s >= 3 && buf[s + 1] === 0xbb && buf[s + 2] === 0xbf && this.consumed + s === this.streamStartAbs) {
            i += 2; // a UTF-8 byte order mark at the very start of the stream
            continue;
          }
          if (this.state === "stream") throw new Fail("bad-format", "character data between stanzas");
          throw new Fail("not-well-formed", "character data outside the stream element");
        }
      }
    } else {
      if (this.consumed + stop - this.stanzaStartAbs > this.maxStanzaSize) {
        throw new Fail("policy-violation", `stanza larger than ${this.maxStanzaSize} bytes`);
      }
      const str = this.decodeText(s, stop);
      if (str.length > 0) appendText(this.stack[this.stack.length - 1].el, str);
    }
    this.consume(stop - s);
    return true;
  }

  private safeTextEnd(s: number, stop: number): number {
    const buf = this.buf;
    // An '&' with no ';' after it may be an entity split across chunks.
    const amp = buf.lastIndexOf(AMP, stop - 1);
    const semi = amp >= s ? buf.indexOf(SEMI, amp) : -1;
    if (amp >= s && (semi === -1 || semi >= stop)) {
      if (stop - amp > 16) throw new Fail("not-well-formed", "unterminated entity reference");
      stop = amp;
    }
    // Back off a trailing incomplete UTF-8 sequence.
    let i = stop - 1;
    let k = 0;
    while (i >= s && k < 3 && (buf[i] & 0xc0) === 0x80) {
      i--;
      k++;
    }
    if (i >= s && buf[i] >= 0xc0) {
      const need = buf[i] >= 0xf0 ? 4 : buf[i] >= 0xe0 ? 3 : 2;
      if (stop - i < need) stop = i;
    }
    return stop;
  }

  /** Decodes character data in buf[s, e): entities, line ends (XML §2.11), character checks. */
  private decodeText(s: number, e: number): string {
    const flags = this.scanRun(s, e, RUN_TEXT);
    const raw = this.runString(s, e, flags);
    return flags & RUN_SPECIAL ? decodeEntities(raw.replace(/\r\n?/g, "\n")) : raw;
  }

  /**
   * Checks every character of a run (XML 1.0 §2.2 Char; invalid UTF-8) and says what decoding
   * it needs: RUN_HIGH for non-ASCII bytes, RUN_SPECIAL for references or characters that
   * normalisation changes.
   */
  private scanRun(s: number, e: number, kind: number): number {
    const buf = this.buf;
    let flags = 0;
    for (let i = s; i < e; i++) {
      const c = buf[i];
      if (c < 0x20) {
        if (c !== 0x09 && c !== 0x0a && c !== 0x0d) throw new Fail("not-well-formed", `illegal character U+${c.toString(16).padStart(4, "0")}`);
        if (c === 0x0d || kind === RUN_ATTR) flags |= RUN_SPECIAL;
      } else if (c === AMP) {
        if (kind !== RUN_CDATA) flags |= RUN_SPECIAL;
      } else if (c === GT) {
        if (kind === RUN_TEXT && i - s >= 2 && buf[i - 1] === RSQB && buf[i - 2] === RSQB) throw new Fail("not-well-formed", "']]>' in character data");
      } else if (c >= 0x80) {
        flags |= RUN_HIGH;
        if (c === 0xef && i + 2 < e && buf[i + 1] === 0xbf && (buf[i + 2] === 0xbe || buf[i + 2] === 0xbf)) {
          throw new Fail("not-well-formed", "illegal character U+FFFE/U+FFFF");
        }
      }
    }
    if (flags & RUN_HIGH && !isUtf8(buf.subarray(s, e))) throw new Fail("not-well-formed", "invalid UTF-8");
    return flags;
  }

  private runString(s: number, e: number, flags: number): string {
    return this.buf.toString(flags & RUN_HIGH ? "utf8" : "latin1", s, e);
  }

  // ---- markup ---------------------------------------------------------------------------

  /** Handles markup starting at buf[start] === '<'; false when more bytes are needed. */
  private markup(): boolean {
    const buf = this.buf;
    const s = this.start;
    if (this.end - s < 2) return false;
    const b1 = buf[s + 1];
    if (b1 === BANG) return this.bang();
    if (b1 === QMARK) return this.processingInstruction();
    const gt = this.scanTag();
    if (gt < 0) return false;
    if (gt + 1 - s > this.maxStanzaSize) throw new Fail("policy-violation", `tag larger than ${this.maxStanzaSize} bytes`);
    this.tagEndAbs = this.consumed + gt + 1;
    if (b1 === SLASH) this.endTag(s + 2, gt);
    else this.startTag(s + 1, gt);
    this.consume(gt + 1 - s);
    this.emit();
    return true;
  }

  /** Finds the '>' closing the tag at buf[start], outside quoted values; -1 if not there yet. */
  private scanTag(): number {
    const buf = this.buf;
    let i = this.start + Math.max(1, this.scanPos);
    let q = this.scanQuote;
    const end = this.end;
    while (i < end) {
      const c = buf[i];
      if (q !== 0) {
        if (c === q) q = 0;
        else if (c === LT) throw new Fail("not-well-formed", "'<' in an attribute value");
      } else if (c === GT) {
        return i;
      } else if (c === QUOT || c === APOS) {
        q = c;
      } else if (c === LT) {
        throw new Fail("not-well-formed", "'<' inside a tag");
      }
      i++;
    }
    this.scanPos = i - this.start;
    this.scanQuote = q;
    return -1;
  }

  private bang(): boolean {
    const buf = this.buf;
    const s = this.start;
    if (this.end - s < 3) return false;
    const b2 = buf[s + 2];
    if (b2 === 0x2d) throw new Fail("restricted-xml", "comments are not allowed in XMPP (RFC 6120 §11.1)");
    if (b2 === 0x44 || b2 === 0x64) throw new Fail("restricted-xml", "DTDs are not allowed in XMPP (RFC 6120 §11.1)");
    if (b2 !== 0x5b) throw new Fail("not-well-formed", "markup declarations are not allowed");
    // <![CDATA[ ... ]]>
    if (this.end - s < 9) return false;
    if (buf.toString("latin1", s, s + 9) !== "<![CDATA[") throw new Fail("not-well-formed", "bad CDATA section");
    if (this.stack.length === 0) throw new Fail("not-well-formed", "CDATA section outside an element");
    const from = Math.max(s + 9, s + this.scanPos - 2);
    const close = buf.indexOf("]]>", from, "latin1");
    if (close === -1 || close + 3 > this.end) {
      this.scanPos = this.end - s;
      return false;
    }
    if (this.consumed + close + 3 - this.stanzaStartAbs > this.maxStanzaSize) {
      throw new Fail("policy-violation", `stanza larger than ${this.maxStanzaSize} bytes`);
    }
    const str = this.decodeCData(s + 9, close);
    if (str.length > 0) appendText(this.stack[this.stack.length - 1].el, str);
    this.consume(close + 3 - s);
    return true;
  }

  private decodeCData(s: number, e: number): string {
    const flags = this.scanRun(s, e, RUN_CDATA);
    const raw = this.runString(s, e, flags);
    return flags & RUN_SPECIAL ? raw.replace(/\r\n?/g, "\n") : raw;
  }

  private processingInstruction(): boolean {
    const buf = this.buf;
    const s = this.start;
    // Only the XML declaration, only first in the stream, is allowed (RFC 6120 §11.1, §11.5).
    if (this.end - s < 6) return false;
    const target = buf.toString("latin1", s + 2, s + 6);
    const isDecl = target === "xml " || target === "xml\t" || target === "xml\n" || target === "xml\r";
    if (!isDecl) throw new Fail("restricted-xml", "processing instructions are not allowed in XMPP (RFC 6120 §11.1)");
    if (this.state !== "prolog" || this.sawXmlDecl || this.consumed + s - this.streamStartAbs > 3) {
      throw new Fail("not-well-formed", "the XML declaration must come first");
    }
    const close = buf.indexOf("?>", s + Math.max(2, this.scanPos - 1), "latin1");
    if (close === -1 || close + 2 > this.end) {
      this.scanPos = this.end - s;
      return false;
    }
    const decl = buf.toString("latin1", s + 5, close);
    const m = /^\s+version\s*=\s*(["'])1\.[0-9]+\1(?:\s+encoding\s*=\s*(["'])([A-Za-z][A-Za-z0-9._-]*)\2)?(?:\s+standalone\s*=\s*(["'])(?:yes|no)\4)?\s*$/.exec(decl);
    if (!m) throw new Fail("not-well-formed", "malformed XML declaration");
    if (m[3] !== undefined && m[3].toUpperCase() !== "UTF-8") {
      throw new Fail("unsupported-encoding", `encoding ${m[3]} is not supported; XMPP uses UTF-8`);
    }
    this.sawXmlDecl = true;
    this.consume(close + 2 - s);
    return true;
  }

  // ---- tags -----------------------------------------------------------------------------

  /** Parses a start tag in buf[s, gt) where s is just after '<'. */
  private startTag(s: number, gt: number): void {
    const buf = this.buf;
    if (this.state === "ended") throw new Fail("not-well-formed", "content after the end of the stream");
    let selfClosing = false;
    let e = gt;
    if (buf[e - 1] === SLASH) {
      selfClosing = true;
      e--;
    }
    let i = this.readName(s, e);
    const name = this.nameAt(s, i);
    const attrs: Record<string, string> = {};
    let decls: Map<string, string> | null = null;
    let prefixedAttrs: string[] | null = null;
    while (i < e) {
      const ws = i;
      while (i < e && isSpace(buf[i])) i++;
      if (i === e) break;
      if (i === ws) throw new Fail("not-well-formed", "attributes must be separated by whitespace");
      const ns = i;
      i = this.readName(i, e);
      const an = this.nameAt(ns, i);
      while (i < e && isSpace(buf[i])) i++;
      if (buf[i] !== EQ) throw new Fail("not-well-formed", `attribute ${an} has no value`);
      i++;
      while (i < e && isSpace(buf[i])) i++;
      const q = buf[i];
      if (q !== QUOT && q !== APOS) throw new Fail("not-well-formed", `attribute ${an} value is not quoted`);
      const vs = i + 1;
      const ve = buf.indexOf(q, vs);
      if (ve === -1 || ve >= e) throw new Fail("not-well-formed", `attribute ${an} value is not closed`);
      i = ve + 1;
      if (Object.prototype.hasOwnProperty.call(attrs, an)) throw new Fail("not-well-formed", `duplicate attribute ${an}`);
      const value = this.decodeAttr(vs, ve);
      attrs[an] = value;
      if (an === "xmlns" || an.startsWith("xmlns:")) {
        const prefix = an === "xmlns" ? "" : an.slice(6);
        checkDeclaration(prefix, value);
        (decls ??= new Map()).set(prefix, value);
      } else if (an.includes(":")) {
        (prefixedAttrs ??= []).push(an);
      }
    }
    if (name.startsWith("xmlns:") || name === "xmlns") throw new Fail("not-well-formed", "element named xmlns");
    const depth = this.stack.length;
    if (this.state === "prolog") {
      this.streamHeader(name, attrs, decls);
      if (selfClosing) throw new Fail("not-well-formed", "self-closed stream header");
      return;
    }
    if (depth + 1 > this.maxDepth) throw new Fail("policy-violation", `elements nested deeper than ${this.maxDepth}`);
    const el = new Element(name, attrs);
    const open: OpenElement = { el, decls };
    if (depth === 0) {
      this.stanzaStartAbs = this.consumed + s - 1;
      this.usedHeaderPrefixes = null;
    }
    // Namespace well-formedness: every prefix used must be bound in scope.
    const colon = name.indexOf(":");
    if (colon > 0) this.resolvePrefix(name.slice(0, colon), decls);
    if (prefixedAttrs) {
      for (const an of prefixedAttrs) {
        const p = an.slice(0, an.indexOf(":"));
        if (p !== "xml") this.resolvePrefix(p, decls);
      }
      checkExpandedDuplicates(prefixedAttrs, (p) => (p === "xml" ? XML_NS : this.lookup(p, decls)));
    }
    if (depth === 0) {
      // Self-contained stanza: carry the stream's default namespace (RFC 6120 §4.8.3).
      if (attrs.xmlns === undefined && colon < 0) {
        const dflt = this.headerDecls.get("");
        if (dflt !== undefined) el.attrs.xmlns = dflt;
      }
    } else {
      const parent = this.stack[depth - 1].el;
      el.parent = parent;
      parent.children.push(el);
    }
    if (selfClosing) {
      this.closeElement(el, depth);
    } else {
      this.stack.push(open);
    }
  }

  private endTag(s: number, gt: number): void {
    const buf = this.buf;
    let e = gt;
    while (e > s && isSpace(buf[e - 1])) e--;
    const ne = this.readName(s, e);
    if (ne !== e) throw new Fail("not-well-formed", "malformed end tag");
    const name = this.nameAt(s, e);
    const depth = this.stack.length;
    if (depth === 0) {
      if (this.state === "stream" && name === this.headerName) {
        this.state = "ended";
        this.ready = { kind: "end" };
        return;
      }
      throw new Fail("not-well-formed", `unexpected end tag </${name}>`);
    }
    const top = this.stack[depth - 1];
    if (top.el.name !== name) throw new Fail("not-well-formed", `end tag </${name}> does not match <${top.el.name}>`);
    this.stack.pop();
    this.closeElement(top.el, depth - 1);
  }

  private headerName = "";
  private tagEndAbs = 0;
  // What a tag produced, handed to the handlers only once its bytes are consumed, so a handler
  // may call reset() (STARTTLS, SASL success) from inside the callback.
  private ready: { kind: "header"; header: StreamHeader } | { kind: "stanza"; el: Element } | { kind: "end" } | null = null;

  private emit(): void {
    const r = this.ready;
    if (r === null) return;
    this.ready = null;
    if (r.kind === "stanza") this.handlers.stanza(r.el);
    else if (r.kind === "header") this.handlers.streamStart(r.header);
    else this.handlers.streamEnd();
  }

  private streamHeader(name: string, attrs: Record<string, string>, decls: Map<string, string> | null): void {
    const colon = name.indexOf(":");
    const prefix = colon > 0 ? name.slice(0, colon) : "";
    const local = colon > 0 ? name.slice(colon + 1) : name;
    const ns = decls?.get(prefix);
    if (ns === undefined && prefix !== "") throw new Fail("not-well-formed", `unbound prefix ${prefix}`);
    if (local !== "stream" || ns !== STREAM_NS) {
      throw new Fail("invalid-namespace", `the stream element must be <stream> in ${STREAM_NS}`);
    }
    this.headerName = name;
    this.headerDecls = sharedDecls(decls);
    this.state = "stream";
    this.ready = { kind: "header", header: { name, attrs, defaultNs: this.headerDecls.get("") } };
  }

  private closeElement(el: Element, depth: number): void {
    if (depth !== 0) return;
    if (this.usedHeaderPrefixes) {
      for (const p of this.usedHeaderPrefixes) {
        const key = "xmlns:" + p;
        if (el.attrs[key] === undefined) el.attrs[key] = this.headerDecls.get(p)!;
      }
    }
    if (this.tagEndAbs - this.stanzaStartAbs > this.maxStanzaSize) {
      throw new Fail("policy-violation", `stanza larger than ${this.maxStanzaSize} bytes`);
    }
    this.stanzaStartAbs = -1;
    this.ready = { kind: "stanza", el };
  }

  private lookup(prefix: string, own: Map<string, string> | null): string | undefined {
    const v = own?.get(prefix);
    if (v !== undefined) return v;
    for (let i = this.stack.length - 1; i >= 0; i--) {
      const d = this.stack[i].decls?.get(prefix);
      if (d !== undefined) return d;
    }
    return this.headerDecls.get(prefix);
  }

  private resolvePrefix(prefix: string, own: Map<string, string> | null): void {
    if (prefix === "xml") return;
    if (own?.has(prefix)) return;
    for (let i = this.stack.length - 1; i >= 0; i--) {
      if (this.stack[i].decls?.has(prefix)) return;
    }
    if (this.headerDecls.has(prefix)) {
      (this.usedHeaderPrefixes ??= new Set()).add(prefix);
      return;
    }
    throw new Fail("not-well-formed", `unbound namespace prefix ${prefix}`);
  }

  /** Reads an XML Name starting at i; returns the index after it. */
  private readName(i: number, e: number): number {
    const buf = this.buf;
    const s = i;
    let high = false;
    let colons = 0;
    while (i < e) {
      const c = buf[i];
      if (c < 0x80) {
        const k = NAME_BYTE[c];
        if (k === 0 || (i === s && k !== 3)) break;
        if (c === COLON) colons++;
      } else {
        high = true;
      }
      i++;
    }
    if (i === s) throw new Fail("not-well-formed", "a name was expected");
    if (colons > 1 || buf[s] === COLON || buf[i - 1] === COLON) throw new Fail("not-well-formed", "malformed qualified name");
    if (high) {
      const sub = buf.subarray(s, i);
      if (!isUtf8(sub) || !NAME_RE.test(sub.toString("utf8"))) throw new Fail("not-well-formed", "invalid character in a name");
    }
    return i;
  }

  private nameAt(s: number, e: number): string {
    return this.buf.toString("utf8", s, e);
  }

  /** Attribute value normalisation (XML §3.3.3): entities decoded, literal whitespace to spaces. */
  private decodeAttr(s: number, e: number): string {
    const flags = this.scanRun(s, e, RUN_ATTR);
    const raw = this.runString(s, e, flags);
    return flags & RUN_SPECIAL ? decodeEntities(raw.replace(/\r\n|[\r\n\t]/g, " ")) : raw;
  }
}

function appendText(el: Element, str: string): void {
  const last = el.children.length - 1;
  if (last >= 0 && typeof el.children[last] === "string") el.children[last] += str;
  else el.children.push(str);
}

function decodeEntities(s: string): string {
  if (s.indexOf("&") === -1) return s;
  let out = "";
  let pos = 0;
  for (;;) {
    const amp = s.indexOf("&", pos);
    if (amp === -1) return out + s.slice(pos);
    const semi = s.indexOf(";", amp + 1);
    if (semi === -1) throw new Fail("not-well-formed", "unterminated entity reference");
    out += s.slice(pos, amp);
    const ref = s.slice(amp + 1, semi);
    if (ref.charCodeAt(0) === 0x23 /* # */) {
      const hex = ref.charCodeAt(1) === 0x78; /* x */
      const digits = ref.slice(hex ? 2 : 1);
      if (digits.length === 0 || digits.length > 8 || !(hex ? /^[0-9A-Fa-f]+$/ : /^[0-9]+$/).test(digits)) {
        throw new Fail("not-well-formed", `malformed character reference &${ref};`);
      }
      const cp = parseInt(digits, hex ? 16 : 10);
      if (!isXmlChar(cp)) throw new Fail("not-well-formed", `character reference to an illegal character &${ref};`);
      out += String.fromCodePoint(cp);
    } else {
      const v = PREDEFINED[ref];
      if (v === undefined) {
        if (/^[A-Za-z_:][-A-Za-z0-9._:]*$/.test(ref) || NAME_RE.test(ref)) {
          throw new Fail("restricted-xml", `entity references are not allowed in XMPP (&${ref};)`);
        }
        throw new Fail("not-well-formed", "malformed entity reference");
      }
      out += v;
    }
    pos = semi + 1;
  }
}

function checkDeclaration(prefix: string, uri: string): void {
  // Namespaces in XML 1.0 §3: the reserved prefixes and names.
  if (prefix === "xmlns") throw new Fail("not-well-formed", "the xmlns prefix must not be declared");
  if (prefix === "xml") {
    if (uri !== XML_NS) throw new Fail("not-well-formed", "the xml prefix is bound to its own namespace");
    return;
  }
  if (uri === XML_NS || uri === "http://www.w3.org/2000/xmlns/") throw new Fail("not-well-formed", "reserved namespace name");
  if (prefix !== "" && uri === "") throw new Fail("not-well-formed", `prefix ${prefix} declared empty`);
}

function checkExpandedDuplicates(
  prefixed: string[],
  resolve: (prefix: string) => string | undefined,
): void {
  // Namespaces in XML 1.0 §6.3: no two attributes with the same expanded name.
  if (prefixed.length < 2) return;
  const seen = new Set<string>();
  for (const an of prefixed) {
    const colon = an.indexOf(":");
    const key = `${resolve(an.slice(0, colon))}|${an.slice(colon + 1)}`;
    if (seen.has(key)) throw new Fail("not-well-formed", `duplicate attribute ${an}`);
    seen.add(key);
  }
}
