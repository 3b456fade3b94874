// What `npm run bench` and `npm run bench:compare` share: running the load generator pinned to
// its own CPU against a target, waiting for a quiet machine, keeping a PostgreSQL-backed server's
// database backends on the server CPU, and finding free loopback ports.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import { join } from "node:path";
import type { GeneratorReport } from "./generator.ts";
import { pinPostgresBackends } from "./reference/servers.ts";
import { BenchClient } from "./load/client.ts";

export const REPO = join(import.meta.dirname, "..");
/** The server's CPU and the generator's: the machine has two. */
export const SERVER_CPU = process.env.BENCH_SERVER_CPU ?? "0";
export const GENERATOR_CPU = process.env.BENCH_GENERATOR_CPU ?? "1";

export interface Target {
  server: string;
  storage: string;
  host: string;
  port: number;
  directTlsPort: number;
  domain: string;
  /** The MUC service the muc scenario's room lives on (conference.<domain> for all three servers). */
  mucDomain?: string;
  pid(): number | null;
  postgresDatabase: string | null;
}

export function log(line: string): void {
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
}

/**
 * Resolves once `account` can log in (bounded by timeoutMs): a listening port is not a ready
 * server (ejabberd's SQL pool, for one, comes up a moment after its listeners).
 */
export async function waitForLogin(target: Target, account: { username: string; password: string }, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    const client = new BenchClient(target, { ...account, resource: "probe" });
    try {
      await client.login("starttls", 10_000);
      await client.close();
      return;
    } catch (err) {
      last = (err as Error).message;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  throw new Error(`${target.server} ${target.storage} accepts no login after ${timeoutMs / 1000} s: ${last}`);
}

/** Runs bench/generator.ts on the generator CPU; resolves with its JSON report. */
export async function runGenerator(target: Target, scenario: "login" | "chat" | "muc" | "warm", args: string[], resultFile: string): Promise<GeneratorReport> {
  const pid = target.pid();
  const argv = [
    "-c", GENERATOR_CPU, process.execPath, "--import", "tsx", join(REPO, "bench/generator.ts"), scenario,
    "--host", target.host, "--port", String(target.port), "--tls-port", String(target.directTlsPort), "--domain", target.domain,
    ...(pid ? ["--server-pid", String(pid)] : []), "--json", resultFile, ...args,
  ];
  // The database backends of a SQL-backed server count as the server: keep them on its CPU.
  let pinning: NodeJS.Timeout | null = null;
  if (target.postgresDatabase) {
    const db = target.postgresDatabase;
    await pinPostgresBackends(db, SERVER_CPU);
    pinning = setInterval(() => void pinPostgresBackends(db, SERVER_CPU).catch(() => undefined), 1000);
  }
  try {
    const child = spawn("taskset", argv, { cwd: REPO, stdio: ["ignore", "inherit", "inherit"] });
    const code = await new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
    if (code !== 0) throw new Error(`the generator failed (exit ${code}) against ${target.server} ${target.storage}`);
    return JSON.parse(readFileSync(resultFile, "utf8")) as GeneratorReport;
  } finally {
    if (pinning) clearInterval(pinning);
  }
}

/**
 * Waits (at most maxWaitS) for the 1-minute load average to fall below `threshold`, since other
 * work on the machine skews every figure; returns the load it settled for.
 */
export async function waitForQuiet(threshold: number, maxWaitS: number): Promise<number> {
  const deadline = Date.now() + maxWaitS * 1000;
  let load = os.loadavg()[0];
  if (load < threshold) return load;
  log(`load average ${load.toFixed(2)} >= ${threshold}: waiting up to ${maxWaitS} s for a quieter machine`);
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 5000));
    load = os.loadavg()[0];
    if (load < threshold) return load;
  }
  log(`load average still ${load.toFixed(2)}: measuring anyway (noted in the results)`);
  return load;
}

/** A TCP port nobody listens on at `host` right now. */
export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, host, () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

export function machineDescription(): string {
  const cpus = os.cpus();
  return `${cpus[0]?.model.trim() ?? "unknown CPU"}, ${cpus.length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB RAM, Linux ${os.release()}, Node ${process.version}`;
}

/** Whether another helper's MAM page benchmark exists yet (bench/mam.ts). */
export function mamBenchmarkPath(): string | null {
  const path = join(REPO, "bench/mam.ts");
  return existsSync(path) ? path : null;
}

/** Whether Parley loads a module named `name` (server/modules/index.ts). */
export function parleyHasModule(name: string): boolean {
  const index = readFileSync(join(REPO, "server/modules/index.ts"), "utf8");
  return new RegExp(`from "\\./${name}/index\\.ts"`).test(index);
}

/**
 * bench/mam.ts (another part of issue 5, written separately) times archive pages through the
 * storage API; it runs here once per archive size, on the server CPU, with its output kept.
 */
export function runMamBenchmark(sizes: string[], dialect: "sqlite" | "postgres"): { unavailable?: string; sections: string[]; worstP99: Map<number, number> } {
  const mam = mamBenchmarkPath();
  const worstP99 = new Map<number, number>();
  if (!mam) return { unavailable: "not available: bench/mam.ts does not exist yet", sections: [], worstP99 };
  const sections: string[] = [];
  let failed: string | undefined;
  for (const messages of sizes) {
    log(`mam: bench/mam.ts with ${messages} messages (${dialect})`);
    const env = { ...process.env, MESSAGES: messages, DIALECTS: dialect };
    const r = spawnSync("taskset", ["-c", SERVER_CPU, process.execPath, "--import", "tsx", mam], { cwd: REPO, env, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], timeout: 1_800_000 });
    sections.push(`### MAM pages, ${Number(messages).toLocaleString("en-US")} archived messages (bench/mam.ts, storage API, exit ${r.status})\n\n\`\`\`\n${(r.stdout ?? "").trim()}\n\`\`\``);
    if (r.status !== 0) failed = `bench/mam.ts failed (exit ${r.status})`;
    // Page cases only: an uncapped RSM <count/> is not what the module does by default.
    const lines = (r.stdout ?? "").split("\n").filter((line) => !line.includes("uncapped"));
    const p99s = lines.flatMap((line) => [...line.matchAll(/p99\s+([\d.]+) ms/g)].map((m) => Number(m[1])));
    if (p99s.length) worstP99.set(Number(messages), Math.max(...p99s));
  }
  return { unavailable: failed, sections, worstP99 };
}

export function mamMeasured(worst: Map<number, number>): string {
  if (worst.size === 0) return "see the bench/mam.ts output below";
  return [...worst].map(([n, p99]) => `${n.toLocaleString("en-US")} messages: worst p99 ${p99} ms`).join("; ") + " (the worst of bench/mam.ts's page cases, uncapped counts left out; storage API, not over XMPP)";
}
