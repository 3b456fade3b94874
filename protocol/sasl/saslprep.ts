// RFC 4013 SASLprep: the stringprep (RFC 3454) profile for user names and passwords.
// Steps, in RFC 3454 §3-§6 order: map (B.1 to nothing, C.1.2 to U+0020), normalize (NFKC),
// prohibit (C.1.2, C.2.1, C.2.2, C.3-C.9), check bidi (RFC 3454 §6), and, for stored strings
// only, refuse code points unassigned in Unicode 3.2 (RFC 3454 §7).
//
// Approximation: NFKC comes from the runtime's ICU (a current Unicode version), not Unicode 3.2.
// Checked against a Unicode 3.2 reference one code point at a time, the two differ only on the
// five CJK compatibility ideographs Unicode Corrigendum #4 fixed (U+2F868, U+2F874, U+2F91F,
// U+2F95F, U+2F9BF), where we follow the corrected mapping. Query strings may also carry
// characters assigned after 3.2, which current NFKC may fold where 3.2 would leave them alone.
import {
  ASCII_CONTROL_C21,
  DISPLAY_PROPERTY_C8,
  LCAT_D2,
  MAPPED_TO_NOTHING_B1,
  NON_ASCII_CONTROL_C22,
  NON_ASCII_SPACE_C12,
  NON_CHARACTER_C4,
  NOT_CANONICAL_C7,
  NOT_PLAIN_TEXT_C6,
  PRIVATE_USE_C3,
  RANDALCAT_D1,
  SURROGATE_C5,
  TAGGING_C9,
  UNASSIGNED_A1,
} from "./saslprep-tables.ts";

export type SaslprepFailure = "prohibited" | "unassigned" | "bidi";

export class SaslprepError extends Error {
  override readonly name = "SaslprepError";
  constructor(
    readonly reason: SaslprepFailure,
    readonly codePoint: number | undefined,
    message: string,
  ) {
    super(message);
  }
}

export interface SaslprepOptions {
  /**
   * True for "queries" (RFC 3454 §7): a password typed at login may hold characters newer than
   * Unicode 3.2, such as emoji. False (the default) for "stored strings", which must not.
   */
  allowUnassigned?: boolean;
}

// Printable ASCII is left unchanged by every step, so most names and passwords skip the tables.
const PRINTABLE_ASCII = /^[\x20-\x7E]*$/;

/** RFC 4013 SASLprep; throws SaslprepError when the string may not be used. */
export function saslprep(input: string, opts: SaslprepOptions = {}): string {
  if (PRINTABLE_ASCII.test(input)) return input;
  const allowUnassigned = opts.allowUnassigned ?? false;

  let mapped = "";
  for (const char of input) {
    const cp = char.codePointAt(0)!;
    if (!allowUnassigned && inRanges(UNASSIGNED_A1, cp)) {
      throw new SaslprepError("unassigned", cp, `unassigned code point ${hex(cp)} in a stored string`);
    }
    // U+200B is in both B.1 and C.1.2; a zero-width space mapped to a visible one would surprise.
    if (inRanges(MAPPED_TO_NOTHING_B1, cp)) continue;
    mapped += inRanges(NON_ASCII_SPACE_C12, cp) ? " " : char;
  }

  const normalized = mapped.normalize("NFKC");
  const codePoints = Array.from(normalized, (c) => c.codePointAt(0)!);
  let hasRandAL = false;
  let hasL = false;
  for (const cp of codePoints) {
    if (inRanges(PROHIBITED_OUTPUT, cp)) {
      throw new SaslprepError("prohibited", cp, `prohibited code point ${hex(cp)}`);
    }
    if (inRanges(RANDALCAT_D1, cp)) hasRandAL = true;
    else if (inRanges(LCAT_D2, cp)) hasL = true;
  }

  // RFC 3454 §6: right-to-left text must be wholly right-to-left at both ends and hold no
  // left-to-right characters, so that it displays the same way everywhere.
  if (hasRandAL) {
    if (hasL) throw new SaslprepError("bidi", undefined, "mixes right-to-left and left-to-right characters");
    const first = codePoints[0]!;
    const last = codePoints[codePoints.length - 1]!;
    if (!inRanges(RANDALCAT_D1, first) || !inRanges(RANDALCAT_D1, last)) {
      throw new SaslprepError("bidi", undefined, "right-to-left text must start and end with a right-to-left character");
    }
  }
  return normalized;
}

/** Binary search in a flat, sorted list of inclusive ranges [start0, end0, start1, end1, ...]. */
export function inRanges(table: readonly number[], cp: number): boolean {
  let low = 0;
  let high = table.length / 2 - 1;
  while (low <= high) {
    const mid = (low + high) >> 1;
    if (cp < table[2 * mid]!) high = mid - 1;
    else if (cp > table[2 * mid + 1]!) low = mid + 1;
    else return true;
  }
  return false;
}

function mergeRanges(tables: readonly (readonly number[])[]): number[] {
  const pairs: [number, number][] = [];
  for (const table of tables) {
    for (let i = 0; i < table.length; i += 2) pairs.push([table[i]!, table[i + 1]!]);
  }
  pairs.sort((a, b) => a[0] - b[0]);
  const merged: number[] = [];
  for (const [start, end] of pairs) {
    const lastEnd = merged[merged.length - 1];
    if (lastEnd !== undefined && start <= lastEnd + 1) merged[merged.length - 1] = Math.max(lastEnd, end);
    else merged.push(start, end);
  }
  return merged;
}

// RFC 4013 §2.3: everything SASLprep prohibits in its output.
const PROHIBITED_OUTPUT = mergeRanges([
  NON_ASCII_SPACE_C12,
  ASCII_CONTROL_C21,
  NON_ASCII_CONTROL_C22,
  PRIVATE_USE_C3,
  NON_CHARACTER_C4,
  SURROGATE_C5,
  NOT_PLAIN_TEXT_C6,
  NOT_CANONICAL_C7,
  DISPLAY_PROPERTY_C8,
  TAGGING_C9,
]);

function hex(cp: number): string {
  return "U+" + cp.toString(16).toUpperCase().padStart(4, "0");
}
