// The conformance runner's shape matcher (conformance/scenario/pattern.ts).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { parseXml } from "../../conformance/scenario/format.ts";
import { instantiate, matchAttribute, matchElement, matchValue, substitute, UnknownVariable } from "../../conformance/scenario/pattern.ts";
import { xml } from "../../protocol/xml/element.ts";
import { serialize } from "../../protocol/xml/serialize.ts";

const vars = new Map([
  ["domain", "example.test"],
  ["romeo", "romeo@example.test"],
  ["romeo.full", "romeo@example.test/balcony"],
]);
const received = (text: string) => parseXml(text);

describe("matchElement", () => {
  test("listed attributes must match, extra attributes are allowed", () => {
    const pattern = parseXml(`<iq type='result' id='p1' from='{domain}'/>`);
    assert.ok(matchElement(pattern, received(`<iq type='result' id='p1' from='example.test' to='romeo@example.test/balcony'/>`), vars));
    assert.equal(matchElement(pattern, received(`<iq type='error' id='p1' from='example.test'/>`), vars), null);
    assert.equal(matchElement(pattern, received(`<iq type='result' id='p1'/>`), vars), null, "a listed attribute must be present");
  });

  test("names and namespaces must match", () => {
    const pattern = parseXml(`<iq><ping xmlns='urn:xmpp:ping'/></iq>`);
    assert.ok(matchElement(pattern, received(`<iq><ping xmlns='urn:xmpp:ping'/></iq>`)));
    assert.equal(matchElement(pattern, received(`<iq><ping xmlns='urn:xmpp:pong'/></iq>`)), null);
    assert.equal(matchElement(pattern, received(`<message><ping xmlns='urn:xmpp:ping'/></message>`)), null);
  });

  test("children match in any order; extra children are allowed; each pattern child needs its own", () => {
    const pattern = parseXml(`<query xmlns='q'><b/><a/></query>`);
    assert.ok(matchElement(pattern, received(`<query xmlns='q'><a/><c/><b/></query>`)));
    assert.equal(matchElement(parseXml(`<query xmlns='q'><a/><a/></query>`), received(`<query xmlns='q'><a/></query>`)), null);
  });

  test("text is compared trimmed, and only when the pattern has some", () => {
    assert.ok(matchElement(parseXml(`<body>hi {any}</body>`), received(`<body>  hi there </body>`)));
    assert.equal(matchElement(parseXml(`<body>hi</body>`), received(`<body>bye</body>`)), null);
    assert.ok(matchElement(parseXml(`<body/>`), received(`<body>anything</body>`)));
  });

  test("captures bind variables that later patterns must agree with", () => {
    const first = matchElement(parseXml(`<iq id='{=id}'><bind xmlns='b'><jid>{romeo}/{=res}</jid></bind></iq>`), received(`<iq id='x7'><bind xmlns='b'><jid>romeo@example.test/abc</jid></bind></iq>`), vars);
    assert.equal(first?.get("id"), "x7");
    assert.equal(first?.get("res"), "abc");
    assert.ok(matchElement(parseXml(`<iq id='{id}'/>`), received(`<iq id='x7'/>`), first!));
    assert.equal(matchElement(parseXml(`<iq id='{=id}'/>`), received(`<iq id='other'/>`), first!), null, "a bound capture must match its value");
  });

  test("match:absent forbids a child, match:exact forbids extra children", () => {
    const absent = parseXml(`<query xmlns='jabber:iq:roster'><item jid='{romeo}' match:absent='true'/></query>`);
    assert.ok(matchElement(absent, received(`<query xmlns='jabber:iq:roster'><item jid='juliet@example.test'/></query>`), vars));
    assert.equal(matchElement(absent, received(`<query xmlns='jabber:iq:roster'><item jid='romeo@example.test' name='R'/></query>`), vars), null);
    const exact = parseXml(`<query xmlns='q' match:exact='true'><a/></query>`);
    assert.ok(matchElement(exact, received(`<query xmlns='q'><a/></query>`)));
    assert.equal(matchElement(exact, received(`<query xmlns='q'><a/><b/></query>`)), null);
  });

  test("an unknown variable is an error in the scenario, not a mismatch", () => {
    assert.throws(() => matchElement(parseXml(`<iq to='{nobody}'/>`), received(`<iq to='x'/>`), vars), UnknownVariable);
  });

  test("a namespace may hold a placeholder", () => {
    assert.ok(matchElement(parseXml(`<q xmlns='urn:example:{domain}'/>`), received(`<q xmlns='urn:example:example.test'/>`), vars));
  });
});

describe("values", () => {
  test("{absent} and alternatives", () => {
    assert.ok(matchAttribute("{romeo} | {absent}", undefined, vars));
    assert.ok(matchAttribute("{romeo} | {absent}", "romeo@example.test", vars));
    assert.equal(matchAttribute("{romeo} | {absent}", "juliet@example.test", vars), null);
    assert.equal(matchAttribute("{absent}", "x", vars), null);
  });

  test("literal text never acts as a regular expression", () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), (a, b) => {
        const template = a.replace(/[{}]/g, "");
        const value = b;
        assert.equal(matchValue(template, value, new Map()) !== null, template === value);
      }),
    );
  });

  test("substitute fills variables and base64 calls, and refuses receive-only placeholders", () => {
    assert.equal(substitute("to {romeo}", vars), "to romeo@example.test");
    assert.equal(Buffer.from(substitute("{base64(\\0{romeo}\\0pw)}", vars), "base64").toString(), "\0romeo@example.test\0pw");
    assert.throws(() => substitute("{any}", vars));
    assert.throws(() => substitute("{=x}", vars));
    assert.throws(() => substitute("{missing}", vars), UnknownVariable);
  });

  test("instantiate substitutes in attributes and text and drops match: markup", () => {
    const sent = instantiate(parseXml(`<message to='{romeo.full}'><body>hi {romeo}</body></message>`), vars);
    assert.equal(serialize(sent), `<message to="romeo@example.test/balcony" xmlns="jabber:client"><body>hi romeo@example.test</body></message>`);
    assert.equal(serialize(instantiate(xml("a", { "match:exact": "true", b: "{domain}" }), vars)), `<a b="example.test"/>`);
  });
});
