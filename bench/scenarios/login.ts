// The `login` scenario of issue 5: accounts connect with STARTTLS (RFC 6120 §5) and with Direct
// TLS (XEP-0368), log in with SCRAM-SHA-1, bind and send initial presence; logins per second
// and login times, then the server's resident memory per idle connection at 1,000 and 10,000
// connections. Logins run closed-loop with a fixed number in flight: the question is how many
// the server completes per second, and each login's time includes its wait in the server's queue.
import { performance } from "node:perf_hooks";
import { BenchClient, LoginError, type ServerAddress, type TlsMode } from "../load/client.ts";
import { readRssKiB } from "../load/proc.ts";
import { Samples, type LatencySummary } from "../load/stats.ts";
import { cpuMeter, sleep, type Account } from "./common.ts";

export interface LoginBatchResult {
  mode: TlsMode;
  attempted: number;
  succeeded: number;
  failures: Record<string, number>;
  /** Successful logins divided by the batch's wall time. */
  loginsPerSecond: number;
  loginMs: LatencySummary;
  concurrency: number;
  /** The generator's own CPU use during the batch, % of one core. */
  generatorCpuPct: number;
  /** The server's CPU use during the batch, % of one core (null without its pid). */
  serverCpuPct: number | null;
  elapsedMs: number;
}

export interface LoginBatchOptions {
  address: ServerAddress;
  accounts: readonly Account[];
  mode: TlsMode;
  resource: string;
  concurrency: number;
  timeoutMs: number;
  /** No new login starts after this many ms. */
  budgetMs: number;
  serverPid?: number;
}

/** Logs every account in; the clients that made it stay connected and are returned. */
export async function loginBatch(opts: LoginBatchOptions): Promise<{ result: LoginBatchResult; clients: BenchClient[] }> {
  const clients: BenchClient[] = [];
  const times = new Samples();
  const failures: Record<string, number> = {};
  const cpu = cpuMeter(opts.serverPid);
  const started = performance.now();
  let next = 0;
  const worker = async () => {
    // Bounded by the account list and the time budget.
    while (next < opts.accounts.length && performance.now() - started < opts.budgetMs) {
      const account = opts.accounts[next++];
      const client = new BenchClient(opts.address, { ...account, resource: opts.resource });
      try {
        times.add(await client.login(opts.mode, opts.timeoutMs));
        clients.push(client);
      } catch (err) {
        const reason = err instanceof LoginError ? err.reason : "error";
        failures[reason] = (failures[reason] ?? 0) + 1;
        if (failures[reason] === 1) process.stderr.write(`login failed (${opts.mode}): ${(err as Error).message}\n`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.concurrency) }, worker));
  const elapsedMs = performance.now() - started;
  const usage = cpu.stop(elapsedMs);
  return {
    clients,
    result: {
      mode: opts.mode,
      attempted: next,
      succeeded: clients.length,
      failures,
      loginsPerSecond: (clients.length * 1000) / elapsedMs,
      loginMs: times.summary(),
      concurrency: opts.concurrency,
      generatorCpuPct: usage.generatorPct,
      serverCpuPct: usage.serverPct,
      elapsedMs,
    },
  };
}

export interface IdleMemoryPoint {
  connections: number;
  serverRssKiB: number | null;
  /** (RSS now - RSS before any connection) / connections. */
  perConnectionKiB: number | null;
}

export interface LoginScenarioOptions {
  address: ServerAddress;
  accounts: readonly Account[];
  /** Logins per measured batch (STARTTLS, then Direct TLS). */
  logins: number;
  /**
   * Logins made and closed before anything is measured, half STARTTLS and half Direct TLS: a
   * server that has just started is still compiling its login path (V8 made Parley's first
   * 1,000 logins cost 3.8 ms of CPU each against 2.6 for the next 9,000), and a server in use
   * has been up for days. Every server gets the same.
   */
  warmupLogins: number;
  /** Connection counts at which the server's memory is read; 0 or [] skips the idle part. */
  idleAt: readonly number[];
  concurrency: number;
  timeoutMs: number;
  budgetMs: number;
  /** Seconds to let the server settle between batches. */
  settleS: number;
  /**
   * Seconds without traffic before each memory reading, the baseline included. Runtimes shrink
   * their heaps a while after a burst (V8 gave back its young generation 10–30 s after the last
   * login, 2–4 KiB per connection at 10,000): a reading seconds after the logins, or a baseline
   * taken just after the setup's own logins, measures garbage not yet collected, not connections.
   */
  idleWaitS: number;
  serverPid?: number;
}

export interface LoginScenarioResult {
  starttls: LoginBatchResult;
  directTls: LoginBatchResult;
  /** STARTTLS logins made on the way to the largest idle count (after the first batch). */
  toIdle: LoginBatchResult | null;
  baselineRssKiB: number | null;
  idle: IdleMemoryPoint[];
}

export async function loginScenario(opts: LoginScenarioOptions, log: (line: string) => void): Promise<LoginScenarioResult> {
  const batch = (accounts: readonly Account[], mode: TlsMode, resource: string) =>
    loginBatch({ address: opts.address, accounts, mode, resource, concurrency: opts.concurrency, timeoutMs: opts.timeoutMs, budgetMs: opts.budgetMs, serverPid: opts.serverPid });
  if (opts.warmupLogins > 0) {
    const n = Math.min(opts.warmupLogins, opts.accounts.length);
    const starttls = await batch(opts.accounts.slice(0, Math.ceil(n / 2)), "starttls", "w");
    await closeAll(starttls.clients);
    const direct = await batch(opts.accounts.slice(0, Math.floor(n / 2)), "direct-tls", "w");
    await closeAll(direct.clients);
    log(`warm-up logins (not measured): ${starttls.result.succeeded + direct.result.succeeded}/${n}`);
    await sleep(opts.settleS * 1000);
  }
  const measuresMemory = opts.serverPid !== undefined && opts.idleAt.some((n) => n > 0);
  if (measuresMemory) await sleep(opts.idleWaitS * 1000);
  const baselineRssKiB = opts.serverPid ? readRssKiB(opts.serverPid) : null;
  const open: BenchClient[] = [];
  const idle: IdleMemoryPoint[] = [];

  const first = await batch(opts.accounts.slice(0, opts.logins), "starttls", "s");
  open.push(...first.clients);
  log(`login starttls: ${first.result.succeeded}/${first.result.attempted} at ${first.result.loginsPerSecond.toFixed(0)}/s`);

  const memoryAt = async (connections: number) => {
    await sleep(opts.idleWaitS * 1000);
    const live = open.filter((c) => c.ready).length;
    const rss = opts.serverPid ? readRssKiB(opts.serverPid) : null;
    const point = {
      connections: live,
      serverRssKiB: rss,
      perConnectionKiB: rss !== null && baselineRssKiB !== null && live > 0 ? (rss - baselineRssKiB) / live : null,
    };
    idle.push(point);
    log(`idle at ${connections}: ${live} connected, server RSS ${rss ?? "?"} KiB, ${point.perConnectionKiB?.toFixed(1) ?? "?"} KiB per connection`);
  };

  let toIdle: LoginBatchResult | null = null;
  const targets = [...opts.idleAt].filter((n) => n > 0).sort((a, b) => a - b);
  for (const target of targets) {
    if (target > opts.accounts.length) {
      log(`idle at ${target}: skipped, only ${opts.accounts.length} accounts`);
      continue;
    }
    if (open.length < target) {
      const more = await batch(opts.accounts.slice(open.length, target), "starttls", "s");
      open.push(...more.clients);
      toIdle = more.result;
      log(`login starttls up to ${target}: ${more.result.succeeded}/${more.result.attempted} at ${more.result.loginsPerSecond.toFixed(0)}/s`);
    }
    await memoryAt(target);
  }

  await closeAll(open);
  await sleep(opts.settleS * 1000);
  const direct = await batch(opts.accounts.slice(0, opts.logins), "direct-tls", "d");
  log(`login direct tls: ${direct.result.succeeded}/${direct.result.attempted} at ${direct.result.loginsPerSecond.toFixed(0)}/s`);
  await closeAll(direct.clients);
  return { starttls: first.result, directTls: direct.result, toIdle, baselineRssKiB, idle };
}

/** Closes clients a few hundred at a time, so the server is not handed 10,000 closes at once. */
export async function closeAll(clients: readonly BenchClient[], chunk = 500): Promise<void> {
  for (let i = 0; i < clients.length; i += chunk) await Promise.all(clients.slice(i, i + chunk).map((c) => c.close()));
}

