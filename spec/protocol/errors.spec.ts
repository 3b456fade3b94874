// Specs for protocol/errors.ts: RFC 6120 §8.3 stanza errors and §4.9 stream errors.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { xml } from "../../protocol/xml/element.ts";
import { NS } from "../../protocol/ns.ts";
import { reparse } from "../support/xml.ts";
import {
  StanzaError,
  StreamError,
  STANZA_ERROR_CONDITIONS,
  STREAM_ERROR_CONDITIONS,
  errorReply,
  isStanzaErrorCondition,
  isStreamErrorCondition,
  parseStanzaError,
  parseStreamError,
  stanzaErrorElement,
  streamErrorElement,
  type StanzaErrorCondition,
  type StanzaErrorType,
} from "../../protocol/errors.ts";

// RFC 6120 §8.3.3, written out independently of the implementation's table.
const RFC_6120_TYPES: Record<StanzaErrorCondition, StanzaErrorType> = {
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
};

const xmlChar = fc.oneof(
  fc.constantFrom("<", ">", "&", "'", '"', "é", "中", "😀", " ", "]]>"),
  fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 1 }),
);
const xmlText = fc.string({ unit: xmlChar, maxLength: 40 });

const iqGet = () =>
  xml(
    "iq",
    { xmlns: NS.client, type: "get", id: "v1", from: "romeo@montague.lit/orchard", to: "juliet@capulet.lit" },
    xml("query", { xmlns: NS.version }),
  );

describe("stanza error table", () => {
  test("has the 22 conditions of RFC 6120 §8.3.3, payment-required (RFC 3920 only) excluded", () => {
    assert.deepEqual([...STANZA_ERROR_CONDITIONS].sort(), Object.keys(RFC_6120_TYPES).sort());
    assert.equal(isStanzaErrorCondition("payment-required"), false);
  });

  test("every condition yields an <error/> a client reads back with the RFC's type", () => {
    for (const condition of STANZA_ERROR_CONDITIONS) {
      const reply = errorReply(iqGet(), condition);
      assert.ok(reply);
      const received = reparse(reply);
      const error = received.getChild("error", NS.client);
      assert.ok(error, condition);
      assert.equal(error.attrs.type, RFC_6120_TYPES[condition], condition);
      const conditionEl = error.getChildElements()[0];
      assert.equal(conditionEl.getName(), condition);
      assert.equal(conditionEl.getNS(), NS.stanzas);
      assert.deepEqual(parseStanzaError(received), { condition, type: RFC_6120_TYPES[condition] });
    }
  });

  test("condition predicates reject look-alikes and inherited property names", () => {
    for (const s of ["", "Bad-Request", "bad-request ", "toString", "__proto__", "constructor", 42, null]) {
      assert.equal(isStanzaErrorCondition(s), false, String(s));
      assert.equal(isStreamErrorCondition(s), false, String(s));
    }
    assert.equal(isStreamErrorCondition("host-unknown"), true);
    assert.equal(isStreamErrorCondition("item-not-found"), false);
    assert.equal(isStanzaErrorCondition("host-unknown"), false);
  });
});

describe("StanzaError", () => {
  test("is an Error a handler can throw with just a condition", () => {
    const err = new StanzaError("item-not-found");
    assert.ok(err instanceof Error);
    assert.equal(err.condition, "item-not-found");
    assert.equal(err.type, "cancel");
    assert.equal(err.message, "item-not-found");
    assert.equal(
      err.toElement().toString(),
      '<error type="cancel"><item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error>',
    );
  });

  test("carries text (defaulting to xml:lang en), by, a type override and an application condition", () => {
    const appSpecific = xml("invalid-jid", { xmlns: NS.pubsubErrors });
    const err = new StanzaError("policy-violation", { type: "wait", text: "slow down", by: "example.com", appSpecific });
    const el = err.toElement();
    assert.equal(el.attrs.type, "wait");
    assert.equal(el.attrs.by, "example.com");
    const [cond, text, app] = el.getChildElements();
    assert.equal(cond.getName(), "policy-violation");
    assert.equal(text.getName(), "text");
    assert.equal(text.getNS(), NS.stanzas);
    assert.equal(text.attrs["xml:lang"], "en");
    assert.equal(text.getText(), "slow down");
    assert.equal(app.getNS(), NS.pubsubErrors);
    assert.equal(err.message, "policy-violation: slow down");
  });

  test("the second argument may be the text alone", () => {
    const err = new StanzaError("bad-request", "max must be a number");
    assert.equal(err.text, "max must be a number");
    assert.equal(err.type, "modify");
  });

  test("toElement can be called twice without moving the application condition", () => {
    const err = new StanzaError("bad-request", { appSpecific: xml("unsupported", { xmlns: NS.pubsubErrors }) });
    const a = err.toElement();
    const b = err.toElement();
    assert.equal(a.getChildElements().length, 2);
    assert.equal(b.getChildElements().length, 2);
  });

  test("gone and redirect carry the new address as the condition's text", () => {
    const el = stanzaErrorElement("gone", { newAddress: "xmpp:romeo@afterlife.example.net" });
    assert.equal(el.getChild("gone", NS.stanzas)?.getText(), "xmpp:romeo@afterlife.example.net");
    const parsed = parseStanzaError(xml("message", { type: "error" }, el));
    assert.equal(parsed?.newAddress, "xmpp:romeo@afterlife.example.net");
    // Other conditions have no address to carry.
    assert.equal(stanzaErrorElement("conflict", { newAddress: "xmpp:x@y" }).getChild("conflict")?.getText(), "");
  });

  test("an unknown condition or type is a programming error, reported as TypeError", () => {
    assert.throws(() => new StanzaError("payment-required" as StanzaErrorCondition), TypeError);
    assert.throws(() => new StanzaError("conflict", { type: "fatal" as StanzaErrorType }), TypeError);
  });
});

describe("errorReply", () => {
  test("answers an iq with to/from swapped, the same id and namespace, and no payload", () => {
    const reply = errorReply(iqGet(), "service-unavailable");
    assert.ok(reply);
    assert.equal(reply.name, "iq");
    assert.deepEqual(
      { ...reply.attrs },
      { xmlns: NS.client, from: "juliet@capulet.lit", to: "romeo@montague.lit/orchard", type: "error", id: "v1" },
    );
    assert.deepEqual(
      reply.getChildElements().map((c) => c.getName()),
      ["error"],
    );
  });

  test("echoes the payload of a message, so a client can tell which message bounced", () => {
    const msg = xml(
      "message",
      { xmlns: NS.client, type: "chat", from: "romeo@montague.lit/orchard", to: "nobody@capulet.lit", "xml:lang": "en" },
      xml("body", {}, "Wherefore art thou?"),
      xml("origin-id", { xmlns: NS.sid, id: "abc" }),
    );
    const reply = errorReply(msg, "service-unavailable");
    assert.ok(reply);
    assert.equal(reply.attrs.type, "error");
    assert.equal(reply.attrs.id, undefined);
    assert.equal(reply.attrs["xml:lang"], "en");
    const received = reparse(reply);
    assert.equal(received.getChildText("body"), "Wherefore art thou?");
    assert.equal(received.getChild("origin-id", NS.sid)?.attrs.id, "abc");
    assert.equal(parseStanzaError(received)?.condition, "service-unavailable");
    // The original is left untouched.
    assert.equal(msg.attrs.type, "chat");
    assert.equal(msg.getChildElements().length, 2);
  });

  test("echoes a presence's payload (the MUC join that failed)", () => {
    const join = xml(
      "presence",
      { id: "j1", from: "juliet@capulet.lit/balcony", to: "room@muc.lit/Juliet" },
      xml("x", { xmlns: NS.muc }),
    );
    const reply = errorReply(join, new StanzaError("forbidden"));
    assert.ok(reply);
    assert.equal(reply.attrs.from, "room@muc.lit/Juliet");
    assert.equal(reply.attrs.to, "juliet@capulet.lit/balcony");
    assert.equal(reply.attrs.id, "j1");
    assert.ok(reply.getChild("x", NS.muc));
    assert.equal(reply.getChild("error")?.attrs.type, "auth");
  });

  test("includePayload overrides the default both ways", () => {
    const withPayload = errorReply(iqGet(), "bad-request", { includePayload: true });
    assert.ok(withPayload?.getChild("query", NS.version));
    const msg = xml("message", { to: "a@b", from: "c@d" }, xml("body", {}, "x"));
    const without = errorReply(msg, "bad-request", { includePayload: false });
    assert.equal(without?.getChild("body"), undefined);
  });

  test("never answers an error with an error", () => {
    for (const name of ["iq", "message", "presence"]) {
      const error = xml(name, { type: "error", id: "e", from: "a@b", to: "c@d" }, stanzaErrorElement("conflict"));
      assert.equal(errorReply(error, "bad-request"), null, name);
    }
  });

  test("keeps exactly one <error/> even if the original illegally carried one", () => {
    const msg = xml("message", { type: "chat", from: "a@b", to: "c@d" }, xml("body", {}, "x"), xml("error", { type: "cancel" }));
    const reply = errorReply(msg, "not-acceptable");
    assert.equal(reply?.getChildren("error").length, 1);
    assert.equal(parseStanzaError(reply!)?.condition, "not-acceptable");
  });

  test("a stanza without 'to' gets a reply without 'from', unless one is given", () => {
    const iq = xml("iq", { type: "set", id: "r1", from: "juliet@capulet.lit/balcony" }, xml("query", { xmlns: NS.roster }));
    const reply = errorReply(iq, "not-allowed");
    assert.equal(reply?.attrs.from, undefined);
    assert.equal(reply?.attrs.to, "juliet@capulet.lit/balcony");
    assert.equal(errorReply(iq, "not-allowed", { from: "juliet@capulet.lit" })?.attrs.from, "juliet@capulet.lit");
  });

  test("condition strings accept the same options as StanzaError", () => {
    const reply = errorReply(iqGet(), "resource-constraint", { text: "too many requests", by: "capulet.lit" });
    assert.deepEqual(parseStanzaError(reply!), {
      condition: "resource-constraint",
      type: "wait",
      text: "too many requests",
      lang: "en",
      by: "capulet.lit",
    });
  });

  test("property: any id, addresses and text survive serialisation", () => {
    fc.assert(
      fc.property(
        fc.constantFrom("iq", "message", "presence"),
        xmlText,
        xmlText,
        xmlText,
        fc.constantFrom(...STANZA_ERROR_CONDITIONS),
        (name, id, from, text, condition) => {
          const stanza = xml(name, { xmlns: NS.client, type: name === "iq" ? "set" : undefined, id, from, to: "x@y" });
          const reply = errorReply(stanza, condition, { text });
          assert.ok(reply);
          const received = reparse(reply);
          assert.equal(received.attrs.id, id);
          assert.equal(received.attrs.to, from);
          const parsed = parseStanzaError(received);
          assert.equal(parsed?.condition, condition);
          assert.equal(parsed?.text, text === "" ? undefined : text);
        },
      ),
    );
  });
});

describe("parseStanzaError", () => {
  test("returns null for stanzas that are not errors, or errors without <error/>", () => {
    assert.equal(parseStanzaError(iqGet()), null);
    assert.equal(parseStanzaError(xml("iq", { type: "error", id: "1" })), null);
    // An <error/> in a foreign namespace is not the stanza error.
    assert.equal(parseStanzaError(xml("iq", { type: "error" }, xml("error", { xmlns: "urn:example", type: "cancel" }))), null);
  });

  test("reads errors from jabber:server streams too", () => {
    const err = xml("message", { xmlns: NS.server, type: "error" }, stanzaErrorElement("remote-server-timeout"));
    assert.deepEqual(parseStanzaError(err), { condition: "remote-server-timeout", type: "wait" });
  });

  test("is lenient with what other servers send", () => {
    const noCondition = xml("iq", { type: "error" }, xml("error", { type: "cancel" }));
    assert.deepEqual(parseStanzaError(noCondition), { condition: "undefined-condition", type: "cancel" });

    const legacy = xml(
      "iq",
      { type: "error" },
      xml("error", { code: "402", type: "bogus" }, xml("payment-required", { xmlns: NS.stanzas })),
    );
    assert.deepEqual(parseStanzaError(legacy), { condition: "undefined-condition", type: "cancel" });

    const appFirst = xml(
      "iq",
      { type: "error" },
      xml(
        "error",
        { type: "modify" },
        xml("text", { xmlns: NS.stanzas, "xml:lang": "fr" }, "mauvais"),
        xml("unsupported", { xmlns: NS.pubsubErrors, feature: "publish" }),
        xml("feature-not-implemented", { xmlns: NS.stanzas }),
        xml("text", { xmlns: NS.stanzas, "xml:lang": "en" }, "bad"),
      ),
    );
    const parsed = parseStanzaError(appFirst);
    assert.equal(parsed?.condition, "feature-not-implemented");
    assert.equal(parsed?.type, "modify");
    assert.equal(parsed?.text, "mauvais");
    assert.equal(parsed?.lang, "fr");
    assert.equal(parsed?.appSpecific?.attrs.feature, "publish");
  });

  test("property: never throws on arbitrary error payloads", () => {
    const child = fc.record({
      name: fc.constantFrom("text", "bad-request", "gone", "error", "x", "toString", "__proto__"),
      ns: fc.constantFrom(NS.stanzas, NS.client, "urn:x", undefined),
      text: xmlText,
    });
    fc.assert(
      fc.property(fc.option(xmlText), fc.array(child, { maxLength: 6 }), (type, children) => {
        const error = xml("error", { type: type ?? undefined });
        for (const c of children) error.append(xml(c.name, { xmlns: c.ns }, c.text));
        const parsed = parseStanzaError(xml("message", { type: "error" }, error));
        assert.ok(parsed);
        assert.ok(isStanzaErrorCondition(parsed.condition));
        assert.ok(["auth", "cancel", "continue", "modify", "wait"].includes(parsed.type));
      }),
    );
  });
});

describe("stream errors", () => {
  test("has the 25 conditions of RFC 6120 §4.9.3", () => {
    assert.equal(new Set(STREAM_ERROR_CONDITIONS).size, 25);
  });

  test("<stream:error/> declares its own prefix so it stands alone", () => {
    assert.equal(
      streamErrorElement("host-unknown").toString(),
      '<stream:error xmlns:stream="http://etherx.jabber.org/streams">' +
        '<host-unknown xmlns="urn:ietf:params:xml:ns:xmpp-streams"/></stream:error>',
    );
  });

  test("every condition is read back by a client with the right names and namespaces", () => {
    for (const condition of STREAM_ERROR_CONDITIONS) {
      const el = reparse(new StreamError(condition).toElement());
      assert.equal(el.name, "stream:error");
      assert.equal(el.getNS(), NS.stream);
      const [cond] = el.getChildElements();
      assert.equal(cond.getName(), condition);
      assert.equal(cond.getNS(), NS.streams);
      assert.deepEqual(parseStreamError(el), { condition });
    }
  });

  test("text, see-other-host and an application condition", () => {
    const err = new StreamError("see-other-host", { otherHost: "[2001:db8::1]:5222", text: "moved" });
    assert.ok(err instanceof Error);
    assert.equal(err.message, "see-other-host: moved");
    const el = reparse(err.toElement());
    assert.equal(el.getChildText("see-other-host", NS.streams), "[2001:db8::1]:5222");
    assert.equal(el.getChild("text", NS.streams)?.attrs["xml:lang"], "en");
    assert.deepEqual(parseStreamError(el), { condition: "see-other-host", text: "moved", otherHost: "[2001:db8::1]:5222" });

    const app = streamErrorElement("policy-violation", "too fast", xml("stanza-too-big", { xmlns: "urn:example:limits" }));
    const parsed = parseStreamError(reparse(app));
    assert.equal(parsed?.text, "too fast");
    assert.equal(parsed?.appSpecific?.getName(), "stanza-too-big");
  });

  test("reads a stream error that relies on the stream header's prefix declaration", () => {
    const stream = xml("stream:stream", { "xmlns:stream": NS.stream, xmlns: NS.server });
    stream.append(xml("stream:error", {}, xml("system-shutdown", { xmlns: NS.streams })));
    const [el] = stream.getChildElements();
    assert.deepEqual(parseStreamError(el), { condition: "system-shutdown" });
  });

  test("parseStreamError returns null for other elements and undefined-condition for unknown ones", () => {
    assert.equal(parseStreamError(xml("error", { xmlns: NS.client })), null);
    assert.equal(parseStreamError(stanzaErrorElement("conflict")), null);
    const odd = xml("stream:error", { "xmlns:stream": NS.stream }, xml("invalid-id", { xmlns: NS.streams }));
    assert.deepEqual(parseStreamError(odd), { condition: "undefined-condition" });
  });

  test("an unknown condition is a TypeError", () => {
    assert.throws(() => new StreamError("invalid-id" as never), TypeError);
  });
});
