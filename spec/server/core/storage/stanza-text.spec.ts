// Specs for server/core/storage/stanza-text.ts: stanzas kept as text (XEP-0313 archive, XEP-0160
// offline storage) come back as the same stanza, in the jabber:client namespace, standing alone.
import assert from "node:assert/strict";
import { test } from "node:test";
import { xml } from "../../../../protocol/xml/element.ts";
import { serialize } from "../../../../protocol/xml/serialize.ts";
import { stanzaFromText, stanzaToText } from "../../../../server/core/storage/stanza-text.ts";
import { parseXml } from "../../../support/xml.ts";

test("a stanza read back from its text is the same stanza, in jabber:client", () => {
  const stanza = xml(
    "message",
    { from: "romeo@montague.lit/orchard", to: "juliet@capulet.lit", type: "chat", id: "m1" },
    xml("body", {}, "Parting is such sweet sorrow <3 & more\r\n"),
    xml("request", { xmlns: "urn:xmpp:receipts" }),
  );
  const back = stanzaFromText(stanzaToText(stanza));
  assert.ok(back);
  assert.equal(back.getNS(), "jabber:client");
  assert.equal(back.getChildText("body"), "Parting is such sweet sorrow <3 & more\r\n");
  assert.ok(back.getChild("request", "urn:xmpp:receipts"));
  assert.equal(stanza.attrs.xmlns, undefined, "the original is left as it was");
});

test("prefixes declared on the stream or an enclosing element are carried into the text", () => {
  const wrapper = parseXml(`<wrap xmlns="jabber:client" xmlns:e="urn:example"><message to="a@b"><e:thing>x</e:thing></message></wrap>`);
  const stanza = wrapper.getChild("message")!;
  const back = stanzaFromText(stanzaToText(stanza));
  assert.ok(back);
  const thing = back.getChildElements()[0]!;
  assert.equal(thing.getNS(), "urn:example");
  assert.equal(serialize(thing), "<e:thing>x</e:thing>");
});

test("text that is not exactly one element reads as null", () => {
  for (const text of ["", "<message>", "<message/><message/>", "not xml", "<a></b>"]) assert.equal(stanzaFromText(text), null, text);
});
