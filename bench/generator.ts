// The load generator of issue 5 as a command: runs one scenario (login, chat or muc) against any XMPP
// server on a loopback address, by address, ports, domain and account names, and writes its
// figures as JSON. bench/run.ts and bench/compare.ts start it pinned to its own CPU
// (`taskset -c 1`), away from the server's.
//
//   node --import tsx bench/generator.ts login --host 127.0.0.1 --port 5222 --tls-port 5223 \
//     --domain localhost --prefix bench --password bench-pass --accounts 10000 --server-pid 1234
//   node --import tsx bench/generator.ts chat ... --clients 200 --find-max --variants archive,no-store
//   node --import tsx bench/generator.ts muc ... --occupants 100,1000 --muc-domain conference.localhost --find-max
//     (for muc, --rate, --start-rate and --max-rate are offered deliveries per second)
//
// Every option has a default (see OPTIONS); --help lists them.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { performance } from "node:perf_hooks";
import { assertLoopback, type ServerAddress } from "./load/client.ts";
import { exportKeyCache, importKeyCache, pbkdf2Count } from "./load/scram.ts";
import { rampRates } from "./load/schedule.ts";
import { benchAccounts, sleep } from "./scenarios/common.ts";
import { loginBatch, loginScenario, closeAll, type LoginBatchResult, type LoginScenarioResult } from "./scenarios/login.ts";
import { ChatRun, describeStep, type ChatStepResult, type FindMaxResult } from "./scenarios/chat.ts";
import { MucRoom, describeJoin, describeMucStep, type MucFindMaxResult, type MucJoinResult, type MucStepResult } from "./scenarios/muc.ts";

const OPTIONS = {
  host: { type: "string", default: "127.0.0.1" },
  port: { type: "string", default: "5222" },
  "tls-port": { type: "string", default: "5223" },
  domain: { type: "string", default: "localhost" },
  prefix: { type: "string", default: "bench" },
  password: { type: "string", default: "bench-pass" },
  accounts: { type: "string", default: "10000" },
  "server-pid": { type: "string" },
  json: { type: "string" },
  /** SCRAM keys (see load/scram.ts) read before and written after the run. */
  "key-cache": { type: "string" },
  concurrency: { type: "string", default: "32" },
  "login-timeout": { type: "string", default: "60" },
  // login
  logins: { type: "string", default: "1000" },
  /** Logins made and closed before the login scenario measures anything (scenarios/login.ts). */
  "login-warmup": { type: "string", default: "1000" },
  idle: { type: "string", default: "1000,10000" },
  settle: { type: "string", default: "3" },
  /** Seconds the server is left idle before each memory reading, the baseline included. */
  "idle-wait": { type: "string", default: "30" },
  "login-budget": { type: "string", default: "300" },
  // chat
  clients: { type: "string", default: "200" },
  variants: { type: "string", default: "archive,no-store" },
  rate: { type: "string", default: "10000" },
  duration: { type: "string", default: "5" },
  "fixed-duration": { type: "string", default: "10" },
  drain: { type: "string", default: "3" },
  warmup: { type: "string", default: "3" },
  "find-max": { type: "boolean", default: false },
  "fixed-rate": { type: "boolean", default: false },
  "start-rate": { type: "string", default: "250" },
  factor: { type: "string", default: "2" },
  /** Find-max: rates tried between the last passing and the first failing coarse step. */
  refine: { type: "string", default: "2" },
  "max-rate": { type: "string", default: "100000" },
  "p99-limit": { type: "string", default: "100" },
  "loss-limit": { type: "string", default: "0.1" },
  // muc
  occupants: { type: "string", default: "100,1000" },
  /** The MUC service; "" means conference.<domain>. */
  "muc-domain": { type: "string", default: "" },
  room: { type: "string", default: "bench" },
  "join-concurrency": { type: "string", default: "16" },
  "join-timeout": { type: "string", default: "60" },
  "join-budget": { type: "string", default: "600" },
  help: { type: "boolean", default: false },
} as const;

export interface ChatVariantResult {
  variant: "archive" | "no-store";
  pairs: number;
  fixed: ChatStepResult | null;
  findMax: FindMaxResult | null;
}

/** One room size of the muc scenario (sizes run in increasing order; each adds occupants). */
export interface MucSizeResult {
  occupants: number;
  room: string;
  join: MucJoinResult;
  fixed: MucStepResult | null;
  findMax: MucFindMaxResult | null;
}

export interface GeneratorReport {
  scenario: "login" | "chat" | "muc" | "warm";
  address: ServerAddress;
  startedAt: string;
  login?: LoginScenarioResult;
  chat?: { login: LoginBatchResult; variants: ChatVariantResult[] };
  muc?: { login: LoginBatchResult; sizes: MucSizeResult[] };
  warm?: LoginBatchResult;
  /** PBKDF2 runs the generator needed (cache misses of its SCRAM client). */
  pbkdf2Runs: number;
  wallSeconds: number;
}

function number(values: Record<string, unknown>, key: string, min = 0): number {
  const n = Number(values[key]);
  if (!Number.isFinite(n) || n < min) throw new Error(`--${key} must be a number >= ${min}, got "${String(values[key])}"`);
  return n;
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  const scenario = positionals[0];
  if (values.help || (scenario !== "login" && scenario !== "chat" && scenario !== "muc" && scenario !== "warm")) {
    process.stderr.write(`usage: generator.ts login|chat|muc|warm [options]\noptions: ${Object.keys(OPTIONS).map((k) => `--${k}`).join(" ")}\n`);
    return values.help ? 0 : 2;
  }
  const address: ServerAddress = {
    host: values.host,
    port: number(values, "port", 1),
    directTlsPort: number(values, "tls-port", 1),
    domain: values.domain,
  };
  assertLoopback(address.host);
  const accounts = benchAccounts(values.prefix, number(values, "accounts", 2), values.password);
  const serverPid = values["server-pid"] ? number(values, "server-pid", 1) : undefined;
  const concurrency = number(values, "concurrency", 1);
  const timeoutMs = number(values, "login-timeout", 1) * 1000;
  const log = (line: string) => process.stderr.write(`  [${address.host}] ${line}\n`);
  const keyCache = values["key-cache"];
  if (keyCache && existsSync(keyCache)) importKeyCache(JSON.parse(readFileSync(keyCache, "utf8")));
  const started = performance.now();
  const report: GeneratorReport = { scenario, address, startedAt: new Date().toISOString(), pbkdf2Runs: 0, wallSeconds: 0 };

  if (scenario === "warm") {
    // Logs the first --logins accounts in once, unmeasured, so that their SCRAM keys are cached
    // (--key-cache) and measured logins cost the generator no PBKDF2, whatever the server's salts.
    const { result, clients } = await loginBatch({
      address,
      accounts: accounts.slice(0, number(values, "logins", 1)),
      mode: "starttls",
      resource: "w",
      concurrency,
      timeoutMs,
      budgetMs: number(values, "login-budget", 1) * 1000,
    });
    await closeAll(clients);
    report.warm = result;
    log(`warm-up logins: ${result.succeeded}/${result.attempted}`);
  } else if (scenario === "login") {
    report.login = await loginScenario(
      {
        address,
        accounts,
        logins: number(values, "logins", 1),
        warmupLogins: number(values, "login-warmup"),
        idleAt: values.idle.split(",").filter(Boolean).map(Number),
        concurrency,
        timeoutMs,
        budgetMs: number(values, "login-budget", 1) * 1000,
        settleS: number(values, "settle"),
        idleWaitS: number(values, "idle-wait"),
        serverPid,
      },
      log,
    );
  } else if (scenario === "muc") {
    report.muc = await mucScenario(values, address, accounts, serverPid, log);
  } else {
    const clientCount = Math.min(accounts.length, number(values, "clients", 2));
    const { result: loginResult, clients } = await loginBatch({
      address,
      accounts: accounts.slice(0, clientCount),
      mode: "starttls",
      resource: "c",
      concurrency,
      timeoutMs,
      budgetMs: number(values, "login-budget", 1) * 1000,
      serverPid,
    });
    log(`chat: ${clients.length}/${clientCount} clients logged in`);
    if (clients.length < 2) throw new Error("fewer than two clients logged in: nothing to measure");
    await sleep(1000); // presence and whatever else a login sets off
    const variants: ChatVariantResult[] = [];
    const findMax = values["find-max"] || !values["fixed-rate"];
    const fixed = values["fixed-rate"];
    const rates = rampRates(number(values, "start-rate", 1), number(values, "factor", 1.01), number(values, "max-rate", 1));
    for (const variant of values.variants.split(",").filter(Boolean)) {
      if (variant !== "archive" && variant !== "no-store") throw new Error(`unknown chat variant "${variant}"`);
      const run = new ChatRun({
        clients,
        domain: address.domain,
        noStore: variant === "no-store",
        durationMs: number(values, "duration", 0.1) * 1000,
        drainMs: number(values, "drain") * 1000,
        p99LimitMs: number(values, "p99-limit"),
        lossLimitPct: number(values, "loss-limit"),
        serverPid,
      });
      const warmupS = number(values, "warmup");
      if (warmupS > 0) {
        const w = await run.runStep(rates[0], warmupS * 1000);
        log(`warm-up (${variant}): ${describeStep(w)}`);
      }
      const result: ChatVariantResult = { variant, pairs: run.pairs, fixed: null, findMax: null };
      // Find-max first: a fixed rate beyond the server's reach leaves it a backlog to work through.
      if (findMax) {
        result.findMax = await run.findMax(rates, (line) => log(`${variant} ${line}`), number(values, "refine"));
        log(`${variant}: highest passing rate ${result.findMax.maxPassingRate ?? "none"}/s`);
        await sleep(1000);
      }
      if (fixed) {
        result.fixed = await run.runStep(number(values, "rate", 1), number(values, "fixed-duration", 0.1) * 1000);
        log(`${variant} fixed: ${describeStep(result.fixed)}`);
      }
      variants.push(result);
      await sleep(1000);
    }
    await closeAll(clients);
    report.chat = { login: loginResult, variants };
  }
  report.pbkdf2Runs = pbkdf2Count();
  if (keyCache) writeFileSync(keyCache, JSON.stringify(exportKeyCache()));
  report.wallSeconds = (performance.now() - started) / 1000;
  const json = JSON.stringify(report, null, 2);
  if (values.json) writeFileSync(values.json, json);
  else process.stdout.write(`${json}\n`);
  return 0;
}

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true; strict: true }>>["values"];

/**
 * The muc scenario: logs in as many accounts as the largest room needs, then for each size (in
 * increasing order, adding occupants to the same room) joins them, waits for every join, and runs
 * find-max and/or a fixed step; everyone leaves at the end.
 */
async function mucScenario(values: Values, address: ServerAddress, accounts: ReturnType<typeof benchAccounts>, serverPid: number | undefined, log: (line: string) => void): Promise<NonNullable<GeneratorReport["muc"]>> {
  const sizes = [...new Set(values.occupants.split(",").filter(Boolean).map(Number))].sort((a, b) => a - b);
  if (sizes.length === 0 || sizes.some((n) => !Number.isSafeInteger(n) || n < 1)) throw new Error(`--occupants must be whole numbers >= 1, got "${values.occupants}"`);
  const largest = sizes[sizes.length - 1];
  if (largest > accounts.length) throw new Error(`--occupants ${largest} needs that many accounts; --accounts is ${accounts.length}`);
  const mucDomain = values["muc-domain"] || `conference.${address.domain}`;
  const room = `${values.room}@${mucDomain}`;
  const { result: loginResult, clients } = await loginBatch({
    address,
    accounts: accounts.slice(0, largest),
    mode: "starttls",
    resource: "m",
    concurrency: number(values, "concurrency", 1),
    timeoutMs: number(values, "login-timeout", 1) * 1000,
    budgetMs: number(values, "login-budget", 1) * 1000,
    serverPid,
  });
  log(`muc: ${clients.length}/${largest} clients logged in`);
  if (clients.length < 1) throw new Error("no client logged in: nothing to measure");
  await sleep(1000);
  const muc = new MucRoom({
    room,
    durationMs: number(values, "duration", 0.1) * 1000,
    drainMs: number(values, "drain") * 1000,
    p99LimitMs: number(values, "p99-limit"),
    lossLimitPct: number(values, "loss-limit"),
    serverPid,
    joinTimeoutMs: number(values, "join-timeout", 1) * 1000,
  });
  const findMax = values["find-max"] || !values["fixed-rate"];
  const rates = rampRates(number(values, "start-rate", 1), number(values, "factor", 1.01), number(values, "max-rate", 1));
  const results: MucSizeResult[] = [];
  try {
    for (const size of sizes) {
      const join = await muc.join(clients, size, number(values, "join-concurrency", 1), number(values, "join-budget", 1) * 1000);
      log(describeJoin(join));
      const result: MucSizeResult = { occupants: size, room, join, fixed: null, findMax: null };
      results.push(result);
      if (join.joined < size) {
        log(`muc ${size}: only ${join.joined} occupants joined; measuring with them`);
        if (join.joined < 1) break;
      }
      await sleep(1000); // the last joins' presence broadcasts
      const warmupS = number(values, "warmup");
      if (warmupS > 0) log(`warm-up: ${describeMucStep(await muc.runStep(rates[0], warmupS * 1000))}`);
      if (findMax) {
        result.findMax = await muc.findMax(rates, log, number(values, "refine"));
        log(`muc ${join.joined} occupants: highest passing rate ${result.findMax.maxPassingRate ?? "none"} deliveries/s`);
        await sleep(1000);
      }
      if (values["fixed-rate"]) {
        result.fixed = await muc.runStep(number(values, "rate", 1), number(values, "fixed-duration", 0.1) * 1000);
        log(`fixed: ${describeMucStep(result.fixed)}`);
        await sleep(1000);
      }
    }
  } finally {
    await muc.leave();
    await sleep(1000);
    await closeAll(clients);
  }
  return { login: loginResult, sizes: results };
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`generator: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
