// The `muc` scenario of issue 5: one XEP-0045 (Multi-User Chat 1.34) room, N occupants, one
// sender. Logged-in benchmark accounts join bench@<muc domain> (§7.2, asking for no history with
// <history maxstanzas='0'/>, §7.2.14); the first joiner creates it and, when the service says it
// is new (status 201), accepts the default configuration as an instant room (§10.1.2). Only
// once every occupant has its self-presence (status 110) does measuring start. Then occupant 0
// posts groupchat messages (§7.4) open-loop at a fixed rate, each body carrying the time it was
// due (load/schedule.ts: no coordinated omission), and the room reflects each to all N occupants,
// the sender included. Measured per step: deliveries per second across all occupants, loss
// (deliveries missing within the drain), latency percentiles from due time to arrival at each
// occupant, how late the generator sent, and the CPU use of generator and server. Find-max mode
// raises the offered rate until p99 exceeds its bound or loss exceeds its bound.
//
// Rates are offered deliveries per second (messages per second times occupants), the unit of the
// issue's target, so one ramp serves rooms of every size.
import { performance } from "node:perf_hooks";
import type { BenchClient } from "../load/client.ts";
import { attribute, childText } from "../load/scanner.ts";
import { OpenLoopSchedule } from "../load/schedule.ts";
import { decodeBody, encodeBody, groupchatTemplate, mucInstantRoom, mucJoin, mucLeave, type MessageTemplate } from "../load/stanzas.ts";
import { Samples, type LatencySummary } from "../load/stats.ts";
import { cpuMeter, sleep } from "./common.ts";
import { GENERATOR_SATURATED_PCT, findMaxRate } from "./chat.ts";

export interface MucStepResult {
  step: number;
  /** Offered deliveries per second: messagesPerSecond × occupants. */
  rate: number;
  messagesPerSecond: number;
  occupants: number;
  durationS: number;
  /** Messages the sender wrote. */
  sent: number;
  /** sent × occupants. */
  expected: number;
  /** Deliveries (one message reaching one occupant) within the drain time. */
  delivered: number;
  /** Expected deliveries missing within the drain time. */
  lost: number;
  lossPct: number;
  /** Still missing once the server had gone quiet after the drain. */
  neverDelivered: number;
  /** Deliveries / (last arrival - first due). */
  deliveredPerSecond: number;
  latencyMs: LatencySummary;
  sendLagMs: { p99: number; max: number };
  /** Bounced messages (type='error') reaching the sender. */
  errors: number;
  duplicates: number;
  stale: number;
  disconnected: number;
  backlogMs: number;
  generatorCpuPct: number;
  serverCpuPct: number | null;
  passed: boolean;
  note: string;
}

export interface MucJoinResult {
  /** Occupants wanted in the room after this batch of joins. */
  wanted: number;
  /** Occupants in the room after it. */
  joined: number;
  attempted: number;
  failures: Record<string, number>;
  /** Whether this batch's first joiner created the room (status 201). */
  created: boolean;
  /** Per join: from the join presence to the self-presence with status 110. */
  joinMs: LatencySummary;
  elapsedMs: number;
  /** After the last join: how long until no presence had arrived for a second (bounded). */
  presenceSettleMs: number;
  /**
   * Occupants that, once presence had settled, had been told of fewer than (occupants - 1)
   * others (§7.2.3: a newcomer gets everyone's presence, everyone gets the newcomer's): 0 when
   * the room's presence broadcasts were complete.
   */
  missingPresence: number;
  generatorCpuPct: number;
  serverCpuPct: number | null;
}

export interface MucFindMaxResult {
  /** Highest offered deliveries/s that passed, or null. */
  maxPassingRate: number | null;
  best: MucStepResult | null;
  steps: MucStepResult[];
}

export interface MucOptions {
  /** The room's bare JID: bench@conference.<domain>. */
  room: string;
  durationMs: number;
  drainMs: number;
  p99LimitMs: number;
  lossLimitPct: number;
  serverPid?: number;
  /** Longest wait for one occupant's self-presence. */
  joinTimeoutMs: number;
  /** Longest wait after a step's drain for the server to go quiet. */
  settleMs?: number;
  /** Where the first failure of each kind of join is told (stderr by default). */
  log?: (line: string) => void;
}

/** A server that delivered nothing for this long has no backlog left. */
const QUIET_MS = 2000;
/** After the joins, presence has settled when none arrived for this long... */
const PRESENCE_QUIET_MS = 1000;
/** ...or after this long in any case. */
const PRESENCE_SETTLE_MAX_MS = 60_000;
/**
 * A step lasts long enough for this many messages at least: in a big room a low offered rate is
 * a fraction of a message per second, and a step of one message says little about percentiles
 * (or about CPU use, measured over the sending time).
 */
export const MIN_MESSAGES_PER_STEP = 10;
/** Beyond this many tracked deliveries in one step the generator would spend its memory, not measure. */
const MAX_TRACKED_DELIVERIES = 256 * 1024 * 1024;

/** Step numbers are unique in the process, as in the chat scenario. */
let lastStep = 0;

/** The XEP-0045 status codes (<status code='NNN'/>) in a presence, in order. */
export function mucStatusCodes(raw: string): number[] {
  const codes: number[] = [];
  const re = /<status\s+code=["'](\d{3})["']/g;
  // Bounded by the text: each match moves on.
  for (let m = re.exec(raw); m !== null; m = re.exec(raw)) codes.push(Number(m[1]));
  return codes;
}

/** The first child element's name inside <error/> (the stanza error condition), or "error". */
export function errorCondition(raw: string): string {
  const at = raw.indexOf("<error");
  if (at < 0) return "error";
  const m = /<([a-z-]+)\s+xmlns=["']urn:ietf:params:xml:ns:xmpp-stanzas["']/.exec(raw.slice(at));
  return m ? m[1] : "error";
}

function sameJid(a: string | undefined, b: string): boolean {
  return a !== undefined && a.toLowerCase() === b.toLowerCase();
}

export class MucRoom {
  /** Joined occupants; index i has nick n<i>; occupant 0 created the room and sends. */
  readonly occupants: BenchClient[] = [];
  private template: MessageTemplate;
  private step = 0;
  /** During a step: one byte per (message, occupant). */
  private received: Uint8Array = new Uint8Array(0);
  private stepOccupants = 0;
  private latencies = new Samples();
  private counters = { delivered: 0, errors: 0, duplicates: 0, stale: 0, disconnected: 0, lastArrival: 0 };
  private lastAnyArrival = 0;
  private lastPresence = 0;
  /** Per client: available presences from other occupants of the room. */
  private readonly seen = new Map<BenchClient, number>();
  private joins = 0;
  /** Each client's occupant JID (room/nick), for leaving. */
  private readonly nicks = new Map<BenchClient, string>();

  private readonly roomPrefix: string;

  constructor(private readonly opts: MucOptions) {
    this.template = groupchatTemplate(opts.room);
    this.roomPrefix = `${opts.room.toLowerCase()}/`;
  }

  get size(): number {
    return this.occupants.length;
  }

  /**
   * Joins clients until `wanted` occupants are in the room (from the first `wanted` of `clients`,
   * skipping those that tried before), at most `concurrency` joins in flight; the first ever joiner
   * alone, since it may have to create the room. Bounded by joinTimeoutMs per join and budgetMs.
   */
  async join(clients: readonly BenchClient[], wanted: number, concurrency: number, budgetMs: number): Promise<MucJoinResult> {
    const cpu = cpuMeter(this.opts.serverPid);
    const started = performance.now();
    const times = new Samples();
    const failures: Record<string, number> = {};
    let created = false;
    // Never the same client twice: a second join of an occupant would be a nick change, and one
    // that failed once is not tried again.
    const pending = clients.slice(0, wanted).filter((c) => !this.nicks.has(c)).slice(0, Math.max(0, wanted - this.occupants.length));
    let attempted = 0;
    let next = 0;
    const joinNext = async (client: BenchClient) => {
      attempted++;
      try {
        const r = await this.joinOne(client);
        times.add(r.ms);
        created ||= r.created;
        if (r.created) await this.configureInstant(client);
        this.adopt(client);
      } catch (err) {
        const reason = (err as Error).message.split(":")[0];
        failures[reason] = (failures[reason] ?? 0) + 1;
        if (failures[reason] === 1) (this.opts.log ?? ((line) => process.stderr.write(`${line}\n`)))(`muc join failed: ${(err as Error).message}`);
      }
    };
    if (this.occupants.length === 0 && pending.length > 0) await joinNext(pending[next++]);
    if (this.occupants.length > 0) {
      const worker = async () => {
        // Bounded by the pending list and the time budget.
        while (next < pending.length && performance.now() - started < budgetMs) await joinNext(pending[next++]);
      };
      await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));
    }
    const elapsedMs = performance.now() - started;
    const usage = cpu.stop(elapsedMs);
    const settled = performance.now();
    // Bounded: the last joins' broadcasts may still be on their way; measuring waits for them.
    while (performance.now() - this.lastPresence < PRESENCE_QUIET_MS && performance.now() - settled < PRESENCE_SETTLE_MAX_MS) await sleep(50);
    const others = this.occupants.length - 1;
    const missingPresence = this.occupants.filter((c) => (this.seen.get(c) ?? 0) < others).length;
    return {
      wanted,
      joined: this.occupants.length,
      attempted,
      failures,
      created,
      joinMs: times.summary(),
      elapsedMs,
      presenceSettleMs: performance.now() - settled,
      missingPresence,
      generatorCpuPct: usage.generatorPct,
      serverCpuPct: usage.serverPct,
    };
  }

  /**
   * One join: resolves when the room sends the client its own presence with status 110. Every
   * join gets a nick of its own (n1, n2, ...), so concurrent joins never collide.
   */
  private joinOne(client: BenchClient): Promise<{ ms: number; created: boolean }> {
    const n = ++this.joins;
    const nickJid = `${this.opts.room}/n${n}`;
    const id = `bench-join-${n}`;
    const started = performance.now();
    return new Promise((resolve, reject) => {
      let done = false;
      const finish = (err: Error | null, created = false) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        client.onClosed = null;
        if (err) {
          client.onPresence = null;
          reject(err);
        } else {
          // The handler stays: presence that arrives right behind the self-presence, in the same
          // chunk and so before this promise's continuation runs, must still be counted.
          resolve({ ms: performance.now() - started, created });
        }
      };
      const timer = setTimeout(() => {
        // The room may still let it in later: it must not become an occupant nobody counts.
        client.write(mucLeave(nickJid));
        finish(new Error(`timeout: no self-presence from ${nickJid} within ${this.opts.joinTimeoutMs} ms`));
      }, this.opts.joinTimeoutMs);
      this.seen.set(client, 0);
      client.onPresence = (tag, raw, at) => {
        const from = attribute(tag, "from");
        if (!sameJid(from, nickJid)) return this.countPresence(client, tag, from, at);
        this.lastPresence = at;
        if (done) return;
        if (attribute(tag, "type") === "error") return finish(new Error(`${errorCondition(raw)}: joining ${nickJid}: ${raw.slice(0, 300)}`));
        const codes = mucStatusCodes(raw);
        if (codes.includes(110)) finish(null, codes.includes(201));
      };
      client.onClosed = (reason) => finish(new Error(`${reason}: the stream closed while joining`));
      this.nicks.set(client, nickJid);
      if (!client.write(mucJoin(nickJid, id))) finish(new Error("closed: the stream is gone"));
    });
  }

  /** §10.1.2: the creator accepts the default configuration; other joiners wait until it has. */
  private configureInstant(client: BenchClient): Promise<void> {
    const id = "bench-instant-room";
    return new Promise((resolve, reject) => {
      const finish = (err: Error | null) => {
        clearTimeout(timer);
        client.onIq = null;
        if (err) reject(err);
        else resolve();
      };
      const timer = setTimeout(() => finish(new Error(`timeout: the room did not answer its owner's configuration within ${this.opts.joinTimeoutMs} ms`)), this.opts.joinTimeoutMs);
      client.onIq = (tag, raw) => {
        if (attribute(tag, "id") !== id) return;
        if (attribute(tag, "type") === "result") finish(null);
        else finish(new Error(`instant-room: ${errorCondition(raw)}: ${raw.slice(0, 300)}`));
      };
      if (!client.write(mucInstantRoom(this.opts.room, id))) finish(new Error("closed: the stream is gone"));
    });
  }

  /** An available presence from another occupant of the room (anything else is not counted). */
  private countPresence(client: BenchClient, tag: string, from: string | undefined, at: number): void {
    this.lastPresence = at;
    if (from === undefined || !from.toLowerCase().startsWith(this.roomPrefix) || attribute(tag, "type") !== undefined) return;
    this.seen.set(client, (this.seen.get(client) ?? 0) + 1);
  }

  private adopt(client: BenchClient): void {
    const index = this.occupants.length;
    this.occupants.push(client);
    client.onMessage = (tag, raw, at) => this.onMessage(index, tag, raw, at);
    client.onClosed = () => this.counters.disconnected++;
  }

  private onMessage(index: number, tag: string, raw: string, at: number): void {
    if (attribute(tag, "type") === "error") {
      this.counters.errors++;
      return;
    }
    const body = childText(raw, "body");
    const payload = body === undefined ? null : decodeBody(body);
    if (payload === null) return; // the subject, a configuration notice: not ours
    this.lastAnyArrival = at;
    const slot = payload.seq * this.stepOccupants + index;
    if (payload.step !== this.step || index >= this.stepOccupants || slot >= this.received.length) {
      this.counters.stale++;
      return;
    }
    if (this.received[slot] === 1) {
      this.counters.duplicates++;
      return;
    }
    this.received[slot] = 1;
    this.counters.delivered++;
    this.counters.lastArrival = at;
    this.latencies.add(at - payload.dueMicros / 1000);
  }

  /** One step at `rate` offered deliveries per second. */
  async runStep(rate: number, durationMs = this.opts.durationMs): Promise<MucStepResult> {
    const n = this.occupants.length;
    if (n < 1) throw new Error("nobody is in the room");
    const messagesPerSecond = rate / n;
    const total = Math.max(MIN_MESSAGES_PER_STEP, OpenLoopSchedule.countFor(messagesPerSecond, durationMs));
    durationMs = (total * 1000) / messagesPerSecond;
    if (total * n > MAX_TRACKED_DELIVERIES) throw new RangeError(`${total * n} deliveries in one step is more than the generator tracks`);
    const step = ++lastStep;
    this.step = step;
    this.stepOccupants = n;
    this.received = new Uint8Array(total * n);
    this.latencies = new Samples();
    this.counters = { delivered: 0, errors: 0, duplicates: 0, stale: 0, disconnected: 0, lastArrival: 0 };
    const sender = this.occupants[0];
    const lag = new Samples();
    const schedule = new OpenLoopSchedule(messagesPerSecond, performance.now() + 5, total);
    const cpu = cpuMeter(this.opts.serverPid);
    let next = 0;
    let sent = 0;
    await new Promise<void>((done) => {
      const tick = () => {
        const now = performance.now();
        const due = schedule.dueBy(now);
        let batch = "";
        const first = next;
        // Bounded by the schedule's total.
        for (; next < due; next++) {
          const dueMs = schedule.dueAt(next);
          batch += this.template.head + encodeBody({ step, seq: next, dueMicros: Math.round(dueMs * 1000) }) + this.template.tail;
          lag.add(now - dueMs);
        }
        if (batch !== "" && sender.write(batch)) sent += next - first;
        if (next >= total) done();
        else setTimeout(tick, Math.max(0, Math.min(10, schedule.dueAt(next) - performance.now())));
      };
      setTimeout(tick, 5);
    });
    const sendEnd = performance.now();
    const usage = cpu.stop(sendEnd - schedule.startMs);
    const expected = sent * n;
    const drainUntil = sendEnd + this.opts.drainMs;
    // Bounded by drainMs.
    while (this.counters.delivered < expected && performance.now() < drainUntil) await sleep(20);
    const delivered = this.counters.delivered;
    const lost = expected - delivered;
    const drained = performance.now();
    const settleUntil = drained + (this.opts.settleMs ?? 60_000);
    // Bounded by settleMs: a server still working through a backlog finishes it before the next step.
    while (this.counters.delivered < expected && performance.now() - this.lastAnyArrival < QUIET_MS && performance.now() < settleUntil) await sleep(50);
    const backlogMs = Math.max(0, this.lastAnyArrival - drained);
    const neverDelivered = expected - this.counters.delivered;
    const lossPct = expected > 0 ? (lost / expected) * 100 : 0;
    const latencyMs = this.latencies.summary();
    const span = (this.counters.lastArrival || sendEnd) - schedule.startMs;
    const notes: string[] = [];
    if (!(latencyMs.p99 <= this.opts.p99LimitMs)) notes.push(`p99 ${fmt(latencyMs.p99)} ms > ${this.opts.p99LimitMs} ms`);
    if (lossPct > this.opts.lossLimitPct) notes.push(`loss ${lossPct.toFixed(2)}% > ${this.opts.lossLimitPct}%`);
    if (sent < total) notes.push(`${total - sent} messages not sent (the sender's stream closed)`);
    if (this.counters.errors > 0) notes.push(`${this.counters.errors} messages bounced`);
    const passed = notes.length === 0;
    if (usage.generatorPct >= GENERATOR_SATURATED_PCT) notes.push(`generator at ${usage.generatorPct.toFixed(0)}% CPU: it may be the limit`);
    return {
      step,
      rate,
      messagesPerSecond,
      occupants: n,
      durationS: durationMs / 1000,
      sent,
      expected,
      delivered,
      lost,
      lossPct,
      neverDelivered,
      deliveredPerSecond: span > 0 ? (this.counters.delivered * 1000) / span : 0,
      latencyMs,
      sendLagMs: { p99: lag.percentile(99), max: lag.max() },
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

  async findMax(rates: readonly number[], log: (line: string) => void, refine = 2, pauseMs = 500): Promise<MucFindMaxResult> {
    const { best, steps } = await findMaxRate(rates, (rate) => this.runStep(rate), (step) => log(describeMucStep(step)), refine, pauseMs);
    return { maxPassingRate: best?.rate ?? null, best, steps };
  }

  /** Every occupant leaves (§7.14), a few at a time; the room goes when the last has. */
  async leave(chunk = 50): Promise<void> {
    for (let i = 0; i < this.occupants.length; i += chunk) {
      for (const client of this.occupants.slice(i, i + chunk)) {
        const nick = this.nicks.get(client);
        if (nick) client.write(mucLeave(nick));
      }
      await sleep(10);
    }
  }
}

export function describeMucStep(r: MucStepResult): string {
  const l = r.latencyMs;
  return (
    `muc ${r.occupants} occupants, ${fmt(r.messagesPerSecond)} msgs/s (${r.rate} deliveries/s offered): sent ${r.sent}, ` +
    `delivered ${r.deliveredPerSecond.toFixed(0)}/s, loss ${r.lossPct.toFixed(2)}%, ` +
    `latency p50 ${fmt(l.p50)} p90 ${fmt(l.p90)} p99 ${fmt(l.p99)} max ${fmt(l.max)} ms, ` +
    `gen CPU ${r.generatorCpuPct.toFixed(0)}%, server CPU ${r.serverCpuPct?.toFixed(0) ?? "?"}%` +
    `${r.backlogMs > 0 ? `, backlog ${(r.backlogMs / 1000).toFixed(1)} s after the drain` : ""}` +
    `${r.lost > 0 ? `, never delivered ${r.neverDelivered}` : ""}` +
    `${r.duplicates > 0 ? `, ${r.duplicates} duplicates` : ""}` +
    `${r.passed ? "" : " FAIL"}${r.note ? ` (${r.note})` : ""}`
  );
}

export function describeJoin(r: MucJoinResult): string {
  const failed = Object.entries(r.failures).map(([k, v]) => `${k} ${v}`).join(", ");
  return (
    `muc join: ${r.joined}/${r.wanted} in the room${r.created ? " (created as an instant room)" : ""}, ` +
    `${r.attempted} joins in ${(r.elapsedMs / 1000).toFixed(1)} s, join time p50 ${fmt(r.joinMs.p50)} p99 ${fmt(r.joinMs.p99)} ms, ` +
    `server CPU ${r.serverCpuPct?.toFixed(0) ?? "?"}%, presence settled ${(r.presenceSettleMs / 1000).toFixed(1)} s later` +
    `${r.missingPresence > 0 ? `, ${r.missingPresence} occupants MISSING others' presence` : ""}${failed ? `, failed: ${failed}` : ""}`
  );
}

function fmt(ms: number): string {
  return Number.isFinite(ms) ? (ms < 10 ? ms.toFixed(1) : ms.toFixed(0)) : "-";
}
