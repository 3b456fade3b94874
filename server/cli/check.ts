// `parley check`: everything that would stop a start or break clients, found before the start.
// The configuration (every problem, by key), the modules it turns off, each certificate (readable,
// matching its key, valid now, covering the domains it serves: RFC 6125 as clients check it),
// and the database (reachable, every migration applied). Nothing is created or changed.
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { X509Certificate, createPrivateKey } from "node:crypto";
import { join } from "node:path";
import { ConfigError, loadConfig, type Config } from "../core/config.ts";
import { certificateCovers, describeCertificate } from "../core/tls.ts";
import type { ModuleDefinition } from "../core/module.ts";
import { describeDatabase, pendingMigrations, withStorage } from "./database.ts";

/** A certificate that expires sooner than this is worth a warning (renewal may have failed). */
const EXPIRY_WARNING_MS = 14 * 24 * 60 * 60 * 1000;

export interface CheckReport {
  /** What was found in order. */
  ok: string[];
  /** Worth knowing, not wrong. */
  warnings: string[];
  problems: string[];
}

interface CertificateSource {
  /** How the operator knows it: the setting, or "self-signed". */
  setting: string;
  certificate: string;
  key: string;
  /** The hosts that are served with it. */
  hosts: string[];
}

function certificateSources(config: Config): { sources: CertificateSource[]; selfSigned: CertificateSource | null } {
  const sources: CertificateSource[] = [];
  for (const [host, files] of Object.entries(config.tls.domains)) {
    sources.push({ setting: `tls.domains.${JSON.stringify(host)}`, certificate: files.certificate, key: files.key, hosts: [host] });
  }
  const rest = config.domains.filter((d) => !Object.hasOwn(config.tls.domains, d));
  if (rest.length === 0) return { sources, selfSigned: null };
  if (config.tls.certificate !== null && config.tls.key !== null) {
    sources.push({ setting: "tls", certificate: config.tls.certificate, key: config.tls.key, hosts: rest });
    return { sources, selfSigned: null };
  }
  const dir = join(config.dataDir, "certs");
  const name = config.domains[0];
  return { sources, selfSigned: { setting: "self-signed", certificate: join(dir, `${name}.crt`), key: join(dir, `${name}.key`), hosts: rest } };
}

async function readText(path: string): Promise<string | { error: string }> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    return { error: (err as NodeJS.ErrnoException).code ?? (err as Error).message };
  }
}

async function checkCertificate(source: CertificateSource, now: Date, report: CheckReport): Promise<void> {
  const where = `${source.setting}: ${source.certificate}`;
  const [certPem, keyPem] = await Promise.all([readText(source.certificate), readText(source.key)]);
  if (typeof certPem !== "string") return void report.problems.push(`${source.setting}.certificate: cannot read ${source.certificate} (${certPem.error})`);
  if (typeof keyPem !== "string") return void report.problems.push(`${source.setting}.key: cannot read ${source.key} (${keyPem.error})`);
  let description;
  try {
    description = describeCertificate(certPem);
  } catch {
    return void report.problems.push(`${where} is not a PEM certificate`);
  }
  try {
    if (!new X509Certificate(certPem).checkPrivateKey(createPrivateKey(keyPem))) {
      report.problems.push(`${source.setting}.key: ${source.key} does not belong to the certificate ${source.certificate}`);
    }
  } catch {
    report.problems.push(`${source.setting}.key: ${source.key} is not a PEM private key (or it is encrypted)`);
  }
  const before = report.problems.length;
  if (description.notAfter.getTime() <= now.getTime()) {
    report.problems.push(`${where} expired on ${description.notAfter.toISOString()}`);
  } else if (description.notAfter.getTime() - now.getTime() < EXPIRY_WARNING_MS) {
    report.warnings.push(`${where} expires soon, on ${description.notAfter.toISOString()}`);
  }
  if (description.notBefore.getTime() > now.getTime()) report.problems.push(`${where} is not valid before ${description.notBefore.toISOString()}`);
  for (const host of source.hosts) {
    if (!certificateCovers(certPem, host)) {
      report.problems.push(`${where} does not cover ${host} (it names ${description.dnsNames.join(", ") || "no DNS names"})`);
    }
  }
  if (report.problems.length === before) {
    const selfSigned = description.selfSigned ? ", self-signed: clients will ask their users to trust it" : "";
    report.ok.push(`certificate for ${source.hosts.join(", ")}: ${source.certificate}, valid until ${description.notAfter.toISOString()}${selfSigned}`);
  }
}

async function checkDatabase(config: Config, report: CheckReport): Promise<void> {
  const name = describeDatabase(config);
  if (config.database.dialect === "sqlite") {
    if (config.database.path === ":memory:") {
      report.warnings.push("database: in memory, so nothing survives a restart");
      return;
    }
    // Opening a missing SQLite file would create it; `check` changes nothing.
    if (!existsSync(config.database.path)) {
      report.problems.push(`database: ${config.database.path} does not exist yet: run \`parley migrate\` (or start once)`);
      return;
    }
  }
  try {
    const pending = await withStorage(config, pendingMigrations);
    if (pending.length > 0) report.problems.push(`database: ${name} needs ${pending.length} migration(s) (${pending.join(", ")}): run \`parley migrate\``);
    else report.ok.push(`database: ${name}, up to date`);
  } catch (err) {
    report.problems.push(`database: ${(err as Error).message}`);
  }
}

/** Checks the configuration at `path` (or ./parley.toml, or the defaults). */
export async function checkConfiguration(path: string | undefined, modules: readonly ModuleDefinition[], now = new Date()): Promise<CheckReport> {
  const report: CheckReport = { ok: [], warnings: [], problems: [] };
  let config: Config;
  try {
    config = loadConfig(path);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const file = path ?? "parley.toml";
    report.problems.push(...err.problems.map((p) => `${file}: ${p}`));
    return report;
  }
  report.ok.push(`configuration: ${config.file ?? "built-in defaults (no parley.toml)"}, serving ${config.domains.join(", ")}`);

  const known = new Set(modules.map((m) => m.name));
  for (const name of config.modules.disabled) {
    if (!known.has(name)) report.problems.push(`modules.disabled: there is no module named "${name}" (modules: ${[...known].join(", ")})`);
  }
  for (const name of Object.keys(config.modules.settings)) {
    if (!known.has(name)) report.problems.push(`modules.${name}: there is no module named "${name}"`);
  }

  const { sources, selfSigned } = certificateSources(config);
  for (const source of sources) await checkCertificate(source, now, report);
  if (selfSigned) {
    if (existsSync(selfSigned.certificate) && existsSync(selfSigned.key)) {
      // A generated certificate that no longer fits is simply made again at start.
      const own: CheckReport = { ok: [], warnings: [], problems: [] };
      await checkCertificate(selfSigned, now, own);
      report.ok.push(...own.ok);
      report.warnings.push(...own.warnings, ...own.problems.map((p) => `${p}; a new one will be generated on the next start`));
    } else report.warnings.push(`no certificate configured: a self-signed one will be made at ${selfSigned.certificate} on first start (or by \`parley cert\`)`);
  }

  await checkDatabase(config, report);
  return report;
}
