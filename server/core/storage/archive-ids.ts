// Archive UIDs for XEP-0313 v0.7 §3 ("a server-assigned UID that MUST be unpredictable and
// unique within the archive"), used as XEP-0359 v0.7 stanza-ids.
//
// An id is 26 characters from an alphabet in ASCII order: 10 for the millisecond it was made,
// 16 (80 bits) that start random in each millisecond and grow by a random step within it. So
// ids sort in the order they were made, even several in one millisecond, and cannot be guessed
// from one another. The clock never runs backwards here: after the system clock steps back,
// ids (and the timestamps handed out with them) stay at the last millisecond until it catches up,
// which keeps the archive's (ts, id) order the order messages arrived in (XEP-0313 §3.1).
import { randomBytes } from "node:crypto";

const ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz";
const TIME_CHARS = 10;
const RANDOM_CHARS = 16;
const RANDOM_BITS = BigInt(RANDOM_CHARS * 5);
const RANDOM_LIMIT = 1n << RANDOM_BITS;
/** Steps within one millisecond stay far below the space left, so a millisecond never runs out in practice. */
const STEP_BYTES = 4;

export interface ArchiveStamp {
  id: string;
  /** Milliseconds since the epoch; never less than the previous stamp's. */
  ts: number;
}

export const ARCHIVE_ID_PATTERN = /^[0-9a-hjkmnp-tv-z]{26}$/;

export class ArchiveIdGenerator {
  #lastMs = 0;
  #lastRandom = 0n;
  readonly #clock: () => number;

  constructor(clock: () => number = Date.now) {
    this.#clock = clock;
  }

  next(): ArchiveStamp {
    let ms = Math.max(Math.trunc(this.#clock()), this.#lastMs);
    let random: bigint;
    if (ms === this.#lastMs) {
      random = this.#lastRandom + 1n + randomBigInt(STEP_BYTES);
      if (random >= RANDOM_LIMIT) {
        // Billions of ids in one millisecond: borrow the next one.
        ms += 1;
        random = randomBigInt(RANDOM_CHARS * 5 / 8 - 1);
      }
    } else {
      // Leaves the upper half of the space for the steps of this millisecond.
      random = randomBigInt(RANDOM_CHARS * 5 / 8 - 1);
    }
    this.#lastMs = ms;
    this.#lastRandom = random;
    return { id: encode(BigInt(ms), TIME_CHARS) + encode(random, RANDOM_CHARS), ts: ms };
  }
}

// Random bytes are drawn from a pool refilled 4 KiB at a time: one randomBytes() call per id was
// the largest storage frame of the archived-chat profile (bench/ANALYSIS.md).
const POOL_SIZE = 4096;
let pool = randomBytes(POOL_SIZE);
let poolOffset = 0;

function randomBigInt(bytes: number): bigint {
  if (poolOffset + bytes > POOL_SIZE) {
    pool = randomBytes(POOL_SIZE);
    poolOffset = 0;
  }
  let value = 0n;
  for (let i = 0; i < bytes; i++) value = (value << 8n) | BigInt(pool[poolOffset + i]!);
  pool.fill(0, poolOffset, poolOffset + bytes);
  poolOffset += bytes;
  return value;
}

function encode(value: bigint, width: number): string {
  let out = "";
  for (let i = 0; i < width; i++) {
    out = ALPHABET[Number(value & 31n)] + out;
    value >>= 5n;
  }
  return out;
}
