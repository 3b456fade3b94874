// Tests for PRECIS: RFC 8264 derived property, RFC 8265 profiles (examples from §3.6 and §4.3),
// RFC 8266 Nickname (examples from §3), RFC 5892 Appendix A contextual rules, RFC 5893 Bidi Rule.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  derivedProperty, nickname, nicknameKey, opaqueString, PrecisError, usernameCaseMapped, usernameCasePreserved,
} from "../../protocol/precis.ts";

function rejects(fn: () => unknown, reason: PrecisError["reason"]): void {
  assert.throws(fn, (error: unknown) => error instanceof PrecisError && error.reason === reason);
}

describe("derived property (RFC 8264 §8)", () => {
  const cases: [number, string, string][] = [
    [0x61, "PVALID", "ASCII7 letter"],
    [0x7e, "PVALID", "ASCII7 symbol"],
    [0x20, "FREE_PVAL", "SPACE (Spaces: ID_DIS or FREE_PVAL)"],
    [0x00, "DISALLOWED", "control"],
    [0x7f, "DISALLOWED", "DELETE"],
    [0xdf, "PVALID", "ß (Exceptions)"],
    [0x3c2, "PVALID", "final sigma (Exceptions)"],
    [0x640, "DISALLOWED", "ARABIC TATWEEL (Exceptions)"],
    [0xb7, "CONTEXTO", "MIDDLE DOT"],
    [0x661, "CONTEXTO", "ARABIC-INDIC DIGIT ONE"],
    [0x200c, "CONTEXTJ", "ZWNJ"],
    [0x200d, "CONTEXTJ", "ZWJ"],
    [0x378, "UNASSIGNED", "unassigned"],
    [0xfffe, "DISALLOWED", "noncharacter (not UNASSIGNED)"],
    [0xad, "DISALLOWED", "SOFT HYPHEN (default ignorable)"],
    [0xe0001, "DISALLOWED", "LANGUAGE TAG"],
    [0x1100, "DISALLOWED", "old Hangul jamo"],
    [0xac00, "PVALID", "Hangul syllable"],
    [0x308, "PVALID", "combining diaeresis (Mn)"],
    [0x2163, "FREE_PVAL", "ROMAN NUMERAL FOUR (HasCompat)"],
    [0xff21, "FREE_PVAL", "FULLWIDTH A (HasCompat)"],
    [0x212a, "FREE_PVAL", "KELVIN SIGN (HasCompat)"],
    [0x1c5, "FREE_PVAL", "titlecase Dž"],
    [0x265a, "FREE_PVAL", "BLACK CHESS KING (Symbols)"],
    [0x2028, "DISALLOWED", "LINE SEPARATOR"],
    [0xe000, "DISALLOWED", "private use"],
    [0xd800, "DISALLOWED", "surrogate"],
  ];
  for (const [cp, expected, name] of cases) {
    test(`U+${cp.toString(16).toUpperCase().padStart(4, "0")} ${name} is ${expected}`, () => {
      assert.equal(derivedProperty(cp), expected);
    });
  }

  test("values outside Unicode are DISALLOWED", () => {
    assert.equal(derivedProperty(0x110000), "DISALLOWED");
    assert.equal(derivedProperty(-1), "DISALLOWED");
  });
});

describe("UsernameCaseMapped (RFC 8265 §3.3)", () => {
  test("the legal userparts of RFC 8265 Table 1", () => {
    assert.equal(usernameCaseMapped("juliet@example.com"), "juliet@example.com");
    assert.equal(usernameCaseMapped("fussball"), "fussball");
    assert.equal(usernameCaseMapped("fußball"), "fußball");
    assert.equal(usernameCaseMapped("π"), "π");
    assert.equal(usernameCaseMapped("Σ"), "σ");
    assert.equal(usernameCaseMapped("σ"), "σ");
    assert.equal(usernameCaseMapped("ς"), "ς");
  });

  test("ß and ss stay distinct; so do σ and ς", () => {
    assert.notEqual(usernameCaseMapped("fußball"), usernameCaseMapped("fussball"));
    assert.notEqual(usernameCaseMapped("ς"), usernameCaseMapped("σ"));
  });

  test("capital sigma maps to σ even at the end of a word (no Final_Sigma context)", () => {
    assert.equal(usernameCaseMapped("ΣΑΣ"), "σασ");
    assert.notEqual(usernameCaseMapped("ΣΑΣ"), usernameCaseMapped("σας"));
  });

  test("the illegal userparts of RFC 8265 Table 2", () => {
    rejects(() => usernameCaseMapped("foo bar"), "disallowed");
    rejects(() => usernameCaseMapped(""), "empty");
    rejects(() => usernameCaseMapped("henryⅣ"), "disallowed");
    rejects(() => usernameCaseMapped("♚"), "disallowed");
  });

  test("case is mapped to lower case, ASCII and not", () => {
    assert.equal(usernameCaseMapped("Juliet"), "juliet");
    assert.equal(usernameCaseMapped("ÅNGSTRÖM"), "ångström");
    assert.equal(usernameCaseMapped("ДМИТРИЙ"), "дмитрий");
  });

  test("UsernameCasePreserved keeps case but applies the other rules", () => {
    assert.equal(usernameCasePreserved("Juliet"), "Juliet");
    assert.equal(usernameCasePreserved("Ｊｕｌｉｅｔ"), "Juliet");
    rejects(() => usernameCasePreserved("foo bar"), "disallowed");
  });

  test("fullwidth and halfwidth forms are width-mapped before the class check", () => {
    assert.equal(usernameCaseMapped("ＪＵＬＩＥＴ"), "juliet");
    assert.equal(usernameCaseMapped("ｶﾀｶﾅ"), "カタカナ");
    rejects(() => usernameCaseMapped("juliet\u3000capulet"), "disallowed"); // IDEOGRAPHIC SPACE -> SPACE
  });

  test("output is in NFC", () => {
    assert.equal(usernameCaseMapped("e\u0301"), "\u00e9");
    assert.equal(usernameCaseMapped("E\u0301"), "\u00e9");
  });

  test("compatibility characters are refused rather than folded", () => {
    rejects(() => usernameCaseMapped("\u212a"), "disallowed"); // KELVIN SIGN
    rejects(() => usernameCaseMapped("\ufb01x"), "disallowed"); // ﬁ ligature
  });

  test("controls, ignorables, private use, surrogates and unassigned code points are refused", () => {
    rejects(() => usernameCaseMapped("a\u0000b"), "disallowed");
    rejects(() => usernameCaseMapped("a\tb"), "disallowed");
    rejects(() => usernameCaseMapped("a\u00adb"), "disallowed");
    rejects(() => usernameCaseMapped("a\u200bb"), "disallowed");
    rejects(() => usernameCaseMapped("\ue000"), "disallowed");
    rejects(() => usernameCaseMapped("a\ud800"), "disallowed");
    rejects(() => usernameCaseMapped("a\u0378"), "unassigned");
  });

  test("ZWJ and ZWNJ are allowed only in their contexts (RFC 5892 A.1, A.2)", () => {
    assert.equal(usernameCaseMapped("\u0915\u094d\u200d\u0937"), "\u0915\u094d\u200d\u0937"); // after virama
    assert.equal(usernameCaseMapped("\u0915\u094d\u200c\u0937"), "\u0915\u094d\u200c\u0937");
    assert.equal(usernameCaseMapped("\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"), "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"); // Persian, between joining letters
    rejects(() => usernameCaseMapped("a\u200db"), "context");
    rejects(() => usernameCaseMapped("a\u200cb"), "context");
    rejects(() => usernameCaseMapped("\u0627\u200c\u0628"), "context"); // ALEF joins only to the right
    rejects(() => usernameCaseMapped("\u200d"), "context");
  });

  test("CONTEXTO rules (RFC 5892 A.3–A.9)", () => {
    assert.equal(usernameCaseMapped("col·lega"), "col·lega");
    rejects(() => usernameCaseMapped("a·b"), "context");
    assert.equal(usernameCaseMapped("\u0375\u03b1"), "\u0375\u03b1");
    rejects(() => usernameCaseMapped("\u03b1\u0375"), "context");
    assert.equal(usernameCaseMapped("\u05d0\u05f3"), "\u05d0\u05f3");
    rejects(() => usernameCaseMapped("a\u05f3"), "context");
    assert.equal(usernameCaseMapped("\u30ab\u30fb\u30ab"), "\u30ab\u30fb\u30ab");
    rejects(() => usernameCaseMapped("a\u30fbb"), "context");
    rejects(() => usernameCaseMapped("\u0628\u0661\u06f1"), "context"); // mixed Arabic-Indic digit sets
  });

  test("the Bidi Rule applies to strings with right-to-left code points (RFC 5893 §2)", () => {
    assert.equal(usernameCaseMapped("\u05d0\u05d1"), "\u05d0\u05d1");
    assert.equal(usernameCaseMapped("\u05d0\u05d11"), "\u05d0\u05d11"); // RTL may end in a digit
    assert.equal(usernameCaseMapped("\u0628\u0661"), "\u0628\u0661");
    rejects(() => usernameCaseMapped("\u05d0a"), "bidi"); // L inside an RTL string
    rejects(() => usernameCaseMapped("a\u05d0"), "bidi"); // R inside an LTR string
    rejects(() => usernameCaseMapped("1\u05d0"), "bidi"); // must start with L, R or AL
    rejects(() => usernameCaseMapped("\u05d0-"), "bidi"); // RTL must end in R, AL, EN or AN
    assert.equal(usernameCaseMapped("a-1"), "a-1"); // no RTL: no bidi processing
  });
});

describe("OpaqueString (RFC 8265 §4.2)", () => {
  test("the legal passwords of RFC 8265 Table 3", () => {
    assert.equal(opaqueString("correct horse battery staple"), "correct horse battery staple");
    assert.equal(opaqueString("Correct Horse Battery Staple"), "Correct Horse Battery Staple");
    assert.equal(opaqueString("πßå"), "πßå");
    assert.equal(opaqueString("Jack of ♦s"), "Jack of ♦s");
    assert.equal(opaqueString("foo\u1680bar"), "foo bar");
  });

  test("the illegal passwords of RFC 8265 Table 4", () => {
    rejects(() => opaqueString(""), "empty");
    rejects(() => opaqueString("my cat is a \tby"), "disallowed");
  });

  test("non-ASCII spaces become SPACE, width is not mapped, output is NFC", () => {
    assert.equal(opaqueString("a\u00a0b\u3000c"), "a b c");
    assert.equal(opaqueString("ＡＢ"), "ＡＢ");
    assert.equal(opaqueString("Cafe\u0301"), "Caf\u00e9");
  });

  test("contextual rules apply to the FreeformClass too", () => {
    rejects(() => opaqueString("a\u200db"), "context");
    assert.equal(opaqueString("l·l"), "l·l");
  });
});

describe("Nickname (RFC 8266)", () => {
  test("comparison keys of the RFC 8266 §3 examples", () => {
    assert.equal(nicknameKey("Foo"), "foo");
    assert.equal(nicknameKey("foo"), "foo");
    assert.equal(nicknameKey("Foo Bar"), "foo bar");
    assert.equal(nicknameKey("foo bar"), "foo bar");
    assert.equal(nicknameKey("Σ"), "σ");
    assert.equal(nicknameKey("σ"), "σ");
    assert.equal(nicknameKey("ς"), "ς");
    assert.equal(nicknameKey("\u03d4"), "\u03c5\u0308".normalize("NFC"));
    assert.equal(nicknameKey("♚"), "♚");
    assert.equal(nicknameKey("Richard Ⅳ"), "richard iv");
  });

  test("enforcement keeps case, trims and collapses spaces, applies NFKC", () => {
    assert.equal(nickname("  St\u00a0\u00a0Peter "), "St Peter");
    assert.equal(nickname("Richard Ⅳ"), "Richard IV");
    rejects(() => nickname(" \u00a0 "), "empty");
    rejects(() => nickname("a\u0007b"), "disallowed");
  });
});

// A small alphabet that exercises every rule, mixed with arbitrary code points.
const interesting = fc.constantFrom(
  "a", "Z", "0", "-", "@", " ", "\u00a0", "\u3000", "Σ", "σ", "ς", "ß", "İ", "\u0301", "\u0308", "Ａ", "ｶ", "ﾞ",
  "\u200c", "\u200d", "\u0915", "\u094d", "\u05d0", "\u0627", "\u0628", "\u0661", "\u06f1", "·", "l", "\u03d4",
  "Ⅳ", "\u212a", "\u00ad", "\u0000", "\ud800", "\u0378", "\u1f88", "ǅ", "ﬁ",
);
const anyCodePoint = fc.string({ unit: "binary", minLength: 1, maxLength: 1 });
const anyText = fc.string({
  unit: fc.oneof({ weight: 6, arbitrary: interesting }, { weight: 1, arbitrary: anyCodePoint }),
  maxLength: 10,
});

function outcome(fn: (s: string) => string, s: string): string | PrecisError {
  try {
    return fn(s);
  } catch (error) {
    if (error instanceof PrecisError) return error;
    throw error;
  }
}

describe("properties", () => {
  for (const [name, profile] of [
    ["usernameCaseMapped", usernameCaseMapped], ["usernameCasePreserved", usernameCasePreserved],
    ["opaqueString", opaqueString], ["nickname", nickname], ["nicknameKey", nicknameKey],
  ] as const) {
    test(`${name}: any input gives a string or a PrecisError, and enforcing twice equals once`, () => {
      fc.assert(fc.property(anyText, (s) => {
        const once = outcome(profile, s);
        if (once instanceof PrecisError) return;
        assert.equal(profile(once), once);
      }), { numRuns: 2000 });
    });
  }
});
