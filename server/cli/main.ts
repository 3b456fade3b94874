// `parley`, the one command line of DESIGN.md "Configuration and operations": start, adduser,
// passwd, deluser, migrate, check, cert (and doap, for the project's own DOAP file and README).
// Arguments are parsed by node:util parseArgs; every command reads the same --config file
// (default ./parley.toml, or the built-in defaults when there is none).
//
// Exit status: 0 success, 1 failure (a one-line reason on stderr), 2 a command line that could
// not be understood, 130 a password prompt interrupted with Ctrl-C.
import { parseArgs } from "node:util";
import { readFileSync, realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { ConfigError, loadConfig } from "../core/config.ts";
import type { Server } from "../core/server.ts";
import { CliError, UsageError } from "./errors.ts";
import { readPassword, type PasswordInput, type PasswordOutput } from "./password.ts";

const USAGE = `Usage: parley <command> [options]

Commands:
  start            run the server until SIGTERM or SIGINT
  adduser JID      create an account (password asked for, or the first line of stdin)
  passwd JID       set an account's password (likewise)
  deluser JID      delete an account and everything stored for it
  migrate          bring the database schema up to date
  check            check the configuration, certificates and database; list every problem
  cert             make (or reuse) the self-signed certificate for the configured domains
  doap             write parley.doap and the README protocol table from the modules

Options:
  -c, --config FILE   configuration file (default: ./parley.toml, else built-in defaults)
  --force             cert: replace the certificate even if it is still good
  --days N            cert: validity of a new certificate in days (1-825, default 365)
  --doap FILE         doap: where to write the DOAP file (default: parley.doap)
  --readme FILE       doap: the README to update (default: README.md)
  -h, --help          show this help
  -V, --version       show Parley's version

Passwords are never taken from the command line, where other users could see them.`;

/** Which options each command accepts, besides --config and --help. */
const COMMAND_OPTIONS: Readonly<Record<string, { args: number; options: readonly string[] }>> = {
  start: { args: 0, options: [] },
  adduser: { args: 1, options: [] },
  passwd: { args: 1, options: [] },
  deluser: { args: 1, options: [] },
  migrate: { args: 0, options: [] },
  check: { args: 0, options: [] },
  cert: { args: 0, options: ["force", "days"] },
  doap: { args: 0, options: ["doap", "readme"] },
};

export interface CliIo {
  stdout: (line: string) => void;
  stderr: (line: string) => void;
  /** Where passwords come from (process.stdin); prompts go to `prompts` (process.stderr). */
  stdin: PasswordInput;
  prompts: PasswordOutput;
}

const processIo: CliIo = {
  stdout: (line) => process.stdout.write(`${line}\n`),
  stderr: (line) => process.stderr.write(`${line}\n`),
  stdin: process.stdin,
  prompts: process.stderr,
};

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version?: string };
  return pkg.version ?? "unknown";
}

interface Parsed {
  command: string | undefined;
  args: string[];
  config: string | undefined;
  values: Record<string, string | boolean | undefined>;
}

function parse(argv: string[]): Parsed | "help" | "version" {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        config: { type: "string", short: "c" },
        help: { type: "boolean", short: "h" },
        version: { type: "boolean", short: "V" },
        force: { type: "boolean" },
        days: { type: "string" },
        doap: { type: "string" },
        readme: { type: "string" },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help || positionals[0] === "help") return "help";
  if (values.version) return "version";
  const [command, ...args] = positionals;
  if (command === undefined) throw new UsageError("no command given");
  const spec = COMMAND_OPTIONS[command];
  if (!spec) throw new UsageError(`unknown command "${command}"`);
  if (args.length !== spec.args) {
    // An extra argument after a JID is most likely a password, which must not be accepted there.
    const expected = spec.args === 0 ? "no arguments" : "exactly one JID";
    throw new UsageError(`${command} takes ${expected}${spec.args === 1 && args.length > 1 ? " (passwords are asked for, never given as arguments)" : ""}`);
  }
  for (const option of ["force", "days", "doap", "readme"] as const) {
    if (values[option] !== undefined && !spec.options.includes(option)) throw new UsageError(`--${option} does not apply to ${command}`);
  }
  return { command, args, config: values.config, values };
}

/** Turns failures into what an operator reads: one line, no stack trace. */
function describeFailure(err: unknown): string[] {
  if (err instanceof ConfigError) {
    const where = err.message.split(": invalid configuration")[0];
    const file = where !== err.message && !where.includes("\n") ? `${where}: ` : "";
    if (err.problems.length === 1) return [`${file}${err.problems[0]}`];
    return [`${file}invalid configuration (${err.problems.length} problems):`, ...err.problems.map((p) => `  ${p}`)];
  }
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
  if (e?.syscall === "listen") {
    const where = `${e.address ?? "?"}:${e.port ?? "?"}`;
    const reason =
      e.code === "EADDRINUSE"
        ? "the address is already in use (is another server running?)"
        : e.code === "EACCES"
          ? "permission denied (ports below 1024 need privileges)"
          : e.code === "EADDRNOTAVAIL"
            ? "this machine has no such address"
            : e.message;
    return [`cannot listen on ${where}: ${reason}`];
  }
  if (err instanceof Error) {
    const cause = err.cause instanceof Error ? `: ${err.cause.message}` : "";
    return [`${err.message}${cause}`];
  }
  return [String(err)];
}

async function start(configPath: string | undefined, io: CliIo): Promise<number> {
  const config = loadConfig(configPath);
  // Imported here so that the account commands do not load every module.
  const { startServer } = await import("../start.ts");
  const server: Server = await startServer(config);
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        io.stderr(`parley: ${signal} again, exiting without waiting`);
        process.exit(1);
      }
      stopping = true;
      server.log.info({ signal }, "stopping");
      server.stop().then(
        () => resolve(0),
        (err: unknown) => {
          io.stderr(`parley: stopping failed: ${describeFailure(err).join(" ")}`);
          resolve(1);
        },
      );
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  });
}

async function run(parsed: Parsed, io: CliIo): Promise<number> {
  const { command, args, config: configPath, values } = parsed;
  const password = (confirm: boolean) => () =>
    readPassword({ input: io.stdin, output: io.prompts, prompt: `Password for ${args[0]}: `, confirm });
  // Commands load what they need when they run: storage drivers alone take half a second.
  switch (command) {
    case "start":
      return start(configPath, io);
    case "adduser": {
      const { addUser } = await import("./users.ts");
      io.stdout(await addUser(loadConfig(configPath), args[0], password(true)));
      return 0;
    }
    case "passwd": {
      const { changePassword } = await import("./users.ts");
      io.stdout(await changePassword(loadConfig(configPath), args[0], password(true)));
      return 0;
    }
    case "deluser": {
      const { deleteUser } = await import("./users.ts");
      io.stdout(await deleteUser(loadConfig(configPath), args[0]));
      io.stdout("(streams already open on a running server stay open until they end)");
      return 0;
    }
    case "migrate": {
      const { pendingMigrations, withStorage, describeDatabase } = await import("./database.ts");
      const config = loadConfig(configPath);
      const applied = await withStorage(config, async (storage) => {
        const pending = await pendingMigrations(storage);
        await storage.migrate();
        return pending;
      });
      io.stdout(applied.length > 0 ? `applied ${applied.join(", ")} to ${describeDatabase(config)}` : `${describeDatabase(config)} is up to date`);
      return 0;
    }
    case "check": {
      const { checkConfiguration } = await import("./check.ts");
      const { builtinModules } = await import("../modules/index.ts");
      const report = await checkConfiguration(configPath, builtinModules);
      for (const line of report.ok) io.stdout(`ok: ${line}`);
      for (const line of report.warnings) io.stdout(`warning: ${line}`);
      for (const line of report.problems) io.stdout(`problem: ${line}`);
      const count = report.problems.length;
      io.stdout(count === 0 ? "no problems found" : `${count} problem${count === 1 ? "" : "s"} found`);
      return count === 0 ? 0 : 1;
    }
    case "cert": {
      const { writeSelfSigned } = await import("./cert.ts");
      let days: number | undefined;
      if (typeof values.days === "string") {
        days = Number(values.days);
        if (!Number.isInteger(days) || days < 1 || days > 825) throw new UsageError(`--days must be a whole number of days from 1 to 825, got "${values.days}"`);
      }
      for (const line of await writeSelfSigned(loadConfig(configPath), { force: values.force === true, days })) io.stdout(line);
      return 0;
    }
    case "doap": {
      const { runDoap } = await import("./doap.ts");
      const doapPath = typeof values.doap === "string" ? values.doap : "parley.doap";
      const readmePath = typeof values.readme === "string" ? values.readme : "README.md";
      await runDoap({ doapPath, readmePath, out: io.stdout });
      return 0;
    }
  }
  throw new UsageError(`unknown command "${command}"`);
}

/** Runs `parley` with these arguments; resolves with the exit status. */
export async function main(argv: string[], io: Partial<CliIo> = {}): Promise<number> {
  const streams: CliIo = { ...processIo, ...io };
  try {
    const parsed = parse(argv);
    if (parsed === "help") {
      streams.stdout(USAGE);
      return 0;
    }
    if (parsed === "version") {
      streams.stdout(`parley ${version()}`);
      return 0;
    }
    return await run(parsed, streams);
  } catch (err) {
    if (err instanceof UsageError) {
      streams.stderr(`parley: ${err.message}`);
      streams.stderr("Run `parley --help` for the commands and options.");
      return err.exitCode;
    }
    for (const line of describeFailure(err)) streams.stderr(`parley: ${line}`);
    return err instanceof CliError ? err.exitCode : 1;
  }
}

function isEntryPoint(): boolean {
  if (!process.argv[1]) return false;
  try {
    return realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

// Run as a program (tsx server/cli/main.ts ...), not when imported (by bin.mjs or a test).
if (isEntryPoint()) {
  // Exit explicitly: a pool or a prompt left referenced must not keep a finished command alive.
  void main(process.argv.slice(2)).then((code) => process.exit(code));
}
