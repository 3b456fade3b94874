// Tests for JIDs: RFC 7622 (examples from §3.5), with PRECIS (RFC 8265) parts and IDNA domains.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { Jid, JidError, makeJid, parseJid, tryParseJid } from "../../protocol/jid.ts";

function malformed(input: string, part?: JidError["part"]): void {
  assert.throws(() => parseJid(input), (error: unknown) => {
    assert.ok(error instanceof JidError, `${JSON.stringify(input)} threw ${String(error)}`);
    assert.equal(error.condition, "jid-malformed");
    if (part) assert.equal(error.part, part, `${JSON.stringify(input)}: ${error.message}`);
    return true;
  }, `${JSON.stringify(input)} was accepted`);
}

function parts(input: string): [string, string, string] {
  const jid = parseJid(input);
  return [jid.local, jid.domain, jid.resource];
}

describe("RFC 7622 §3.5 examples of valid JIDs", () => {
  const examples: [string, string][] = [
    ["juliet@example.com", "juliet@example.com"],
    ["juliet@example.com/foo", "juliet@example.com/foo"],
    ["juliet@example.com/foo bar", "juliet@example.com/foo bar"],
    ["juliet@example.com/foo@bar", "juliet@example.com/foo@bar"],
    ["foo\\20bar@example.com", "foo\\20bar@example.com"],
    ["fussball@example.com", "fussball@example.com"],
    ["fußball@example.com", "fußball@example.com"],
    ["π@example.com", "π@example.com"],
    ["Σ@example.com/foo", "σ@example.com/foo"],
    ["σ@example.com/foo", "σ@example.com/foo"],
    ["ς@example.com/foo", "ς@example.com/foo"],
    ["king@example.com/♚", "king@example.com/♚"],
    ["example.com", "example.com"],
    ["example.com/foobar", "example.com/foobar"],
    ["a.example.com/b@example.net", "a.example.com/b@example.net"],
  ];
  for (const [input, normalised] of examples) {
    test(`${input} -> ${normalised}`, () => {
      assert.equal(parseJid(input).toString(), normalised);
    });
  }

  test("the split rules of §3.1 put each part where it belongs", () => {
    assert.deepEqual(parts("juliet@example.com/foo@bar"), ["juliet", "example.com", "foo@bar"]);
    assert.deepEqual(parts("a.example.com/b@example.net"), ["", "a.example.com", "b@example.net"]);
    assert.deepEqual(parts("example.com/a/b"), ["", "example.com", "a/b"]);
    assert.deepEqual(parts("example.com"), ["", "example.com", ""]);
  });
});

describe("RFC 7622 §3.5 examples of invalid JIDs", () => {
  const examples: [string, JidError["part"], string][] = [
    ['"juliet"@example.com', "localpart", "quotation marks are prohibited in a localpart"],
    ["foo bar@example.com", "localpart", "SPACE is disallowed in a localpart"],
    ["juliet@example.com/", "resourcepart", "empty resourcepart"],
    ["@example.com/", "localpart", "empty localpart"],
    ["henryⅣ@example.com", "localpart", "ROMAN NUMERAL FOUR is disallowed"],
    ["♚@example.com", "localpart", "symbols are disallowed in a localpart"],
    ["juliet@", "domainpart", "empty domainpart"],
    ["/foobar", "domainpart", "empty domainpart"],
  ];
  for (const [input, part, why] of examples) {
    test(`${input} (${why})`, () => malformed(input, part));
  }
});

describe("localpart", () => {
  test("is case-mapped and width-mapped", () => {
    assert.equal(parseJid("Juliet@example.com").local, "juliet");
    assert.equal(parseJid("ＪＵＬＩＥＴ@example.com").local, "juliet");
    assert.equal(parseJid("ΣΑΣ@example.com").local, "σασ");
    assert.ok(!parseJid("ΣΑΣ@example.com").equals(parseJid("σας@example.com")));
  });

  test("refuses each character RFC 7622 §3.3.1 prohibits, even when width mapping produces it", () => {
    for (const ch of ['"', "&", "'", ":", "<", ">"]) malformed(`a${ch}b@example.com`, "localpart");
    malformed("a＠b@example.com", "localpart");
    malformed("a／b@example.com", "localpart");
  });

  test("refuses spaces, controls and unpaired ZWJ; accepts ZWJ after a virama", () => {
    malformed("a\u00a0b@example.com", "localpart");
    malformed("a\u0007b@example.com", "localpart");
    malformed("a\u200db@example.com", "localpart");
    assert.equal(parseJid("\u0915\u094d\u200d\u0937@example.com").local, "\u0915\u094d\u200d\u0937");
  });

  test("right-to-left localparts must satisfy the Bidi Rule", () => {
    assert.equal(parseJid("\u05d9\u05d5\u05dc\u05d9\u05d4@example.com").local, "\u05d9\u05d5\u05dc\u05d9\u05d4");
    malformed("\u05d0a@example.com", "localpart");
  });
});

describe("resourcepart", () => {
  test("is case-preserving, allows spaces and symbols, maps non-ASCII spaces", () => {
    assert.equal(parseJid("juliet@example.com/Balcony Phone").resource, "Balcony Phone");
    assert.equal(parseJid("juliet@example.com/a\u00a0b").resource, "a b");
    assert.ok(!parseJid("a@example.com/R").equals(parseJid("a@example.com/r")));
  });

  test("refuses control characters", () => {
    malformed("juliet@example.com/a\nb", "resourcepart");
    malformed("juliet@example.com/\u0000", "resourcepart");
  });
});

describe("part lengths (1..1023 octets after normalisation)", () => {
  test("1023-octet localpart and resourcepart are accepted, 1024 refused", () => {
    assert.equal(parseJid(`${"a".repeat(1023)}@example.com`).local.length, 1023);
    malformed(`${"a".repeat(1024)}@example.com`, "localpart");
    assert.equal(parseJid(`example.com/${"r".repeat(1023)}`).resource.length, 1023);
    malformed(`example.com/${"r".repeat(1024)}`, "resourcepart");
  });

  test("octets are counted in UTF-8, not characters", () => {
    assert.ok(parseJid(`${"é".repeat(511)}a@example.com`)); // 1023 octets
    malformed(`${"é".repeat(512)}@example.com`, "localpart"); // 1024 octets, 512 characters
    malformed(`example.com/${"€".repeat(342)}`, "resourcepart"); // 1026 octets
  });

  test("a huge input is refused", () => {
    malformed("x".repeat(1_000_000));
  });
});

describe("domainpart", () => {
  test("is lower-cased and loses one trailing dot", () => {
    assert.equal(parseJid("juliet@EXAMPLE.com.").domain, "example.com");
    assert.equal(parseJid("example.com\u3002").domain, "example.com");
    malformed("example.com..", "domainpart");
  });

  test("internationalised names are kept as lower-case U-labels; A-labels are converted", () => {
    assert.equal(parseJid("BÜCHER.example").domain, "bücher.example");
    assert.equal(parseJid("xn--bcher-kva.example").domain, "bücher.example");
    assert.ok(parseJid("x@xn--bcher-kva.example").equals(parseJid("X@Bücher.Example")));
    assert.equal(parseJid("ＥＸＡＭＰＬＥ．ｃｏｍ").domain, "example.com");
  });

  test("must be a DNS name: LDH labels of 1..63 octets, 253 in all", () => {
    const label63 = "a".repeat(63);
    assert.equal(parseJid(`${label63}.com`).domain, `${label63}.com`);
    malformed(`${"a".repeat(64)}.com`, "domainpart");
    const name253 = `${label63}.${label63}.${label63}.${"b".repeat(61)}`;
    assert.equal(parseJid(name253).domain, name253);
    malformed(`${name253}b`, "domainpart");
    for (const bad of ["a..b", ".example.com", "-a.example", "a-.example", "foo_bar.example", "ex%41mple.com", "a b.example", "xn--zz.example", "a@b@c"]) {
      malformed(bad, "domainpart");
    }
  });

  test("IPv4 literals are dotted-quad decimal", () => {
    assert.equal(parseJid("juliet@192.0.2.1/r").domain, "192.0.2.1");
    for (const bad of ["256.0.0.1", "01.2.3.4", "1.2.3", "0x7f.0.0.1", "127.1"]) malformed(bad, "domainpart");
  });

  test("IPv6 literals are bracketed and normalised", () => {
    assert.equal(parseJid("[2001:DB8:0:0:0:0:0:1]").domain, "[2001:db8::1]");
    assert.equal(parseJid("juliet@[::1]/r").toString(), "juliet@[::1]/r");
    assert.ok(parseJid("[::0001]").equals(parseJid("[::1]")));
    for (const bad of ["[::1]:5222", "[::g]", "[1.2.3.4]", "::1", "[fe80::1%eth0]", "[::1"]) malformed(bad, "domainpart");
  });
});

describe("Jid", () => {
  test("has '' for absent parts, a cheap bare form and equality on normalised forms", () => {
    const full = parseJid("Romeo@Example.net/Orchard");
    assert.deepEqual([full.local, full.domain, full.resource], ["romeo", "example.net", "Orchard"]);
    assert.equal(full.isBare(), false);
    assert.equal(full.bare.toString(), "romeo@example.net");
    assert.equal(full.bare.isBare(), true);
    assert.equal(full.bare, full.bare);
    assert.equal(full.bare.bare, full.bare);
    assert.ok(full.equals(parseJid("romeo@EXAMPLE.NET/Orchard")));
    assert.ok(!full.equals(full.bare));
    assert.ok(!full.equals(null));
  });

  test("is immutable, including when it comes from the parse cache", () => {
    const jid = parseJid("juliet@example.com/balcony");
    assert.ok(Object.isFrozen(jid));
    assert.throws(() => {
      (jid as { local: string }).local = "mallory";
    }, TypeError);
    assert.equal(parseJid("juliet@example.com/balcony").local, "juliet");
    assert.ok(Object.isFrozen(jid.bare));
  });

  test("cannot be built around the normalisation", () => {
    const Unchecked = Jid as unknown as new (...args: unknown[]) => Jid;
    assert.throws(() => new Unchecked("Mallory", "Example.com", "", Symbol("forged")), TypeError);
  });

  test("makeJid normalises each part; '' or nothing means absent", () => {
    assert.equal(makeJid("Romeo", "EXAMPLE.net", "Orchard").toString(), "romeo@example.net/Orchard");
    assert.equal(makeJid("", "example.net").toString(), "example.net");
    assert.equal(makeJid("romeo", "example.net", "").isBare(), true);
    assert.equal(makeJid("romeo", "example.net", "a/b@c").resource, "a/b@c");
    assert.throws(() => makeJid("ro@meo", "example.net"), JidError);
    assert.throws(() => makeJid("romeo", "example.net/x"), JidError);
    assert.throws(() => makeJid("romeo", ""), JidError);
  });

  test("tryParseJid returns null instead of throwing", () => {
    assert.equal(tryParseJid("@@"), null);
    assert.equal(tryParseJid("juliet@example.com")?.local, "juliet");
  });

  test("a value that is not a string is malformed, not a crash", () => {
    assert.throws(() => parseJid(undefined as unknown as string), JidError);
  });
});

// Generators that reach every branch: mixed-case ASCII, Unicode letters, separators, IP
// literals and arbitrary code points.
const localChar = fc.constantFrom("a", "B", "z", "0", "-", ".", "Σ", "ς", "ß", "İ", "Ｊ", "é", "e\u0301", "\u05d0", "π", " ", "'", "\u200d", "\u0000");
const domainLabel = fc.constantFrom("example", "EXAMPLE", "bücher", "xn--bcher-kva", "a-b", "com", "1", "ＣＯＭ", "_x", "");
const domain = fc.oneof(
  fc.array(domainLabel, { minLength: 1, maxLength: 3 }).map((labels) => labels.join(".")),
  fc.constantFrom("[::1]", "[2001:DB8::1]", "192.0.2.1", "[::g]", "300.1.1.1", "example.com."),
);
const resourceChar = fc.constantFrom("r", "R", " ", "/", "@", "\u00a0", "♚", "e\u0301", "\u0007", "\u200c");
const binary = fc.string({ unit: "binary", maxLength: 20 });
const jidLike = fc.oneof(
  fc.tuple(
    fc.option(fc.string({ unit: localChar, maxLength: 6 })),
    domain,
    fc.option(fc.string({ unit: resourceChar, maxLength: 6 })),
  ).map(([local, host, resource]) => (local === null ? "" : local + "@") + host + (resource === null ? "" : "/" + resource)),
  binary,
  fc.string({ unit: fc.constantFrom("a", "@", "/", ".", "Ａ", "\ud800", "[", "]", ":"), maxLength: 12 }),
);

function attempt(input: string): Jid | JidError {
  try {
    return parseJid(input);
  } catch (error) {
    if (error instanceof JidError) return error;
    throw error;
  }
}

describe("properties", () => {
  test("any string gives either a Jid or a JidError, never another exception", () => {
    fc.assert(fc.property(jidLike, (input) => {
      const result = attempt(input);
      assert.ok(result instanceof Jid || result instanceof JidError);
    }), { numRuns: 3000 });
  });

  test("normalising twice equals normalising once", () => {
    fc.assert(fc.property(jidLike, (input) => {
      const once = attempt(input);
      if (once instanceof JidError) return;
      const twice = parseJid(once.toString());
      assert.equal(twice.toString(), once.toString());
      assert.ok(twice.equals(once));
      assert.ok(makeJid(once.local, once.domain, once.resource).equals(once));
    }), { numRuns: 3000 });
  });

  test("equality is equality of the normalised forms", () => {
    fc.assert(fc.property(jidLike, jidLike, (a, b) => {
      const x = attempt(a);
      const y = attempt(b);
      if (x instanceof JidError || y instanceof JidError) return;
      assert.equal(x.equals(y), x.toString() === y.toString());
      assert.equal(x.equals(y), y.equals(x));
    }), { numRuns: 2000 });
  });

  test("ASCII case in the localpart and domainpart does not matter; in the resourcepart it does", () => {
    const word = fc.string({ unit: fc.constantFrom("a", "b", "Q", "z", "0"), minLength: 1, maxLength: 8 });
    fc.assert(fc.property(word, word, word, (local, host, resource) => {
      const jid = parseJid(`${local}@${host}.example/${resource}`);
      const upper = parseJid(`${local.toUpperCase()}@${host.toUpperCase()}.EXAMPLE/${resource}`);
      assert.ok(jid.equals(upper));
      if (resource.toUpperCase() !== resource) {
        assert.ok(!jid.equals(parseJid(`${local}@${host}.example/${resource.toUpperCase()}`)));
      }
    }));
  });
});

describe("withResource", () => {
  test("gives the same full JID as makeJid, normalised, whose bare is the very account it came from", () => {
    const account = makeJid("Juliet", "Example.COM");
    const full = account.withResource("Balcony\u00A0 ");
    assert.ok(full.equals(makeJid("juliet", "example.com", "Balcony\u00A0 ")));
    assert.equal(full.bare, account);
    assert.equal(full.resource, makeJid("juliet", "example.com", "Balcony\u00A0 ").resource);
    // From a full JID it starts again from the account; "" is the account itself.
    assert.ok(full.withResource("orchard").equals(parseJid("juliet@example.com/orchard")));
    assert.equal(account.withResource(""), account);
    assert.throws(() => account.withResource("a".repeat(1024)), JidError);
  });
});
