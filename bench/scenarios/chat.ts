// The `chat` scenario of issue 5: N logged-in accounts in N/2 pairs send each other one-to-one
// chat messages (RFC 6121 §5) open-loop at a fixed aggregate rate, each body carrying the time it
// was due (see load/schedule.ts). Measured per step: delivered messages per second, loss, latency
// percentiles from due time to arrival, how late the generator itself sent, and the CPU use of
// the generator and the server. Find-max mode raises the rate step by step until p99 latency
// exceeds its bound or loss exceeds its bound, and reports the highest rate that passed.
// Messages go to the partner's bare JID, as clients send them, with or without XEP-0334's
// <no-store/> hint (which asks the server not to archive them).
import { performance } from "node:perf_hooks";
import type { BenchClient } from "../load/client.ts";
import { attribute, childText } from "../load/scanner.ts";
import { OpenLoopSchedule, roundRate } from "../load/schedule.ts";
import { decodeBody, encodeBody, messageTemplate, type MessageTemplate } from "../load/stanzas.ts";
import { Samples, type LatencySummary } from "../load/stats.ts";
import { cpuMeter, sleep } from "./common.ts";

export interface ChatStepResult {
  step: number;
  /** Offered rate, messages per second in all. */
  rate: number;
  durationS: number;
  sent: number;
  /** Delivered within the drain time. */
  received: number;
  /** Not delivered within the drain time: lost, or so late that it counts as lost. */
  lost: number;
  lossPct: number;
  /** Still not delivered once the server had gone quiet after the drain: lost for good. */
  neverDelivered: number;
  /** Received messages / (last arrival - first due). */
  deliveredPerSecond: number;
  latencyMs: LatencySummary;
  /** How late the generator sent messages relative to their due time. */
  sendLagMs: { p99: number; max: number };
  /** Bounced messages (type='error'). */
  errors: number;
  duplicates: number;
  /** Messages of an earlier step that arrived during this one. */
  stale: number;
  /** Clients whose stream ended during the step. */
  disconnected: number;
  /** Milliseconds after the drain until the server stopped delivering (a backlog it was still working through). */
  backlogMs: number;
  generatorCpuPct: number;
  serverCpuPct: number | null;
  passed: boolean;
  /** Why it did not pass, or a warning (a saturated generator). */
  note: string;
}

export interface ChatOptions {
  /** Logged-in clients, paired [0,1], [2,3], ...; an odd last one sits out. */
  clients: readonly BenchClient[];
  domain: string;
  noStore: boolean;
  durationMs: number;
  /** Longest wait for stragglers after the last message was due. */
  drainMs: number;
  p99LimitMs: number;
  lossLimitPct: number;
  serverPid?: number;
  /**
   * Longest wait after a step's drain for the server to go quiet (no benchmark message for
   * QUIET_MS), so that the next step does not start on top of the last one's backlog.
   */
  settleMs?: number;
}

/** A server that delivered nothing for this long has no backlog left. */
const QUIET_MS = 10_000;

/** Above this the generator, not the server, may be what limits the step. */
export const GENERATOR_SATURATED_PCT = 90;

/**
 * Step numbers are unique in the process, not per run: a straggler from another run's step
 * (the archive variant's, arriving during the no-store variant's) must never be counted.
 */
let lastStep = 0;

export class ChatRun {
  private readonly senders: BenchClient[];
  private readonly templates: MessageTemplate[];
  private step = 0;
  private received: Uint8Array = new Uint8Array(0);
  private latencies = new Samples();
  private counters = { received: 0, errors: 0, duplicates: 0, stale: 0, disconnected: 0, lastArrival: 0 };
  /** Why the first few clients of the run went away (a disconnect explains missing deliveries). */
  private closeReasons: string[] = [];
  /** performance.now() of the last benchmark message from any step. */
  private lastAnyArrival = 0;

  constructor(private readonly opts: ChatOptions) {
    const pairs = Math.floor(opts.clients.length / 2);
    if (pairs < 1) throw new Error("the chat scenario needs at least two logged-in clients");
    this.senders = opts.clients.slice(0, pairs * 2);
    this.templates = this.senders.map((_, i) => {
      const partner = this.senders[i ^ 1];
      return messageTemplate(bareJid(partner.jid, `${partner.credentials.username}@${opts.domain}`), opts.noStore);
    });
    for (const client of this.senders) {
      client.onMessage = (tag, raw, at) => this.onMessage(tag, raw, at);
      client.onClosed = (reason) => {
        this.counters.disconnected++;
        if (this.closeReasons.length < 3) this.closeReasons.push(reason);
      };
    }
  }

  get pairs(): number {
    return this.senders.length / 2;
  }

  private onMessage(tag: string, raw: string, at: number): void {
    if (attribute(tag, "type") === "error") {
      this.counters.errors++;
      return;
    }
    const body = childText(raw, "body");
    const payload = body === undefined ? null : decodeBody(body);
    if (payload === null) return;
    this.lastAnyArrival = at;
    if (payload.step !== this.step || payload.seq >= this.received.length) {
      this.counters.stale++;
      return;
    }
    if (this.received[payload.seq] === 1) {
      this.counters.duplicates++;
      return;
    }
    this.received[payload.seq] = 1;
    this.counters.received++;
    this.counters.lastArrival = at;
    this.latencies.add(at - payload.dueMicros / 1000);
  }

  /** One step at a fixed rate. */
  async runStep(rate: number, durationMs = this.opts.durationMs): Promise<ChatStepResult> {
    const step = ++lastStep;
    this.step = step;
    const total = OpenLoopSchedule.countFor(rate, durationMs);
    this.received = new Uint8Array(total);
    this.latencies = new Samples();
    this.counters = { received: 0, errors: 0, duplicates: 0, stale: 0, disconnected: 0, lastArrival: 0 };
    const lag = new Samples();
    const n = this.senders.length;
    const pending: string[] = new Array(n).fill("");
    const pendingCount = new Uint32Array(n);
    const dirty: number[] = [];
    const schedule = new OpenLoopSchedule(rate, performance.now() + 5, total);
    const cpu = cpuMeter(this.opts.serverPid);
    let next = 0;
    let sent = 0;
    await new Promise<void>((done) => {
      const tick = () => {
        const now = performance.now();
        const due = schedule.dueBy(now);
        // Bounded by the schedule's total.
        for (; next < due; next++) {
          const from = next % n;
          const dueMs = schedule.dueAt(next);
          const t = this.templates[from];
          if (pending[from] === "") dirty.push(from);
          pendingCount[from]++;
          pending[from] += t.head + encodeBody({ step, seq: next, dueMicros: Math.round(dueMs * 1000) }) + t.tail;
          lag.add(now - dueMs);
        }
        for (const i of dirty) {
          if (this.senders[i].write(pending[i])) sent += pendingCount[i];
          pending[i] = "";
          pendingCount[i] = 0;
        }
        dirty.length = 0;
        if (next >= total) done();
        else setTimeout(tick, Math.max(0, Math.min(10, schedule.dueAt(next) - performance.now())));
      };
      setTimeout(tick, 5);
    });
    const sendEnd = performance.now();
    const usage = cpu.stop(sendEnd - schedule.startMs);
    // Wait for stragglers, bounded by drainMs.
    const drainUntil = sendEnd + this.opts.drainMs;
    while (this.counters.received + this.counters.errors < sent && performance.now() < drainUntil) await sleep(20);
    const receivedInDrain = this.counters.received;
    const lost = sent - receivedInDrain;
    const drained = performance.now();
    const settleUntil = drained + (this.opts.settleMs ?? 60_000);
    // Bounded by settleMs: a server still delivering a backlog gets time to finish it, so that
    // the next step starts clean and a late message is told from a lost one.
    while (this.counters.received < sent && performance.now() - this.lastAnyArrival < QUIET_MS && performance.now() < settleUntil) await sleep(50);
    const backlogMs = Math.max(0, this.lastAnyArrival - drained);
    const neverDelivered = sent - this.counters.received;
    const lossPct = sent > 0 ? (lost / sent) * 100 : 0;
    const latencyMs = this.latencies.summary();
    const span = (this.counters.lastArrival || sendEnd) - schedule.startMs;
    const sendLagMs = { p99: lag.percentile(99), max: lag.max() };
    const notes: string[] = [];
    if (!(latencyMs.p99 <= this.opts.p99LimitMs)) notes.push(`p99 ${fmt(latencyMs.p99)} ms > ${this.opts.p99LimitMs} ms`);
    if (lossPct > this.opts.lossLimitPct) notes.push(`loss ${lossPct.toFixed(2)}% > ${this.opts.lossLimitPct}%`);
    if (sent < total) notes.push(`${total - sent} messages not sent (streams closed)`);
    if (this.counters.stale > 0) notes.push(`${this.counters.stale} late arrivals from an earlier step`);
    if (this.counters.disconnected > 0) notes.push(`${this.counters.disconnected} clients gone (${this.closeReasons.join(" | ")})`);
    const passed = notes.length === 0;
    if (usage.generatorPct >= GENERATOR_SATURATED_PCT) notes.push(`generator at ${usage.generatorPct.toFixed(0)}% CPU: it may be the limit`);
    return {
      step,
      rate,
      durationS: durationMs / 1000,
      sent,
      received: receivedInDrain,
      lost,
      lossPct,
      neverDelivered,
      deliveredPerSecond: span > 0 ? (this.counters.received * 1000) / span : 0,
      latencyMs,
      sendLagMs,
      errors: this.counters.errors,
      duplicates: this.counters.duplicates,
      stale: this.counters.stale,
      disconnected: this.counters.disconnected,
      backlogMs,
      generatorCpuPct: usage.generatorPct,
      serverCpuPct: usage.serverPct,
      passed,
      note: notes.join("; "),
    };
  }

  /**
   * Steps through the coarse `rates` in order until one fails, then tries `refine` rates between
   * the last that passed and the first that failed (see findMaxRate).
   */
  async findMax(rates: readonly number[], log: (line: string) => void, refine = 2, pauseMs = 500): Promise<FindMaxResult> {
    const { best, steps } = await findMaxRate(rates, (rate) => this.runStep(rate), (step) => log(describeStep(step)), refine, pauseMs);
    return { maxPassingRate: best?.rate ?? null, best, steps };
  }
}

/** What findMaxRate needs of a step: the rate it offered and whether it passed. */
export interface RatedStep {
  rate: number;
  passed: boolean;
}

/**
 * Find-max, shared by the chat and muc scenarios: runs the coarse `rates` in order until one
 * fails, then up to `refine` rates between the last that passed and the first that failed (each
 * 2^(1/(refine+1)) times the last) until one of them fails. `best` is the highest rate that
 * passed (null if none did). At most rates.length + refine steps.
 */
export async function findMaxRate<T extends RatedStep>(
  rates: readonly number[],
  runStep: (rate: number) => Promise<T>,
  log: (step: T) => void,
  refine = 2,
  pauseMs = 500,
): Promise<{ best: T | null; steps: T[] }> {
  const steps: T[] = [];
  let best: T | null = null;
  let failedAt: number | null = null;
  const tryRate = async (rate: number) => {
    const result = await runStep(rate);
    steps.push(result);
    log(result);
    if (result.passed && (best === null || result.rate > best.rate)) best = result;
    await sleep(pauseMs);
    return result.passed;
  };
  for (const rate of rates) {
    if (!(await tryRate(rate))) {
      failedAt = rate;
      break;
    }
  }
  const passed = best as T | null;
  if (failedAt !== null && passed !== null) {
    for (const rate of refineRates(passed.rate, failedAt, refine)) if (!(await tryRate(rate))) break;
  }
  return { best, steps };
}

/** Up to `count` rates strictly between `passed` and `failed`, evenly spaced on a log scale. */
export function refineRates(passed: number, failed: number, count: number): number[] {
  if (!(failed > passed) || count < 1) return [];
  const ratio = (failed / passed) ** (1 / (count + 1));
  const rates: number[] = [];
  for (let k = 1; k <= count; k++) {
    const r = roundRate(passed * ratio ** k);
    if (r > passed && r < failed && !rates.includes(r)) rates.push(r);
  }
  return rates;
}

export interface FindMaxResult {
  maxPassingRate: number | null;
  best: ChatStepResult | null;
  steps: ChatStepResult[];
}

export function describeStep(r: ChatStepResult): string {
  const l = r.latencyMs;
  return (
    `chat ${r.rate}/s: sent ${r.sent}, delivered ${r.deliveredPerSecond.toFixed(0)}/s, loss ${r.lossPct.toFixed(2)}%, ` +
    `latency p50 ${fmt(l.p50)} p90 ${fmt(l.p90)} p99 ${fmt(l.p99)} max ${fmt(l.max)} ms, ` +
    `gen CPU ${r.generatorCpuPct.toFixed(0)}%, server CPU ${r.serverCpuPct?.toFixed(0) ?? "?"}%` +
    `${r.backlogMs > 0 ? `, backlog ${(r.backlogMs / 1000).toFixed(1)} s after the drain` : ""}` +
    `${r.lost > 0 ? `, never delivered ${r.neverDelivered}` : ""}` +
    `${r.passed ? "" : " FAIL"}${r.note ? ` (${r.note})` : ""}`
  );
}

function fmt(ms: number): string {
  return Number.isFinite(ms) ? (ms < 10 ? ms.toFixed(1) : ms.toFixed(0)) : "-";
}

/** The bare JID of a bound full JID, or `fallback` when the server's answer was unusable. */
export function bareJid(full: string, fallback: string): string {
  const slash = full.indexOf("/");
  const bare = slash >= 0 ? full.slice(0, slash) : full;
  return bare.includes("@") ? bare : fallback;
}
