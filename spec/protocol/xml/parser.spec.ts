import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { XmlStreamParser, type StreamHeader, type XmlStreamErrorInfo, type StreamParserOptions } from "../../../protocol/xml/parser.ts";
import { serialize } from "../../../protocol/xml/serialize.ts";
import { Element, xml } from "../../../protocol/xml/element.ts";

const HEADER =
  "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>";

interface Run {
  headers: StreamHeader[];
  stanzas: Element[];
  ended: boolean;
  errors: XmlStreamErrorInfo[];
  parser: XmlStreamParser;
}

function run(chunks: Array<string | Uint8Array>, opts?: StreamParserOptions): Run {
  const r: Run = { headers: [], stanzas: [], ended: false, errors: [], parser: undefined as unknown as XmlStreamParser };
  r.parser = new XmlStreamParser(
    {
      streamStart: (h) => r.headers.push(h),
      stanza: (el) => r.stanzas.push(el),
      streamEnd: () => (r.ended = true),
      error: (e) => r.errors.push(e),
    },
    opts,
  );
  for (const c of chunks) r.parser.write(c);
  return r;
}

function errorOf(input: string, opts?: StreamParserOptions): string | undefined {
  const r = run([HEADER + input], opts);
  assert.ok(r.errors.length <= 1, "at most one error is reported");
  return r.errors[0]?.condition;
}

/** Splits bytes at the given offsets. */
function split(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(bytes.subarray(prev, p));
    prev = p;
  }
  out.push(bytes.subarray(prev));
  return out;
}

describe("stream structure", () => {
  test("reports the header, each stanza and the end of the stream", () => {
    const r = run([HEADER + "<message to='juliet@example.com'><body>hi</body></message> <presence/></stream:stream>"]);
    assert.deepEqual(r.errors, []);
    assert.equal(r.headers.length, 1);
    assert.equal(r.headers[0].defaultNs, "jabber:client");
    assert.equal(r.headers[0].attrs.to, "example.com");
    assert.equal(r.stanzas.length, 2);
    assert.equal(r.stanzas[0].getChildText("body"), "hi");
    assert.equal(r.stanzas[1].name, "presence");
    assert.ok(r.ended);
  });

  test("stanzas carry the stream's default namespace and the prefixes they use", () => {
    const r = run([HEADER + "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features><iq type='get' id='1'/>"]);
    assert.deepEqual(r.errors, []);
    const [features, iq] = r.stanzas;
    assert.equal(features.getNS(), "http://etherx.jabber.org/streams");
    assert.equal(features.attrs.xmlns, undefined, "a prefixed element gets no default namespace");
    assert.equal(iq.getNS(), "jabber:client");
    assert.equal(features.getChild("bind")?.getNS(), "urn:ietf:params:xml:ns:xmpp-bind");
    assert.equal(iq.parent, null);
  });

  test("whitespace keepalives between stanzas are accepted and produce nothing", () => {
    const r = run([HEADER, " ", "\n\t ", "<presence/>", "   "]);
    assert.deepEqual(r.errors, []);
    assert.equal(r.stanzas.length, 1);
  });

  test("text between stanzas is bad-format", () => {
    assert.equal(errorOf("<presence/>hello"), "bad-format");
  });

  test("a stream element in the wrong namespace is invalid-namespace", () => {
    const r = run(["<stream:stream xmlns:stream='urn:wrong' xmlns='jabber:client'>"]);
    assert.equal(r.errors[0]?.condition, "invalid-namespace");
    const r2 = run(["<stream xmlns='jabber:client'>"]);
    assert.equal(r2.errors[0]?.condition, "invalid-namespace");
  });

  test("reset() from inside a handler starts a new stream and drops what followed", () => {
    const seen: string[] = [];
    const parser: XmlStreamParser = new XmlStreamParser({
      streamStart: (h) => seen.push("header:" + h.attrs.to),
      stanza: (el) => {
        seen.push(el.name);
        if (el.name === "starttls") parser.reset();
      },
      streamEnd: () => seen.push("end"),
      error: (e) => seen.push("error:" + e.condition),
    });
    // Bytes pipelined after <starttls/> on the plaintext stream must never be processed.
    parser.write(HEADER + "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><message><body>injected</body></message>");
    parser.write(HEADER.replace("example.com", "second.example") + "<presence/>");
    assert.deepEqual(seen, ["header:example.com", "starttls", "header:second.example", "presence"]);
  });

  test("an XML declaration with another encoding is unsupported-encoding", () => {
    const r = run(["<?xml version='1.0' encoding='ISO-8859-1'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams'>"]);
    assert.equal(r.errors[0]?.condition, "unsupported-encoding");
  });

  test("content after the end of the stream is not-well-formed", () => {
    assert.equal(errorOf("</stream:stream><message/>"), "not-well-formed");
  });
});

describe("the caller's chunks", () => {
  test("a chunk the caller reuses after write() does not change what is parsed (pending bytes are copied)", () => {
    const text = `${HEADER}<message to='a@b'><body>first half|second half</body></message><presence/>`;
    const whole = Buffer.from(text);
    const cut = whole.indexOf("|");
    // One buffer, like a transport's reused read buffer: filled, written, then overwritten.
    const shared = Buffer.alloc(whole.length);
    const stanzas: Element[] = [];
    const parser = new XmlStreamParser({ streamStart() {}, stanza: (el) => stanzas.push(el), streamEnd() {}, error: (e) => assert.fail(e.text) });
    whole.copy(shared, 0, 0, cut);
    parser.write(shared.subarray(0, cut));
    shared.fill(0x78); // "xxxx..." over what the parser still needs
    whole.copy(shared, 0, cut);
    parser.write(shared.subarray(0, whole.length - cut));
    assert.equal(stanzas.length, 2);
    assert.equal(stanzas[0].getChildText("body"), "first half|second half");
  });
});

describe("character data", () => {
  test("predefined entities and character references are decoded; CDATA is text", () => {
    const r = run([HEADER + "<message><body>&lt;b&gt; &amp; &quot;&apos; &#x1F600;&#65;<![CDATA[<raw & text>]]></body></message>"]);
    assert.deepEqual(r.errors, []);
    assert.equal(r.stanzas[0].getChildText("body"), "<b> & \"' \u{1F600}A<raw & text>");
  });

  test("attribute values are normalised and decoded", () => {
    const r = run([HEADER + "<message id='a\tb\nc&#10;d&amp;' to=\"x&apos;y\"/>"]);
    assert.deepEqual(r.errors, []);
    assert.equal(r.stanzas[0].attrs.id, "a b c\nd&");
    assert.equal(r.stanzas[0].attrs.to, "x'y");
  });

  test("line ends in text are normalised to \\n", () => {
    const r = run([HEADER + "<message><body>a\r\nb\rc</body></message>"]);
    assert.equal(r.stanzas[0].getChildText("body"), "a\nb\nc");
  });
});

describe("restricted XML (RFC 6120 §11.1)", () => {
  for (const [what, input] of [
    ["a comment", "<message><!-- hi --></message>"],
    ["a processing instruction", "<?php echo 1; ?>"],
    ["a DOCTYPE", "<!DOCTYPE foo [<!ENTITY a 'b'>]>"],
    ["an unknown entity", "<message><body>&nbsp;</body></message>"],
    ["an entity in an attribute", "<message id='&foo;'/>"],
  ] as const) {
    test(`${what} is restricted-xml`, () => assert.equal(errorOf(input), "restricted-xml"));
  }

  test("a comment before the stream header is restricted-xml", () => {
    const r = run(["<!-- x --><stream:stream xmlns:stream='http://etherx.jabber.org/streams'>"]);
    assert.equal(r.errors[0]?.condition, "restricted-xml");
  });

  test("billion laughs is refused at the DTD, expanding nothing", () => {
    const lol =
      "<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>" +
      Array.from({ length: 9 }, (_, i) => `<!ENTITY lol${i + 1} '${`&lol${i || ""};`.repeat(10)}'>`).join("") +
      "]><stream:stream xmlns:stream='http://etherx.jabber.org/streams'><message>&lol9;</message>";
    const r = run([lol]);
    assert.equal(r.errors[0]?.condition, "restricted-xml");
    assert.equal(r.stanzas.length, 0);
  });
});

describe("not-well-formed", () => {
  for (const [what, input] of [
    ["mismatched end tag", "<message><body></message>"],
    ["unbound prefix", "<foo:message/>"],
    ["unbound attribute prefix", "<message foo:bar='1'/>"],
    ["duplicate attribute", "<message id='1' id='2'/>"],
    ["duplicate expanded attribute", "<message xmlns:a='urn:x' xmlns:b='urn:x' a:q='1' b:q='2'/>"],
    ["unquoted attribute", "<message id=1/>"],
    ["'<' in attribute value", "<message id='<'/>"],
    ["NUL character", "<message><body>a\u0000b</body></message>"],
    ["control character", "<message><body>\u0001</body></message>"],
    ["reference to an illegal character", "<message><body>&#0;</body></message>"],
    ["U+FFFF", "<message><body>\uffff</body></message>"],
    ["bare ampersand", "<message><body>a & b</body></message>"],
    ["']]>' in text", "<message><body>a]]>b</body></message>"],
    ["name starting with a digit", "<1message/>"],
    ["two colons in a name", "<a:b:c xmlns:a='urn:x'/>"],
    ["stray end tag", "</message>"],
    ["declaring the xmlns prefix", "<message xmlns:xmlns='urn:x'/>"],
    ["XML declaration in the middle", "<?xml version='1.0'?>"],
  ] as const) {
    test(what, () => assert.equal(errorOf(input), "not-well-formed"));
  }

  test("invalid UTF-8 is not-well-formed", () => {
    const r = run([HEADER, Buffer.from([0x3c, 0x6d, 0x3e, 0xc3, 0x28, 0x3c, 0x2f, 0x6d, 0x3e])]);
    assert.equal(r.errors[0]?.condition, "not-well-formed");
    const overlong = run([HEADER, Buffer.from("<m>"), Buffer.from([0xc0, 0xaf]), Buffer.from("</m>")]);
    assert.equal(overlong.errors[0]?.condition, "not-well-formed");
  });

  test("after an error the parser ignores further input", () => {
    const r = run([HEADER + "<a><b></a>", "<presence/>", "<message/>"]);
    assert.equal(r.errors.length, 1);
    assert.equal(r.stanzas.length, 0);
    assert.ok(r.parser.failed);
  });
});

describe("limits", () => {
  test("a stanza over the size limit is policy-violation, even in one chunk", () => {
    const body = "x".repeat(2000);
    assert.equal(errorOf(`<message><body>${body}</body></message>`, { maxStanzaSize: 1024 }), "policy-violation");
    assert.equal(errorOf(`<message><body>${body}</body></message>`, { maxStanzaSize: 4096 }), undefined);
    assert.equal(errorOf(`<message><body><![CDATA[${body}]]></body></message>`, { maxStanzaSize: 1024 }), "policy-violation");
    assert.equal(errorOf(`<message><body/>${"<x/>".repeat(500)}</message>`, { maxStanzaSize: 1024 }), "policy-violation");
  });

  test("a huge stanza is refused before it reaches memory", () => {
    const seen: XmlStreamErrorInfo[] = [];
    const parser = new XmlStreamParser(
      { streamStart() {}, stanza() {}, streamEnd() {}, error: (e) => seen.push(e) },
      { maxStanzaSize: 256 * 1024 },
    );
    parser.write(HEADER + "<message><body>");
    const chunk = Buffer.alloc(64 * 1024, "a");
    let sent = 0;
    // Up to 1 GiB would follow; the parser must give up a chunk or so past the limit.
    while (seen.length === 0 && sent < 1024 * 1024 * 1024) {
      parser.write(chunk);
      sent += chunk.length;
    }
    assert.equal(seen[0]?.condition, "policy-violation");
    assert.ok(sent <= 256 * 1024 + chunk.length, `stopped after ${sent} bytes`);
  });

  test("a huge attribute value or tag is refused while it is still arriving", () => {
    const seen: XmlStreamErrorInfo[] = [];
    const parser = new XmlStreamParser(
      { streamStart() {}, stanza() {}, streamEnd() {}, error: (e) => seen.push(e) },
      { maxStanzaSize: 8192 },
    );
    parser.write(HEADER + "<message id='");
    let sent = 0;
    while (seen.length === 0 && sent < 1_000_000) {
      parser.write("a".repeat(100));
      sent += 100;
    }
    assert.equal(seen[0]?.condition, "policy-violation");
    assert.ok(sent <= 8192 + 100);
  });

  test("an oversized stream header is policy-violation", () => {
    const r = run([`<stream:stream xmlns:stream='http://etherx.jabber.org/streams' a='${"x".repeat(5000)}'>`], { maxStanzaSize: 1024 });
    assert.equal(r.errors[0]?.condition, "policy-violation");
  });

  test("nesting deeper than the limit is policy-violation", () => {
    const deep = (n: number) => "<a>".repeat(n) + "</a>".repeat(n);
    assert.equal(errorOf(deep(10), { maxDepth: 10 }), undefined);
    assert.equal(errorOf(deep(11), { maxDepth: 10 }), "policy-violation");
    assert.equal(errorOf(deep(100_000)), "policy-violation");
  });
});

// ---- properties -------------------------------------------------------------------------

const nameArb = fc.stringMatching(/^[a-z][a-z0-9_-]{0,8}$/);
const legalChar = fc
  .integer({ min: 0x20, max: 0x10ffff })
  .filter((cp) => (cp < 0xd800 || cp > 0xdfff) && cp !== 0xfffe && cp !== 0xffff)
  .map((cp) => String.fromCodePoint(cp));
const textArb = fc.string({ unit: fc.oneof(fc.constantFrom("<", ">", "&", "'", '"', "\n", "\r", "\t", " ", "]", "é", "\u{1F600}", "中"), legalChar) });
const attrsArb = fc.dictionary(nameArb, textArb, { maxKeys: 3 });
function elementArb(depth: number): fc.Arbitrary<Element> {
  const child: fc.Arbitrary<Element | string> =
    depth <= 0 ? textArb.filter((t) => t.length > 0) : fc.oneof(textArb.filter((t) => t.length > 0), elementArb(depth - 1));
  return fc.tuple(nameArb, attrsArb, fc.array(child, { maxLength: 4 })).map(([name, attrs, children]) => {
    const e = new Element(name, attrs);
    for (const c of children) {
      if (typeof c === "string") {
        const last = e.children.length - 1;
        if (last >= 0 && typeof e.children[last] === "string") e.children[last] += c;
        else e.children.push(c);
      } else {
        c.parent = e;
        e.children.push(c);
      }
    }
    return e;
  });
}

function plain(el: Element | string): unknown {
  if (typeof el === "string") return el;
  return { name: el.name, attrs: { ...el.attrs }, children: el.children.map(plain) };
}

describe("properties", () => {
  test("serialise then parse gives back the same element (round trip)", () => {
    fc.assert(
      fc.property(elementArb(3), (el) => {
        el.attrs.xmlns = "jabber:client";
        const r = run([HEADER + serialize(el)]);
        assert.deepEqual(r.errors, []);
        assert.equal(r.stanzas.length, 1);
        assert.deepEqual(plain(r.stanzas[0]), plain(el));
      }),
      { numRuns: 300 },
    );
  });

  test("any chunking of the bytes gives the same stanzas", () => {
    const doc = Buffer.from(
      HEADER +
        "<message to='a@b' id='&amp;x'><body>héllo &lt;wörld&gt; \u{1F600} 中文 &#x1F600;</body><x xmlns='urn:x' a='é'/></message>" +
        "<iq type='get'><q xmlns='jabber:iq:roster'/></iq>" +
        "<presence><status><![CDATA[a]]b<c>]]></status></presence></stream:stream>",
    );
    const whole = run([doc]);
    assert.deepEqual(whole.errors, []);
    const expected = whole.stanzas.map(plain);
    assert.equal(expected.length, 3);
    fc.assert(
      fc.property(fc.array(fc.nat(), { maxLength: 40 }), (cuts) => {
        const r = run(split(doc, cuts));
        assert.deepEqual(r.errors, []);
        assert.deepEqual(r.stanzas.map(plain), expected);
        assert.ok(r.ended);
      }),
      { numRuns: 500 },
    );
  });

  test("one byte at a time gives the same stanzas", () => {
    const doc = Buffer.from(HEADER + "<message><body>\u{1F600}&amp;&#233;</body></message>");
    const r = run([...doc].map((b) => Uint8Array.of(b)));
    assert.deepEqual(r.errors, []);
    assert.equal(r.stanzas[0].getChildText("body"), "\u{1F600}&é");
  });

  test("random garbage never throws: it parses or gives one stream error", () => {
    const pieces = fc.constantFrom("<", ">", "/", "'", '"', "=", "&", ";", "#", "x", "a:", "!", "?", "[", "]", "-", " ", "\u0000", "é", "\u{1F600}", "<a>", "</a>", "<b/>", "xmlns='u'", "xmlns:p='u'", "<p:c>", "&amp;", "&#65;", "<![CDATA[", "]]>", "<!--", "<?xml version='1.0'?>");
    fc.assert(
      fc.property(fc.array(pieces, { maxLength: 60 }), fc.array(fc.nat(), { maxLength: 10 }), fc.uint8Array({ maxLength: 30 }), (parts, cuts, noise) => {
        const bytes = Buffer.concat([Buffer.from(HEADER + parts.join("")), Buffer.from(noise)]);
        const r = run(split(bytes, cuts), { maxStanzaSize: 4096, maxDepth: 8 });
        assert.ok(r.errors.length <= 1);
        for (const s of r.stanzas) assert.ok(s instanceof Element);
      }),
      { numRuns: 1000 },
    );
  });
});
