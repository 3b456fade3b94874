// Specs for protocol/caps.ts: XEP-0115 1.6.0 §5 verification strings, checked against the
// XEP's own examples (§5.2 simple, §5.3 complex).
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { parseXml } from "../support/xml.ts";
import { NS } from "../../protocol/ns.ts";
import { capsElement, capsVer, discoInfoFromQuery, octetCompare, verificationString, type CapsInput } from "../../protocol/caps.ts";
import type { DataForm } from "../../protocol/forms.ts";

// §5.2, Example 2 (the disco#info answer of Exodus).
const SIMPLE = `<query xmlns='http://jabber.org/protocol/disco#info' node='http://code.google.com/p/exodus#QgayPKawpkPSDYmwT/WM94uAlu0='>
  <identity category='client' name='Exodus 0.9.1' type='pc'/>
  <feature var='http://jabber.org/protocol/caps'/>
  <feature var='http://jabber.org/protocol/disco#info'/>
  <feature var='http://jabber.org/protocol/disco#items'/>
  <feature var='http://jabber.org/protocol/muc'/>
</query>`;

// §5.3, Example 3 (Psi, with two identities in two languages and a softwareinfo form).
const COMPLEX = `<query xmlns='http://jabber.org/protocol/disco#info' node='http://psi-im.org#q07IKJEyjvHSyhy//CH0CxmKi8w='>
  <identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>
  <identity xml:lang='el' category='client' name='\u03a8 0.11' type='pc'/>
  <feature var='http://jabber.org/protocol/caps'/>
  <feature var='http://jabber.org/protocol/disco#info'/>
  <feature var='http://jabber.org/protocol/disco#items'/>
  <feature var='http://jabber.org/protocol/muc'/>
  <x xmlns='jabber:x:data' type='result'>
    <field var='FORM_TYPE' type='hidden'><value>urn:xmpp:dataforms:softwareinfo</value></field>
    <field var='ip_version' type='text-multi'><value>ipv4</value><value>ipv6</value></field>
    <field var='os'><value>Mac</value></field>
    <field var='os_version'><value>10.5.1</value></field>
    <field var='software'><value>Psi</value></field>
    <field var='software_version'><value>0.11</value></field>
  </x>
</query>`;

describe("XEP-0115 §5 examples", () => {
  test("§5.2: the simple example gives its S and QgayPKawpkPSDYmwT/WM94uAlu0=", () => {
    const info = discoInfoFromQuery(parseXml(SIMPLE));
    assert.equal(
      verificationString(info),
      "client/pc//Exodus 0.9.1<http://jabber.org/protocol/caps<http://jabber.org/protocol/disco#info<http://jabber.org/protocol/disco#items<http://jabber.org/protocol/muc<",
    );
    assert.equal(capsVer(info), "QgayPKawpkPSDYmwT/WM94uAlu0=");
  });

  test("§5.3: the complex example gives its S and q07IKJEyjvHSyhy//CH0CxmKi8w=", () => {
    const info = discoInfoFromQuery(parseXml(COMPLEX));
    assert.equal(info.identities.length, 2);
    assert.equal(info.forms.length, 1);
    assert.equal(
      verificationString(info),
      "client/pc/el/\u03a8 0.11<client/pc/en/Psi 0.11<http://jabber.org/protocol/caps<http://jabber.org/protocol/disco#info<" +
        "http://jabber.org/protocol/disco#items<http://jabber.org/protocol/muc<urn:xmpp:dataforms:softwareinfo<" +
        "ip_version<ipv4<ipv6<os<Mac<os_version<10.5.1<software<Psi<software_version<0.11<",
    );
    assert.equal(capsVer(info), "q07IKJEyjvHSyhy//CH0CxmKi8w=");
  });
});

describe("verification string rules", () => {
  const base: CapsInput = {
    identities: [{ category: "server", type: "im", name: "Parley" }],
    features: ["urn:xmpp:ping", NS.discoInfo],
  };

  test("the order in which identities, features, forms, fields and values arrive does not matter", () => {
    const info = discoInfoFromQuery(parseXml(COMPLEX));
    const expected = capsVer(info);
    fc.assert(
      fc.property(fc.integer(), (seed) => {
        const shuffle = <T>(xs: readonly T[]): T[] => {
          const out = [...xs];
          let s = seed >>> 0;
          for (let i = out.length - 1; i > 0; i--) {
            s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
            const j = s % (i + 1);
            [out[i], out[j]] = [out[j], out[i]];
          }
          return out;
        };
        const forms: DataForm[] = info.forms.map((f) => ({
          ...f,
          fields: shuffle(f.fields).map((field) => ({ ...field, values: shuffle(field.values) })),
        }));
        return capsVer({ identities: shuffle(info.identities), features: shuffle(info.features), forms }) === expected;
      }),
    );
  });

  test("strings sort by UTF-8 octets, not UTF-16 code units", () => {
    // U+FFFD is EF BF BD in UTF-8 and sorts before U+1F600 (F0 9F 98 80); in UTF-16 the
    // surrogate D83D of U+1F600 would sort first.
    assert.ok(octetCompare("\uFFFD", "\u{1F600}") < 0);
    const s = verificationString({ identities: [], features: ["\u{1F600}", "\uFFFD"] });
    assert.equal(s, "\uFFFD<\u{1F600}<");
  });

  test("the order is the order of the UTF-8 bytes for any two strings, lone surrogates included", () => {
    const bytes = (x: string, y: string) => Math.sign(Buffer.compare(Buffer.from(x, "utf8"), Buffer.from(y, "utf8")));
    // Pairs that share a prefix, so that the first difference falls anywhere, surrogates too.
    const text = fc.string({ unit: fc.oneof(fc.constantFrom("a", "é", "\uE000", "\uFFFD", "\u{1F600}", "\uD83D", "\uDE00"), fc.string({ unit: "binary", maxLength: 1 })) });
    fc.assert(
      fc.property(text, text, text, (prefix, x, y) => {
        assert.equal(octetCompare(prefix + x, prefix + y), bytes(prefix + x, prefix + y));
        assert.equal(octetCompare(prefix + x, prefix + x), 0);
      }),
      { numRuns: 2000 },
    );
  });

  test("identities sort by category, then type, then xml:lang, with every slash written", () => {
    const s = verificationString({
      identities: [
        { category: "server", type: "im" },
        { category: "pubsub", type: "pep", lang: "en", name: "PEP" },
        { category: "a-b", type: "x" },
        { category: "a", type: "y" },
      ],
      features: [],
    });
    // Field by field, "a" comes before "a-b" even though "a-b/" < "a/" as whole strings.
    assert.equal(s, "a/y//<a-b/x//<pubsub/pep/en/PEP<server/im//<");
  });

  test("a form without FORM_TYPE is left out; a non-hidden FORM_TYPE still counts", () => {
    const noType: DataForm = { type: "result", fields: [{ var: "x", values: ["1"] }] };
    assert.equal(capsVer({ ...base, forms: [noType] }), capsVer(base));
    const visibleType: DataForm = { type: "result", fields: [{ var: "FORM_TYPE", type: "text-single", values: ["urn:example"] }, { var: "x", values: ["1"] }] };
    assert.equal(verificationString({ ...base, forms: [visibleType] }), `${verificationString(base)}urn:example<x<1<`);
  });

  test("any change to what is advertised changes the ver", () => {
    const more = { ...base, features: [...base.features, NS.version] };
    assert.notEqual(capsVer(more), capsVer(base));
    assert.notEqual(capsVer({ ...base, identities: [{ category: "server", type: "im", name: "Other" }] }), capsVer(base));
  });

  test("other hash functions of the registry are available", () => {
    assert.equal(Buffer.from(capsVer(base, "sha-256"), "base64").length, 32);
  });

  test("the <c/> element carries hash, node and ver", () => {
    const c = capsElement("https://parley.im", "abc=");
    assert.equal(c.getNS(), NS.caps);
    assert.equal(c.getName(), "c");
    assert.deepEqual([c.attrs.hash, c.attrs.node, c.attrs.ver], ["sha-1", "https://parley.im", "abc="]);
  });
});
