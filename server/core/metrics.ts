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
  readonly type: "counter" | "gauge";
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
