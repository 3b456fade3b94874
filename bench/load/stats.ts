// Summaries of what the benchmark measured: percentiles by the nearest-rank method over every
// sample (no histogram buckets, no sampling), so a p99 of 100,000 messages is the 99,000th
// smallest latency and the max is the real worst case.

/** A growable list of numbers, sorted once when a summary is asked for. */
export class Samples {
  private data = new Float64Array(1024);
  private length = 0;
  private sorted = true;

  constructor(private readonly cap = 20_000_000) {}

  get count(): number {
    return this.length;
  }

  add(value: number): void {
    if (this.length === this.data.length) {
      if (this.length >= this.cap) return; // beyond the cap samples are dropped, never the process
      const bigger = new Float64Array(Math.min(this.cap, this.data.length * 2));
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.length++] = value;
    this.sorted = false;
  }

  /** Nearest-rank percentile (0 < p <= 100); NaN without samples. */
  percentile(p: number): number {
    if (this.length === 0) return NaN;
    this.sort();
    return this.data[nearestRank(this.length, p)];
  }

  max(): number {
    if (this.length === 0) return NaN;
    this.sort();
    return this.data[this.length - 1];
  }

  summary(): LatencySummary {
    return { count: this.length, p50: this.percentile(50), p90: this.percentile(90), p99: this.percentile(99), max: this.max() };
  }

  private sort(): void {
    if (this.sorted) return;
    this.data.subarray(0, this.length).sort();
    this.sorted = true;
  }
}

export interface LatencySummary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** Index of the nearest-rank p-th percentile in a sorted list of n values. */
export function nearestRank(n: number, p: number): number {
  return Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1));
}

/** Median with min and max, for a value measured once per round. */
export interface Spread {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function spread(values: readonly number[]): Spread | null {
  const finite = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (finite.length === 0) return null;
  const mid = finite.length >> 1;
  const median = finite.length % 2 === 1 ? finite[mid] : (finite[mid - 1] + finite[mid]) / 2;
  return { median, min: finite[0], max: finite[finite.length - 1], n: finite.length };
}
