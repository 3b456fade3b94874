// parley-conformance: test any XMPP server against RFC 6120/6121 and the XEPs it advertises,
// over client-to-server sockets only (conformance/README.md). Exit status: 0 when every MUST
// scenario that ran passed, 1 when one failed, 2 when the run could not start.
import { readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { ConformanceRunner, registerAccounts, type Account, type ScenarioResult, type TargetServer } from "./runner.ts";
import { loadScenarios, BUILTIN_SCENARIO_DIR } from "./scenario/load.ts";
import type { Scenario } from "./scenario/format.ts";
import { complianceVerdicts } from "./compliance.ts";
import { formatCompliance, formatFailures, formatSpecTable, jsonReport, junitXml, mustFailures } from "./report.ts";

const USAGE = `Usage: parley-conformance --domain DOMAIN --accounts user:pass,user:pass,user:pass [options]

Connection
  --host HOST              server address (default: 127.0.0.1)
  --port PORT              c2s port, STARTTLS (default: 5222)
  --direct-tls-port PORT   Direct TLS port (XEP-0368); its scenarios are skipped without it
  --websocket-url URL      RFC 7395 endpoint (ws://host:port/path); its scenarios are skipped without it
  --bosh-url URL           XEP-0206 endpoint (http://host:port/path); its scenarios are skipped without it
  --domain DOMAIN          the XMPP domain (required)
  --accounts LIST          user:password pairs, comma-separated; three cover every scenario
  --register               create the accounts first with in-band registration (XEP-0077)
  --tls-insecure           accept any certificate (self-signed test servers)
  --ca FILE                trust this CA (PEM) for the server's certificate
Across servers (a second server federating with the first; its scenarios are skipped without it)
  --peer-host HOST         the peer's address (default: --host)
  --peer-port PORT         the peer's c2s port, STARTTLS (default: 5222)
  --peer-domain DOMAIN     the peer's XMPP domain
  --peer-accounts LIST     user:password pairs on the peer; two cover every scenario
  --peer-ca FILE           trust this CA for the peer's certificate (default: --ca / --tls-insecure)
Selection and output
  --only LIST              specs or scenario ids, comma-separated: xep-0199,rfc6120/stream-errors
  --scenarios DIR          read scenarios from DIR instead of the built-in ones
  --timeout MS             how long to wait for an expected stanza (default: 5000)
  --junit FILE             write JUnit XML
  --json FILE              write a JSON summary (conformance/reference/results.ts reads it)
  --name NAME              the server's name in reports (default: the domain)
  --config FILE            read options from FILE: one "option = value" per line
  --list                   list the scenarios and exit
  -h, --help               this text
`;

const OPTIONS = {
  host: { type: "string" },
  port: { type: "string" },
  "direct-tls-port": { type: "string" },
  "websocket-url": { type: "string" },
  "bosh-url": { type: "string" },
  domain: { type: "string" },
  accounts: { type: "string" },
  register: { type: "boolean" },
  "tls-insecure": { type: "boolean" },
  ca: { type: "string" },
  "peer-host": { type: "string" },
  "peer-port": { type: "string" },
  "peer-domain": { type: "string" },
  "peer-accounts": { type: "string" },
  "peer-ca": { type: "string" },
  only: { type: "string" },
  scenarios: { type: "string" },
  timeout: { type: "string" },
  junit: { type: "string" },
  json: { type: "string" },
  name: { type: "string" },
  config: { type: "string" },
  list: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

export class UsageError extends Error {}

/** "xep-0199", "XEP 199", "rfc6120" -> "xep199" / "rfc6120"; other text is kept for id prefixes. */
export function specKey(s: string): string {
  const m = /^(rfc|xep)[\s-]*0*(\d+)$/i.exec(s.trim());
  return m ? `${m[1].toLowerCase()}${m[2]}` : s.trim().toLowerCase();
}

/** Does a scenario belong to one of the --only selections (a spec, or a scenario id or id prefix)? */
export function selected(s: Scenario, only: string[]): boolean {
  if (only.length === 0) return true;
  const spec = specKey(s.spec);
  return only.some((o) => {
    const k = specKey(o);
    return k === spec || s.id === o || s.id.startsWith(o.endsWith("/") ? o : o + "/");
  });
}

export function parseAccounts(list: string): Account[] {
  return list
    .split(",")
    .map((x) => x.trim())
    .filter(Boolean)
    .map((pair) => {
      const i = pair.indexOf(":");
      if (i <= 0 || i === pair.length - 1) throw new UsageError(`bad account "${pair}" (expected user:password)`);
      return { username: pair.slice(0, i), password: pair.slice(i + 1) };
    });
}

/** Options from a config file: `option = value` (or `option: value`) lines, `#` comments. */
export function parseConfigFile(text: string): string[] {
  const args: string[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const m = /^([a-z-]+)\s*(?:[=:]\s*(.*))?$/.exec(line);
    if (!m) throw new UsageError(`config: cannot read "${line}"`);
    const value = m[2]?.trim().replace(/^"(.*)"$/, "$1");
    if (value === undefined || value === "true") args.push(`--${m[1]}`);
    else if (value !== "false") args.push(`--${m[1]}`, value);
  }
  return args;
}

function parse(argv: string[]) {
  const first = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false }).values;
  if (!first.config) return first;
  const fromFile = parseConfigFile(readFileSync(first.config, "utf8"));
  // Command-line options win over the file's.
  return { ...parseArgs({ args: fromFile, options: OPTIONS, strict: true }).values, ...first };
}

const useColor = () => process.stdout.isTTY && !process.env.NO_COLOR;
const paint = (code: string, s: string) => (useColor() ? `\x1b[${code}m${s}\x1b[0m` : s);

function outcomeLabel(r: ScenarioResult): string {
  switch (r.outcome) {
    case "pass":
      return paint("32", "✓ pass");
    case "skip":
      return paint("2", "- skip");
    case "error":
      return paint("31", "✗ error");
    default:
      return r.scenario.level === "MUST" ? paint("31", "✗ FAIL") : paint("33", "✗ fail");
  }
}

class Progress {
  private readonly tty = !!process.stderr.isTTY;
  bar(done: number, total: number, title: string): void {
    if (!this.tty) return;
    const width = 24;
    const filled = Math.round((done / Math.max(total, 1)) * width);
    const text = `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${done}/${total} ${title}`;
    process.stderr.write(`\r\x1b[K${text.slice(0, (process.stderr.columns || 100) - 1)}`);
  }
  clear(): void {
    if (this.tty) process.stderr.write("\r\x1b[K");
  }
}

/** Runs the CLI; resolves with the exit status. */
export async function main(argv: string[]): Promise<number> {
  // `parley-conformance --list | head` closes our stdout early; that is not an error.
  process.stdout.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code !== "EPIPE") throw e;
  });
  let values: ReturnType<typeof parse>;
  try {
    values = parse(argv);
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  let scenarios: Scenario[];
  try {
    scenarios = loadScenarios(values.scenarios ?? BUILTIN_SCENARIO_DIR);
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    return 2;
  }
  const only = (values.only ?? "").split(",").map((x) => x.trim()).filter(Boolean);
  const chosen = scenarios.filter((s) => s.provides.length === 0 && selected(s, only));
  if (values.list) {
    for (const s of chosen) process.stdout.write(`${s.id.padEnd(44)} ${s.spec} ${s.section} [${s.level}] ${s.title}\n`);
    return 0;
  }
  if (!values.domain || !values.accounts) {
    process.stderr.write(`--domain and --accounts are required\n\n${USAGE}`);
    return 2;
  }
  let target: TargetServer;
  try {
    const port = Number(values.port ?? 5222);
    const directTlsPort = values["direct-tls-port"] ? Number(values["direct-tls-port"]) : undefined;
    if (!Number.isInteger(port) || (directTlsPort !== undefined && !Number.isInteger(directTlsPort))) throw new UsageError("ports must be numbers");
    target = {
      host: values.host ?? "127.0.0.1",
      port,
      directTlsPort,
      domain: values.domain,
      accounts: parseAccounts(values.accounts),
      ca: values.ca ? readFileSync(values.ca, "utf8") : undefined,
      insecure: values["tls-insecure"] ?? false,
      timeout: values.timeout ? Number(values.timeout) : undefined,
      websocketUrl: values["websocket-url"],
      boshUrl: values["bosh-url"],
    };
    if (values["peer-domain"] || values["peer-accounts"]) {
      if (!values["peer-domain"] || !values["peer-accounts"]) throw new UsageError("--peer-domain and --peer-accounts go together");
      const peerPort = Number(values["peer-port"] ?? 5222);
      if (!Number.isInteger(peerPort)) throw new UsageError("ports must be numbers");
      target.peer = {
        host: values["peer-host"] ?? target.host,
        port: peerPort,
        domain: values["peer-domain"],
        accounts: parseAccounts(values["peer-accounts"]),
        ca: values["peer-ca"] ? readFileSync(values["peer-ca"], "utf8") : target.ca,
        insecure: target.insecure,
      };
    }
    if (target.websocketUrl && !/^wss?:\/\//.test(target.websocketUrl)) throw new UsageError("--websocket-url must start with ws:// or wss://");
    if (target.boshUrl && !/^https?:\/\//.test(target.boshUrl)) throw new UsageError("--bosh-url must start with http:// or https://");
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    return 2;
  }
  const name = values.name ?? target.domain;
  if (chosen.length === 0) {
    process.stderr.write(`no scenario matches --only ${values.only}\n`);
    return 2;
  }
  if (values.register) {
    try {
      for (const note of await registerAccounts(target)) process.stdout.write(`${note}\n`);
    } catch (e) {
      process.stderr.write(`in-band registration failed: ${(e as Error).message}\n`);
      return 2;
    }
  }

  const runner = new ConformanceRunner(target, scenarios);
  const progress = new Progress();
  let discovery;
  try {
    discovery = await runner.discover();
  } catch (e) {
    process.stderr.write(`cannot log in to ${target.host}:${target.port} as ${target.accounts[0]?.username}@${target.domain}: ${(e as Error).message}\n`);
    runner.destroy();
    return 2;
  }
  process.stdout.write(
    `Testing ${name} (${target.host}:${target.port}, ${target.domain})${discovery.software ? `: ${discovery.software.name} ${discovery.software.version}` : ""}\n` +
      `${chosen.length} scenarios, ${discovery.features.size} features advertised\n\n`,
  );
  const results = await runner.run(chosen, {
    onStart: (s, i, total) => progress.bar(i, total, s.title),
    onResult: (r, i, total) => {
      progress.clear();
      const s = r.scenario;
      const where = `${s.spec}${s.section ? " " + s.section : ""}`;
      const why = r.outcome === "skip" ? paint("2", ` (${r.reason})`) : r.outcome === "pass" ? "" : ` — ${r.reason}`;
      process.stdout.write(`${outcomeLabel(r).padEnd(useColor() ? 16 : 8)} ${where.padEnd(22)} [${s.level}] ${s.title}${why}\n`);
      progress.bar(i + 1, total, "");
    },
  });
  progress.clear();
  runner.destroy();

  // A partial run cannot judge a suite: specs left out by --only would read as missing.
  const verdicts = only.length === 0 ? complianceVerdicts(results, discovery) : [];
  process.stdout.write(`\n${formatSpecTable(results)}\n\nXEP-0479 Compliance Suites 2023 (server)\n`);
  process.stdout.write(verdicts.length ? `${formatCompliance(verdicts)}\n` : "not judged: --only ran part of the scenarios\n");
  const failures = formatFailures(results);
  if (failures) process.stdout.write(`\nFailures\n\n${failures}`);
  if (values.junit) writeFileSync(values.junit, junitXml(results, name));
  if (values.json) writeFileSync(values.json, JSON.stringify(jsonReport(name, target.domain, results, verdicts, discovery), null, 2) + "\n");

  const must = mustFailures(results);
  const counts = { pass: 0, fail: 0, skip: 0, error: 0 };
  for (const r of results) counts[r.outcome]++;
  process.stdout.write(`\n${counts.pass} passed, ${counts.fail + counts.error} failed, ${counts.skip} skipped (${must.length} MUST failures)\n`);
  return must.length > 0 ? 1 : 0;
}

const invokedDirectly = process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (invokedDirectly) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      process.stderr.write(`${(e as Error).stack ?? e}\n`);
      process.exitCode = 2;
    },
  );
}
