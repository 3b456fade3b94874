// The reference servers of the benchmark (npm run bench:compare): Prosody 0.12.3 and ejabberd 23.01
// from Debian 12, each on its own loopback address with its standard ports, started as its own
// user (setpriv, which keeps the raised open-files limit where su would reset it) and pinned to
// the server CPU. What conformance/reference/run.sh learnt is reused here: self-signed
// certificates, an unbound/inetrc that never asks a DNS server off this machine, ejabberd's
// fixed distribution port. The configuration templates beside this file say what differs.
//
// Storage variants: Prosody "internal" (flat files, its default) or "sql" (mod_storage_sql on
// SQLite via lua-dbi-sqlite3); ejabberd "mnesia" (its default) or "pgsql" (PostgreSQL on
// 127.0.0.1:5432, a fresh database loaded from the package's sql/pg.sql).
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import { join } from "node:path";
import pg from "pg";

const HERE = import.meta.dirname;
/** Every CPU: for setup work that is not measured. */
export const ALL_CPUS = `0-${Math.max(0, os.cpus().length - 1)}`;
const POSTGRES_ADMIN_URL = process.env.BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

export interface ReferenceServer {
  /** "Prosody", "ejabberd", "Parley". */
  readonly name: string;
  /** "internal", "sql (SQLite)", "mnesia", "PostgreSQL", ... */
  readonly storage: string;
  readonly host: string;
  readonly port: number;
  readonly directTlsPort: number;
  readonly domain: string;
  /** The MUC service (XEP-0045) the muc scenario uses. */
  readonly mucDomain: string;
  /** The process whose memory and CPU are read (null until started). */
  pid(): number | null;
  /** The PostgreSQL database whose backends are pinned with the server, if any. */
  readonly postgresDatabase: string | null;
  /** Fresh runtime directory, configuration, certificate and (for SQL) database; once per run. */
  setup(): Promise<void>;
  /**
   * Starts the server pinned to `cpus` (default: the server CPU; setup passes every CPU, since
   * making accounts is not measured); may be called again after stop(), keeping its data.
   */
  start(cpus?: string): Promise<void>;
  /** Needs the server running (Prosody, ejabberd) or stopped (Parley writes its database directly). */
  createAccounts(prefix: string, count: number, password: string): Promise<number>;
  stop(): Promise<void>;
}

// ---- small helpers ------------------------------------------------------------------------

/** Resolves once something accepts connections on host:port; bounded by timeoutMs. */
export async function waitForPort(host: string, port: number, timeoutMs: number, gaveUp: () => boolean = () => false): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (gaveUp()) throw new Error("the process exited");
    if (await canConnect(host, port)) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`nothing listens on ${host}:${port} after ${timeoutMs / 1000} s`);
}

export function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

/** The pid of the process listening on host:port (from `ss -ltnp`), or null. */
export function listeningPid(host: string, port: number): number | null {
  const out = spawnSync("ss", ["-ltnpH"], { encoding: "utf8" }).stdout ?? "";
  for (const line of out.split("\n")) {
    const cols = line.trim().split(/\s+/);
    if (cols[3] !== `${host}:${port}`) continue;
    const m = /pid=(\d+)/.exec(line);
    if (m) return Number(m[1]);
  }
  return null;
}

/** A self-signed ECDSA P-256 certificate for `domain`, as the conformance runner makes them. */
export function makeCertificate(domain: string, dir: string): { cert: string; key: string } {
  const cert = join(dir, `${domain}.crt`);
  const key = join(dir, `${domain}.key`);
  execFileSync("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "3650",
    "-subj", `/CN=${domain}`, "-addext", `subjectAltName=DNS:${domain}`, "-addext", "basicConstraints=critical,CA:TRUE",
    "-keyout", key, "-out", cert,
  ], { stdio: "ignore" });
  return { cert, key };
}

function run(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): string {
  const r = spawnSync(cmd, args, { encoding: "utf8", input: opts.input, timeout: opts.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.status ?? r.signal}): ${(r.stderr || r.stdout || "").slice(-2000)}`);
  return r.stdout;
}

/** Like run(), without blocking the event loop, so several servers can be set up at once. */
function runAsync(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString("utf8")));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString("utf8")));
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 120_000);
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(stdout);
      else reject(new Error(`${cmd} ${args.join(" ")} failed (${code ?? signal}): ${(stderr || stdout).slice(-2000)}`));
    });
    child.stdin.end(opts.input ?? "");
  });
}

function commandExists(cmd: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" }).status === 0;
}

function packageInstalled(name: string): boolean {
  return spawnSync("dpkg-query", ["-W", "-f=${Status}", name], { encoding: "utf8" }).stdout?.includes("install ok installed") ?? false;
}

/** Installs what bench:compare needs from Debian when it is missing (needs root). */
export function ensurePackages(log: (line: string) => void): void {
  // erlang-p1-pgsql is only "suggested" by ejabberd, but its PostgreSQL storage needs it.
  const wanted = ["prosody", "ejabberd", "erlang-p1-pgsql", "lua-dbi-sqlite3", "openssl"];
  const missing = wanted.filter((p) => !packageInstalled(p));
  if (missing.length === 0) return;
  log(`installing ${missing.join(", ")} from Debian`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const opts = { env, stdio: "inherit" as const, timeout: 1_200_000 };
  if (spawnSync("apt-get", ["update", "-qq"], opts).status !== 0) throw new Error("apt-get update failed");
  if (spawnSync("apt-get", ["install", "-y", "-qq", "-o", "DPkg::Lock::Timeout=600", ...missing], opts).status !== 0) throw new Error(`apt-get install ${missing.join(" ")} failed`);
  // Where an init system runs, the packages start their own instances on the standard ports.
  spawnSync("service", ["prosody", "stop"], { stdio: "ignore" });
  spawnSync("service", ["ejabberd", "stop"], { stdio: "ignore" });
}

function asUser(user: string, home: string, cpu: string, cmd: string[]): string[] {
  return ["setpriv", `--reuid=${user}`, `--regid=${user}`, "--init-groups", "env", `HOME=${home}`, "taskset", "-c", cpu, ...cmd];
}

function fill(template: string, values: Record<string, string>): string {
  let out = template;
  for (const [k, v] of Object.entries(values)) out = out.split(`@${k}@`).join(v);
  return out;
}

// ---- PostgreSQL ---------------------------------------------------------------------------------

export async function withPostgres<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export async function postgresAvailable(): Promise<boolean> {
  try {
    await withPostgres(POSTGRES_ADMIN_URL, (c) => c.query("select 1"));
    return true;
  } catch {
    return false;
  }
}

/** Drops and creates a database (names are the benchmark's own: lower-case letters and '_'). */
export async function recreateDatabase(name: string): Promise<string> {
  if (!/^[a-z_]+$/.test(name)) throw new Error(`bad database name ${name}`);
  await withPostgres(POSTGRES_ADMIN_URL, async (c) => {
    await c.query(`drop database if exists ${name} with (force)`);
    await c.query(`create database ${name}`);
  });
  const url = new URL(POSTGRES_ADMIN_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

/**
 * Pins the PostgreSQL backends serving `database` to `cpu`: the database is part of the server
 * under test, and a backend left free to run on the generator's CPU would give the SQL variants
 * a second core. Backends opened later are pinned by the next call (the runner calls it before
 * every scenario and every second during one).
 */
export async function pinPostgresBackends(database: string, cpu: string): Promise<number> {
  const pids = await withPostgres(POSTGRES_ADMIN_URL, async (c) => {
    const r = await c.query<{ pid: number }>("select pid from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()", [database]);
    return r.rows.map((row) => row.pid);
  });
  for (const pid of pids) spawnSync("taskset", ["-p", "-c", cpu, String(pid)], { stdio: "ignore" });
  return pids.length;
}

// ---- Prosody ------------------------------------------------------------------------------------

export class Prosody implements ReferenceServer {
  readonly name = "Prosody";
  readonly port = 5222;
  readonly directTlsPort = 5223;
  readonly domain = "prosody.test";
  readonly mucDomain = "conference.prosody.test";
  readonly postgresDatabase = null;
  readonly storage: string;
  private readonly config: string;

  constructor(
    readonly host: string,
    private readonly dir: string,
    private readonly variant: "internal" | "sql",
    private readonly cpu: string,
  ) {
    this.storage = variant === "sql" ? "SQL (SQLite)" : "internal (files)";
    this.config = join(dir, "prosody.cfg.lua");
  }

  private serverPid: number | null = null;

  pid(): number | null {
    if (this.serverPid !== null) return this.serverPid;
    try {
      return Number(readFileSync(join(this.dir, "prosody.pid"), "utf8").trim()) || null;
    } catch {
      return null;
    }
  }

  async setup(): Promise<void> {
    rmSync(this.dir, { recursive: true, force: true });
    mkdirSync(join(this.dir, "certs"), { recursive: true });
    mkdirSync(join(this.dir, "data"), { recursive: true });
    writeFileSync(join(this.dir, "resolv.conf"), "nameserver 127.0.0.1\n");
    makeCertificate(this.domain, join(this.dir, "certs"));
    writeFileSync(this.config, fill(readFileSync(join(HERE, "prosody.cfg.lua"), "utf8"), { DIR: this.dir, ADDRESS: this.host, STORAGE: this.variant }));
    run("chown", ["-R", "prosody:prosody", this.dir]);
    chmodSync(join(this.dir, ".."), 0o755);
  }

  async start(cpus = this.cpu): Promise<void> {
    if (await canConnect(this.host, this.port)) throw new Error(`something already listens on ${this.host}:${this.port}`);
    const [cmd, ...args] = asUser("prosody", "/var/lib/prosody", cpus, ["prosody", "--config", this.config, "-D"]);
    run(cmd, args);
    await waitForPort(this.host, this.port, 60_000);
    // The daemon's pid: the one holding the listening socket (its pidfile may come a moment later).
    this.serverPid = listeningPid(this.host, this.port);
  }

  /** One Lua loop in the running server, through the admin shell (mod_admin_shell). */
  async createAccounts(prefix: string, count: number, password: string): Promise<number> {
    if (!/^[a-z0-9]+$/.test(prefix) || !/^[A-Za-z0-9-]+$/.test(password)) throw new Error("account names and passwords must be plain ASCII here");
    const lua =
      `>local um = require "core.usermanager"; local n = 0; ` +
      `for i = 0, ${count - 1} do if um.user_exists("${prefix}" .. i, "${this.domain}") or um.create_user("${prefix}" .. i, "${password}", "${this.domain}") then n = n + 1 end end; return n`;
    const [cmd, ...args] = asUser("prosody", "/var/lib/prosody", ALL_CPUS, ["prosodyctl", "--config", this.config, "shell"]);
    const out = await runAsync(cmd, args, { input: `${lua}\n`, timeoutMs: 1_800_000 });
    const m = /Result: (\d+)/.exec(out);
    if (!m) throw new Error(`the Prosody shell did not say how many accounts it made: ${out.slice(-500)}`);
    return Number(m[1]);
  }

  async stop(): Promise<void> {
    const pid = this.pid();
    this.serverPid = null;
    if (pid === null) return;
    try {
      process.kill(pid, "SIGTERM");
    } catch {
      return;
    }
    for (let i = 0; i < 100 && existsSync(`/proc/${pid}`); i++) await new Promise((r) => setTimeout(r, 100));
    if (existsSync(`/proc/${pid}`)) process.kill(pid, "SIGKILL");
    rmSync(join(this.dir, "prosody.pid"), { force: true });
  }
}

// ---- ejabberd -----------------------------------------------------------------------------------

export class Ejabberd implements ReferenceServer {
  readonly name = "ejabberd";
  readonly port = 5222;
  readonly directTlsPort = 5223;
  readonly domain = "ejabberd.test";
  readonly mucDomain = "conference.ejabberd.test";
  readonly storage: string;
  readonly postgresDatabase: string | null;
  private serverPid: number | null = null;
  private starts = 0;

  constructor(
    readonly host: string,
    private readonly dir: string,
    private readonly variant: "mnesia" | "pgsql",
    private readonly cpu: string,
    /** Erlang node name and distribution port: unique per instance. */
    private readonly node: string,
    private readonly distPort: number,
  ) {
    this.storage = variant === "pgsql" ? "SQL (PostgreSQL)" : "Mnesia";
    this.postgresDatabase = variant === "pgsql" ? `${node.replace(/[^a-z]/g, "_")}` : null;
  }

  pid(): number | null {
    return this.serverPid;
  }

  private ctl(args: string[], timeoutMs = 120_000, cpus = this.cpu): string {
    const config = join(this.dir, "config");
    const [cmd, ...rest] = asUser("ejabberd", "/var/lib/ejabberd", cpus, [
      "ejabberdctl", "--config-dir", config, "--config", join(config, "ejabberd.yml"), "--ctl-config", join(config, "ejabberdctl.cfg"),
      "--spool", join(this.dir, "spool"), "--logs", join(this.dir, "logs"), ...args,
    ]);
    return run(cmd, rest, { timeoutMs });
  }

  async setup(): Promise<void> {
    rmSync(this.dir, { recursive: true, force: true });
    for (const d of ["config", "spool", "logs"]) mkdirSync(join(this.dir, d), { recursive: true });
    const { cert, key } = makeCertificate(this.domain, this.dir);
    writeFileSync(join(this.dir, `${this.domain}.pem`), readFileSync(cert, "utf8") + readFileSync(key, "utf8"));
    let storage = "auth_method: internal";
    if (this.variant === "pgsql") {
      const db = this.postgresDatabase!;
      const url = new URL(await recreateDatabase(db));
      await withPostgres(url.toString(), (c) => c.query(readFileSync("/usr/share/ejabberd/sql/pg.sql", "utf8")));
      storage = [
        "default_db: sql",
        "auth_method: sql",
        "sql_type: pgsql",
        `sql_server: "${url.hostname}"`,
        `sql_port: ${url.port || 5432}`,
        `sql_database: "${db}"`,
        `sql_username: "${decodeURIComponent(url.username) || "postgres"}"`,
        `sql_password: "${decodeURIComponent(url.password)}"`,
      ].join("\n");
    }
    const config = join(this.dir, "config");
    writeFileSync(join(config, "ejabberd.yml"), fill(readFileSync(join(HERE, "ejabberd.yml"), "utf8"), { DIR: this.dir, ADDRESS: this.host, STORAGE: storage }));
    copyFileSync(join(HERE, "inetrc"), join(config, "inetrc"));
    run("chown", ["-R", "ejabberd:ejabberd", this.dir]);
    chmodSync(join(this.dir, ".."), 0o755);
  }

  async start(cpus = this.cpu): Promise<void> {
    if (await canConnect(this.host, this.port)) throw new Error(`something already listens on ${this.host}:${this.port}`);
    // A new distribution port for every start: the last one may still be in TIME_WAIT, and the
    // Erlang node then fails to start at all. Mnesia data follows the node name, not the port.
    const distPort = this.distPort + (this.starts++ % 20);
    const config = join(this.dir, "config");
    writeFileSync(join(config, "ejabberdctl.cfg"), fill(readFileSync(join(HERE, "ejabberdctl.cfg"), "utf8"), { NODE: this.node, DIST_PORT: String(distPort) }));
    run("chown", ["ejabberd:ejabberd", join(config, "ejabberdctl.cfg")]);
    this.ctl(["start"], 120_000, cpus);
    // `started` gives up after its own wait; a first start (Mnesia creating its tables while the
    // other servers are being set up on the same CPUs) can outlast it. Asked again, boundedly.
    for (let attempt = 1; ; attempt++) {
      try {
        this.ctl(["started"], 180_000, cpus);
        break;
      } catch (err) {
        if (attempt >= 3) throw err;
      }
    }
    await waitForPort(this.host, this.port, 60_000);
    this.serverPid = listeningPid(this.host, this.port);
  }

  /** Through mod_http_api on the instance's address, a few requests at a time. */
  async createAccounts(prefix: string, count: number, password: string): Promise<number> {
    let next = 0;
    let created = 0;
    const url = `http://${this.host}:5280/api/register`;
    const worker = async () => {
      // Bounded by count.
      while (next < count) {
        const user = `${prefix}${next++}`;
        // A few tries each: right after start, ejabberd's SQL pool may not be there yet.
        for (let attempt = 1; ; attempt++) {
          const res = await fetch(url, { method: "POST", body: JSON.stringify({ user, host: this.domain, password }) });
          const text = await res.text();
          if (res.ok || /already registered|conflict/i.test(text)) {
            created++;
            break;
          }
          if (attempt >= 5) throw new Error(`ejabberd refused to register ${user}: ${res.status} ${text}`);
          await new Promise((r) => setTimeout(r, 1000));
        }
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    return created;
  }

  async stop(): Promise<void> {
    try {
      this.ctl(["stop"]);
      this.ctl(["stopped"], 60_000);
    } catch {
      if (this.serverPid !== null) spawnSync("kill", ["-9", String(this.serverPid)]);
    }
    this.serverPid = null;
  }
}
