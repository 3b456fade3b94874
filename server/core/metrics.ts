// Prometheus text exposition format 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/):
// a tiny registry of counters and gauges, without a dependency. The router and c2s increment
// the process-wide counters below; per-server values (connections, sessions) are gauges whose
// value is read when /metrics is scraped, so nothing has to keep them in step.
export type Labels = Readonly<Record<string, string>>;

/** Label values escaped as the format requires: backslash, double quote and newline. */
function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** Keys of label sets a caller keeps and passes again (a hot path's constant labels). */
const keyCache = new WeakMap<Labels, string>();

function labelKey(labels: Labels): string {
  const cached = keyCache.get(labels);
  if (cached !== undefined) return cached;
  const key = computeLabelKey(labels);
  if (Object.isFrozen(labels)) keyCache.set(labels, key);
  return key;
}

function computeLabelKey(labels: Labels): string {
  const keys = Object.keys(labels).sort();
  if (keys.length === 0) return "";
  return `{${keys.map((k) => `${k}="${escapeLabelValue(labels[k])}"`).join(",")}}`;
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

interface Metric {
  readonly name: string;
  readonly help: string;
  readonly type: "counter" | "gauge" | "histogram";
  samples(): Array<[key: string, value: number]>;
}

export class Counter implements Metric {
  readonly type = "counter";
  private readonly values = new Map<string, number>();
  constructor(readonly name: string, readonly help: string) {}

  inc(labels: Labels = {}, by = 1): void {
    if (!(by >= 0)) throw new RangeError(`${this.name}: a counter only goes up`);
    const key = labelKey(labels);
    this.values.set(key, (this.values.get(key) ?? 0) + by);
  }

  get(labels: Labels = {}): number {
    return this.values.get(labelKey(labels)) ?? 0;
  }

  samples(): Array<[string, number]> {
    return [...this.values];
  }
}

/** A value read when scraped: `collect` returns one number, or one per label set. */
export type GaugeCollector = () => number | Array<[Labels, number]>;

export class Gauge implements Metric {
  readonly type = "gauge";
  private readonly values = new Map<string, number>();
  constructor(readonly name: string, readonly help: string, private readonly collect?: GaugeCollector) {}

  set(value: number, labels: Labels = {}): void {
    this.values.set(labelKey(labels), value);
  }

  samples(): Array<[string, number]> {
    if (!this.collect) return [...this.values];
    const out = this.collect();
    return typeof out === "number" ? [["", out]] : out.map(([labels, value]) => [labelKey(labels), value]);
  }
}

/**
 * A distribution: counts per bucket (cumulative, `le` upper bounds), the sum and the count, in
 * the exposition format's histogram shape. One series per label set.
 */
export class Histogram implements Metric {
  readonly type = "histogram";
  private readonly series = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly buckets: readonly number[],
  ) {
    for (let i = 1; i < buckets.length; i++) if (!(buckets[i]! > buckets[i - 1]!)) throw new Error(`${name}: buckets must increase`);
  }

  observe(value: number, labels: Labels = {}): void {
    const key = labelKey(labels);
    let s = this.series.get(key);
    if (!s) this.series.set(key, (s = { labels, counts: new Array<number>(this.buckets.length).fill(0), sum: 0, count: 0 }));
    // Only the first bucket that holds the value is counted here; render() accumulates.
    const i = this.buckets.findIndex((b) => value <= b);
    if (i >= 0) s.counts[i]!++;
    s.sum += value;
    s.count++;
  }

  samples(): Array<[string, number]> {
    const out: Array<[string, number]> = [];
    for (const s of this.series.values()) {
      let running = 0;
      this.buckets.forEach((b, i) => {
        running += s.counts[i]!;
        out.push([`_bucket${labelKey({ ...s.labels, le: formatValue(b) })}`, running]);
      });
      out.push([`_bucket${labelKey({ ...s.labels, le: "+Inf" })}`, s.count]);
      out.push([`_sum${labelKey(s.labels)}`, s.sum]);
      out.push([`_count${labelKey(s.labels)}`, s.count]);
    }
    return out;
  }
}

export class MetricsRegistry {
  private readonly metrics = new Map<string, Metric>();

  private add<M extends Metric>(metric: M): M {
    if (!METRIC_NAME.test(metric.name)) throw new Error(`invalid metric name ${metric.name}`);
    if (this.metrics.has(metric.name)) throw new Error(`metric ${metric.name} is already registered`);
    this.metrics.set(metric.name, metric);
    return metric;
  }

  counter(name: string, help: string): Counter {
    return this.add(new Counter(name, help));
  }

  gauge(name: string, help: string, collect?: GaugeCollector): Gauge {
    return this.add(new Gauge(name, help, collect));
  }

  histogram(name: string, help: string, buckets: readonly number[]): Histogram {
    return this.add(new Histogram(name, help, buckets));
  }

  /** Every metric in the text format; a collector that throws leaves only its own metric out. */
  render(): string {
    let text = "";
    for (const metric of this.metrics.values()) {
      let samples: Array<[string, number]>;
      try {
        samples = metric.samples();
      } catch {
        continue;
      }
      text += `# HELP ${metric.name} ${metric.help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}\n# TYPE ${metric.name} ${metric.type}\n`;
      for (const [key, value] of samples) text += `${metric.name}${key} ${formatValue(value)}\n`;
    }
    return text;
  }
}

/** The process-wide registry: what the router, c2s and modules count. */
export const metrics = new MetricsRegistry();

/** Stanzas the router was given, by kind (message, presence, iq). */
export const stanzasRouted = metrics.counter("parley_stanzas_routed_total", "Stanzas routed, by kind.");
/** Failed SASL attempts. */
export const authFailures = metrics.counter("parley_auth_failures_total", "Failed authentication attempts.");

/** How long the router took over a stanza, from being handed it to its last handler or delivery. */
export const routingDuration = metrics.histogram(
  "parley_routing_duration_seconds",
  "Time to route one stanza (handlers, storage, delivery), by kind.",
  [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
);
/** Top-level stanzas read from clients and written to them, by transport. */
export const stanzasIn = metrics.counter("parley_stanzas_in_total", "Stanzas received from clients, by transport.");
export const stanzasOut = metrics.counter("parley_stanzas_out_total", "Stanzas sent to clients, by transport.");
/** Stream errors Parley sent to clients, by condition; stanza errors the router bounced, by condition. */
export const streamErrors = metrics.counter("parley_stream_errors_total", "Stream errors sent to clients, by condition.");
export const stanzaErrors = metrics.counter("parley_stanza_errors_total", "Stanzas the router bounced with an error (unroutable, unanswered), by condition.");
/** Group-commit batches (storage/writer.ts): their size, and those that failed. */
export const storageBatchOperations = metrics.histogram(
  "parley_storage_batch_operations",
  "Write operations committed together in one storage batch.",
  [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000],
);
export const storageBatchFailures = metrics.counter("parley_storage_batch_failures_total", "Storage batches whose commit failed.");

/**
 * Label sets made once per value (the counters cache the key of a frozen label set), found by
 * name and then value: no key string is built for the lookup, which runs several times a stanza.
 */
const labelSets = new Map<string, Map<string, Labels>>();
let labelSetCount = 0;
export function labelsOf(name: string, value: string): Labels {
  let byValue = labelSets.get(name);
  if (!byValue) labelSets.set(name, (byValue = new Map()));
  let labels = byValue.get(value);
  if (!labels) {
    // Bounded: values come from a fixed vocabulary in practice.
    if (labelSetCount >= 1000) {
      for (const values of labelSets.values()) values.clear();
      labelSetCount = 0;
    }
    labels = Object.freeze({ [name]: value });
    byValue.set(value, labels);
    labelSetCount++;
  }
  return labels;
}
