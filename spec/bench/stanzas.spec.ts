// What the load generator sends (bench/load/stanzas.ts), read back with Parley's own parser.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { XmlStreamParser } from "../../protocol/xml/parser.ts";
import type { Element } from "../../protocol/xml/element.ts";
import { bind, decodeBody, encodeBody, groupchatTemplate, messageTemplate, mucInstantRoom, mucJoin, mucLeave, saslAuth, streamOpen } from "../../bench/load/stanzas.ts";

function parse(xml: string): Element[] {
  const out: Element[] = [];
  let failed: string | null = null;
  const parser = new XmlStreamParser(
    { streamStart: () => undefined, stanza: (el) => out.push(el), streamEnd: () => undefined, error: (e) => (failed = e.text ?? e.condition) },
    { maxStanzaSize: 65536, maxDepth: 16 },
  );
  parser.write(Buffer.from(streamOpen("localhost") + xml));
  assert.equal(failed, null);
  return out;
}

describe("benchmark stanzas", () => {
  test("are well-formed XMPP with the expected content", () => {
    const t = messageTemplate("bob'1@localhost", true);
    const [auth, iq, message] = parse(saslAuth("SCRAM-SHA-1", "biwsbj1h") + bind("r<1>") + t.head + "hi" + t.tail);
    assert.equal(auth.attrs.mechanism, "SCRAM-SHA-1");
    assert.equal(auth.getText(), "biwsbj1h");
    assert.equal(iq.getChild("bind")?.getChildText("resource"), "r<1>");
    assert.equal(message.attrs.to, "bob'1@localhost");
    assert.equal(message.getChildText("body"), "hi");
    assert.ok(message.getChild("no-store", "urn:xmpp:hints"), "the XEP-0334 hint is there");
    assert.equal(parse(messageTemplate("b@localhost", false).head + "x" + messageTemplate("b@localhost", false).tail)[0].getChild("no-store"), undefined);
  });

  test("the muc scenario's stanzas: a join without history, an instant room, groupchat, leaving", () => {
    const g = groupchatTemplate("bench@conference.localhost");
    const [join, iq, message, leave] = parse(mucJoin("bench@conference.localhost/n'1", "j1") + mucInstantRoom("bench@conference.localhost", "c1") + g.head + "hi" + g.tail + mucLeave("bench@conference.localhost/n1"));
    assert.equal(join.attrs.to, "bench@conference.localhost/n'1");
    assert.equal(join.attrs.type, undefined, "an available presence");
    assert.equal(join.getChild("x", "http://jabber.org/protocol/muc")?.getChild("history")?.attrs.maxstanzas, "0");
    assert.equal(iq.attrs.type, "set");
    assert.equal(iq.attrs.to, "bench@conference.localhost");
    const form = iq.getChild("query", "http://jabber.org/protocol/muc#owner")?.getChild("x", "jabber:x:data");
    assert.equal(form?.attrs.type, "submit");
    assert.equal(form?.children.length, 0, "an empty form: the default configuration");
    assert.equal(message.attrs.type, "groupchat");
    assert.equal(message.getChildText("body"), "hi");
    assert.equal(leave.attrs.type, "unavailable");
  });

  test("a body payload survives the round trip, and other text is not taken for one", () => {
    fc.assert(
      fc.property(fc.nat(), fc.nat(), fc.nat({ max: Number.MAX_SAFE_INTEGER }), (step, seq, dueMicros) => {
        assert.deepEqual(decodeBody(encodeBody({ step, seq, dueMicros })), { step, seq, dueMicros });
      }),
    );
    for (const text of ["", "hello", "bench 1 2", "bench 1 2 3 4", "bench a b c", "bench -1 2 3", "Bench 1 2 3"]) assert.equal(decodeBody(text), null, text);
  });
});
