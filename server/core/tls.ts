// TLS for Parley: certificates (X.509 v3, RFC 5280), SNI between virtual hosts (RFC 6066 §3),
// and channel-binding data for SASL *-PLUS (RFC 9266 tls-exporter, RFC 5929 §4
// tls-server-end-point).
//
// Self-signed certificates are ECDSA P-256 (a TLS login costs about two thirds of what RSA-2048
// does here). node:crypto makes and uses EC keys but cannot issue a certificate, and node-forge
// can issue certificates but only signs with RSA. So we write the DER ourselves: a certificate is
// a dozen nested TLVs, and a 40-line DER writer we can read in full is smaller and clearer than
// driving forge's asn1 module through its binary-string API. node:crypto signs the
// TBSCertificate (ecdsa-with-SHA256) and parses the result back (X509Certificate) to check it.
import { createHash, createPrivateKey, generateKeyPairSync, randomBytes, sign, X509Certificate } from "node:crypto";
import type { KeyObject } from "node:crypto";
import { chmod, mkdir, readFile, rename, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createSecureContext } from "node:tls";
import type { SecureContext, TLSSocket, TlsOptions } from "node:tls";
import { TLS_EXPORTER_LABEL, TLS_EXPORTER_LENGTH, tlsServerEndPoint } from "../../protocol/sasl/index.ts";
import { ConfigError } from "./config.ts";
import type { Config } from "./config.ts";

export interface CertificatePair {
  /** The certificate, optionally followed by its chain, in PEM. */
  readonly certPem: string;
  readonly keyPem: string;
}

/** Certificates keyed by lower-cased hostname. */
export type DomainCertificates = Readonly<Record<string, CertificatePair>>;

// ---------------------------------------------------------------------------------------------
// DER (X.690) writing: only the types a certificate needs.

function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  const lengthBytes: number[] = [];
  for (let n = body.length; n > 0; n = Math.floor(n / 256)) lengthBytes.unshift(n % 256);
  const header = body.length < 0x80 ? [tag, body.length] : [tag, 0x80 | lengthBytes.length, ...lengthBytes];
  return Buffer.concat([Buffer.from(header), body]);
}

const sequence = (...items: Buffer[]) => tlv(0x30, ...items);
const set = (...items: Buffer[]) => tlv(0x31, ...items);
const octetString = (bytes: Buffer) => tlv(0x04, bytes);
const utf8String = (text: string) => tlv(0x0c, Buffer.from(text, "utf8"));
const derTrue = Buffer.from([0x01, 0x01, 0xff]);
/** [n] EXPLICIT: a constructed context-specific wrapper. */
const explicit = (n: number, ...items: Buffer[]) => tlv(0xa0 | n, ...items);
/** GeneralName dNSName: [2] IMPLICIT IA5String. */
const dnsName = (name: string) => tlv(0x82, Buffer.from(name, "ascii"));
const bitString = (bytes: Buffer, unusedBits = 0) => tlv(0x03, Buffer.from([unusedBits]), bytes);

/** A non-negative INTEGER from big-endian bytes, in its minimal two's-complement form. */
function unsignedInteger(bytes: Buffer): Buffer {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  const trimmed = bytes.subarray(start);
  return tlv(0x02, trimmed[0] & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed);
}

function objectIdentifier(dotted: string): Buffer {
  const arcs = dotted.split(".").map(Number);
  const bytes: number[] = [arcs[0] * 40 + arcs[1]];
  for (const arc of arcs.slice(2)) {
    const base128: number[] = [arc & 0x7f];
    for (let rest = Math.floor(arc / 128); rest > 0; rest = Math.floor(rest / 128)) base128.unshift((rest & 0x7f) | 0x80);
    bytes.push(...base128);
  }
  return tlv(0x06, Buffer.from(bytes));
}

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; always UTC, no fractions. */
function time(date: Date): Buffer {
  const iso = date.toISOString(); // 2025-01-31T12:34:56.789Z
  const digits = iso.slice(0, 19).replace(/[-T:]/g, "") + "Z"; // 20250131123456Z
  const year = date.getUTCFullYear();
  return year >= 1950 && year < 2050 ? tlv(0x17, Buffer.from(digits.slice(2))) : tlv(0x18, Buffer.from(digits));
}

// ---------------------------------------------------------------------------------------------
// DER reading: enough to take the public key out of a SubjectPublicKeyInfo.

interface Tlv {
  readonly tag: number;
  readonly content: Buffer;
}

/** The TLVs laid end to end in `bytes`; throws on anything malformed or indefinite-length. */
function readTlvs(bytes: Buffer): Tlv[] {
  const items: Tlv[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    if (offset + 2 > bytes.length) throw new Error("truncated DER");
    const tag = bytes[offset];
    let length = bytes[offset + 1];
    let headerLength = 2;
    if (length & 0x80) {
      const count = length & 0x7f;
      if (count === 0 || count > 4 || offset + 2 + count > bytes.length) throw new Error("unsupported DER length");
      length = bytes.readUIntBE(offset + 2, count);
      headerLength += count;
    }
    const end = offset + headerLength + length;
    if (end > bytes.length) throw new Error("truncated DER");
    items.push({ tag, content: bytes.subarray(offset + headerLength, end) });
    offset = end;
  }
  return items;
}

function only(bytes: Buffer, tag: number): Tlv {
  const [item] = readTlvs(bytes);
  if (!item || item.tag !== tag) throw new Error("unexpected DER structure");
  return item;
}

// ---------------------------------------------------------------------------------------------
// Self-signed certificates.

const OID = {
  ecdsaWithSha256: "1.2.840.10045.4.3.2",
  commonName: "2.5.4.3",
  organizationName: "2.5.4.10",
  subjectKeyIdentifier: "2.5.29.14",
  keyUsage: "2.5.29.15",
  subjectAltName: "2.5.29.17",
  basicConstraints: "2.5.29.19",
  extKeyUsage: "2.5.29.37",
  serverAuth: "1.3.6.1.5.5.7.3.1",
  clientAuth: "1.3.6.1.5.5.7.3.2",
} as const;

function extension(oid: string, critical: boolean, value: Buffer): Buffer {
  return sequence(objectIdentifier(oid), ...(critical ? [derTrue] : []), octetString(value));
}

/** Verifiers (node, OpenSSL, browsers) refuse `*.tld`-style wildcards, so a one-label domain's subdomains must be listed. */
function wildcardCovers(domain: string, host: string): boolean {
  return domain.includes(".") && host.endsWith(`.${domain}`) && !host.slice(0, -domain.length - 1).includes(".");
}

/** Every DNS name a self-signed certificate for these domains carries, in order. */
export function selfSignedNames(domains: readonly string[], extraNames: readonly string[] = []): string[] {
  const names = domains.flatMap((domain) => [domain, `*.${domain}`]);
  for (const host of extraNames) {
    if (!domains.some((domain) => wildcardCovers(domain, host))) names.push(host);
  }
  return [...new Set(names.map((name) => name.toLowerCase()))];
}

export interface SelfSignedOptions {
  /** Validity in days, 1..825 (Apple platforms reject longer-lived TLS certificates). Default 365. */
  readonly days?: number;
  /** Start of validity; default one hour ago, so clients with a slow clock still accept it. */
  readonly notBefore?: Date;
  /** Hostnames to list besides each domain and `*.domain` (components under a one-label domain). */
  readonly extraNames?: readonly string[];
}

/**
 * An ECDSA P-256 certificate for `domains` (the first is the subject CN), valid for TLS servers
 * and clients (s2s uses both), signed by its own key.
 */
export function generateSelfSigned(domains: readonly string[], opts: SelfSignedOptions = {}): CertificatePair {
  if (domains.length === 0) throw new Error("generateSelfSigned needs at least one domain");
  const days = opts.days ?? 365;
  if (!Number.isInteger(days) || days < 1 || days > 825) throw new RangeError(`days must be an integer 1..825, got ${days}`);
  const notBefore = opts.notBefore ?? new Date(Date.now() - 60 * 60 * 1000);
  const notAfter = new Date(notBefore.getTime() + days * 24 * 60 * 60 * 1000);

  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const spki = publicKey.export({ type: "spki", format: "der" });
  const [, subjectPublicKey] = readTlvs(only(spki, 0x30).content);
  // RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits (after the unused-bits byte).
  const keyIdentifier = createHash("sha1").update(subjectPublicKey.content.subarray(1)).digest();

  // ub-common-name is 64 characters; the SAN, not the CN, is what clients check anyway.
  const commonName = domains[0].length <= 64 ? domains[0] : "Parley self-signed";
  const name = sequence(
    set(sequence(objectIdentifier(OID.organizationName), utf8String("Parley self-signed"))),
    set(sequence(objectIdentifier(OID.commonName), utf8String(commonName))),
  );
  const serial = randomBytes(16);
  serial[0] = (serial[0] & 0x7f) | 0x40; // positive and exactly 16 bytes (RFC 5280 §4.1.2.2)
  const signatureAlgorithm = sequence(objectIdentifier(OID.ecdsaWithSha256));

  const tbsCertificate = sequence(
    explicit(0, unsignedInteger(Buffer.from([2]))), // v3
    unsignedInteger(serial),
    signatureAlgorithm,
    name,
    sequence(time(notBefore), time(notAfter)),
    name,
    spki,
    explicit(
      3,
      sequence(
        extension(OID.basicConstraints, true, sequence()), // cA defaults to FALSE
        extension(OID.keyUsage, true, bitString(Buffer.from([0x80]), 7)), // digitalSignature
        extension(OID.extKeyUsage, false, sequence(objectIdentifier(OID.serverAuth), objectIdentifier(OID.clientAuth))),
        extension(OID.subjectKeyIdentifier, false, octetString(keyIdentifier)),
        extension(OID.subjectAltName, false, sequence(...selfSignedNames(domains, opts.extraNames).map(dnsName))),
      ),
    ),
  );
  const signature = sign("sha256", tbsCertificate, { key: privateKey, dsaEncoding: "der" });
  const certificate = sequence(tbsCertificate, signatureAlgorithm, bitString(signature));

  return { certPem: toPem("CERTIFICATE", certificate), keyPem: privateKey.export({ type: "pkcs8", format: "pem" }) as string };
}

function toPem(label: string, der: Buffer): string {
  const lines = der.toString("base64").match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

// ---------------------------------------------------------------------------------------------
// Inspecting certificates.

export interface CertificateDescription {
  readonly subject: string;
  readonly issuer: string;
  /** The dNSName entries of subjectAltName, as written (wildcards included). */
  readonly dnsNames: readonly string[];
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly selfSigned: boolean;
  /** Colon-separated hex, as browsers and `openssl x509 -fingerprint -sha256` show it. */
  readonly fingerprintSha256: string;
}

function dnsNamesOf(cert: X509Certificate): string[] {
  // Node writes "DNS:a.example, DNS:*.a.example, IP Address:..."; DNS names cannot contain ", ".
  return (cert.subjectAltName ?? "")
    .split(", ")
    .filter((entry) => entry.startsWith("DNS:"))
    .map((entry) => entry.slice(4));
}

/** The leaf (first) certificate of a PEM file, for `parley check` and for deciding to regenerate. */
export function describeCertificate(pem: string): CertificateDescription {
  const cert = new X509Certificate(pem);
  return {
    subject: cert.subject,
    issuer: cert.issuer,
    dnsNames: dnsNamesOf(cert),
    notBefore: new Date(cert.validFrom),
    notAfter: new Date(cert.validTo),
    // Not checkIssued(): OpenSSL refuses an issuer without keyCertSign, which a leaf lacks.
    selfSigned: cert.subject === cert.issuer && cert.verify(cert.publicKey),
    fingerprintSha256: cert.fingerprint256,
  };
}

/** Whether a client connecting to `hostname` would accept this certificate's names (RFC 6125). */
export function certificateCovers(pem: string, hostname: string): boolean {
  return new X509Certificate(pem).checkHost(hostname) !== undefined;
}

// ---------------------------------------------------------------------------------------------
// Finding or making the certificates a configuration needs.

/** A generated certificate this close to expiry is replaced at start, not mid-run. */
const RENEW_BEFORE_MS = 7 * 24 * 60 * 60 * 1000;

export interface EnsureOptions {
  /** Hostnames served besides the domains (components such as conference.localhost). */
  readonly extraNames?: readonly string[];
  /** Validity of a newly generated certificate, in days. */
  readonly days?: number;
  readonly now?: Date;
}

async function readConfiguredPair(key: string, files: { certificate: string; key: string }, problems: string[]): Promise<CertificatePair | null> {
  const read = async (path: string, setting: string): Promise<string | null> => {
    try {
      return await readFile(path, "utf8");
    } catch (error) {
      problems.push(`${key}.${setting}: cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
      return null;
    }
  };
  const [certPem, keyPem] = await Promise.all([read(files.certificate, "certificate"), read(files.key, "key")]);
  if (certPem === null || keyPem === null) return null;
  let cert: X509Certificate;
  let privateKey: KeyObject;
  try {
    cert = new X509Certificate(certPem);
  } catch {
    problems.push(`${key}.certificate: ${files.certificate} is not a PEM certificate`);
    return null;
  }
  try {
    privateKey = createPrivateKey(keyPem);
  } catch {
    problems.push(`${key}.key: ${files.key} is not a PEM private key (or it is encrypted)`);
    return null;
  }
  if (!cert.checkPrivateKey(privateKey)) {
    problems.push(`${key}.key: ${files.key} does not belong to the certificate in ${files.certificate}`);
    return null;
  }
  return { certPem, keyPem };
}

async function readIfPresent(path: string): Promise<string | null> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw error;
  }
}

function stillUsable(pair: CertificatePair, names: readonly string[], now: Date): boolean {
  try {
    const cert = new X509Certificate(pair.certPem);
    if (!cert.checkPrivateKey(createPrivateKey(pair.keyPem))) return false;
    const description = describeCertificate(pair.certPem);
    if (description.notBefore.getTime() > now.getTime()) return false;
    // Short-lived certificates (tests) would otherwise be replaced on every start.
    const lifetime = description.notAfter.getTime() - description.notBefore.getTime();
    if (description.notAfter.getTime() - now.getTime() < Math.min(RENEW_BEFORE_MS, lifetime / 2)) return false;
    return names.every((name) => description.dnsNames.includes(name));
  } catch {
    return false;
  }
}

async function writeAtomically(path: string, content: string, mode: number): Promise<void> {
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, content, { mode });
  await chmod(temporary, mode); // the umask may have narrowed or widened what writeFile set
  await rename(temporary, path);
}

/** The self-signed pair under <dataDir>/certs, reused while it still covers `names`. */
async function selfSignedPair(config: Config, opts: EnsureOptions): Promise<CertificatePair> {
  const directory = join(config.dataDir, "certs");
  const certPath = join(directory, `${config.domains[0]}.crt`);
  const keyPath = join(directory, `${config.domains[0]}.key`);
  const names = selfSignedNames(config.domains, opts.extraNames);
  const [certPem, keyPem] = await Promise.all([readIfPresent(certPath), readIfPresent(keyPath)]);
  if (certPem !== null && keyPem !== null && stillUsable({ certPem, keyPem }, names, opts.now ?? new Date())) {
    if (((await stat(keyPath)).mode & 0o077) !== 0) await chmod(keyPath, 0o600);
    return { certPem, keyPem };
  }
  const pair = generateSelfSigned(config.domains, {
    days: opts.days,
    extraNames: opts.extraNames,
    notBefore: opts.now ? new Date(opts.now.getTime() - 60 * 60 * 1000) : undefined,
  });
  await mkdir(directory, { recursive: true, mode: 0o700 });
  // Key first: a crash in between leaves a certificate that does not match it, which the
  // next start detects and replaces.
  await writeAtomically(keyPath, pair.keyPem, 0o600);
  await writeAtomically(certPath, pair.certPem, 0o644);
  return pair;
}

/**
 * The certificate for every domain and every `[tls.domains]` host: the configured files when
 * given, else a self-signed certificate generated once into <dataDir>/certs/<first-domain>.crt
 * and .key and reused on later starts until it expires or stops covering the domains.
 * Throws ConfigError naming the setting when a configured file is unreadable or mismatched;
 * expiry and names of configured certificates are left to `parley check` (describeCertificate).
 */
export async function ensureCertificates(config: Config, opts: EnsureOptions = {}): Promise<Record<string, CertificatePair>> {
  const problems: string[] = [];
  const overrides = new Map<string, CertificatePair | null>();
  for (const [host, files] of Object.entries(config.tls.domains)) {
    overrides.set(host, await readConfiguredPair(`tls.domains.${JSON.stringify(host)}`, files, problems));
  }
  let shared: CertificatePair | null = null;
  if (config.tls.certificate !== null && config.tls.key !== null) {
    shared = await readConfiguredPair("tls", { certificate: config.tls.certificate, key: config.tls.key }, problems);
  }
  if (problems.length > 0) throw new ConfigError(problems, config.file);

  const result: Record<string, CertificatePair> = {};
  for (const [host, pair] of overrides) if (pair) result[host] = pair;
  for (const domain of config.domains) {
    if (result[domain]) continue;
    shared ??= await selfSignedPair(config, opts);
    result[domain] = shared;
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Serving several virtual hosts.

/** RFC 8996 retired TLS 1.0 and 1.1; XEP-0368 clients all speak 1.2 or later. */
const MIN_TLS_VERSION = "TLSv1.2";

/** One secure context per host; hosts sharing a certificate share a context. */
export function createSecureContexts(certs: DomainCertificates): Map<string, SecureContext> {
  const byPair = new Map<string, SecureContext>();
  const contexts = new Map<string, SecureContext>();
  for (const [host, pair] of Object.entries(certs)) {
    const identity = `${pair.certPem}\u0000${pair.keyPem}`;
    let context = byPair.get(identity);
    if (!context) {
      context = createSecureContext({ cert: pair.certPem, key: pair.keyPem, minVersion: MIN_TLS_VERSION });
      byPair.set(identity, context);
    }
    contexts.set(host.toLowerCase(), context);
  }
  return contexts;
}

/**
 * Chooses the context for a ClientHello's server_name: the host itself, else its nearest
 * parent domain (conference.example.com is served with example.com's certificate), else the
 * default host's, so a client without SNI or with an unknown name still gets a certificate
 * and can report the mismatch itself. The map is read on every handshake, so replacing an
 * entry (a renewed certificate) takes effect for new connections.
 */
export function sniCallback(
  contexts: ReadonlyMap<string, SecureContext>,
  defaultHost: string,
): (servername: string, callback: (error: Error | null, context?: SecureContext) => void) => void {
  return (servername, callback) => callback(null, forServerName(contexts, servername, defaultHost));
}

/** sniCallback's rule: the entry for `servername`, else its nearest parent domain's, else the default host's. */
function forServerName<T>(byHost: ReadonlyMap<string, T>, servername: string | false | undefined, defaultHost: string): T | undefined {
  const labels = servername ? servername.toLowerCase().replace(/\.$/, "").split(".") : [];
  for (let i = 0; i < labels.length; i++) {
    const entry = byHost.get(labels.slice(i).join("."));
    if (entry !== undefined) return entry;
  }
  return byHost.get(defaultHost);
}

/** tls-server-end-point data by the SNI name a server socket was asked for (serverEndPoints). */
export type ServerEndPoint = (servername: string | false | undefined) => Buffer | undefined;

/** Node sets `servername` on a server's TLS socket (the SNI name it was asked for, or false); @types/node omits it. */
export type SniSocket = TLSSocket & { servername?: string | false };

/**
 * RFC 5929 tls-server-end-point data of the certificate a server socket was given, by the SNI
 * name it asked for (the certificate sniCallback chose): one hash per certificate, made here
 * once. Reading it from each socket (`getCertificate()` parses the certificate and hashes it
 * three times) cost about 37 µs a login.
 */
export function serverEndPoints(certs: DomainCertificates, defaultHost: string): ServerEndPoint {
  const byPem = new Map<string, Buffer | null>();
  const byHost = new Map<string, Buffer | null>();
  for (const [host, pair] of Object.entries(certs)) {
    let endPoint = byPem.get(pair.certPem);
    if (endPoint === undefined) {
      // The leaf is the first certificate of the chain file.
      endPoint = tlsServerEndPoint(Buffer.from(new X509Certificate(pair.certPem).raw));
      byPem.set(pair.certPem, endPoint);
    }
    byHost.set(host.toLowerCase(), endPoint);
  }
  return (servername) => forServerName(byHost, servername, defaultHost) ?? undefined;
}

/**
 * XEP-0368 ALPN for a Direct TLS listener (tls.createServer's ALPNCallback): `protocol` when the
 * peer offers it, a no_application_protocol alert when it offers only others, nothing when it
 * sends no ALPN — what ALPNProtocols: [protocol] does, without ALPNProtocols' per-socket copy of
 * the protocol list: a slice of Node's 8 KiB Buffer pool in every TLSSocket's _tlsOptions, which
 * pinned about 0.3 pool slabs (2.5 KiB) per idle Direct TLS connection.
 */
function alpnSelector(protocol: string): (offer: { protocols: string[] }) => string | undefined {
  return ({ protocols }) => (protocols.includes(protocol) ? protocol : undefined);
}

/** Direct TLS for clients (XEP-0368 §2). */
export const selectXmppClient = alpnSelector("xmpp-client");
/** Direct TLS between servers (XEP-0368 §2). */
export const selectXmppServer = alpnSelector("xmpp-server");

/**
 * Options for tls.createServer (Direct TLS, XEP-0368) and for `new tls.TLSSocket(socket,
 * { isServer: true, ...options })` (STARTTLS): the default host's certificate plus SNI.
 */
export function serverTlsOptions(certs: DomainCertificates, defaultHost: string): TlsOptions & { secureContext: SecureContext } {
  const contexts = createSecureContexts(certs);
  const fallback = certs[defaultHost];
  const secureContext = contexts.get(defaultHost);
  if (!fallback || !secureContext) throw new Error(`no certificate for the default host ${defaultHost}`);
  return {
    cert: fallback.certPem,
    key: fallback.keyPem,
    secureContext,
    minVersion: MIN_TLS_VERSION,
    SNICallback: sniCallback(contexts, defaultHost),
  };
}

// ---------------------------------------------------------------------------------------------
// Channel bindings.

export interface ChannelBindings {
  /** RFC 9266; only over TLS 1.3, where the exporter is bound to the full handshake. */
  readonly "tls-exporter"?: Buffer;
  /** RFC 5929 §4. */
  readonly "tls-server-end-point"?: Buffer;
}

/**
 * Channel bindings of a server's TLS socket whose tls-server-end-point data is already known
 * (serverEndPoints). The tls-exporter value is derived when first read: most clients never
 * bind to it, and every login paid for it.
 */
export function serverChannelBindings(socket: TLSSocket, endPoint: Buffer | undefined): ChannelBindings {
  const bindings: { "tls-exporter"?: Buffer; "tls-server-end-point"?: Buffer } = {};
  if (socket.getProtocol() === "TLSv1.3") {
    let exporter: Buffer | undefined;
    Object.defineProperty(bindings, "tls-exporter", {
      enumerable: true,
      get: () => (exporter ??= socket.exportKeyingMaterial(TLS_EXPORTER_LENGTH, TLS_EXPORTER_LABEL, Buffer.alloc(0))),
    });
  }
  if (endPoint !== undefined) bindings["tls-server-end-point"] = endPoint;
  return bindings;
}

/**
 * The channel bindings SASL SCRAM-*-PLUS may use on this connection. `side` says which end
 * `socket` is: the server hashes its own certificate, a client its peer's.
 */
export function channelBindingData(socket: TLSSocket, side: "server" | "client" = "server"): ChannelBindings {
  const certificate = side === "server" ? socket.getCertificate() : socket.getPeerCertificate();
  const raw = (certificate as { raw?: unknown } | null)?.raw;
  const endPoint = Buffer.isBuffer(raw) && raw.length > 0 ? tlsServerEndPoint(raw) : null;
  // The same lazy exporter as a server socket's: the keying material is the connection's either way.
  return serverChannelBindings(socket, endPoint ?? undefined);
}
