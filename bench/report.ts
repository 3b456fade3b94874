// Turns generator reports into the tables `npm run bench` prints and `npm run bench:compare`
// writes to bench/RESULTS.md: one row per measured quantity, one column per server and storage,
// each cell the median of the rounds with min–max, plus Parley's ratio to the better reference.
import type { GeneratorReport, MucSizeResult } from "./generator.ts";
import type { ChatStepResult } from "./scenarios/chat.ts";
import type { MucStepResult } from "./scenarios/muc.ts";
import type { LoginBatchResult } from "./scenarios/login.ts";
import { spread, type Spread } from "./load/stats.ts";

/** Everything measured against one server configuration in one round. */
export interface RunRecord {
  /** "Prosody", "ejabberd", "Parley". */
  server: string;
  storage: string;
  round: number;
  /** 1-minute load average when the round started. */
  load: number;
  login?: GeneratorReport["login"];
  chat?: GeneratorReport["chat"];
  muc?: GeneratorReport["muc"];
  /** Scenarios that could not run, with the reason ("muc": "not available: issue 7"). */
  unavailable: Record<string, string>;
}

export type Better = "higher" | "lower";

export interface Metric {
  id: string;
  label: string;
  unit: string;
  better: Better;
  value(r: RunRecord): number | null;
  /** Decimal places shown. */
  digits: number;
}

function variant(r: RunRecord, name: "archive" | "no-store") {
  return r.chat?.variants.find((v) => v.variant === name) ?? null;
}

function maxRate(r: RunRecord, name: "archive" | "no-store"): number | null {
  const v = variant(r, name);
  if (!v?.findMax) return null;
  return v.findMax.maxPassingRate ?? 0;
}

function bestStep(r: RunRecord, name: "archive" | "no-store"): ChatStepResult | null {
  return variant(r, name)?.findMax?.best ?? null;
}

function num(v: number | null | undefined): number | null {
  return v === null || v === undefined || !Number.isFinite(v) ? null : v;
}

function idleAt(r: RunRecord, n: number): number | null {
  const point = r.login?.idle.find((p) => p.connections >= n * 0.95 && p.connections <= n);
  return num(point?.perConnectionKiB);
}

/**
 * RSS growth per connection between the 1,000 and the 10,000 idle points of one run: no baseline
 * enters it, so a heap the runtime had not yet given back before the first connection (V8's young
 * generation, tens of MB) cannot move it.
 */
export function idleGrowth(r: RunRecord): number | null {
  const points = r.login?.idle ?? [];
  const low = points.find((p) => p.connections >= 950 && p.connections <= 1000);
  const high = points.find((p) => p.connections >= 9500 && p.connections <= 10000);
  if (!low || !high || low.serverRssKiB === null || high.serverRssKiB === null) return null;
  return (high.serverRssKiB - low.serverRssKiB) / (high.connections - low.connections);
}

function fixed(r: RunRecord, name: "archive" | "no-store"): ChatStepResult | null {
  return variant(r, name)?.fixed ?? null;
}

/** The muc figures for a room of exactly `occupants` (null if it was not measured or not filled). */
export function mucSize(r: RunRecord, occupants: number): MucSizeResult | null {
  const size = r.muc?.sizes.find((s) => s.occupants === occupants) ?? null;
  return size && size.join.joined === occupants ? size : null;
}

function mucMax(r: RunRecord, occupants: number): number | null {
  const size = mucSize(r, occupants);
  if (!size?.findMax) return null;
  return size.findMax.maxPassingRate ?? 0;
}

function mucRows(occupants: number): Metric[] {
  const n = formatNumber(occupants, 0);
  const best = (r: RunRecord) => mucSize(r, occupants)?.findMax?.best ?? null;
  const fixedStep = (r: RunRecord) => mucSize(r, occupants)?.fixed ?? null;
  const id = `muc-${occupants}`;
  return [
    { id: `${id}-max`, label: `MUC, ${n} occupants, one sender: highest deliveries/s with p99 ≤ 100 ms, loss ≤ 0.1%`, unit: "deliveries/s", better: "higher", digits: 0, value: (r) => mucMax(r, occupants) },
    { id: `${id}-p50`, label: "  p50 latency at that rate", unit: "ms", better: "lower", digits: 1, value: (r) => num(best(r)?.latencyMs.p50) },
    { id: `${id}-p99`, label: "  p99 latency at that rate", unit: "ms", better: "lower", digits: 1, value: (r) => num(best(r)?.latencyMs.p99) },
    { id: `fixed-${id}-delivered`, label: `MUC, ${n} occupants, fixed rate: delivered`, unit: "deliveries/s", better: "higher", digits: 0, value: (r) => num(fixedStep(r)?.deliveredPerSecond) },
    { id: `fixed-${id}-loss`, label: "  not delivered within the drain", unit: "%", better: "lower", digits: 2, value: (r) => num(fixedStep(r)?.lossPct) },
    { id: `fixed-${id}-p50`, label: "  latency p50", unit: "ms", better: "lower", digits: 1, value: (r) => num(fixedStep(r)?.latencyMs.p50) },
    { id: `fixed-${id}-p90`, label: "  latency p90", unit: "ms", better: "lower", digits: 1, value: (r) => num(fixedStep(r)?.latencyMs.p90) },
    { id: `fixed-${id}-p99`, label: "  latency p99", unit: "ms", better: "lower", digits: 1, value: (r) => num(fixedStep(r)?.latencyMs.p99) },
    { id: `fixed-${id}-max`, label: "  latency max", unit: "ms", better: "lower", digits: 0, value: (r) => num(fixedStep(r)?.latencyMs.max) },
  ];
}

/**
 * Server CPU time per login in a batch (ms): what the server itself spent, whatever the generator
 * could offer. The server's process only (its threads included; not PostgreSQL's backends).
 */
function cpuPerLogin(b: LoginBatchResult | undefined): number | null {
  if (!b || b.serverCpuPct === null || b.succeeded === 0) return null;
  return ((b.serverCpuPct / 100) * b.elapsedMs) / b.succeeded;
}

export const METRICS: Metric[] = [
  { id: "starttls-rate", label: "STARTTLS + SCRAM-SHA-1 logins", unit: "/s", better: "higher", digits: 0, value: (r) => num(r.login?.starttls.loginsPerSecond) },
  { id: "starttls-p50", label: "STARTTLS login time p50", unit: "ms", better: "lower", digits: 0, value: (r) => num(r.login?.starttls.loginMs.p50) },
  { id: "starttls-p99", label: "STARTTLS login time p99", unit: "ms", better: "lower", digits: 0, value: (r) => num(r.login?.starttls.loginMs.p99) },
  { id: "direct-rate", label: "Direct TLS + SCRAM-SHA-1 logins", unit: "/s", better: "higher", digits: 0, value: (r) => num(r.login?.directTls.loginsPerSecond) },
  { id: "direct-p50", label: "Direct TLS login time p50", unit: "ms", better: "lower", digits: 0, value: (r) => num(r.login?.directTls.loginMs.p50) },
  { id: "direct-p99", label: "Direct TLS login time p99", unit: "ms", better: "lower", digits: 0, value: (r) => num(r.login?.directTls.loginMs.p99) },
  { id: "starttls-cpu", label: "Server CPU per STARTTLS login (server process)", unit: "ms", better: "lower", digits: 2, value: (r) => cpuPerLogin(r.login?.starttls) },
  { id: "direct-cpu", label: "Server CPU per Direct TLS login (server process)", unit: "ms", better: "lower", digits: 2, value: (r) => cpuPerLogin(r.login?.directTls) },
  { id: "rss-1k", label: "Server RSS per idle TLS connection, 1,000 connected", unit: "KiB", better: "lower", digits: 1, value: (r) => idleAt(r, 1000) },
  { id: "rss-10k", label: "Server RSS per idle TLS connection, 10,000 connected", unit: "KiB", better: "lower", digits: 1, value: (r) => idleAt(r, 10000) },
  { id: "rss-growth", label: "Server RSS growth per idle TLS connection, from 1,000 to 10,000 connected", unit: "KiB", better: "lower", digits: 1, value: idleGrowth },
  { id: "chat-archive-max", label: "Chat, archiving on: highest rate with p99 ≤ 100 ms, loss ≤ 0.1%", unit: "msgs/s", better: "higher", digits: 0, value: (r) => maxRate(r, "archive") },
  { id: "chat-archive-p99", label: "  p99 latency at that rate", unit: "ms", better: "lower", digits: 1, value: (r) => num(bestStep(r, "archive")?.latencyMs.p99) },
  { id: "chat-nostore-max", label: "Chat, <no-store/>: highest rate with p99 ≤ 100 ms, loss ≤ 0.1%", unit: "msgs/s", better: "higher", digits: 0, value: (r) => maxRate(r, "no-store") },
  { id: "chat-nostore-p99", label: "  p99 latency at that rate", unit: "ms", better: "lower", digits: 1, value: (r) => num(bestStep(r, "no-store")?.latencyMs.p99) },
  { id: "fixed-archive-delivered", label: "Chat, archiving on, fixed rate: delivered", unit: "msgs/s", better: "higher", digits: 0, value: (r) => num(fixed(r, "archive")?.deliveredPerSecond) },
  { id: "fixed-archive-loss", label: "  not delivered within the drain", unit: "%", better: "lower", digits: 2, value: (r) => num(fixed(r, "archive")?.lossPct) },
  { id: "fixed-archive-never", label: "  never delivered", unit: "msgs", better: "lower", digits: 0, value: (r) => num(fixed(r, "archive")?.neverDelivered) },
  { id: "fixed-archive-p50", label: "  latency p50", unit: "ms", better: "lower", digits: 1, value: (r) => num(fixed(r, "archive")?.latencyMs.p50) },
  { id: "fixed-archive-p90", label: "  latency p90", unit: "ms", better: "lower", digits: 1, value: (r) => num(fixed(r, "archive")?.latencyMs.p90) },
  { id: "fixed-archive-p99", label: "  latency p99", unit: "ms", better: "lower", digits: 1, value: (r) => num(fixed(r, "archive")?.latencyMs.p99) },
  { id: "fixed-archive-max", label: "  latency max", unit: "ms", better: "lower", digits: 0, value: (r) => num(fixed(r, "archive")?.latencyMs.max) },
  { id: "fixed-nostore-delivered", label: "Chat, <no-store/>, fixed rate: delivered", unit: "msgs/s", better: "higher", digits: 0, value: (r) => num(fixed(r, "no-store")?.deliveredPerSecond) },
  { id: "fixed-nostore-loss", label: "  not delivered within the drain", unit: "%", better: "lower", digits: 2, value: (r) => num(fixed(r, "no-store")?.lossPct) },
  { id: "fixed-nostore-never", label: "  never delivered", unit: "msgs", better: "lower", digits: 0, value: (r) => num(fixed(r, "no-store")?.neverDelivered) },
  { id: "fixed-nostore-p50", label: "  latency p50", unit: "ms", better: "lower", digits: 1, value: (r) => num(fixed(r, "no-store")?.latencyMs.p50) },
  { id: "fixed-nostore-p90", label: "  latency p90", unit: "ms", better: "lower", digits: 1, value: (r) => num(fixed(r, "no-store")?.latencyMs.p90) },
  { id: "fixed-nostore-p99", label: "  latency p99", unit: "ms", better: "lower", digits: 1, value: (r) => num(fixed(r, "no-store")?.latencyMs.p99) },
  { id: "fixed-nostore-max", label: "  latency max", unit: "ms", better: "lower", digits: 0, value: (r) => num(fixed(r, "no-store")?.latencyMs.max) },
  ...mucRows(100),
  ...mucRows(1000),
  { id: "generator-cpu", label: "Generator CPU, highest in any step (of one core)", unit: "%", better: "lower", digits: 0, value: generatorPeak },
];

/** The generator's highest CPU use in any login batch, chat step or muc step of the record. */
export function generatorPeak(r: RunRecord): number | null {
  const values: number[] = [];
  if (r.login) for (const b of [r.login.starttls, r.login.directTls, r.login.toIdle]) if (b) values.push(b.generatorCpuPct);
  for (const v of r.chat?.variants ?? []) {
    if (v.fixed) values.push(v.fixed.generatorCpuPct);
    for (const s of v.findMax?.steps ?? []) values.push(s.generatorCpuPct);
  }
  for (const size of r.muc?.sizes ?? []) {
    if (size.fixed) values.push(size.fixed.generatorCpuPct);
    for (const s of size.findMax?.steps ?? []) values.push(s.generatorCpuPct);
  }
  return values.length ? Math.max(...values) : null;
}

export function formatNumber(v: number, digits: number): string {
  return v.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function formatSpread(s: Spread | null, digits: number): string {
  if (s === null) return "–";
  if (s.n === 1 || s.min === s.max) return formatNumber(s.median, digits);
  return `${formatNumber(s.median, digits)} (${formatNumber(s.min, digits)}–${formatNumber(s.max, digits)})`;
}

export function markdownTable(headers: string[], rows: string[][]): string {
  const esc = (c: string) => c.replace(/\|/g, "\\|");
  const lines = [`| ${headers.map(esc).join(" | ")} |`, `|${headers.map((_, i) => (i === 0 ? " --- " : " ---: ")).join("|")}|`];
  for (const row of rows) lines.push(`| ${row.map(esc).join(" | ")} |`);
  return lines.join("\n");
}

export interface Column {
  server: string;
  storage: string;
}

export function columnName(c: Column): string {
  return `${c.server}, ${c.storage}`;
}

/** Rows of medians (min–max) over rounds, for the metrics that any column has a value for. */
export function comparisonRows(records: readonly RunRecord[], columns: readonly Column[], metrics = METRICS): { headers: string[]; rows: string[][]; spreads: Map<string, Map<string, Spread | null>> } {
  const spreads = new Map<string, Map<string, Spread | null>>();
  const rows: string[][] = [];
  for (const m of metrics) {
    const perColumn = new Map<string, Spread | null>();
    for (const c of columns) {
      const values = records.filter((r) => r.server === c.server && r.storage === c.storage).map((r) => m.value(r)).filter((v): v is number => v !== null);
      perColumn.set(columnName(c), spread(values));
    }
    if ([...perColumn.values()].every((s) => s === null)) continue;
    spreads.set(m.id, perColumn);
    rows.push([`${m.label} (${m.unit})`, ...columns.map((c) => formatSpread(perColumn.get(columnName(c)) ?? null, m.digits))]);
  }
  return { headers: ["", ...columns.map(columnName)], rows, spreads };
}

/**
 * Parley's median over the better reference's median, oriented so that > 1 means Parley is
 * better ("2.0×" = twice the logins, or half the latency).
 */
export function ratio(parley: Spread | null, references: readonly (Spread | null)[], better: Better): number | null {
  const refs = references.filter((s): s is Spread => s !== null).map((s) => s.median);
  if (parley === null || refs.length === 0) return null;
  const best = better === "higher" ? Math.max(...refs) : Math.min(...refs);
  if (better === "higher") return best > 0 ? parley.median / best : null;
  return parley.median > 0 ? best / parley.median : null;
}

export interface TargetCheck {
  target: string;
  measured: string;
  met: boolean | null;
}

/** The issue's reference login rate when no reference server was measured (ejabberd 23.01, TLS). */
export const ISSUE_REFERENCE_LOGINS_PER_SECOND = 196;

/**
 * Parley's targets from issue 5, checked against one record (`npm run bench`) or against the
 * medians of a comparison (`referenceLogins` then comes from the measured references).
 */
export function checkTargets(
  values: {
    fixedArchive: ChatStepResult | null;
    archiveUnavailable?: string;
    starttlsLogins: number | null;
    rss10k: number | null;
    /** RSS growth per connection from 1,000 to 10,000 (idleGrowth): no baseline enters it. */
    rssGrowth?: number | null;
    muc: string;
    mucMet?: boolean;
    mam: string;
    mamMet?: boolean;
  },
  referenceLogins: number,
  referenceSource: string,
): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const f = values.fixedArchive;
  const measured = f
    ? `${formatNumber(f.rate, 0)}/s offered: ${formatNumber(f.deliveredPerSecond, 0)}/s delivered, p99 ${formatNumber(f.latencyMs.p99, 1)} ms, loss ${f.lossPct.toFixed(2)}%`
    : "not measured";
  checks.push({
    target: `chat with archiving on: ≥ ${formatNumber(CHAT_TARGET_RATE, 0)} msgs/s sustained, p99 < ${CHAT_TARGET_P99_MS} ms, zero loss`,
    measured: values.archiveUnavailable ? `${measured} — archive: ${values.archiveUnavailable}` : measured,
    // Without an archive the figure says nothing about the target.
    met: f && !values.archiveUnavailable ? f.rate >= CHAT_TARGET_RATE && f.latencyMs.p99 < CHAT_TARGET_P99_MS && f.lost === 0 : null,
  });
  const goal = 2 * referenceLogins;
  checks.push({
    target: `TLS + SCRAM logins: ≥ 2× the better reference (${formatNumber(goal, 0)}/s, from ${referenceSource})`,
    measured: values.starttlsLogins === null ? "not measured" : `${formatNumber(values.starttlsLogins, 0)}/s (${(values.starttlsLogins / referenceLogins).toFixed(2)}×)`,
    met: values.starttlsLogins === null ? null : values.starttlsLogins >= goal,
  });
  checks.push({
    target: "idle memory: ≤ 30 KiB per authenticated TLS connection at 10,000 connections",
    // Both readings when there are both: the one against the baseline moves with whatever heap the
    // runtime held before the first connection, the growth does not; the target is met by both or not at all.
    measured:
      values.rss10k === null
        ? "not measured"
        : typeof values.rssGrowth === "number"
          ? `${formatNumber(values.rss10k, 1)} KiB against the baseline; ${formatNumber(values.rssGrowth, 1)} KiB growth per connection from 1,000 to 10,000`
          : `${formatNumber(values.rss10k, 1)} KiB`,
    met: values.rss10k === null ? null : Math.max(values.rss10k, values.rssGrowth ?? 0) <= 30,
  });
  checks.push({ target: `MUC, 100 occupants: ≥ ${formatNumber(MUC_TARGET_DELIVERIES, 0)} deliveries/s, p99 < ${MUC_TARGET_P99_MS} ms`, measured: values.muc, met: values.mucMet ?? null });
  checks.push({ target: "MAM page: p99 < 20 ms at 1,000,000 archived messages", measured: values.mam, met: values.mamMet ?? null });
  return checks;
}

/** Rooms that did not fill up (joins refused, timed out or out of budget): their rows stay empty. */
export function mucNotes(records: readonly RunRecord[]): string[] {
  const notes: string[] = [];
  for (const r of records) {
    for (const size of r.muc?.sizes ?? []) {
      if (size.join.joined >= size.occupants) continue;
      const failed = Object.entries(size.join.failures).map(([k, v]) => `${k} ${v}`).join(", ");
      notes.push(
        `${r.server} ${r.storage}${r.round > 1 ? ` round ${r.round}` : ""}: only ${formatNumber(size.join.joined, 0)} of ${formatNumber(size.occupants, 0)} occupants were in the room ` +
          `after ${(size.join.elapsedMs / 1000).toFixed(0)} s of joins${failed ? ` (failed joins: ${failed})` : ""}, so its ${formatNumber(size.occupants, 0)}-occupant figures are left out.`,
      );
    }
  }
  return notes;
}

export const CHAT_TARGET_RATE = 10_000;
export const CHAT_TARGET_P99_MS = 50;
export const MUC_TARGET_DELIVERIES = 20_000;
export const MUC_TARGET_P99_MS = 50;
export const MUC_TARGET_OCCUPANTS = 100;

function describeMucTargetStep(s: MucStepResult): string {
  return (
    `${formatNumber(s.rate, 0)} deliveries/s offered (${formatNumber(s.messagesPerSecond, 0)} msgs/s × ${s.occupants}): ` +
    `${formatNumber(s.deliveredPerSecond, 0)}/s delivered, p99 ${formatNumber(s.latencyMs.p99, 1)} ms, loss ${s.lossPct.toFixed(2)}%`
  );
}

/**
 * The MUC target against the 100-occupant room: met when some step (the fixed one or a find-max
 * step) offered at least 20,000 deliveries/s, lost at most `lossLimitPct` of them and kept p99
 * under 50 ms. The figure shown is that step, else the fixed step, else the best find-max step.
 */
export function mucTarget(size: MucSizeResult | null, lossLimitPct = 0.1): { measured: string; met: boolean | null } {
  if (size === null) return { measured: "not measured", met: null };
  const steps = [size.fixed, ...(size.findMax?.steps ?? [])].filter((s): s is MucStepResult => s !== null);
  if (steps.length === 0) return { measured: `not measured (${size.join.joined} of ${size.occupants} occupants joined)`, met: null };
  const meeting = steps
    .filter((s) => s.rate >= MUC_TARGET_DELIVERIES && s.lossPct <= lossLimitPct && s.sent > 0 && s.latencyMs.p99 < MUC_TARGET_P99_MS)
    .sort((a, b) => a.rate - b.rate)[0];
  if (meeting) return { measured: describeMucTargetStep(meeting), met: true };
  const shown = size.fixed ?? size.findMax?.best ?? null;
  const best = size.findMax?.best;
  const measured = shown
    ? describeMucTargetStep(shown) + (best && best !== shown ? `; highest passing find-max step ${formatNumber(best.rate, 0)} deliveries/s` : "")
    : "no step passed";
  return { measured, met: false };
}

export function targetsTable(checks: readonly TargetCheck[]): string {
  return markdownTable(
    ["Target (issue 5)", "Measured", "Met"],
    checks.map((c) => [c.target, c.measured, c.met === null ? "–" : c.met ? "yes" : "**no**"]),
  );
}
