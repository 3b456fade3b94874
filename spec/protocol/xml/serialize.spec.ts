import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { xml } from "../../../protocol/xml/element.ts";
import { escapeAttr, escapeText, serialize, serializeForStream } from "../../../protocol/xml/serialize.ts";
import { parseStandalone, standaloneXml } from "../../../protocol/xml/standalone.ts";

/** What XML 1.0 can carry of `s` (§2.2 Char): everything else becomes U+FFFD. */
function carried(s: string): string {
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && s.charCodeAt(i + 1) >= 0xdc00 && s.charCodeAt(i + 1) <= 0xdfff) {
      out += s[i]! + s[i + 1]!;
      i++;
    } else if ((c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) || (c >= 0xd800 && c <= 0xdfff) || c === 0xfffe || c === 0xffff) {
      out += "\uFFFD";
    } else {
      out += s[i]!;
    }
  }
  return out;
}

// Characters the escaping has to get right, among plain ones, and any UTF-16 unit at all.
const tricky = fc.constantFrom("&", "<", ">", '"', "'", "\t", "\n", "\r", "\u0000", "\u0008", "\u000b", "\u001f", "\ud800", "\udc00", "\ud83d\ude00", "\ufffe", "\uffff", "é", "a", " ", "]]>");
const anyText = fc.string({ unit: fc.oneof({ weight: 3, arbitrary: tricky }, { weight: 1, arbitrary: fc.string({ unit: "binary", minLength: 1, maxLength: 1 }) }) });

test("text and attribute values parse back as written, characters XML cannot carry as U+FFFD", () => {
  fc.assert(
    fc.property(anyText, anyText, (text, value) => {
      const el = xml("message", { xmlns: "jabber:client", id: value }, xml("body", {}, text));
      const back = parseStandalone(serialize(el));
      assert.ok(back, serialize(el));
      assert.equal(back.attrs.id, carried(value));
      assert.equal(back.getChildText("body") ?? "", carried(text));
    }),
    { numRuns: 500 },
  );
});

test("escaping: markup characters in both, quote and whitespace references in values only", () => {
  assert.equal(escapeText('a&b<c>d"e\'f\tg\nh\ri'), "a&amp;b&lt;c&gt;d\"e'f\tg\nh&#13;i");
  assert.equal(escapeAttr('a&b<c>d"e\'f\tg\nh\ri'), "a&amp;b&lt;c&gt;d&quot;e'f&#9;g&#10;h&#13;i");
  for (const illegal of ["\u0001", "\u000b", "\ud800", "\udfff", "\ufffe", "\uffff"]) {
    assert.equal(escapeText(`x${illegal}y`), "x\uFFFDy", JSON.stringify(illegal));
    assert.equal(escapeAttr(`x${illegal}y`), "x\uFFFDy", JSON.stringify(illegal));
  }
  const plain = "romeo@montague.lit/orchard";
  assert.equal(escapeAttr(plain), plain);
  assert.equal(escapeText("\ud83d\ude00 é"), "\ud83d\ude00 é");
});

test("a stanza goes out without the stream's own namespace, and the element keeps its attributes as they were", () => {
  const message = xml("message", { to: "juliet@capulet.lit", xmlns: "jabber:client", type: "chat" }, xml("body", {}, "hi"));
  const keys = Object.keys(message.attrs);
  assert.equal(serializeForStream(message, "jabber:client"), '<message to="juliet@capulet.lit" type="chat"><body>hi</body></message>');
  assert.equal(serializeForStream(message, "jabber:server"), '<message to="juliet@capulet.lit" type="chat"><body>hi</body></message>');
  assert.deepEqual(Object.keys(message.attrs), keys);
  assert.equal(message.attrs.xmlns, "jabber:client");
  const other = xml("open", { xmlns: "urn:ietf:params:xml:ns:xmpp-framing" });
  assert.equal(serializeForStream(other, "jabber:client"), '<open xmlns="urn:ietf:params:xml:ns:xmpp-framing"/>');
});

test("standalone text of a stanza from a server stream says jabber:client and leaves the stanza alone", () => {
  const message = xml("message", { xmlns: "jabber:server", from: "romeo@montague.lit" }, xml("body", {}, "hi"));
  assert.equal(standaloneXml(message, "jabber:client", { replace: ["jabber:server"] }), '<message xmlns="jabber:client" from="romeo@montague.lit"><body>hi</body></message>');
  assert.equal(message.attrs.xmlns, "jabber:server");
});
