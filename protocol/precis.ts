// PRECIS: RFC 8264 (framework: derived property §8, categories §9, string classes §4),
// RFC 8265 (UsernameCaseMapped §3.3, UsernameCasePreserved §3.4, OpaqueString §4.2) and
// RFC 8266 (Nickname §2). Contextual rules: RFC 5892 Appendix A. Bidi Rule: RFC 5893 §2.
//
// Where JavaScript falls short of the Unicode data the RFCs assume, and what we do instead:
// - The derived property is computed per code point in RFC 8264 §8's order from the engine's own
//   Unicode data (\p{General_Category}, Default_Ignorable_Code_Point, Noncharacter_Code_Point,
//   Join_Control, and NFKC through String.prototype.normalize), so it follows the Unicode
//   version of the running engine rather than a frozen table. BackwardCompatible is empty.
// - Canonical_Combining_Class is not exposed: a virama (ccc 9, for the CONTEXTJ rules) is found
//   by how NFD reorders the mark around marks of known class 8 (U+3099) and 10 (U+05B0).
// - Joining_Type is not exposed: D, R and L come from a table extracted from Unicode 15.0
//   DerivedJoiningType.txt; T is derived from General_Category Mn/Me/Cf as ArabicShaping.txt
//   defines it. A joining letter added after Unicode 15.0 counts as U, so a ZWNJ beside it is
//   refused (strict, never lax) unless it follows a virama.
// - Bidi_Class is not exposed: it is needed only for the Bidi Rule of the username profiles,
//   which runs after the IdentifierClass check, so bidiClass() is exact only for code points
//   that class allows (checked against Unicode 15.0 DerivedBidiClass.txt when it was written;
//   code points assigned later take the default of their block, as the UCD's @missing lines do).
// - Width mapping (RFC 8265 §3.3.1): the <wide>/<narrow> code points are U+3000 and
//   U+FF01..U+FFEE. We map them with NFKD, which differs from the one-step decomposition only
//   where the target is itself a compatibility character (U+FFE3, the halfwidth Hangul letters);
//   there both results fall outside the IdentifierClass, so the verdict is the same.
// - Case mapping uses String.prototype.toLowerCase (root locale) but maps GREEK CAPITAL LETTER
//   SIGMA to σ wherever it stands: RFC 8265 §3.6 and RFC 8266 §3 treat Σ→σ as context-free,
//   whereas toLowerCase's Final_Sigma rule would turn a word-final Σ into ς.
// - CONTEXTO rules are all implemented (RFC 5892 A.3–A.9); Script is \p{Script=...}.
// - The username profiles take a single userpart (no spaces), as a JID localpart needs; the
//   space-separated "username" construct of RFC 8265 §3.5 is left to callers.

export type DerivedProperty = "PVALID" | "FREE_PVAL" | "CONTEXTJ" | "CONTEXTO" | "DISALLOWED" | "UNASSIGNED";

export type PrecisReason = "empty" | "disallowed" | "unassigned" | "context" | "bidi" | "unstable";

export class PrecisError extends Error {
  readonly reason: PrecisReason;
  constructor(reason: PrecisReason, message: string) {
    super(message);
    this.name = "PrecisError";
    this.reason = reason;
  }
}

// Codes stored in the per-code-point cache; 0 means "not computed yet".
const PVALID = 1;
const FREE_PVAL = 2; // RFC 8264's "ID_DIS or FREE_PVAL"
const CONTEXTJ = 3;
const CONTEXTO = 4;
const DISALLOWED = 5;
const UNASSIGNED = 6;
type PropertyCode = 1 | 2 | 3 | 4 | 5 | 6;
const PROPERTY_NAMES: readonly DerivedProperty[] = [
  "DISALLOWED", "PVALID", "FREE_PVAL", "CONTEXTJ", "CONTEXTO", "DISALLOWED", "UNASSIGNED",
];

// RFC 8264 §9.6 Exceptions, which are RFC 5892 §2.6.
const EXCEPTIONS = new Map<number, PropertyCode>([
  [0x00df, PVALID], [0x03c2, PVALID], [0x06fd, PVALID], [0x06fe, PVALID], [0x0f0b, PVALID], [0x3007, PVALID],
  [0x00b7, CONTEXTO], [0x0375, CONTEXTO], [0x05f3, CONTEXTO], [0x05f4, CONTEXTO], [0x30fb, CONTEXTO],
  [0x0640, DISALLOWED], [0x07fa, DISALLOWED], [0x302e, DISALLOWED], [0x302f, DISALLOWED], [0x303b, DISALLOWED],
]);
for (let cp = 0x0660; cp <= 0x0669; cp++) EXCEPTIONS.set(cp, CONTEXTO);
for (let cp = 0x06f0; cp <= 0x06f9; cp++) EXCEPTIONS.set(cp, CONTEXTO);
for (let cp = 0x3031; cp <= 0x3035; cp++) EXCEPTIONS.set(cp, DISALLOWED);

const UNASSIGNED_RE = /^\p{Cn}$/u;
const NONCHARACTER_RE = /^\p{Noncharacter_Code_Point}$/u;
const IGNORABLE_RE = /^[\p{Default_Ignorable_Code_Point}\p{Noncharacter_Code_Point}]$/u;
const CONTROL_RE = /^\p{Cc}$/u;
const LETTER_DIGITS_RE = /^[\p{Ll}\p{Lu}\p{Lo}\p{Nd}\p{Lm}\p{Mn}\p{Mc}]$/u;
const OTHER_LETTER_DIGITS_RE = /^[\p{Lt}\p{Nl}\p{No}\p{Me}]$/u;
const SPACES_RE = /^\p{Zs}$/u;
const SYMBOLS_RE = /^[\p{Sm}\p{Sc}\p{Sk}\p{So}]$/u;
const PUNCTUATION_RE = /^\p{P}$/u;

function isOldHangulJamo(cp: number): boolean {
  // Hangul_Syllable_Type L, V or T (HangulSyllableType.txt); stable since Unicode 5.2.
  return (cp >= 0x1100 && cp <= 0x11ff) || (cp >= 0xa960 && cp <= 0xa97c) ||
    (cp >= 0xd7b0 && cp <= 0xd7c6) || (cp >= 0xd7cb && cp <= 0xd7fb);
}

function computeProperty(cp: number): PropertyCode {
  const exception = EXCEPTIONS.get(cp);
  if (exception !== undefined) return exception;
  if (cp >= 0xd800 && cp <= 0xdfff) return DISALLOWED; // surrogates fall through every category
  const ch = String.fromCodePoint(cp);
  if (UNASSIGNED_RE.test(ch) && !NONCHARACTER_RE.test(ch)) return UNASSIGNED;
  if (cp >= 0x21 && cp <= 0x7e) return PVALID; // ASCII7
  if (cp === 0x200c || cp === 0x200d) return CONTEXTJ; // JoinControl
  if (isOldHangulJamo(cp)) return DISALLOWED;
  if (IGNORABLE_RE.test(ch)) return DISALLOWED; // PrecisIgnorableProperties
  if (CONTROL_RE.test(ch)) return DISALLOWED;
  if (ch.normalize("NFKC") !== ch) return FREE_PVAL; // HasCompat
  if (LETTER_DIGITS_RE.test(ch)) return PVALID;
  if (OTHER_LETTER_DIGITS_RE.test(ch)) return FREE_PVAL;
  if (SPACES_RE.test(ch)) return FREE_PVAL;
  if (SYMBOLS_RE.test(ch)) return FREE_PVAL;
  if (PUNCTUATION_RE.test(ch)) return FREE_PVAL;
  return DISALLOWED;
}

// One byte per code point, filled on first sight: 1.1 MB at most, and no unbounded Map.
let propertyCache: Uint8Array | undefined;

function propertyOf(cp: number): PropertyCode {
  propertyCache ??= new Uint8Array(0x110000);
  let code = propertyCache[cp];
  if (code === 0) propertyCache[cp] = code = computeProperty(cp);
  return code as PropertyCode;
}

/** The RFC 8264 §8 derived property of a code point (FREE_PVAL stands for "ID_DIS or FREE_PVAL"). */
export function derivedProperty(cp: number): DerivedProperty {
  if (!Number.isInteger(cp) || cp < 0 || cp > 0x10ffff) return "DISALLOWED";
  return PROPERTY_NAMES[propertyOf(cp)];
}

function hex(cp: number): string {
  return "U+" + cp.toString(16).toUpperCase().padStart(4, "0");
}

function codePoints(s: string): number[] {
  return Array.from(s, (ch) => ch.codePointAt(0)!);
}

// ---- Contextual rules (RFC 5892 Appendix A) ----

const viramaCache = new Map<number, boolean>();
const MARK_RE = /^\p{M}$/u;

function isVirama(cp: number): boolean {
  let known = viramaCache.get(cp);
  if (known === undefined) {
    const ch = String.fromCodePoint(cp);
    // Canonical ordering moves a mark before a preceding mark of higher class; ccc is an integer,
    // so "above 8 and below 10" is exactly 9 (Virama).
    known = MARK_RE.test(ch) && cp !== 0x3099 && cp !== 0x05b0 && ch.normalize("NFD") === ch &&
      (ch + "\u3099").normalize("NFD") === "\u3099" + ch &&
      ("\u05b0" + ch).normalize("NFD") === ch + "\u05b0";
    viramaCache.set(cp, known); // bounded by the number of marks in Unicode
  }
  return known;
}

// Joining_Type, Unicode 15.0 DerivedJoiningType.txt, as "start[-end]Type" runs in hex: every D, R
// and L, plus the U and T code points that the General_Category default below would get wrong.
const JOINING_RUNS =
  "600-605U 620D 622-625R 626D 627R 628D 629R 62a-62eD 62f-632R 633-63fD 641-647D 648R 649-64aD " +
  "66e-66fD 671-673R 675-677R 678-687D 688-699R 69a-6bfD 6c0R 6c1-6c2D 6c3-6cbR 6ccD 6cdR 6ceD " +
  "6cfR 6d0-6d1D 6d2-6d3R 6d5R 6ddU 6ee-6efR 6fa-6fcD 6ffD 710R 712-714D 715-719R 71a-71dD 71eR " +
  "71f-727D 728R 729D 72aR 72bD 72cR 72d-72eD 72fR 74dR 74e-758D 759-75bR 75c-76aD 76b-76cR " +
  "76d-770D 771R 772D 773-774R 775-777D 778-779R 77a-77fD 7ca-7eaD 840R 841-845D 846-847R 848D " +
  "849R 84a-853D 854R 855D 856-858R 860D 862-865D 867R 868D 869-86aR 870-882R 886D 889-88dD " +
  "88eR 890-891U 8a0-8a9D 8aa-8acR 8aeR 8af-8b0D 8b1-8b2R 8b3-8b8D 8b9R 8ba-8c8D 8e2U 1807D " +
  "180eU 1820-1878D 1887-18a8D 18aaD 2066-2069U a840-a871D a872L 10ac0-10ac4D 10ac5R 10ac7R " +
  "10ac9-10acaR 10acdL 10ace-10ad2R 10ad3-10ad6D 10ad7L 10ad8-10adcD 10addR 10ade-10ae0D 10ae1R " +
  "10ae4R 10aeb-10aeeD 10aefR 10b80D 10b81R 10b82D 10b83-10b85R 10b86-10b88D 10b89R " +
  "10b8a-10b8bD 10b8cR 10b8dD 10b8e-10b8fR 10b90D 10b91R 10ba9-10bacR 10bad-10baeD 10d00L " +
  "10d01-10d21D 10d22R 10d23D 10f30-10f32D 10f33R 10f34-10f44D 10f51-10f53D 10f54R 10f70-10f73D " +
  "10f74-10f75R 10f76-10f81D 10fb0D 10fb2-10fb3D 10fb4-10fb6R 10fb8D 10fb9-10fbaR 10fbb-10fbcD " +
  "10fbdR 10fbe-10fbfD 10fc1D 10fc2-10fc3R 10fc4D 10fc9R 10fcaD 10fcbL 110bdU 110cdU " +
  "1e900-1e943D 1e94bT";

type JoiningType = "D" | "R" | "L" | "T" | "U"; // C (join-causing) never matters here: read as U
let joiningTable: { starts: number[]; ends: number[]; types: JoiningType[] } | undefined;
const TRANSPARENT_RE = /^[\p{Mn}\p{Me}\p{Cf}]$/u;

function joiningType(cp: number): JoiningType {
  if (!joiningTable) {
    const table = { starts: [] as number[], ends: [] as number[], types: [] as JoiningType[] };
    for (const run of JOINING_RUNS.split(" ")) {
      const [range, type] = [run.slice(0, -1), run.slice(-1) as JoiningType];
      const [start, end = start] = range.split("-");
      table.starts.push(parseInt(start, 16));
      table.ends.push(parseInt(end, 16));
      table.types.push(type);
    }
    joiningTable = table;
  }
  const { starts, ends, types } = joiningTable;
  let lo = 0;
  let hi = starts.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (cp < starts[mid]) hi = mid - 1;
    else if (cp > ends[mid]) lo = mid + 1;
    else return types[mid];
  }
  // ArabicShaping.txt: unlisted Mn, Me and Cf are transparent. ZWNJ (U) and ZWJ (C) are not,
  // and neither is D/R/L, so U serves for both in the rule below.
  if (cp !== 0x200c && cp !== 0x200d && TRANSPARENT_RE.test(String.fromCodePoint(cp))) return "T";
  return "U";
}

function joinerAllowed(cps: number[], i: number): boolean {
  if (i > 0 && isVirama(cps[i - 1])) return true;
  if (cps[i] === 0x200d) return false;
  // ZWNJ: (Joining_Type:{L,D})(Joining_Type:T)*\u200C(Joining_Type:T)*(Joining_Type:{R,D})
  let before = i - 1;
  while (before >= 0 && joiningType(cps[before]) === "T") before--;
  if (before < 0) return false;
  const left = joiningType(cps[before]);
  if (left !== "L" && left !== "D") return false;
  let after = i + 1;
  while (after < cps.length && joiningType(cps[after]) === "T") after++;
  if (after >= cps.length) return false;
  const right = joiningType(cps[after]);
  return right === "R" || right === "D";
}

const GREEK_RE = /^\p{Script=Greek}$/u;
const HEBREW_RE = /^\p{Script=Hebrew}$/u;
const KANA_HAN_RE = /[\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Han}]/u;

function contextOAllowed(cps: number[], i: number, s: string): boolean {
  const cp = cps[i];
  if (cp === 0x00b7) return i > 0 && cps[i - 1] === 0x6c && cps[i + 1] === 0x6c; // l·l (Catalan)
  if (cp === 0x0375) return i + 1 < cps.length && GREEK_RE.test(String.fromCodePoint(cps[i + 1]));
  if (cp === 0x05f3 || cp === 0x05f4) return i > 0 && HEBREW_RE.test(String.fromCodePoint(cps[i - 1]));
  if (cp === 0x30fb) return KANA_HAN_RE.test(s);
  if (cp >= 0x0660 && cp <= 0x0669) return !cps.some((c) => c >= 0x06f0 && c <= 0x06f9);
  if (cp >= 0x06f0 && cp <= 0x06f9) return !cps.some((c) => c >= 0x0660 && c <= 0x0669);
  return false;
}

type StringClass = "IdentifierClass" | "FreeformClass";

function checkClass(s: string, stringClass: StringClass): void {
  const cps = codePoints(s);
  for (let i = 0; i < cps.length; i++) {
    const cp = cps[i];
    switch (propertyOf(cp)) {
      case PVALID:
        break;
      case FREE_PVAL:
        if (stringClass === "FreeformClass") break;
        throw new PrecisError("disallowed", `${hex(cp)} is not allowed in the ${stringClass}`);
      case CONTEXTJ:
        if (joinerAllowed(cps, i)) break;
        throw new PrecisError("context", `${hex(cp)} is not allowed in this context (RFC 5892 A.1/A.2)`);
      case CONTEXTO:
        if (contextOAllowed(cps, i, s)) break;
        throw new PrecisError("context", `${hex(cp)} is not allowed in this context (RFC 5892 Appendix A)`);
      case UNASSIGNED:
        throw new PrecisError("unassigned", `${hex(cp)} is unassigned`);
      default:
        throw new PrecisError("disallowed", `${hex(cp)} is not allowed in the ${stringClass}`);
    }
  }
}

// ---- Bidi Rule (RFC 5893 §2) ----

// R stands for both R and AL: the rule never tells them apart.
type BidiClass = "L" | "R" | "AN" | "EN" | "ES" | "CS" | "ET" | "ON" | "BN" | "NSM";

// U+0020..U+007F; control characters never reach the Bidi Rule.
const ASCII_BIDI: readonly BidiClass[] = (() => {
  const classes: BidiClass[] = [];
  for (let cp = 0; cp < 0x80; cp++) {
    const ch = String.fromCharCode(cp);
    if (/[0-9]/.test(ch)) classes.push("EN");
    else if (/[A-Za-z]/.test(ch)) classes.push("L");
    else if (ch === "+" || ch === "-") classes.push("ES");
    else if (ch === "#" || ch === "$" || ch === "%") classes.push("ET");
    else if (ch === "," || ch === "." || ch === "/" || ch === ":") classes.push("CS");
    else classes.push("ON");
  }
  return classes;
})();

// Code points the IdentifierClass allows, by Bidi_Class (Unicode 15.0 DerivedBidiClass.txt);
// ranges may span code points the class refuses, which never reach bidiClass(). AN:
const ARABIC_NUMBER_RANGES: readonly number[] = [
  0x660, 0x669, 0x10d30, 0x10d39,
];
// Modifier letters and marks whose class differs from their General_Category's usual one:
const OTHER_NEUTRAL_RANGES: readonly number[] = [
  0xb7, 0xb7, 0x2b9, 0x2ba, 0x2c6, 0x2cf, 0x2ec, 0x2ec, 0x375, 0x375, 0x2e2f, 0x2e2f, 0x30fb, 0x30fb,
  0xa67f, 0xa67f, 0xa717, 0xa71f, 0xa788, 0xa788,
];
const LEFT_TO_RIGHT_MARK_RANGES: readonly number[] = [0xcbf, 0xcbf, 0xcc6, 0xcc6, 0x11a07, 0x11a08, 0x11c3f, 0x11c3f];
// EN:
const EUROPEAN_NUMBER_RANGES: readonly number[] = [
  0x6f0, 0x6f9,
];
// R or AL:
const RIGHT_TO_LEFT_RANGES: readonly number[] = [
  0x5d0, 0x8c9, 0xfe73, 0xfe73, 0x10800, 0x10ff6, 0x1e800, 0x1e959,
];

function inRanges(ranges: readonly number[], cp: number): boolean {
  let lo = 0;
  let hi = ranges.length / 2 - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (cp < ranges[2 * mid]) hi = mid - 1;
    else if (cp > ranges[2 * mid + 1]) lo = mid + 1;
    else return true;
  }
  return false;
}

const NSM_RE = /^[\p{Mn}\p{Me}]$/u;

/** Bidi_Class of a code point that the IdentifierClass allows (see the note at the top). */
function bidiClass(cp: number): BidiClass {
  if (cp < 0x80) return ASCII_BIDI[cp];
  if (cp === 0x200c || cp === 0x200d) return "BN";
  if (inRanges(ARABIC_NUMBER_RANGES, cp)) return "AN";
  if (inRanges(EUROPEAN_NUMBER_RANGES, cp)) return "EN";
  if (inRanges(OTHER_NEUTRAL_RANGES, cp)) return "ON";
  if (inRanges(LEFT_TO_RIGHT_MARK_RANGES, cp)) return "L";
  if (NSM_RE.test(String.fromCodePoint(cp))) return "NSM";
  if (inRanges(RIGHT_TO_LEFT_RANGES, cp)) return "R";
  return "L";
}

const RTL_ALLOWED = new Set<BidiClass>(["R", "AN", "EN", "ES", "CS", "ET", "ON", "BN", "NSM"]);
const LTR_ALLOWED = new Set<BidiClass>(["L", "EN", "ES", "CS", "ET", "ON", "BN", "NSM"]);

function checkBidiRule(s: string): void {
  const classes = codePoints(s).map(bidiClass);
  if (!classes.some((c) => c === "R" || c === "AN")) return; // no right-to-left code points
  const fail = (rule: number) => new PrecisError("bidi", `violates condition ${rule} of the Bidi Rule (RFC 5893 §2)`);
  const first = classes[0];
  if (first !== "L" && first !== "R") throw fail(1);
  const allowed = first === "R" ? RTL_ALLOWED : LTR_ALLOWED;
  if (!classes.every((c) => allowed.has(c))) throw fail(first === "R" ? 2 : 5);
  let last = classes.length - 1;
  while (last > 0 && classes[last] === "NSM") last--;
  const end = classes[last];
  if (first === "R") {
    if (end !== "R" && end !== "EN" && end !== "AN") throw fail(3);
    if (classes.includes("EN") && classes.includes("AN")) throw fail(4);
  } else if (end !== "L" && end !== "EN") {
    throw fail(6);
  }
}

// ---- Mapping rules ----

const WIDE_OR_NARROW_RE = /[\u3000\uff01-\uffee]/g;
const NON_ASCII_SPACE_RE = /[^\P{Zs} ]/gu;

function mapWidth(s: string): string {
  return s.replace(WIDE_OR_NARROW_RE, (ch) => ch.normalize("NFKD"));
}

function toLower(s: string): string {
  return s.replaceAll("\u03a3", "\u03c3").toLowerCase();
}

function mustNotBeEmpty(s: string, what: string): string {
  if (s.length === 0) throw new PrecisError("empty", `${what} must not be empty`);
  return s;
}

// ---- Profiles ----

const PRINTABLE_ASCII_NO_SPACE = /^[\x21-\x7e]+$/;
const PRINTABLE_ASCII = /^[\x20-\x7e]+$/;

// RFC 8265 §5 and RFC 8266 §4: the rules are not idempotent for every code point, so they are applied until the
// output is stable, giving up after three further passes. Each pass checks its own input, so
// what we return has itself passed every rule.
function untilStable(s: string, rules: (s: string) => string): string {
  let current = s;
  for (let pass = 0; pass < 4; pass++) {
    const next = rules(current);
    if (next === current) return next;
    current = next;
  }
  throw new PrecisError("unstable", "the string does not stabilise under its PRECIS profile");
}

function usernameRules(s: string, mapCase: boolean): string {
  mustNotBeEmpty(s, "a username");
  const prepared = mapWidth(s);
  checkClass(prepared, "IdentifierClass");
  const enforced = (mapCase ? toLower(prepared) : prepared).normalize("NFC");
  checkBidiRule(enforced);
  return mustNotBeEmpty(enforced, "a username");
}

/** RFC 8265 §3.3 UsernameCaseMapped enforcement of one userpart (a JID localpart). */
export function usernameCaseMapped(s: string): string {
  // Printable ASCII without space is all PVALID, NFC-stable and left-to-right.
  if (PRINTABLE_ASCII_NO_SPACE.test(s)) return s.toLowerCase();
  return untilStable(s, (current) => usernameRules(current, true));
}

/** RFC 8265 §3.4 UsernameCasePreserved enforcement of one userpart. */
export function usernameCasePreserved(s: string): string {
  if (PRINTABLE_ASCII_NO_SPACE.test(s)) return s;
  return untilStable(s, (current) => usernameRules(current, false));
}

function opaqueStringRules(s: string): string {
  mustNotBeEmpty(s, "an opaque string");
  checkClass(s, "FreeformClass");
  return mustNotBeEmpty(s.replace(NON_ASCII_SPACE_RE, " ").normalize("NFC"), "an opaque string");
}

/** RFC 8265 §4.2 OpaqueString enforcement (passwords, JID resourceparts). */
export function opaqueString(s: string): string {
  if (PRINTABLE_ASCII.test(s)) return s;
  return untilStable(s, opaqueStringRules);
}

function nicknameRules(s: string, mapCase: boolean): string {
  mustNotBeEmpty(s, "a nickname");
  checkClass(s, "FreeformClass");
  let mapped = s.replace(NON_ASCII_SPACE_RE, " ").replace(/^ +| +$/g, "").replace(/ {2,}/g, " ");
  if (mapCase) mapped = toLower(mapped);
  return mustNotBeEmpty(mapped.normalize("NFKC"), "a nickname");
}

/** RFC 8266 §2.3 Nickname enforcement: the form to store and display (case preserved). */
export function nickname(s: string): string {
  return untilStable(s, (current) => nicknameRules(current, false));
}

/** RFC 8266 §2.4 Nickname comparison key: two nicknames are equivalent iff their keys are equal. */
export function nicknameKey(s: string): string {
  return untilStable(s, (current) => nicknameRules(current, true));
}
