// `parley cert`: the self-signed certificate (ECDSA P-256, X.509 v3 per RFC 5280) for the
// configured domains, written where a start would make it (<data_dir>/certs/<first domain>.crt
// and .key) and reused while it still fits, exactly as server/core/tls.ts ensureCertificates does;
// `--force` replaces it. Prints the paths, so they can be copied into clients or a proxy.
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { describeCertificate, ensureCertificates } from "../core/tls.ts";
import type { Config } from "../core/config.ts";

export interface CertOptions {
  force?: boolean;
  /** Validity of a newly made certificate, in days (1..825). */
  days?: number;
}

export async function writeSelfSigned(config: Config, opts: CertOptions = {}): Promise<string[]> {
  const directory = join(config.dataDir, "certs");
  const certificate = join(directory, `${config.domains[0]}.crt`);
  const key = join(directory, `${config.domains[0]}.key`);
  if (opts.force) await Promise.all([rm(certificate, { force: true }), rm(key, { force: true })]);
  // With the configured files set aside, ensureCertificates makes (or reuses) the self-signed pair.
  const selfSignedOnly: Config = { ...config, tls: { certificate: null, key: null, domains: {} } };
  const pairs = await ensureCertificates(selfSignedOnly, { days: opts.days });
  const description = describeCertificate(pairs[config.domains[0]].certPem);
  const lines = [
    `certificate: ${certificate}`,
    `key:         ${key}`,
    `names:       ${description.dnsNames.join(", ")}`,
    `valid until: ${description.notAfter.toISOString()}`,
    `sha-256:     ${description.fingerprintSha256}`,
  ];
  const configured = [...(config.tls.certificate !== null ? ["tls.certificate"] : []), ...Object.keys(config.tls.domains).map((h) => `tls.domains.${JSON.stringify(h)}`)];
  if (configured.length > 0) {
    lines.push(`note: the configuration names its own certificates (${configured.join(", ")}); those are served, not this one, where they apply`);
  }
  return lines;
}
