// Parley's configuration: one TOML 1.0 file (parley.toml), read with smol-toml and checked by a
// small hand-written reader. Every setting has a safe default, so no file at all is a valid
// configuration: `localhost` on 127.0.0.1, c2s on 5222 (STARTTLS, RFC 6120 §5) and 5223
// (Direct TLS, XEP-0368 v1.1.0), SQLite under data/.
//
// Why a reader instead of a schema library: we want every problem in one run (an admin fixing
// one typo per restart gives up), each named by its dotted key with what was expected, and
// unknown keys treated as errors so a misspelt `requre_encryption` cannot silently leave the
// default in place. The same reader is exported as SettingsReader so modules check their own
// `[modules.<name>]` tables with identical messages.
import { existsSync, readFileSync } from "node:fs";
import { isIP } from "node:net";
import { dirname, resolve } from "node:path";
import { parse as parseToml, TomlError } from "smol-toml";

export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
const LOG_LEVELS: readonly LogLevel[] = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

export interface C2sConfig {
  /** IP addresses to listen on ("0.0.0.0" / "::" for all). */
  readonly interfaces: readonly string[];
  /** STARTTLS port (RFC 6120 §5). */
  readonly port: number;
  /** Direct TLS port (XEP-0368); null when disabled (`direct_tls_port = 0`). */
  readonly directTlsPort: number | null;
  /** Refuse to authenticate or route before TLS is in place. */
  readonly requireEncryption: boolean;
  /** Offer SASL PLAIN; it is only ever offered over TLS whatever this says. */
  readonly allowPlain: boolean;
  /**
   * RFC 5802 §6 downgrade rule without exception: a client that sends "y" after we offered
   * -PLUS always fails, even when its earlier -PLUS attempt on this stream asked for a binding
   * type we lack (slixmpp 1.8 asks for tls-unique, which TLS 1.3 does not have).
   */
  readonly strictChannelBinding: boolean;
}

/** Where to connect for a remote domain, from `[s2s.routes]` (instead of DNS). */
export interface S2sRoute {
  readonly host: string;
  readonly port: number;
  /** XEP-0368 Direct TLS ("tls://host:port") rather than STARTTLS. */
  readonly directTls: boolean;
}

export interface S2sConfig {
  readonly enabled: boolean;
  readonly interfaces: readonly string[];
  /** STARTTLS port (RFC 6120 §5); 0 lets the system choose (tests). */
  readonly port: number;
  /** Direct TLS port (XEP-0368); null when disabled (the default). */
  readonly directTlsPort: number | null;
  /** Refuse to exchange stanzas over an unencrypted stream. */
  readonly requireEncryption: boolean;
  /** Require a certificate valid for every remote domain (XEP-0178), not only `secure_domains`. */
  readonly requireValidCertificates: boolean;
  /** Domains that must present a valid certificate even when the above is off. */
  readonly secureDomains: readonly string[];
  /** Domains exempt from require_encryption and certificate checks. */
  readonly insecureDomains: readonly string[];
  /** When non-empty, only these domains may federate. */
  readonly allow: readonly string[];
  readonly deny: readonly string[];
  /** PEM file of trusted CAs for peer certificates; null = the system's roots. */
  readonly caFile: string | null;
  /** XEP-0185 secret; "" means a random one per start. */
  readonly dialbackSecret: string;
  /** Static routes by remote domain, tried in order before (or instead of) DNS. */
  readonly routes: Readonly<Record<string, readonly S2sRoute[]>>;
  /** Resolve domains without a route through DNS SRV/A records. */
  readonly dns: boolean;
  readonly connectTimeoutMs: number;
  /** Time for a stream to authenticate (dialback answer, SASL) before it is dropped. */
  readonly authTimeoutMs: number;
  readonly idleTimeoutMs: number;
  /** Stanzas held per remote domain while its stream is being set up. */
  readonly maxQueue: number;
  /** Inbound streams allowed at once from one IP address. */
  readonly maxStreamsPerIp: number;
  /** Offer and use bidirectional streams (XEP-0288): one TCP connection for both directions. */
  readonly bidi: boolean;
  /** Silence after which a single space is written on an established stream (RFC 6120 §4.6.1); 0 = never. */
  readonly keepaliveMs: number;
}

/** The one HTTP server of the daemon (server/http): upload, metrics, health. */
export interface HttpConfig {
  readonly enabled: boolean;
  readonly interfaces: readonly string[];
  /** Plain HTTP port. */
  readonly port: number;
  /** HTTPS port with the c2s certificates; null when disabled (`tls_port = 0`). */
  readonly tlsPort: number | null;
  /** The URL clients reach the HTTP server at (a reverse proxy, a CDN), without a trailing slash; "" = derived from the listeners. */
  readonly publicUrl: string;
  /** Addresses allowed to read /metrics. */
  readonly metricsAllow: readonly string[];
  /** XMPP over WebSocket (RFC 7395) at /xmpp-websocket. */
  readonly websocket: boolean;
  /** BOSH (XEP-0124/XEP-0206) at /http-bind. */
  readonly bosh: boolean;
  /** Longest a BOSH request is held, in seconds (the client's 'wait' is capped to it). */
  readonly boshMaxWait: number;
  /** Seconds a BOSH session lives without a request before it counts as lost. */
  readonly boshInactivity: number;
  /**
   * A TLS-terminating reverse proxy forwards to the plain port: WebSocket and BOSH streams on
   * plain HTTP count as encrypted. Without it only loopback peers do.
   */
  readonly behindTls: boolean;
}

export interface CertificateFiles {
  /** Absolute path of a PEM file: the certificate, optionally followed by its chain. */
  readonly certificate: string;
  /** Absolute path of the PEM private key. */
  readonly key: string;
}

export interface TlsConfig {
  /** Certificate for every domain without an override; null means self-signed under dataDir/certs. */
  readonly certificate: string | null;
  readonly key: string | null;
  /** Per-host overrides, keyed by lower-cased hostname (a domain or a subdomain of one). */
  readonly domains: Readonly<Record<string, CertificateFiles>>;
}

export type DatabaseConfig =
  | { readonly dialect: "sqlite"; /** absolute path, or ":memory:" */ readonly path: string }
  | { readonly dialect: "postgres"; readonly url: string };

export interface LimitsConfig {
  readonly maxStanzaSize: number;
  readonly maxDepth: number;
  readonly c2sRateBytesPerSecond: number;
  readonly c2sBurstBytes: number;
  readonly stanzasPerSecond: number;
  readonly stanzaBurst: number;
  readonly authFailuresBeforeClose: number;
  readonly authFailureDelayMs: number;
  /** From `login_timeout_s`. */
  readonly loginTimeoutMs: number;
  /** From `idle_timeout_s`. */
  readonly idleTimeoutMs: number;
  /** From `keepalive_interval_s`. */
  readonly keepaliveIntervalMs: number;
}

export interface RegistrationConfig {
  readonly enabled: boolean;
  readonly perIpPerHour: number;
}

/** One module's `[modules.<name>]` table, exactly as written (snake_case keys, null prototype). */
export type ModuleSettings = Readonly<Record<string, unknown>>;

export interface ModulesConfig {
  readonly disabled: readonly string[];
  readonly settings: Readonly<Record<string, ModuleSettings>>;
}

/** The fully resolved configuration: every default applied, every path absolute, frozen. */
export interface Config {
  /** The file it was read from, or null for built-in defaults / parseConfig. */
  readonly file: string | null;
  /** Lower-cased virtual hosts; the first is the default (SNI fallback, certificate file name). */
  readonly domains: readonly string[];
  readonly dataDir: string;
  readonly c2s: C2sConfig;
  readonly s2s: S2sConfig;
  readonly http: HttpConfig;
  readonly tls: TlsConfig;
  readonly database: DatabaseConfig;
  readonly limits: LimitsConfig;
  readonly registration: RegistrationConfig;
  readonly modules: ModulesConfig;
  readonly log: { readonly level: LogLevel };
  /** [redis] url: durable jobs (push deliveries) go to BullMQ on this Redis; absent = the SQL outbox. */
  readonly redis?: { readonly url: string };
}

export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[], file?: string | null) {
    const where = file ? `${file}: ` : "";
    const count = problems.length === 1 ? "1 problem" : `${problems.length} problems`;
    super(`${where}invalid configuration (${count}):\n  ${problems.join("\n  ")}`);
    this.name = "ConfigError";
    this.problems = problems;
  }
}

// ---------------------------------------------------------------------------------------------
// Reading values with messages that name the key.

type Table = Record<string, unknown>;

function isTable(value: unknown): value is Table {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

/** How a value looks in a message: strings quoted so `"5222"` and `5222` are told apart. */
function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") return String(value);
  if (Array.isArray(value)) return "an array";
  if (value instanceof Date) return "a date";
  return "a table";
}

/** A key as TOML would need it written: bare when possible, quoted otherwise. */
function keySegment(key: string): string {
  return /^[A-Za-z0-9_-]+$/.test(key) ? key : JSON.stringify(key);
}

function joinKey(path: string, key: string): string {
  return path ? `${path}.${keySegment(key)}` : keySegment(key);
}

/** Optimal string alignment distance: a swapped pair of letters ("prot") counts as one edit. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/** Checks one item of a list; returns the (normalised) item, or a message saying what was expected. */
export type ItemCheck<T> = (value: unknown) => { ok: T } | { expected: string };

/**
 * Reads one TOML table. Each accessor marks its key as known, records a problem and returns the
 * default when the value is wrong (so reading goes on and every problem is reported), and
 * `finish()` reports whatever keys nobody asked for.
 */
export class SettingsReader {
  readonly problems: string[];
  private readonly table: Table;
  private readonly known = new Set<string>();

  /** `path` is the dotted key of this table ("" for the root), used in every message. */
  constructor(table: unknown, readonly path: string, problems: string[] = []) {
    this.problems = problems;
    if (table === undefined) {
      this.table = {};
    } else if (isTable(table)) {
      this.table = table;
    } else {
      this.problems.push(`${path}: expected a table, got ${describe(table)}`);
      this.table = {};
    }
  }

  has(key: string): boolean {
    return Object.hasOwn(this.table, key);
  }

  problem(key: string, message: string): void {
    this.problems.push(`${joinKey(this.path, key)}: ${message}`);
  }

  private take(key: string): unknown {
    this.known.add(key);
    return this.has(key) ? this.table[key] : undefined;
  }

  private wrong(key: string, expected: string, value: unknown): void {
    this.problem(key, `expected ${expected}, got ${describe(value)}`);
  }

  integer(key: string, min: number, max: number, fallback: number): number {
    const value = this.take(key);
    if (value === undefined) return fallback;
    if (typeof value === "number" && Number.isInteger(value) && value >= min && value <= max) return value;
    this.wrong(key, `an integer ${min}..${max}`, value);
    return fallback;
  }

  boolean(key: string, fallback: boolean): boolean {
    const value = this.take(key);
    if (value === undefined) return fallback;
    if (typeof value === "boolean") return value;
    this.wrong(key, "true or false", value);
    return fallback;
  }

  string(key: string, fallback: string): string {
    const value = this.take(key);
    if (value === undefined) return fallback;
    if (typeof value === "string") return value;
    this.wrong(key, "a string", value);
    return fallback;
  }

  oneOf<T extends string>(key: string, options: readonly T[], fallback: T): T {
    const value = this.take(key);
    if (value === undefined) return fallback;
    if (typeof value === "string" && (options as readonly string[]).includes(value)) return value as T;
    this.wrong(key, `one of ${options.map((o) => JSON.stringify(o)).join(", ")}`, value);
    return fallback;
  }

  /** A list whose items each pass `check`; duplicates are reported, not silently merged. */
  list<T>(key: string, check: ItemCheck<T>, fallback: readonly T[], opts: { nonEmpty?: boolean } = {}): T[] {
    const value = this.take(key);
    if (value === undefined) return [...fallback];
    const where = joinKey(this.path, key);
    if (!Array.isArray(value)) {
      this.problems.push(`${where}: expected an array, got ${describe(value)}`);
      return [...fallback];
    }
    if (opts.nonEmpty && value.length === 0) {
      this.problems.push(`${where}: expected at least one entry, got an empty array`);
      return [...fallback];
    }
    const items: T[] = [];
    let failed = false;
    value.forEach((item, index) => {
      const result = check(item);
      if ("expected" in result) {
        this.problems.push(`${where}[${index}]: expected ${result.expected}, got ${describe(item)}`);
        failed = true;
      } else if (items.includes(result.ok)) {
        this.problems.push(`${where}[${index}]: ${describe(result.ok)} is listed twice`);
        failed = true;
      } else {
        items.push(result.ok);
      }
    });
    return failed ? [...fallback] : items;
  }

  /** A nested table, read by its own reader sharing this one's problem list. */
  section(key: string): SettingsReader {
    return new SettingsReader(this.take(key), joinKey(this.path, key), this.problems);
  }

  /** Every entry not read so far, marked as known: for tables keyed by name (hosts, modules). */
  rest(): Array<[key: string, value: unknown]> {
    const keys = Object.keys(this.table).filter((key) => !this.known.has(key));
    for (const key of keys) this.known.add(key);
    return keys.map((key) => [key, this.table[key]]);
  }

  /** Reports unknown keys, suggesting the known key it was probably meant to be. */
  finishTable(): void {
    for (const key of Object.keys(this.table)) {
      if (this.known.has(key)) continue;
      const suggestion = [...this.known]
        .map((known) => ({ known, distance: editDistance(key.toLowerCase(), known) }))
        .filter(({ distance }) => distance <= Math.max(1, Math.floor(key.length / 3)))
        .sort((a, b) => a.distance - b.distance)[0];
      const hint = suggestion ? ` (did you mean ${JSON.stringify(suggestion.known)}?)` : "";
      this.problems.push(`${joinKey(this.path, key)}: unknown key${hint}`);
    }
  }

  /** For modules: report unknown keys, then throw a ConfigError if anything was wrong. */
  finish(): void {
    this.finishTable();
    if (this.problems.length > 0) throw new ConfigError([...this.problems]);
  }
}

// ---------------------------------------------------------------------------------------------
// Item checks.

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** RFC 1123 host names, lower-cased; one trailing dot is dropped (RFC 7622 §3.2). */
export function normalizeHostname(value: string): string | null {
  const name = value.toLowerCase().replace(/\.$/, "");
  if (name.length === 0 || name.length > 253 || isIP(name) !== 0) return null;
  return name.split(".").every((label) => LABEL.test(label)) ? name : null;
}

const hostname: ItemCheck<string> = (value) => {
  if (typeof value === "string") {
    const name = normalizeHostname(value);
    if (name) return { ok: name };
    // IDNA2008 U-labels would need the same mapping everywhere JIDs are compared; the A-label
    // is unambiguous and is what certificates carry anyway.
    if (/[^\x00-\x7f]/.test(value)) return { expected: "an ASCII hostname (write internationalized names as xn-- A-labels)" };
  }
  return { expected: 'a hostname like "example.com"' };
};

const ipAddress: ItemCheck<string> = (value) =>
  typeof value === "string" && isIP(value) !== 0 ? { ok: value } : { expected: 'an IP address such as "127.0.0.1" or "::"' };

const moduleName: ItemCheck<string> = (value) =>
  typeof value === "string" && /^[a-z][a-z0-9_-]*$/.test(value) ? { ok: value } : { expected: "a module name" };

// ---------------------------------------------------------------------------------------------
// The schema.

const MAX_PORT = 65535;
const ALL_INTERFACES = new Set(["0.0.0.0", "::"]);

function sharesAnInterface(a: readonly string[], b: readonly string[]): boolean {
  return a.some((x) => ALL_INTERFACES.has(x) || b.includes(x)) || b.some((y) => ALL_INTERFACES.has(y));
}

function readDatabase(r: SettingsReader, baseDir: string, dataDir: string): DatabaseConfig {
  const url = r.string("url", "");
  if (url === "") return { dialect: "sqlite", path: resolve(dataDir, "parley.sqlite") };
  if (url === ":memory:") return { dialect: "sqlite", path: url };
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1]?.toLowerCase();
  if (scheme === undefined) return { dialect: "sqlite", path: resolve(baseDir, url) };
  if (scheme === "postgres" || scheme === "postgresql") {
    if (URL.canParse(url)) return { dialect: "postgres", url };
  }
  r.problem("url", `expected a SQLite file path or a postgres:// URL, got ${describe(url)}`);
  return { dialect: "sqlite", path: resolve(dataDir, "parley.sqlite") };
}

function readCertificatePair(r: SettingsReader, baseDir: string, required: boolean): CertificateFiles | null {
  const certificate = r.string("certificate", "");
  const key = r.string("key", "");
  const missingCertificate = "expected the path of a PEM certificate";
  const missingKey = "expected the path of a PEM private key";
  if (certificate === "" && key === "") {
    if (required) r.problem("certificate", missingCertificate);
    if (required) r.problem("key", missingKey);
    return null;
  }
  if (certificate === "") r.problem("certificate", `${missingCertificate}, since key is set`);
  if (key === "") r.problem("key", `${missingKey}, since certificate is set`);
  if (certificate === "" || key === "") return null;
  return { certificate: resolve(baseDir, certificate), key: resolve(baseDir, key) };
}

/** `[s2s.routes]`: "domain" = "host:port" | "tls://host:port" | a list of those, tried in order. */
function readS2sRoutes(r: SettingsReader): Record<string, S2sRoute[]> {
  const routes: Record<string, S2sRoute[]> = {};
  for (const [domain, value] of r.rest()) {
    const name = normalizeHostname(domain);
    if (name === null) {
      r.problem(domain, 'expected a hostname like "example.com" as the key');
      continue;
    }
    const items = Array.isArray(value) ? value : [value];
    const parsed: S2sRoute[] = [];
    for (const item of items) {
      const m = typeof item === "string" ? /^(tls:\/\/|tcp:\/\/)?(\[[0-9a-fA-F:.]+\]|[^:\s]+):(\d{1,5})$/.exec(item) : null;
      const port = m ? Number(m[3]) : 0;
      if (!m || port < 1 || port > MAX_PORT) {
        r.problem(domain, `expected "host:port" or "tls://host:port" (or a list of them), got ${describe(item)}`);
        continue;
      }
      parsed.push({ host: m[2].replace(/^\[|\]$/g, ""), port, directTls: m[1] === "tls://" });
    }
    if (parsed.length > 0) routes[name] = parsed;
  }
  return routes;
}

function coveredByDomains(host: string, domains: readonly string[]): boolean {
  return domains.some((domain) => host === domain || host.endsWith(`.${domain}`));
}

function readConfig(root: SettingsReader, baseDir: string, file: string | null): Config {
  const problemsBeforeDomains = root.problems.length;
  const domains = root.list("domains", hostname, ["localhost"], { nonEmpty: true });
  // With a broken domain list, checking hosts against the fallback would only add noise.
  const domainsAreValid = root.problems.length === problemsBeforeDomains;
  const dataDir = resolve(baseDir, root.string("data_dir", "data"));

  const c2sReader = root.section("c2s");
  const c2s: C2sConfig = {
    interfaces: c2sReader.list("interfaces", ipAddress, ["127.0.0.1"], { nonEmpty: true }),
    port: c2sReader.integer("port", 1, MAX_PORT, 5222),
    directTlsPort: c2sReader.integer("direct_tls_port", 0, MAX_PORT, 5223) || null,
    requireEncryption: c2sReader.boolean("require_encryption", true),
    allowPlain: c2sReader.boolean("allow_plain", true),
    strictChannelBinding: c2sReader.boolean("strict_channel_binding", false),
  };
  if (c2s.directTlsPort === c2s.port) c2sReader.problem("direct_tls_port", `${c2s.port} is already c2s.port`);
  c2sReader.finishTable();

  const s2sReader = root.section("s2s");
  const s2s: S2sConfig = {
    enabled: s2sReader.boolean("enabled", false),
    interfaces: s2sReader.list("interfaces", ipAddress, ["127.0.0.1"], { nonEmpty: true }),
    port: s2sReader.integer("port", 0, MAX_PORT, 5269),
    directTlsPort: s2sReader.integer("direct_tls_port", 0, MAX_PORT, 0) || null,
    requireEncryption: s2sReader.boolean("require_encryption", true),
    requireValidCertificates: s2sReader.boolean("require_valid_certificates", false),
    secureDomains: s2sReader.list("secure_domains", hostname, []),
    insecureDomains: s2sReader.list("insecure_domains", hostname, []),
    allow: s2sReader.list("allow", hostname, []),
    deny: s2sReader.list("deny", hostname, []),
    caFile: ((f) => (f === "" ? null : resolve(baseDir, f)))(s2sReader.string("ca_file", "")),
    dialbackSecret: s2sReader.string("dialback_secret", ""),
    routes: readS2sRoutes(s2sReader.section("routes")),
    dns: s2sReader.boolean("dns", true),
    connectTimeoutMs: s2sReader.integer("connect_timeout_s", 1, 600, 10) * 1000,
    authTimeoutMs: s2sReader.integer("auth_timeout_s", 1, 600, 30) * 1000,
    idleTimeoutMs: s2sReader.integer("idle_timeout_s", 1, 86400, 600) * 1000,
    maxQueue: s2sReader.integer("max_queue", 1, 100000, 1000),
    maxStreamsPerIp: s2sReader.integer("max_streams_per_ip", 1, 100000, 20),
    bidi: s2sReader.boolean("bidi", true),
    keepaliveMs: s2sReader.integer("keepalive_s", 0, 86400, 60) * 1000,
  };
  if (s2s.directTlsPort !== null && s2s.directTlsPort === s2s.port) s2sReader.problem("direct_tls_port", `${s2s.port} is already s2s.port`);
  if (s2s.enabled && sharesAnInterface(s2s.interfaces, c2s.interfaces)) {
    if (s2s.port === c2s.port) s2sReader.problem("port", `${s2s.port} is already c2s.port`);
    if (s2s.port === c2s.directTlsPort) s2sReader.problem("port", `${s2s.port} is already c2s.direct_tls_port`);
  }
  s2sReader.finishTable();

  const httpReader = root.section("http");
  const http: HttpConfig = {
    enabled: httpReader.boolean("enabled", true),
    interfaces: httpReader.list("interfaces", ipAddress, ["127.0.0.1"], { nonEmpty: true }),
    port: httpReader.integer("port", 1, MAX_PORT, 5280),
    tlsPort: httpReader.integer("tls_port", 0, MAX_PORT, 5281) || null,
    publicUrl: httpReader.string("public_url", "").replace(/\/+$/, ""),
    metricsAllow: httpReader.list("metrics_allow", ipAddress, ["127.0.0.1", "::1"]),
    websocket: httpReader.boolean("websocket", true),
    bosh: httpReader.boolean("bosh", true),
    boshMaxWait: httpReader.integer("bosh_max_wait", 1, 300, 60),
    boshInactivity: httpReader.integer("bosh_inactivity", 1, 3600, 60),
    behindTls: httpReader.boolean("behind_tls", false),
  };
  if (http.publicUrl !== "" && !/^https?:\/\/[^/?#]+(\/[^?#]*)?$/i.test(http.publicUrl)) {
    httpReader.problem("public_url", `expected an http:// or https:// URL without query or fragment, got ${describe(http.publicUrl)}`);
  }
  if (http.tlsPort === http.port) httpReader.problem("tls_port", `${http.port} is already http.port`);
  if (http.enabled && sharesAnInterface(http.interfaces, c2s.interfaces)) {
    for (const [key, port] of [["port", http.port], ["tls_port", http.tlsPort]] as const) {
      if (port === c2s.port) httpReader.problem(key, `${port} is already c2s.port`);
      if (port === c2s.directTlsPort) httpReader.problem(key, `${port} is already c2s.direct_tls_port`);
    }
  }
  httpReader.finishTable();

  const tlsReader = root.section("tls");
  const defaultPair = readCertificatePair(tlsReader, baseDir, false);
  const overridesReader = tlsReader.section("domains");
  const overrides: Record<string, CertificateFiles> = {};
  for (const [host, table] of overridesReader.rest()) {
    const pairReader = new SettingsReader(table, joinKey(overridesReader.path, host), overridesReader.problems);
    const pair = readCertificatePair(pairReader, baseDir, true);
    pairReader.finishTable();
    const name = normalizeHostname(host);
    if (name === null) {
      overridesReader.problem(host, 'expected a hostname like "example.com" as the table name');
    } else if (domainsAreValid && !coveredByDomains(name, domains)) {
      overridesReader.problem(host, `is neither one of domains (${domains.join(", ")}) nor a subdomain of one`);
    } else if (pair) {
      overrides[name] = pair;
    }
  }
  overridesReader.finishTable();
  tlsReader.finishTable();
  const tls: TlsConfig = { certificate: defaultPair?.certificate ?? null, key: defaultPair?.key ?? null, domains: overrides };

  const databaseReader = root.section("database");
  const database = readDatabase(databaseReader, baseDir, dataDir);
  databaseReader.finishTable();

  const limitsReader = root.section("limits");
  const limits: LimitsConfig = {
    // RFC 6120 §13.12: a server must accept stanzas of at least 10000 bytes.
    maxStanzaSize: limitsReader.integer("max_stanza_size", 10000, 16 * 1024 * 1024, 262144),
    maxDepth: limitsReader.integer("max_depth", 8, 1024, 64),
    c2sRateBytesPerSecond: limitsReader.integer("c2s_rate_bytes_per_second", 1024, 1 << 30, 65536),
    c2sBurstBytes: limitsReader.integer("c2s_burst_bytes", 1024, 1 << 30, 262144),
    stanzasPerSecond: limitsReader.integer("stanzas_per_second", 1, 100000, 100),
    stanzaBurst: limitsReader.integer("stanza_burst", 1, 1000000, 500),
    authFailuresBeforeClose: limitsReader.integer("auth_failures_before_close", 1, 100, 3),
    authFailureDelayMs: limitsReader.integer("auth_failure_delay_ms", 0, 60000, 1000),
    loginTimeoutMs: limitsReader.integer("login_timeout_s", 1, 3600, 30) * 1000,
    idleTimeoutMs: limitsReader.integer("idle_timeout_s", 10, 86400, 300) * 1000,
    keepaliveIntervalMs: limitsReader.integer("keepalive_interval_s", 5, 86400, 60) * 1000,
  };
  limitsReader.finishTable();

  const registrationReader = root.section("registration");
  const registration: RegistrationConfig = {
    enabled: registrationReader.boolean("enabled", false),
    perIpPerHour: registrationReader.integer("per_ip_per_hour", 1, 10000, 5),
  };
  registrationReader.finishTable();

  const modulesReader = root.section("modules");
  const disabled = modulesReader.list("disabled", moduleName, []);
  const settings: Record<string, ModuleSettings> = {};
  for (const [name, value] of modulesReader.rest()) {
    if ("expected" in moduleName(name)) modulesReader.problem(name, "expected a module name (a-z, 0-9, _ and -) as the table name");
    else if (!isTable(value)) modulesReader.problem(name, `expected a table of the module's settings, got ${describe(value)}`);
    else settings[name] = value;
  }
  modulesReader.finishTable();

  const logReader = root.section("log");
  const log = { level: logReader.oneOf("level", LOG_LEVELS, "info") };
  logReader.finishTable();

  const redisReader = root.section("redis");
  const redisUrl = redisReader.string("url", "");
  if (redisUrl !== "" && !/^rediss?:\/\//.test(redisUrl)) redisReader.problem("url", "expected a redis:// or rediss:// URL");
  redisReader.finishTable();

  root.finishTable();
  return { file, domains, dataDir, c2s, s2s, http, tls, database, limits, registration, modules: { disabled, settings }, log, ...(redisUrl ? { redis: { url: redisUrl } } : {}) };
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

function parseWithFile(text: string, baseDir: string, file: string | null): Config {
  let document: unknown;
  try {
    document = parseToml(text);
  } catch (error) {
    if (!(error instanceof TomlError)) throw error;
    const reason = error.message.split("\n")[0].replace(/^Invalid TOML document: /, "");
    throw new ConfigError([`line ${error.line}, column ${error.column}: ${reason}`], file);
  }
  const root = new SettingsReader(document, "");
  const config = readConfig(root, resolve(baseDir), file);
  if (root.problems.length > 0) throw new ConfigError(root.problems, file);
  return deepFreeze(config);
}

/** Parses TOML text; relative paths are resolved against `baseDir`. Throws ConfigError. */
export function parseConfig(text: string, baseDir: string): Config {
  return parseWithFile(text, baseDir, null);
}

/**
 * Reads the configuration file at `path`; without a path, ./parley.toml when it exists, else
 * the built-in defaults (paths then relative to the current directory). Throws ConfigError.
 */
export function loadConfig(path?: string): Config {
  const file = resolve(path ?? "parley.toml");
  if (path === undefined && !existsSync(file)) return parseWithFile("", process.cwd(), null);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (error as Error).message;
    throw new ConfigError([`cannot read the configuration file: ${reason}`], file);
  }
  return parseWithFile(text, dirname(file), file);
}
