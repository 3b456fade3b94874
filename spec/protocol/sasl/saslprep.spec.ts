// RFC 4013 SASLprep: the examples of RFC 4013 §3 and the rules of RFC 3454 §3-§7.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { saslprep, SaslprepError } from "../../../protocol/sasl/saslprep.ts";

function refusal(input: string, opts?: { allowUnassigned?: boolean }): string {
  try {
    saslprep(input, opts);
  } catch (error) {
    assert.ok(error instanceof SaslprepError);
    return error.reason;
  }
  assert.fail(`saslprep accepted ${JSON.stringify(input)}`);
}

describe("RFC 4013 §3 examples", () => {
  test("1: SOFT HYPHEN is mapped to nothing", () => assert.equal(saslprep("I\u00ADX"), "IX"));
  test("2: user stays user", () => assert.equal(saslprep("user"), "user"));
  test("3: case is preserved", () => assert.equal(saslprep("USER"), "USER"));
  test("4: FEMININE ORDINAL INDICATOR becomes a (NFKC)", () => assert.equal(saslprep("\u00AA"), "a"));
  test("5: ROMAN NUMERAL NINE becomes IX (NFKC), matching example 1", () => {
    assert.equal(saslprep("\u2168"), "IX");
    assert.equal(saslprep("\u2168"), saslprep("I\u00ADX"));
  });
  test("6: BELL is prohibited", () => assert.equal(refusal("\u0007"), "prohibited"));
  test("7: ARABIC LETTER ALEF followed by DIGIT ONE fails the bidi check", () => {
    assert.equal(refusal("\u0627\u0031"), "bidi");
  });
});

describe("mapping", () => {
  test("non-ASCII spaces become U+0020", () => {
    assert.equal(saslprep("a\u00A0b\u3000c\u2003d"), "a b c d");
  });
  test("zero-width characters of B.1 disappear", () => {
    assert.equal(saslprep("pa\u200Bss\uFEFFwo\u200Drd\uFE0F"), "password");
  });
  test("composed and decomposed forms prepare to the same string", () => {
    assert.equal(saslprep("re\u0301sume\u0301"), saslprep("r\u00E9sum\u00E9"));
    assert.equal(saslprep("r\u00E9sum\u00E9"), "r\u00E9sum\u00E9");
  });
  test("printable ASCII passes through untouched, including spaces and symbols", () => {
    const ascii = Array.from({ length: 95 }, (_, i) => String.fromCharCode(0x20 + i)).join("");
    assert.equal(saslprep(ascii), ascii);
    assert.equal(saslprep(""), "");
  });
});

describe("prohibited output", () => {
  const cases: [string, string][] = [
    ["ASCII control (C.2.1)", "a\u007Fb"],
    ["NUL (C.2.1)", "a\u0000b"],
    ["non-ASCII control (C.2.2)", "a\u0085b"],
    ["LINE SEPARATOR (C.2.2)", "a\u2028b"],
    ["private use (C.3)", "a\uE000b"],
    ["supplementary private use (C.3)", "a\u{F0000}b"],
    ["non-character (C.4)", "a\uFDD0b"],
    ["plane 16 non-character (C.4)", "a\u{10FFFF}b"],
    ["lone surrogate (C.5)", "a\uD800b"],
    ["REPLACEMENT CHARACTER (C.6)", "a\uFFFDb"],
    ["ideographic description character (C.7)", "a\u2FF0b"],
    ["LEFT-TO-RIGHT MARK (C.8)", "a\u200Eb"],
    ["RIGHT-TO-LEFT OVERRIDE (C.8)", "a\u202Eb"],
    ["language tag (C.9)", "a\u{E0001}b"],
  ];
  for (const [name, input] of cases) {
    test(`refuses ${name}`, () => assert.equal(refusal(input), "prohibited"));
  }
  test("the error names the offending code point", () => {
    assert.throws(() => saslprep("x\u0007"), (e: unknown) => e instanceof SaslprepError && e.codePoint === 7);
  });
});

describe("bidirectional text (RFC 3454 §6)", () => {
  test("all right-to-left is fine", () => assert.equal(saslprep("\u05D0\u05D1\u05D2"), "\u05D0\u05D1\u05D2"));
  test("right-to-left with neutral digits inside is fine", () => {
    assert.equal(saslprep("\u0627\u0031\u0628"), "\u0627\u0031\u0628");
  });
  test("right-to-left mixed with left-to-right is refused", () => assert.equal(refusal("\u05D0a\u05D1"), "bidi"));
  test("right-to-left must also start with a right-to-left character", () => {
    assert.equal(refusal("1\u05D0"), "bidi");
  });
});

describe("unassigned code points (RFC 3454 §7)", () => {
  // U+0221 was unassigned in Unicode 3.2; emoji came later still.
  test("stored strings refuse them", () => {
    assert.equal(refusal("a\u0221"), "unassigned");
    assert.equal(refusal("pw\u{1F600}"), "unassigned");
  });
  test("queries allow them", () => {
    assert.equal(saslprep("pw\u{1F600}", { allowUnassigned: true }), "pw\u{1F600}");
  });
  test("prohibited characters stay prohibited in queries", () => {
    assert.equal(refusal("a\u0007", { allowUnassigned: true }), "prohibited");
  });
});
