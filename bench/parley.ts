// Parley under benchmark: a temporary parley.toml with limits raised for load, accounts created
// through the storage API (the same SCRAM credentials `parley adduser` stores, derived once and
// shared, so 10,000 accounts take seconds rather than minutes of PBKDF2), and the server started
// from the repository as an operator would (`parley start --config F`) on CPU 0.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, openSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "../server/core/config.ts";
import { credentialsFor } from "../server/core/accounts.ts";
import { openDatabase } from "../server/core/storage/index.ts";
import { databaseUrl } from "../server/start.ts";
import { canConnect, recreateDatabase, waitForPort, type ReferenceServer } from "./reference/servers.ts";
import { REPO } from "./harness.ts";

export interface ParleyInstance {
  /** Where the configuration, database and log live. */
  dir: string;
  config: string;
  host: string;
  port: number;
  directTlsPort: number;
  domain: string;
}

export interface ParleyOptions {
  dir: string;
  host: string;
  port: number;
  directTlsPort: number;
  /** The HTTP listener's port (metrics, BOSH, WebSocket) on `host`: never the default 5280, which another Parley may hold. */
  httpPort: number;
  domain: string;
  /** Empty for SQLite under dir, or a postgres:// URL. */
  databaseUrl: string;
  logLevel: string;
}

/**
 * The configuration differs from the defaults only where a benchmark needs it: per-connection
 * stanza and byte rates (100 stanzas/s would cap one sender far below the offered load), and
 * timeouts long enough for 10,000 logins queued behind each other. Everything else, archiving
 * and logging included, stays as users run it.
 */
export function parleyToml(o: ParleyOptions): string {
  return `# Written by bench/parley.ts for one benchmark run.
domains = ["${o.domain}"]
data_dir = "${o.dir}/data"

[c2s]
interfaces = ["${o.host}"]
port = ${o.port}
direct_tls_port = ${o.directTlsPort}

[http]
interfaces = ["${o.host}"]
port = ${o.httpPort}
tls_port = 0

[database]
url = "${o.databaseUrl}"

[limits]
c2s_rate_bytes_per_second = 1073741824
c2s_burst_bytes = 1073741824
stanzas_per_second = 100000
stanza_burst = 1000000
login_timeout_s = 600
idle_timeout_s = 3600

[log]
level = "${o.logLevel}"
`;
}

export function writeParleyConfig(o: ParleyOptions): ParleyInstance {
  mkdirSync(join(o.dir, "data"), { recursive: true });
  const config = join(o.dir, "parley.toml");
  writeFileSync(config, parleyToml(o));
  return { dir: o.dir, config, host: o.host, port: o.port, directTlsPort: o.directTlsPort, domain: o.domain };
}

/** Creates <prefix>0..<prefix>(count-1) (existing ones are left alone); returns how many were new. */
export async function createParleyAccounts(configFile: string, prefix: string, count: number, password: string): Promise<number> {
  const config = loadConfig(configFile);
  const storage = await openDatabase(databaseUrl(config));
  try {
    await storage.migrate();
    const credentials = credentialsFor(password);
    const domain = config.domains[0];
    let created = 0;
    const batch = 100;
    for (let i = 0; i < count; i += batch) {
      const made = await Promise.all(
        Array.from({ length: Math.min(batch, count - i) }, (_, j) => storage.users.create(domain, `${prefix}${i + j}`, credentials)),
      );
      created += made.filter(Boolean).length;
    }
    return created;
  } finally {
    await storage.close();
  }
}

export interface RunningParley {
  process: ChildProcess;
  pid: number;
  stop(): Promise<void>;
}

/** Starts `parley start --config F` pinned to `cpu`, optionally with --cpu-prof into profileDir. */
export async function startParley(instance: ParleyInstance, cpu: string, profileDir?: string): Promise<RunningParley> {
  const log = openSync(join(instance.dir, "parley.log"), "a");
  const nodeArgs = ["--import", "tsx", ...(profileDir ? ["--cpu-prof", "--cpu-prof-dir", profileDir] : []), "server/cli/main.ts", "start", "--config", instance.config];
  const child = spawn("taskset", ["-c", cpu, process.execPath, ...nodeArgs], { cwd: REPO, stdio: ["ignore", log, log] });
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  try {
    await waitForPort(instance.host, instance.port, 60_000, () => child.exitCode !== null);
  } catch (err) {
    child.kill("SIGKILL");
    throw new Error(`Parley did not start (see ${join(instance.dir, "parley.log")}): ${(err as Error).message}`);
  }
  return {
    process: child,
    // taskset execs node, so the child's pid is the server's.
    pid: child.pid!,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Parley as one of bench:compare's servers, beside Prosody and ejabberd. */
export class ParleyServer implements ReferenceServer {
  readonly name = "Parley";
  readonly port = 5222;
  readonly directTlsPort = 5223;
  readonly httpPort = 5280;
  readonly domain = "localhost";
  /** Parley's MUC module serves conference.<domain> unless configured otherwise. */
  readonly mucDomain = "conference.localhost";
  readonly storage: string;
  readonly postgresDatabase: string | null;
  private instance: ParleyInstance | null = null;
  private running: RunningParley | null = null;

  constructor(
    readonly host: string,
    private readonly dir: string,
    private readonly variant: "sqlite" | "postgres",
    private readonly cpu: string,
    private readonly logLevel = "info",
  ) {
    this.storage = variant === "postgres" ? "SQL (PostgreSQL)" : "SQLite (default)";
    this.postgresDatabase = variant === "postgres" ? "parley_bench" : null;
  }

  pid(): number | null {
    return this.running?.pid ?? null;
  }

  async setup(): Promise<void> {
    rmSync(this.dir, { recursive: true, force: true });
    const databaseUrl = this.variant === "postgres" ? await recreateDatabase(this.postgresDatabase!) : "";
    this.instance = writeParleyConfig({ dir: this.dir, host: this.host, port: this.port, directTlsPort: this.directTlsPort, httpPort: this.httpPort, domain: this.domain, databaseUrl, logLevel: this.logLevel });
  }

  async start(cpus = this.cpu): Promise<void> {
    if (!this.instance) throw new Error("setup() first");
    if (await canConnect(this.host, this.port)) throw new Error(`something already listens on ${this.host}:${this.port}`);
    this.running = await startParley(this.instance, cpus);
  }

  async createAccounts(prefix: string, count: number, password: string): Promise<number> {
    if (!this.instance) throw new Error("setup() first");
    return createParleyAccounts(this.instance.config, prefix, count, password);
  }

  async stop(): Promise<void> {
    await this.running?.stop();
    this.running = null;
  }
}
