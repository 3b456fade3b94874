// Archive UIDs for XEP-0313 v0.7 §3 ("a server-assigned UID that MUST be unpredictable and
// unique within the archive"), used as XEP-0359 v0.7 stanza-ids.
//
// An id is 26 characters from an alphabet in ASCII order: 10 for the millisecond it was made,
// 16 (80 bits) that start random in each millisecond and grow by a random step within it. So
// ids sort in the order they were made, even several in one millisecond, and cannot be guessed
// from one another. The clock never runs backwards here: after the system clock steps back,
// ids (and the timestamps handed out with them) stay at the last millisecond until it catches up,
// which keeps the archive's id order the order messages arrived in (XEP-0313 §3.1).
//
// The archive (archive.ts) relies on this: an archived message's ts is the millisecond of its
// id's first 10 characters (timeOfArchiveId), so ordering by id is ordering by (ts, id), and a
// time range is a range of ids (firstArchiveIdOf / lastArchiveIdOf).
import { randomBytes } from "node:crypto";

const ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz";
const TIME_CHARS = 10;
/** The 80 random bits are kept as two 40-bit halves in plain numbers (BigInt arithmetic was 4% of an archived message's CPU). */
const HALF_CHARS = 8;
const HALF = 2 ** 40;
/** Steps within one millisecond stay far below the space left, so a millisecond never runs out in practice. */
const STEP_BYTES = 4;

export interface ArchiveStamp {
  id: string;
  /** Milliseconds since the epoch; never less than the previous stamp's. */
  ts: number;
}

export const ARCHIVE_ID_PATTERN = /^[0-9a-hjkmnp-tv-z]{26}$/;

/** The last millisecond an id can name: 10 characters of 5 bits (about the year 37,600). */
export const MAX_ARCHIVE_ID_TIME = 32 ** TIME_CHARS - 1;

/** The millisecond an archive id was made in (its first 10 characters); NaN for a string that is not an archive id. */
export function timeOfArchiveId(id: string): number {
  // Checked and decoded in one pass with a table (every archived row is checked, on both threads).
  if (id.length !== ID_CHARS) return NaN;
  let ms = 0;
  for (let i = 0; i < ID_CHARS; i++) {
    const code = charCodeAt.call(id, i);
    const digit = code < 128 ? DIGIT[code]! : -1;
    if (digit < 0) return NaN;
    if (i < TIME_CHARS) ms = ms * 32 + digit;
  }
  return ms;
}

const ID_CHARS = TIME_CHARS + 2 * HALF_CHARS;
/** Called, not looked up on each id: see charCodeAt in protocol/xml/serialize.ts. */
const charCodeAt = String.prototype.charCodeAt;
/** Each ASCII code's value in ALPHABET, -1 for a character that is not in it. */
const DIGIT = new Int8Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) DIGIT[ALPHABET.charCodeAt(i)] = i;

/** Whether `id` is an archive id made in the millisecond `ts`: the contract of every archived row. */
export function isArchiveStamp(id: string, ts: number): boolean {
  return timeOfArchiveId(id) === ts;
}

/** The smallest id of millisecond `ms` (an integer from 0 to MAX_ARCHIVE_ID_TIME): ids of `ms` or later are >= it. */
export function firstArchiveIdOf(ms: number): string {
  return encode(checkedTime(ms), TIME_CHARS) + ALPHABET[0]!.repeat(2 * HALF_CHARS);
}

/** The largest id of millisecond `ms` (an integer from 0 to MAX_ARCHIVE_ID_TIME): ids of `ms` or earlier are <= it. */
export function lastArchiveIdOf(ms: number): string {
  return encode(checkedTime(ms), TIME_CHARS) + ALPHABET[ALPHABET.length - 1]!.repeat(2 * HALF_CHARS);
}

function checkedTime(ms: number): number {
  if (!Number.isInteger(ms) || ms < 0 || ms > MAX_ARCHIVE_ID_TIME) throw new RangeError(`${ms} is not a millisecond an archive id can name`);
  return ms;
}

export class ArchiveIdGenerator {
  #lastMs = 0;
  #lastHi = 0;
  #lastLo = 0;
  readonly #clock: () => number;

  constructor(clock: () => number = Date.now) {
    this.#clock = clock;
  }

  next(): ArchiveStamp {
    let ms = Math.max(Math.trunc(this.#clock()), this.#lastMs);
    let hi: number;
    let lo: number;
    if (ms === this.#lastMs) {
      lo = this.#lastLo + 1 + randomInt(STEP_BYTES);
      hi = this.#lastHi;
      if (lo >= HALF) {
        lo -= HALF;
        hi += 1;
      }
      if (hi >= HALF) {
        // Billions of ids in one millisecond: borrow the next one.
        ms += 1;
        hi = randomInt(4);
        lo = randomInt(5);
      }
    } else {
      // 72 random bits: the upper part of the space is left for the steps of this millisecond.
      hi = randomInt(4);
      lo = randomInt(5);
    }
    this.#lastMs = ms;
    this.#lastHi = hi;
    this.#lastLo = lo;
    return { id: encode(ms, TIME_CHARS) + encode(hi, HALF_CHARS) + encode(lo, HALF_CHARS), ts: ms };
  }
}

// Random bytes are drawn from a pool refilled 4 KiB at a time: one randomBytes() call per id was
// the largest storage frame of the archived-chat profile (bench/ANALYSIS.md).
const POOL_SIZE = 4096;
let pool = randomBytes(POOL_SIZE);
let poolOffset = 0;

/** An unsigned integer from `bytes` (at most 6) random bytes. */
function randomInt(bytes: number): number {
  if (poolOffset + bytes > POOL_SIZE) {
    pool = randomBytes(POOL_SIZE);
    poolOffset = 0;
  }
  let value = 0;
  for (let i = 0; i < bytes; i++) value = value * 256 + pool[poolOffset + i]!;
  pool.fill(0, poolOffset, poolOffset + bytes);
  poolOffset += bytes;
  return value;
}

/** `value` (a non-negative integer below 32^width) in `width` characters of ALPHABET. */
function encode(value: number, width: number): string {
  let out = "";
  for (let i = 0; i < width; i++) {
    out = ALPHABET[value % 32] + out;
    value = Math.floor(value / 32);
  }
  return out;
}
