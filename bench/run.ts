// npm run bench — Parley alone, as issue 5 describes: a temporary configuration and database,
// accounts made through the storage API, `parley start` pinned to CPU 0, the load generator
// pinned to CPU 1, then the login, chat, muc and mam scenarios, and a table.
// About 6 minutes with the defaults; every duration and size is an option (--help).
//
//   npm run bench -- --database postgres      # PostgreSQL on 127.0.0.1:5432 instead of SQLite
//   npm run bench -- --scenarios chat --profile   # CPU profile of the server (node --cpu-prof)
//   npm run bench -- --scenarios muc --muc-occupants 100   # one room of 100 occupants only
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createParleyAccounts, startParley, writeParleyConfig, type RunningParley } from "./parley.ts";
import { GENERATOR_CPU, SERVER_CPU, freePort, log, machineDescription, mamMeasured, parleyHasModule, runGenerator, runMamBenchmark, waitForQuiet, type Target } from "./harness.ts";
import { MUC_TARGET_OCCUPANTS, checkTargets, idleGrowth, comparisonRows, ISSUE_REFERENCE_LOGINS_PER_SECOND, markdownTable, mucNotes, mucSize, mucTarget, targetsTable, type RunRecord } from "./report.ts";
import { recreateDatabase } from "./reference/servers.ts";
import { summarizeProfile, topSelf, topTotal, type CpuProfile } from "./profile.ts";
import { readFileSync } from "node:fs";

const OPTIONS = {
  host: { type: "string", default: "127.0.0.1" },
  database: { type: "string", default: "" },
  accounts: { type: "string", default: "10000" },
  logins: { type: "string", default: "1000" },
  idle: { type: "string", default: "1000,10000" },
  /** Seconds without traffic before each memory reading (generator.ts --idle-wait). */
  "idle-wait": { type: "string", default: "30" },
  concurrency: { type: "string", default: "32" },
  "chat-clients": { type: "string", default: "200" },
  /** Which chat variants run: archive (each server's default) and no-store (XEP-0334's hint). */
  "chat-variants": { type: "string", default: "archive,no-store" },
  rate: { type: "string", default: "10000" },
  "fixed-duration": { type: "string", default: "10" },
  "step-duration": { type: "string", default: "5" },
  "start-rate": { type: "string", default: "1000" },
  factor: { type: "string", default: "2" },
  "max-rate": { type: "string", default: "100000" },
  scenarios: { type: "string", default: "login,chat,muc,mam" },
  /** Room sizes of the muc scenario, joined in increasing order into one room. */
  "muc-occupants": { type: "string", default: "100,1000" },
  /** The muc scenario's fixed step and find-max ramp, in offered deliveries per second. */
  "muc-rate": { type: "string", default: "20000" },
  "muc-start-rate": { type: "string", default: "1000" },
  "muc-max-rate": { type: "string", default: "1000000" },
  /** "" for Parley's default, conference.<domain>. */
  "muc-domain": { type: "string", default: "" },
  "mam-messages": { type: "string", default: "10000,1000000" },
  "log-level": { type: "string", default: "info" },
  profile: { type: "boolean", default: false },
  "quiet-load": { type: "string", default: "1" },
  "quiet-wait": { type: "string", default: "120" },
  keep: { type: "boolean", default: false },
  json: { type: "string" },
  help: { type: "boolean", default: false },
} as const;

const PASSWORD = "bench-pass";
const PREFIX = "bench";

async function main(): Promise<number> {
  const { values } = parseArgs({ args: process.argv.slice(2), options: OPTIONS, strict: true });
  if (values.help) {
    process.stdout.write(`npm run bench -- [options]\n${Object.entries(OPTIONS).map(([k, o]) => `  --${k}${"default" in o ? ` (default: ${String(o.default)})` : ""}`).join("\n")}\n`);
    return 0;
  }
  const scenarios = new Set(values.scenarios.split(",").filter(Boolean));
  const accounts = Number(values.accounts);
  const dir = mkdtempSync(join(tmpdir(), "parley-bench-"));
  let databaseUrl = values.database;
  let storage = "SQLite";
  if (databaseUrl === "postgres") databaseUrl = await recreateDatabase("parley_bench");
  if (databaseUrl.startsWith("postgres")) storage = "PostgreSQL";
  const instance = writeParleyConfig({
    dir,
    host: values.host,
    port: await freePort(values.host),
    directTlsPort: await freePort(values.host),
    httpPort: await freePort(values.host),
    domain: "localhost",
    databaseUrl,
    logLevel: values["log-level"],
  });
  log(`Parley (${storage}) in ${dir}: creating ${accounts} accounts`);
  await createParleyAccounts(instance.config, PREFIX, accounts, PASSWORD);
  const profileDir = values.profile ? join(dir, "profile") : undefined;
  let parley: RunningParley | null = null;
  const record: RunRecord = { server: "Parley", storage, round: 1, load: 0, unavailable: {} };
  const extra: string[] = [];
  let mamWorst = new Map<number, number>();
  try {
    record.load = await waitForQuiet(Number(values["quiet-load"]), Number(values["quiet-wait"]));
    parley = await startParley(instance, SERVER_CPU, profileDir);
    log(`Parley pid ${parley.pid} on ${instance.host}:${instance.port} (Direct TLS ${instance.directTlsPort}), CPU ${SERVER_CPU}; generator on CPU ${GENERATOR_CPU}`);
    const running = parley;
    const target: Target = {
      server: "Parley",
      storage,
      host: instance.host,
      port: instance.port,
      directTlsPort: instance.directTlsPort,
      domain: instance.domain,
      pid: () => running.pid,
      postgresDatabase: storage === "PostgreSQL" ? new URL(databaseUrl).pathname.slice(1) : null,
    };
    const common = ["--prefix", PREFIX, "--password", PASSWORD, "--accounts", String(accounts), "--concurrency", values.concurrency];
    if (scenarios.has("login")) {
      const report = await runGenerator(target, "login", [...common, "--logins", values.logins, "--idle", values.idle, "--idle-wait", values["idle-wait"]], join(dir, "login.json"));
      record.login = report.login;
    }
    if (scenarios.has("chat")) {
      const archive = parleyHasModule("mam") ? "archive" : "archive (not available: no MAM module yet)";
      if (!parleyHasModule("mam")) record.unavailable.archive = "not available: Parley has no MAM module yet (server/modules/index.ts), so both chat variants run without an archive";
      log(`chat: ${archive}`);
      const report = await runGenerator(
        target,
        "chat",
        [
          ...common, "--clients", values["chat-clients"], "--variants", values["chat-variants"], "--fixed-rate", "--find-max", "--rate", values.rate,
          "--fixed-duration", values["fixed-duration"], "--duration", values["step-duration"],
          "--start-rate", values["start-rate"], "--factor", values.factor, "--max-rate", values["max-rate"],
        ],
        join(dir, "chat.json"),
      );
      record.chat = report.chat;
    }
    if (scenarios.has("muc")) {
      if (!parleyHasModule("muc")) record.unavailable.muc = "not available: Parley has no MUC module (server/modules/index.ts)";
      else {
        try {
          const report = await runGenerator(
            target,
            "muc",
            [
              ...common, "--occupants", values["muc-occupants"], "--muc-domain", values["muc-domain"] || `conference.${instance.domain}`,
              "--fixed-rate", "--find-max", "--rate", values["muc-rate"], "--fixed-duration", values["fixed-duration"], "--duration", values["step-duration"],
              "--start-rate", values["muc-start-rate"], "--factor", values.factor, "--max-rate", values["muc-max-rate"],
            ],
            join(dir, "muc.json"),
          );
          record.muc = report.muc;
        } catch (err) {
          record.unavailable.muc = `failed: ${(err as Error).message}`;
        }
      }
    }
    if (scenarios.has("mam")) {
      const mam = runMamBenchmark(values["mam-messages"].split(",").filter(Boolean), storage === "PostgreSQL" ? "postgres" : "sqlite");
      if (mam.unavailable) record.unavailable.mam = mam.unavailable;
      extra.push(...mam.sections);
      mamWorst = mam.worstP99;
    }
  } finally {
    await parley?.stop();
  }

  const column = { server: "Parley", storage };
  const { headers, rows } = comparisonRows([record], [column]);
  if (record.unavailable.archive) for (const row of rows) row[0] = row[0].replace("archiving on", "archiving on (archive: not available)");
  const out: string[] = [];
  out.push(`## Parley benchmark, ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC`);
  out.push(`${machineDescription()}; server on CPU ${SERVER_CPU}, generator on CPU ${GENERATOR_CPU}; load average at start ${record.load.toFixed(2)}.`);
  out.push(markdownTable(headers, rows));
  for (const [scenario, why] of Object.entries(record.unavailable)) out.push(`- ${scenario}: ${why}`);
  for (const note of mucNotes([record])) out.push(`- muc: ${note}`);
  const archiveFixed = record.chat?.variants.find((v) => v.variant === "archive")?.fixed ?? null;
  out.push(
    targetsTable(
      checkTargets(
        {
          fixedArchive: archiveFixed,
          archiveUnavailable: record.unavailable.archive ? "not available (no MAM module yet)" : undefined,
          starttlsLogins: record.login?.starttls.loginsPerSecond ?? null,
          rss10k: record.login?.idle.find((p) => p.connections >= 9500)?.perConnectionKiB ?? null,
          rssGrowth: idleGrowth(record),
          ...mucTargetValues(record),
          mam: record.unavailable.mam ?? mamMeasured(mamWorst),
          mamMet: mamWorst.has(1_000_000) ? mamWorst.get(1_000_000)! < 20 : undefined,
        },
        ISSUE_REFERENCE_LOGINS_PER_SECOND,
        "the issue's ejabberd figure; npm run bench:compare measures it",
      ),
    ),
  );
  out.push(...extra);
  if (profileDir) out.push(profileSummary(profileDir));
  const text = out.join("\n\n");
  process.stdout.write(`\n${text}\n`);
  writeFileSync(join(dir, "results.md"), `${text}\n`);
  writeFileSync(values.json ?? join(dir, "results.json"), JSON.stringify(record, null, 2));
  if (!values.keep && !profileDir) rmSync(dir, { recursive: true, force: true });
  else log(`kept ${dir}`);
  return 0;
}

function mucTargetValues(record: RunRecord): { muc: string; mucMet?: boolean } {
  if (record.unavailable.muc) return { muc: record.unavailable.muc };
  const target = mucTarget(record.muc ? mucSize(record, MUC_TARGET_OCCUPANTS) : null);
  return { muc: target.measured, mucMet: target.met ?? undefined };
}

function profileSummary(profileDir: string): string {
  const lines = ["### Server CPU profile (node --cpu-prof)"];
  for (const file of readdirSync(profileDir).filter((f) => f.endsWith(".cpuprofile"))) {
    const summary = summarizeProfile(JSON.parse(readFileSync(join(profileDir, file), "utf8")) as CpuProfile);
    const idle = summary.frames.find((f) => f.frame === "(idle)")?.selfMs ?? 0;
    lines.push(`${join(profileDir, file)}: ${(summary.totalMs / 1000).toFixed(1)} s, ${((idle / summary.totalMs) * 100).toFixed(0)}% idle`);
    lines.push("```", "self time:", ...topSelf(summary, 25).map((f) => `${f.selfPct.toFixed(1).padStart(5)}%  ${f.frame}`));
    lines.push("total time:", ...topTotal(summary, 25).map((f) => `${f.totalPct.toFixed(1).padStart(5)}%  ${f.frame}`), "```");
  }
  return lines.join("\n");
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
