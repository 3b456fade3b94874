// npm run bench:compare — Parley beside the servers people would pick instead, on the same
// machine in the same run (issue 5): Prosody 0.12.3 and ejabberd 23.01 from Debian, each with its
// default storage and with SQL storage (Prosody on SQLite, ejabberd on PostgreSQL), and Parley on
// SQLite (its default) and PostgreSQL. Every server runs on its own loopback address, pinned to
// CPU 0, started afresh for its turn and stopped after it; the generator runs on CPU 1. Rounds
// interleave the servers (A, B, C, A, B, C, ...), so a slow minute on the machine spreads over
// all of them; each cell of bench/RESULTS.md is the median over rounds with min–max.
// About 30 minutes with the defaults; every size and duration is an option (--help).
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { spawnSync } from "node:child_process";
import { ALL_CPUS, Ejabberd, Prosody, ensurePackages, postgresAvailable, type ReferenceServer } from "./reference/servers.ts";
import { ParleyServer } from "./parley.ts";
import { GENERATOR_CPU, REPO, SERVER_CPU, log, machineDescription, mamMeasured, parleyHasModule, runGenerator, runMamBenchmark, waitForLogin, waitForQuiet, type Target } from "./harness.ts";
import { CHAT_TARGET_RATE, METRICS, MUC_TARGET_DELIVERIES, MUC_TARGET_OCCUPANTS, checkTargets, columnName, comparisonRows, formatNumber, generatorPeak, markdownTable, mucNotes, mucSize, mucTarget, ratio, targetsTable, type Column, type RunRecord } from "./report.ts";
import { roundRate } from "./load/schedule.ts";
import { updateReadme } from "./readme.ts";
import { GENERATOR_SATURATED_PCT } from "./scenarios/chat.ts";
import { MIN_MESSAGES_PER_STEP } from "./scenarios/muc.ts";

const OPTIONS = {
  rounds: { type: "string", default: "3" },
  servers: { type: "string", default: "prosody,ejabberd,parley,prosody-sql,ejabberd-pgsql,parley-pg" },
  accounts: { type: "string", default: "10000" },
  logins: { type: "string", default: "1000" },
  idle: { type: "string", default: "1000,10000" },
  "idle-rounds": { type: "string", default: "1" },
  concurrency: { type: "string", default: "32" },
  "chat-clients": { type: "string", default: "200" },
  "step-duration": { type: "string", default: "3" },
  "start-rate": { type: "string", default: "25" },
  factor: { type: "string", default: "3" },
  refine: { type: "string", default: "3" },
  "max-rate": { type: "string", default: "100000" },
  /**
   * Seconds of each of Parley's target steps (chat with archiving at 10,000 msgs/s, the 100- and
   * 1,000-occupant rooms at 20,000 deliveries/s), run after its find-max ramps; "0" skips them.
   * The ramp's factor-3 rates need not land on a target's rate; these steps are the targets'
   * own test. Not run against the references, whose targets they are not.
   */
  "target-duration": { type: "string", default: "10" },
  scenarios: { type: "string", default: "login,chat,muc,mam" },
  /** Room sizes of the muc scenario (one room, occupants added size by size). */
  "muc-occupants": { type: "string", default: "100,1000" },
  /** First rate of the muc find-max ramp, offered deliveries per second (then × factor). */
  "muc-start-rate": { type: "string", default: "300" },
  "muc-max-rate": { type: "string", default: "1000000" },
  /** Archive sizes for bench/mam.ts (Parley only, storage API), once after the rounds; "" skips it. */
  "mam-messages": { type: "string", default: "1000000" },
  dir: { type: "string", default: "/tmp/parley-bench-compare" },
  out: { type: "string", default: "bench/RESULTS.md" },
  "quiet-load": { type: "string", default: "1" },
  "quiet-wait": { type: "string", default: "60" },
  "log-level": { type: "string", default: "info" },
  /** Rewrites the Markdown from an earlier run's records.json, measuring nothing (but see --with-mam). */
  "from-records": { type: "string", default: "" },
  /**
   * With --from-records: measure the MAM pages now (bench/mam.ts, --mam-messages, SQLite and
   * PostgreSQL), for a run stopped before it reached them; the report says they were measured later.
   */
  "with-mam": { type: "boolean", default: false },
  /** With --from-records: the Parley commit the records measured (records do not hold it). */
  revision: { type: "string", default: "" },
  help: { type: "boolean", default: false },
} as const;

type Values = { [K in keyof typeof OPTIONS]: (typeof OPTIONS)[K]["default"] extends boolean ? boolean : string };

const PASSWORD = "bench-pass";
const PREFIX = "bench";

interface Entry {
  key: string;
  server: ReferenceServer;
  /** Default storage: measured at 10,000 idle connections too; SQL variants only get the rest. */
  isDefault: boolean;
}

function makeServers(dir: string, keys: string[], logLevel: string): Entry[] {
  const all: Record<string, () => Entry> = {
    prosody: () => ({ key: "prosody", isDefault: true, server: new Prosody("127.0.0.12", join(dir, "prosody"), "internal", SERVER_CPU) }),
    ejabberd: () => ({ key: "ejabberd", isDefault: true, server: new Ejabberd("127.0.0.13", join(dir, "ejabberd"), "mnesia", SERVER_CPU, "parley-bench-mnesia", 47420) }),
    parley: () => ({ key: "parley", isDefault: true, server: new ParleyServer("127.0.0.16", join(dir, "parley"), "sqlite", SERVER_CPU, logLevel) }),
    "prosody-sql": () => ({ key: "prosody-sql", isDefault: false, server: new Prosody("127.0.0.14", join(dir, "prosody-sql"), "sql", SERVER_CPU) }),
    "ejabberd-pgsql": () => ({ key: "ejabberd-pgsql", isDefault: false, server: new Ejabberd("127.0.0.15", join(dir, "ejabberd-pgsql"), "pgsql", SERVER_CPU, "parley-bench-pgsql", 47440) }),
    "parley-pg": () => ({ key: "parley-pg", isDefault: false, server: new ParleyServer("127.0.0.17", join(dir, "parley-pg"), "postgres", SERVER_CPU, logLevel) }),
  };
  return keys.map((k) => {
    const make = all[k];
    if (!make) throw new Error(`unknown server "${k}" (known: ${Object.keys(all).join(", ")})`);
    return make();
  });
}

function keyCacheFile(dir: string, key: string): string {
  return join(dir, `scram-keys-${key}.json`);
}

function packageVersion(name: string): string {
  return spawnSync("dpkg-query", ["-W", "-f=${Version}", name], { encoding: "utf8" }).stdout?.trim() || "?";
}

function gitRevision(): string {
  return spawnSync("git", ["-C", REPO, "rev-parse", "--short", "HEAD"], { encoding: "utf8" }).stdout?.trim() || "?";
}

async function main(): Promise<number> {
  const { values } = parseArgs({ args: process.argv.slice(2), options: OPTIONS, strict: true });
  if (values.help) {
    process.stdout.write(`npm run bench:compare -- [options]\n${Object.entries(OPTIONS).map(([k, o]) => `  --${k} (default: ${String(o.default)})`).join("\n")}\n`);
    return 0;
  }
  if (values["from-records"]) {
    const records = JSON.parse(readFileSync(values["from-records"], "utf8")) as RunRecord[];
    const notes: string[] = [];
    let mam: Summary["mam"] = null;
    if (values["with-mam"] && values["mam-messages"]) {
      mam = measureMam(values["mam-messages"], records.some((r) => r.storage.includes("PostgreSQL") && r.server === "Parley"));
      notes.push(`The MAM section was measured on ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC, after the rounds, by \`--from-records --with-mam\`.`);
    }
    const markdown = resultsMarkdown({
      records,
      revision: values.revision || "(not recorded)",
      started: statSync(values["from-records"]).birthtime,
      notes,
      mam,
      values: { logins: Number(values.logins), chatClients: Number(values["chat-clients"]), factor: Number(values.factor), stepDuration: Number(values["step-duration"]), refine: Number(values.refine) },
    });
    writeFileSync(resolve(REPO, values.out), markdown);
    if (values.out === OPTIONS.out.default) updateReadme(join(REPO, "README.md"), resolve(REPO, values.out));
    process.stdout.write(markdown);
    return 0;
  }
  let keys = values.servers.split(",").filter(Boolean);
  const notes: string[] = [];

  if (process.getuid?.() !== 0) throw new Error("bench:compare needs root: it installs packages and starts Prosody and ejabberd as their own users");
  ensurePackages(log);
  if (!(await postgresAvailable())) {
    const dropped: string[] = keys.filter((k) => k === "ejabberd-pgsql" || k === "parley-pg");
    keys = keys.filter((k) => !dropped.includes(k));
    if (dropped.length) notes.push(`PostgreSQL did not answer on 127.0.0.1:5432: ${dropped.join(", ")} not measured.`);
  }
  const dir = values.dir;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, "results"), { recursive: true });
  const entries = makeServers(dir, keys, values["log-level"]);
  // Whatever happens, no server is left running: on failure, and on Ctrl-C.
  const stopAll = async () => {
    for (const e of entries) await e.server.stop().catch(() => undefined);
  };
  const onSignal = () => void stopAll().finally(() => process.exit(130));
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    return await measure(entries, values, dir, notes);
  } finally {
    await stopAll();
  }
}

async function measure(entries: Entry[], values: Values, dir: string, notes: string[]): Promise<number> {
  const started = new Date();
  // What is measured is the tree as it is now: later commits must not relabel the run.
  const revision = gitRevision();
  const rounds = Number(values.rounds);
  const scenarios = new Set(values.scenarios.split(",").filter(Boolean));
  const accounts = Number(values.accounts);
  const logins = Number(values.logins);
  const chatClients = Number(values["chat-clients"]);
  const factor = Number(values.factor);
  const mucOccupants = scenarios.has("muc") ? Math.max(...values["muc-occupants"].split(",").filter(Boolean).map(Number)) : 0;
  // Accounts the SQL variants get (default storage gets --accounts): enough for every scenario but idle memory.
  const needed = Math.max(logins, chatClients, mucOccupants);

  // ---- setup: every server gets its accounts once (all at once, on every CPU: this part is not
  // measured); its data then lives across its turns.
  await Promise.all(
    entries.map(async (e) => {
      const s = e.server;
      const count = e.isDefault ? Math.max(accounts, mucOccupants) : needed;
      log(`${s.name} ${s.storage}: setting up on ${s.host}, ${count} accounts`);
      await s.setup();
      if (s instanceof ParleyServer) {
        await s.createAccounts(PREFIX, count, PASSWORD);
        return;
      }
      await s.start(ALL_CPUS);
      try {
        const made = await s.createAccounts(PREFIX, count, PASSWORD);
        if (made < count) throw new Error(`only ${made} of ${count} accounts exist`);
        // Each of these accounts has its own salt: learn the SCRAM keys of the ones measured
        // logins use now, so that no measured login costs the generator a PBKDF2.
        const target: Target = { server: s.name, storage: s.storage, host: s.host, port: s.port, directTlsPort: s.directTlsPort, domain: s.domain, pid: () => null, postgresDatabase: null };
        const warm = Math.min(count, needed);
        await runGenerator(target, "warm", ["--prefix", PREFIX, "--password", PASSWORD, "--accounts", String(count), "--logins", String(warm), "--key-cache", keyCacheFile(dir, e.key)], join(dir, "results", `${e.key}-warm.json`));
      } finally {
        await s.stop();
      }
      log(`${s.name} ${s.storage}: ${count} accounts ready`);
    }),
  );

  // ---- rounds
  const records: RunRecord[] = [];
  const loads: number[] = [];
  const lastMax = new Map<string, number>(); // key/variant -> highest passing rate of the previous round
  const startRate = Number(values["start-rate"]);
  const targetDuration = Number(values["target-duration"]);
  /** The generator's fixed step at a target's rate, for Parley only. */
  const targetStep = (server: string, rate: string): string[] =>
    server === "Parley" && targetDuration > 0 ? ["--fixed-rate", "--rate", rate, "--fixed-duration", String(targetDuration)] : [];
  for (let round = 1; round <= rounds; round++) {
    const load = await waitForQuiet(Number(values["quiet-load"]), Number(values["quiet-wait"]));
    loads.push(load);
    log(`=== round ${round} of ${rounds} (load ${load.toFixed(2)})`);
    for (const e of entries) {
      const s = e.server;
      const record: RunRecord = { server: s.name, storage: s.storage, round, load, unavailable: {} };
      log(`--- ${s.name}, ${s.storage}`);
      await s.start();
      try {
        const target: Target = { server: s.name, storage: s.storage, host: s.host, port: s.port, directTlsPort: s.directTlsPort, domain: s.domain, pid: () => s.pid(), postgresDatabase: s.postgresDatabase };
        await waitForLogin(target, { username: `${PREFIX}0`, password: PASSWORD });
        const available = e.isDefault ? Math.max(accounts, mucOccupants) : needed;
        const common = ["--prefix", PREFIX, "--password", PASSWORD, "--accounts", String(available), "--concurrency", values.concurrency, "--key-cache", keyCacheFile(dir, e.key)];
        const tag = `${e.key}-r${round}`;
        if (scenarios.has("login")) {
          // Idle memory on default storage only (the storage does not hold idle connections), at
          // every size in the first rounds and at 1,000 afterwards.
          const idle = !e.isDefault ? "" : round <= Number(values["idle-rounds"]) ? values.idle : "1000";
          const report = await runGenerator(target, "login", [...common, "--logins", String(logins), "--idle", idle], join(dir, "results", `${tag}-login.json`));
          record.login = report.login;
        }
        if (scenarios.has("chat")) {
          // After round 1 the ramp starts one coarse step below the last round's maximum (of the
          // slower variant), to save time; every rate below it passed last round.
          const previous = Math.min(lastMax.get(`${e.key}/archive`) ?? startRate, lastMax.get(`${e.key}/no-store`) ?? startRate);
          const start = round === 1 ? startRate : Math.max(startRate, roundRate(previous / factor));
          const report = await runGenerator(
            target,
            "chat",
            [
              ...common, "--clients", String(chatClients), "--find-max", "--duration", values["step-duration"], "--warmup", "2",
              "--start-rate", String(start), "--factor", String(factor), "--refine", values.refine, "--max-rate", values["max-rate"],
              ...targetStep(s.name, String(CHAT_TARGET_RATE)),
            ],
            join(dir, "results", `${tag}-chat.json`),
          );
          record.chat = report.chat;
          for (const v of report.chat?.variants ?? []) lastMax.set(`${e.key}/${v.variant}`, v.findMax?.maxPassingRate ?? startRate);
        }
        if (scenarios.has("muc")) {
          // Like chat: after round 1 the ramp starts one coarse step below the smallest of the
          // last round's maxima (the largest room's, as a rule).
          const mucStart = Number(values["muc-start-rate"]);
          const previous = lastMax.get(`${e.key}/muc`);
          const start = round === 1 || previous === undefined ? mucStart : Math.max(mucStart, roundRate(previous / factor));
          try {
            const report = await runGenerator(
              target,
              "muc",
              [
                ...common, "--occupants", values["muc-occupants"], "--muc-domain", s.mucDomain, "--find-max", "--duration", values["step-duration"], "--warmup", "2",
                "--start-rate", String(start), "--factor", String(factor), "--refine", values.refine, "--max-rate", values["muc-max-rate"],
                ...targetStep(s.name, String(MUC_TARGET_DELIVERIES)),
              ],
              join(dir, "results", `${tag}-muc.json`),
            );
            record.muc = report.muc;
            const maxima = (report.muc?.sizes ?? []).map((size) => size.findMax?.maxPassingRate ?? mucStart);
            if (maxima.length) lastMax.set(`${e.key}/muc`, Math.min(...maxima));
          } catch (err) {
            record.unavailable.muc = `${s.name} ${s.storage}: the muc scenario failed (${(err as Error).message})`;
            log(record.unavailable.muc);
          }
        }
        if (s.name === "Parley" && !parleyHasModule("mam")) record.unavailable.archive = "Parley has no MAM module yet: its 'archiving on' chat runs archive nothing";
      } finally {
        await s.stop();
      }
      records.push(record);
      writeFileSync(join(dir, "results", "records.json"), JSON.stringify(records, null, 2));
    }
  }

  // MAM pages: bench/mam.ts measures Parley's archive store directly (SQLite and PostgreSQL);
  // Prosody and ejabberd have no counterpart here, so it is a Parley-only section.
  let mam: Summary["mam"] = null;
  if (scenarios.has("mam") && values["mam-messages"]) mam = measureMam(values["mam-messages"], entries.some((e) => e.key === "parley-pg"));
  const markdown = resultsMarkdown({ records, revision, started, notes, mam, values: { logins, chatClients, factor, stepDuration: Number(values["step-duration"]), refine: Number(values.refine) } });
  writeFileSync(resolve(REPO, values.out), markdown);
  // The README shows the latest full comparison (a run written elsewhere is a trial).
  if (values.out === OPTIONS.out.default) updateReadme(join(REPO, "README.md"), resolve(REPO, values.out));
  process.stdout.write(`\n${markdown}\n`);
  log(`wrote ${values.out}; raw figures in ${join(dir, "results")}`);
  return 0;
}

interface Summary {
  records: RunRecord[];
  /** The Parley commit measured. */
  revision: string;
  started: Date;
  notes: string[];
  mam: { sections: string[]; worst: Map<number, number>; unavailable?: string } | null;
  values: { logins: number; chatClients: number; factor: number; stepDuration: number; refine: number };
}

function resultsMarkdown(summary: Summary): string {
  const s = {
    ...summary,
    rounds: Math.max(0, ...summary.records.map((r) => r.round)),
    loads: [...new Map(summary.records.map((r) => [r.round, r.load])).values()],
    mucSizes: [...new Set(summary.records.flatMap((r) => r.muc?.sizes.map((z) => z.occupants) ?? []))].map((n) => formatNumber(n, 0)).join(" and then ") || "no",
  };
  const columns: Column[] = [];
  for (const r of s.records) if (!columns.some((c) => c.server === r.server && c.storage === r.storage)) columns.push({ server: r.server, storage: r.storage });
  const { headers, rows, spreads } = comparisonRows(s.records, columns, METRICS.filter((m) => !m.id.startsWith("fixed-")));
  const out: string[] = [];
  out.push("# Benchmark: Parley beside Prosody and ejabberd");
  out.push(
    `Generated by \`npm run bench:compare\` on ${s.started.toISOString().slice(0, 16).replace("T", " ")} UTC, Parley ${s.revision}, ` +
      `Prosody ${packageVersion("prosody")}, ejabberd ${packageVersion("ejabberd")} (Debian packages), PostgreSQL ${packageVersion("postgresql-15")}.\n` +
      `Machine: ${machineDescription()}. Every server was pinned to CPU ${SERVER_CPU} (with its PostgreSQL backends), the load generator to CPU ${GENERATOR_CPU}. ` +
      `${s.rounds} ${s.rounds === 1 ? "round" : "rounds"}, servers interleaved in each; 1-minute load average at the start of each round: ${s.loads.map((l) => l.toFixed(2)).join(", ")}` +
      `${s.loads.some((l) => l >= 1) ? " (other work was running on the machine; treat the figures as indicative)" : ""}.`,
  );
  out.push("Each cell is the median over the rounds, with the lowest and highest in brackets. Ratios, not absolute figures, are what we quote.");
  out.push(markdownTable(headers, rows));

  // Ratios: Parley with each storage against the better of the references.
  const refColumns = columns.filter((c) => c.server !== "Parley").map(columnName);
  const parleyColumns = columns.filter((c) => c.server === "Parley").map(columnName);
  if (refColumns.length && parleyColumns.length) {
    const ratioRows: string[][] = [];
    for (const m of METRICS) {
      const per = spreads.get(m.id);
      if (!per || m.label.startsWith("  ")) continue;
      const refs = refColumns.map((c) => per.get(c) ?? null);
      const cells = parleyColumns.map((c) => {
        const r = ratio(per.get(c) ?? null, refs, m.better);
        return r === null ? "–" : `${r.toFixed(2)}×`;
      });
      ratioRows.push([m.label, ...cells]);
    }
    out.push("## Ratios\n\nParley's median over the better reference's median (any storage), turned so that above 1× means Parley is better (more per second, or less time and memory).");
    out.push(markdownTable(["", ...parleyColumns], ratioRows));
  }

  // Targets of issue 5, for Parley on its default storage.
  const parley = s.records.filter((r) => r.server === "Parley" && r.storage.startsWith("SQLite"));
  const refLogins = spreads.get("starttls-rate");
  const bestRef = refColumns.map((c) => refLogins?.get(c)?.median ?? 0).reduce((a, b) => Math.max(a, b), 0);
  const parleyLogins = spreads.get("starttls-rate")?.get(parleyColumns.find((c) => c.includes("SQLite")) ?? "")?.median ?? null;
  const rss10k = spreads.get("rss-10k")?.get(parleyColumns.find((c) => c.includes("SQLite")) ?? "")?.median ?? null;
  const rssGrowth = spreads.get("rss-growth")?.get(parleyColumns.find((c) => c.includes("SQLite")) ?? "")?.median ?? null;
  const bestArchive = parley.map((r) => r.chat?.variants.find((v) => v.variant === "archive")?.findMax?.best ?? null).filter((b) => b !== null);
  const medianBest = bestArchive.sort((a, b) => a.rate - b.rate)[Math.floor(bestArchive.length / 2)] ?? null;
  // The target's own step (--target-duration) of the median round by p99, when the run has one.
  const targetSteps = parley.map((r) => r.chat?.variants.find((v) => v.variant === "archive")?.fixed ?? null).filter((f) => f !== null);
  const medianTargetStep = targetSteps.sort((a, b) => a.latencyMs.p99 - b.latencyMs.p99)[Math.floor(targetSteps.length / 2)] ?? null;
  // MUC: the 100-occupant room of the median round (by its highest passing rate).
  const mucRooms = parley.map((r) => mucSize(r, MUC_TARGET_OCCUPANTS)).filter((m) => m !== null);
  const medianMuc = mucRooms.sort((a, b) => (a.findMax?.maxPassingRate ?? 0) - (b.findMax?.maxPassingRate ?? 0))[Math.floor(mucRooms.length / 2)] ?? null;
  const mucCheck = parley.some((r) => r.muc) ? mucTarget(medianMuc) : { measured: "not measured in this run", met: null };
  out.push("## Parley's targets (issue 5)");
  out.push(
    targetsTable(
      checkTargets(
        {
          fixedArchive: medianTargetStep ?? medianBest,
          archiveUnavailable: parley.some((r) => r.unavailable.archive) ? "not available (Parley has no MAM module yet)" : undefined,
          starttlsLogins: parleyLogins,
          rss10k,
          rssGrowth,
          muc: mucCheck.measured,
          mucMet: mucCheck.met ?? undefined,
          mam: s.mam ? (s.mam.unavailable ?? mamMeasured(s.mam.worst)) : "not measured in this run",
          mamMet: s.mam?.worst.has(1_000_000) ? s.mam.worst.get(1_000_000)! < 20 : undefined,
        },
        bestRef || 196,
        bestRef ? "the better reference measured here" : "the issue's ejabberd figure",
      ),
    ),
  );
  out.push(
    medianTargetStep
      ? `The chat row is Parley's own ${formatNumber(CHAT_TARGET_RATE, 0)} msgs/s step of the median round (by p99), and the MUC row its ${formatNumber(MUC_TARGET_DELIVERIES, 0)} deliveries/s step or any find-max step that met the target: fixed-rate steps run against Parley only, after its find-max ramps (--target-duration).`
      : "The chat row of this table uses the find-max step of the median round (the highest rate that kept p99 ≤ 100 ms); `npm run bench` also runs a fixed 10,000 msgs/s step against Parley alone.",
  );

  const notes = [...s.notes, ...mucNotes(s.records)];
  const unavailable = new Set(s.records.flatMap((r) => Object.values(r.unavailable)));
  for (const u of unavailable) notes.push(u);
  const saturated = s.records.filter((r) => (generatorPeak(r) ?? 0) >= GENERATOR_SATURATED_PCT);
  if (saturated.length) notes.push(`The generator reached ${GENERATOR_SATURATED_PCT}% of its CPU in ${saturated.map((r) => `${r.server} ${r.storage} round ${r.round}`).join(", ")}: those figures may be the generator's limit, not the server's.`);
  out.push("## How it was measured");
  out.push(
    [
      `- login: ${formatNumber(s.values.logins, 0)} accounts log in with STARTTLS, then ${formatNumber(s.values.logins, 0)} with Direct TLS (XEP-0368), SCRAM-SHA-1, bind, initial presence; 32 logins in flight. Memory is the server's VmRSS growth over its RSS before any connection, per idle authenticated connection, both read after 30 s without traffic; server CPU per login is the server process's CPU time during a batch (threads included, PostgreSQL's backends not) over the logins it completed; 10,000 connections only on default storage in round 1.`,
      `- chat: ${formatNumber(s.values.chatClients, 0)} accounts in ${s.values.chatClients / 2} pairs send chat messages to each other's bare JID, open-loop at a fixed aggregate rate, each body stamped with the time it was due; latency runs from that time to arrival (no coordinated omission). Find-max steps of ${s.values.stepDuration} s, each ${s.values.factor}× the last, stop at the first step with p99 > 100 ms or loss > 0.1%; then up to ${s.values.refine} rates between the last that passed and the one that failed are tried; the highest passing rate is reported. Loss counts messages not delivered within 3 s after the last was due; a server still working off a backlog gets up to a minute before the next step. "Archiving on" is each server's default (ejabberd: mod_mam with default: always, see bench/reference/ejabberd.yml); "<no-store/>" adds XEP-0334's hint.`,
      `- muc: one room, bench@conference.<domain> on each server's own MUC service, filled to ${s.mucSizes} occupants in turn (more join between sizes), one of whom sends: the room's creator, which made it an instant room; every occupant joined asking for no history, and measuring began only once each had its self-presence (status 110). The sender posts groupchat messages open-loop, each body stamped with the time it was due; a delivery is one message reaching one occupant (the sender's own echo included), and latency runs from the due time to each arrival. Rates are offered deliveries per second (messages per second × occupants); find-max as for chat (steps of ${s.values.stepDuration} s, or of ${MIN_MESSAGES_PER_STEP} messages when that takes longer, each ${s.values.factor}× the last, then up to ${s.values.refine} refinements), stopping at p99 > 100 ms or more than 0.1% of deliveries missing 3 s after the last message was due. Configurations: bench/reference/ (Prosody's muc component, ejabberd's mod_muc, both with their occupant limits raised) and Parley's default MUC module.`,
      "- mam: bench/mam.ts (Parley only): 50-message pages through Parley's archive store, SQLite and PostgreSQL; see below.",
      "- Configurations: bench/reference/ (Prosody, ejabberd) and bench/parley.ts (Parley: only per-connection rate limits and login timeouts raised). Every figure of every round is kept as JSON in the run directory.",
      ...notes.map((n) => `- ${n}`),
    ].join("\n"),
  );
  if (s.mam?.sections.length) out.push("## MAM pages (Parley only)", ...s.mam.sections);
  // The hand-written reading of the profiles, kept beside the harness and dated inside.
  const analysis = join(REPO, "bench/ANALYSIS.md");
  if (existsSync(analysis)) out.push(readFileSync(analysis, "utf8").trim());
  return `${out.join("\n\n")}\n`;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench:compare: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);

/** bench/mam.ts on SQLite, and on PostgreSQL when Parley ran on it. */
function measureMam(sizesOption: string, postgres: boolean): NonNullable<Summary["mam"]> {
  const sizes = sizesOption.split(",").filter(Boolean);
  const sqlite = runMamBenchmark(sizes, "sqlite");
  const pg = postgres ? runMamBenchmark(sizes, "postgres") : null;
  return { sections: [...sqlite.sections, ...(pg?.sections ?? [])], worst: sqlite.worstP99, unavailable: sqlite.unavailable };
}
