// A minimal scanner for the load generator: cuts an incoming XMPP stream (RFC 6120 §4) into its
// stream header, its top-level elements and its end, without building a tree. The generator
// only needs a handful of things from a server (stream features, <proceed/>, SASL challenge and
// success, the bind result, message bodies), and a full XML parser on the hot path would make the
// generator, not the server, the thing being measured.
//
// What it relies on, which every XMPP server here satisfies: the server escapes '>' inside
// attribute values (or never puts one there), and a top-level element's name only reappears
// inside it as a properly nested element of the same name (a <message/> forwarded inside a
// <message/>). Anything else the scanner does not understand is skipped, never guessed at.

/** One thing found at the top level of the stream. */
export type TopLevel =
  | { kind: "open"; /** the <stream:stream ...> start tag */ tag: string }
  | { kind: "close" }
  | { kind: "element"; name: string; /** the start tag, '<' to '>' */ tag: string; /** the whole element */ raw: string };

/** Buffered bytes beyond which a server that never completes an element is given up on. */
export const MAX_PENDING_CHARS = 4 * 1024 * 1024;

const NAME_END = /[\s/>]/;

export class StreamScanner {
  private buf = "";
  private pos = 0;

  /** Appends text received from the server. Throws if an element grows past MAX_PENDING_CHARS. */
  push(text: string): void {
    if (this.pos > 0 && this.pos >= this.buf.length) {
      this.buf = text;
      this.pos = 0;
    } else {
      if (this.pos > 65536) {
        this.buf = this.buf.slice(this.pos);
        this.pos = 0;
      }
      this.buf += text;
    }
    if (this.buf.length - this.pos > MAX_PENDING_CHARS) throw new Error("the server sent an element larger than the scanner accepts");
  }

  /** Forgets everything buffered: after STARTTLS and SASL success the old stream is gone. */
  reset(): void {
    this.buf = "";
    this.pos = 0;
  }

  /** The next complete top-level item, or null when more text is needed. */
  next(): TopLevel | null {
    const buf = this.buf;
    // Bounded by the buffer: every pass either returns or moves pos forward.
    while (this.pos < buf.length) {
      const lt = buf.indexOf("<", this.pos);
      if (lt < 0) {
        this.pos = buf.length; // whitespace keepalives, or text the generator has no use for
        return null;
      }
      this.pos = lt;
      const second = buf.charCodeAt(lt + 1);
      if (Number.isNaN(second)) return null;
      if (second === 63 /* ? */ || second === 33 /* ! */) {
        const end = buf.indexOf(second === 63 ? "?>" : ">", lt + 2);
        if (end < 0) return null;
        this.pos = end + (second === 63 ? 2 : 1);
        continue;
      }
      if (second === 47 /* / */) {
        const end = buf.indexOf(">", lt + 2);
        if (end < 0) return null;
        this.pos = end + 1;
        const name = buf.slice(lt + 2, end).trim();
        if (name === "stream:stream" || name.endsWith(":stream") || name === "stream") return { kind: "close" };
        continue; // a stray end tag: nothing to report
      }
      const tagEnd = buf.indexOf(">", lt + 1);
      if (tagEnd < 0) return null;
      const name = elementName(buf, lt + 1, tagEnd);
      const tag = buf.slice(lt, tagEnd + 1);
      const selfClosing = buf.charCodeAt(tagEnd - 1) === 47;
      if (!selfClosing && (name === "stream:stream" || name.endsWith(":stream"))) {
        this.pos = tagEnd + 1;
        return { kind: "open", tag };
      }
      if (selfClosing) {
        this.pos = tagEnd + 1;
        return { kind: "element", name, tag, raw: tag };
      }
      const end = findElementEnd(buf, name, tagEnd + 1);
      if (end < 0) return null;
      this.pos = end;
      return { kind: "element", name, tag, raw: buf.slice(lt, end) };
    }
    return null;
  }
}

function elementName(buf: string, from: number, tagEnd: number): string {
  let i = from;
  while (i < tagEnd && !NAME_END.test(buf[i])) i++;
  return buf.slice(from, i);
}

/** Index just past the end tag matching an element named `name` whose content starts at `from`; -1 if not yet received. */
function findElementEnd(buf: string, name: string, from: number): number {
  const open = `<${name}`;
  const close = `</${name}`;
  let depth = 1;
  let p = from;
  // Each pass moves p forward; depth is bounded by the number of tags in the buffer.
  while (p < buf.length) {
    const c = buf.indexOf(close, p);
    if (c < 0) return -1;
    let o = buf.indexOf(open, p);
    while (o >= 0 && o < c && !NAME_END.test(buf[o + open.length] ?? "")) o = buf.indexOf(open, o + 1);
    if (o >= 0 && o < c) {
      const innerEnd = buf.indexOf(">", o);
      if (innerEnd < 0) return -1;
      if (buf.charCodeAt(innerEnd - 1) !== 47) depth++;
      p = innerEnd + 1;
      continue;
    }
    const gt = buf.indexOf(">", c);
    if (gt < 0) return -1;
    if (!NAME_END.test(buf[c + close.length] ?? "")) {
      p = c + close.length;
      continue;
    }
    depth--;
    p = gt + 1;
    if (depth === 0) return p;
  }
  return -1;
}

/** The value of attribute `name` in a start tag (either quote style), unescaped; undefined if absent. */
export function attribute(tag: string, name: string): string | undefined {
  let from = 0;
  // Bounded by the tag's length: every pass moves `from` forward.
  while (from < tag.length) {
    const at = tag.indexOf(name, from);
    if (at < 0) return undefined;
    from = at + name.length;
    const before = tag.charCodeAt(at - 1);
    if (before !== 32 && before !== 9 && before !== 10 && before !== 13) continue;
    let i = at + name.length;
    while (tag[i] === " ") i++;
    if (tag[i] !== "=") continue;
    i++;
    while (tag[i] === " ") i++;
    const quote = tag[i];
    if (quote !== "'" && quote !== '"') continue;
    const end = tag.indexOf(quote, i + 1);
    if (end < 0) return undefined;
    return unescapeXml(tag.slice(i + 1, end));
  }
  return undefined;
}

/** The text of the first child element named `name` inside `raw` (any prefix-free name), unescaped. */
export function childText(raw: string, name: string): string | undefined {
  const open = `<${name}`;
  let at = raw.indexOf(open, 1);
  // Skip longer names that merely start with `name` (<bodyx>); bounded by raw's length.
  while (at >= 0 && !NAME_END.test(raw[at + open.length] ?? "")) at = raw.indexOf(open, at + 1);
  if (at < 0) return undefined;
  const tagEnd = raw.indexOf(">", at);
  if (tagEnd < 0) return undefined;
  if (raw.charCodeAt(tagEnd - 1) === 47) return "";
  const end = raw.indexOf(`</${name}>`, tagEnd);
  if (end < 0) return undefined;
  return unescapeXml(raw.slice(tagEnd + 1, end));
}

const ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

export function unescapeXml(text: string): string {
  if (!text.includes("&")) return text;
  return text.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|amp|lt|gt|quot|apos);/g, (_, e: string) =>
    e[0] === "#" ? String.fromCodePoint(e[1] === "x" ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10)) : ENTITIES[e],
  );
}

export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&${c === "&" ? "amp" : c === "<" ? "lt" : c === ">" ? "gt" : c === '"' ? "quot" : "apos"};`);
}
