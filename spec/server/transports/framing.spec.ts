// The framing helpers shared by the WebSocket (RFC 7395 §3.3.3) and BOSH (XEP-0206 §7)
// transports: exactly one complete element per message, and elements written so that they
// parse on their own.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { xml } from "../../../protocol/xml/element.ts";
import { serialize } from "../../../protocol/xml/serialize.ts";
import { parseOneElement, serializeStandalone } from "../../../server/transports/framing.ts";

const limits = { maxStanzaSize: 10_000, maxDepth: 10 };

describe("parseOneElement", () => {
  test("takes one complete element, with its own namespace", () => {
    const r = parseOneElement("<message xmlns='jabber:client' to='a@b'><body>hi</body></message>", limits);
    assert.ok("element" in r);
    assert.equal(r.element.getNS(), "jabber:client");
    assert.equal(r.element.getChildText("body"), "hi");
  });

  test("refuses two elements, half an element, text, and nothing", () => {
    for (const text of ["<a xmlns='x'/><b xmlns='x'/>", "<a xmlns='x'>", "hello", "", "<a xmlns='x'/>trailing"]) {
      const r = parseOneElement(text, limits);
      assert.ok("error" in r, text);
    }
  });

  test("keeps the stream rules: restricted XML, size and depth limits", () => {
    const comment = parseOneElement("<a xmlns='x'><!-- no --></a>", limits);
    assert.ok("error" in comment && comment.error === "restricted-xml");
    const big = parseOneElement(`<a xmlns='x'>${"y".repeat(limits.maxStanzaSize)}</a>`, limits);
    assert.ok("error" in big && big.error === "policy-violation");
    const deep = parseOneElement(`${"<a xmlns='x'>".repeat(20)}${"</a>".repeat(20)}`, limits);
    assert.ok("error" in deep && deep.error === "policy-violation");
  });
});

describe("serializeStandalone", () => {
  test("stanzas say jabber:client, a stream: element declares its prefix, the element is unchanged", () => {
    const message = xml("message", { to: "a@b" }, xml("body", {}, "x"));
    assert.equal(serializeStandalone(message), "<message to=\"a@b\" xmlns=\"jabber:client\"><body>x</body></message>");
    assert.equal(message.attrs.xmlns, undefined);
    const routed = xml("presence", { xmlns: "jabber:server" });
    assert.equal(serializeStandalone(routed), "<presence xmlns=\"jabber:client\"/>");
    assert.equal(routed.attrs.xmlns, "jabber:server");
    const features = xml("stream:features", {}, xml("bind", { xmlns: "urn:ietf:params:xml:ns:xmpp-bind" }));
    const parsed = parseOneElement(serializeStandalone(features), limits);
    assert.ok("element" in parsed);
    assert.equal(parsed.element.getNS(), "http://etherx.jabber.org/streams");
    assert.equal(features.attrs["xmlns:stream"], undefined);
  });

  test("whatever a message holds, it parses back the same", () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), (body, id) => {
        const el = xml("message", { id, type: "chat" }, xml("body", {}, body));
        const parsed = parseOneElement(serializeStandalone(el), { maxStanzaSize: 1 << 20, maxDepth: 10 });
        assert.ok("element" in parsed);
        assert.equal(serialize(parsed.element), serializeStandalone(el));
      }),
    );
  });
});
