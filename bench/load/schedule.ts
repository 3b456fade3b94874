// The open-loop send schedule of the chat benchmark: message k is due at start + k/rate, whether
// or not earlier messages have been answered, so a slow server cannot slow the offered load down
// (the "coordinated omission" of closed-loop generators). A message the generator could only send
// late is still stamped with the time it was due, and its latency includes the delay.

export class OpenLoopSchedule {
  readonly intervalMs: number;

  constructor(
    /** Messages per second, summed over every sender. */
    readonly rate: number,
    /** performance.now() of message 0. */
    readonly startMs: number,
    /** How many messages in all. */
    readonly total: number,
  ) {
    if (!(rate > 0) || !Number.isFinite(rate)) throw new RangeError(`rate must be a positive number, got ${rate}`);
    if (!Number.isSafeInteger(total) || total < 0) throw new RangeError(`total must be a whole number, got ${total}`);
    this.intervalMs = 1000 / rate;
  }

  /** When message k is due. */
  dueAt(k: number): number {
    return this.startMs + k * this.intervalMs;
  }

  /** How many messages are due by `nowMs` (0..total). */
  dueBy(nowMs: number): number {
    if (nowMs < this.startMs) return 0;
    return Math.min(this.total, Math.floor((nowMs - this.startMs) / this.intervalMs) + 1);
  }

  /** The message count for sending at `rate` for `durationMs`. */
  static countFor(rate: number, durationMs: number): number {
    return Math.max(1, Math.round((rate * durationMs) / 1000));
  }
}

/** The rates find-max mode tries: from `start`, each `factor` times the last, up to `limit`. */
export function rampRates(start: number, factor: number, limit: number, maxSteps = 64): number[] {
  if (!(start > 0) || !(factor > 1) || !(limit >= start)) throw new RangeError("ramp needs start > 0, factor > 1 and limit >= start");
  const rates: number[] = [];
  for (let r = start; r <= limit * 1.0001 && rates.length < maxSteps; r *= factor) rates.push(roundRate(r));
  return [...new Set(rates)];
}

/** Two significant figures: 1,414 becomes 1,400, so the steps read as round numbers. */
export function roundRate(r: number): number {
  const magnitude = 10 ** Math.max(0, Math.floor(Math.log10(r)) - 1);
  return Math.round(r / magnitude) * magnitude;
}
