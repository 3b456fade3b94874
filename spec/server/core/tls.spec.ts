// Specs for server/core/tls.ts: self-signed X.509 v3 certificates (RFC 5280), SNI (RFC 6066),
// certificate files under data/, and channel bindings (RFC 9266, RFC 5929 §4).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash, createPrivateKey, generateKeyPairSync, X509Certificate } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { createServer as createTcpServer } from "node:net";
import type { AddressInfo, Server as NetServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import type { ConnectionOptions, TLSSocket } from "node:tls";
import forge from "node-forge";
import { ConfigError, parseConfig } from "../../../server/core/config.ts";
import {
  certificateCovers,
  channelBindingData,
  createSecureContexts,
  describeCertificate,
  ensureCertificates,
  generateSelfSigned,
  serverChannelBindings,
  serverEndPoints,
  serverTlsOptions,
  sniCallback,
} from "../../../server/core/tls.ts";
import type { CertificatePair, DomainCertificates } from "../../../server/core/tls.ts";

const DAY_MS = 24 * 60 * 60 * 1000;
const TIMEOUT = { timeout: 20_000 };

function hasOpenssl(): boolean {
  try {
    execFileSync("openssl", ["version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), "parley-tls-"));
  try {
    return await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Connection {
  readonly server: TLSSocket;
  readonly client: TLSSocket;
}

/**
 * Starts `listen` on 127.0.0.1:0, connects a TLS client with `clientOptions`, and hands both
 * ends of the established connection to `use` before closing everything.
 */
async function connect(
  listen: (onSecure: (socket: TLSSocket) => void) => NetServer,
  clientOptions: ConnectionOptions,
  use: (connection: Connection) => void | Promise<void>,
): Promise<void> {
  let resolveServerSide!: (socket: TLSSocket) => void;
  const serverSide = new Promise<TLSSocket>((resolve) => (resolveServerSide = resolve));
  const server = listen(resolveServerSide);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  try {
    const client = await new Promise<TLSSocket>((resolve, reject) => {
      const socket = tls.connect({ host: "127.0.0.1", port, ...clientOptions }, () => resolve(socket));
      socket.once("error", reject);
    });
    const serverSocket = await serverSide;
    try {
      await use({ server: serverSocket, client });
    } finally {
      client.destroy();
      serverSocket.destroy();
    }
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** Direct TLS (XEP-0368): TLS from the first byte. */
function directTls(certs: DomainCertificates, defaultHost: string, extra: tls.TlsOptions = {}) {
  return (onSecure: (socket: TLSSocket) => void) => {
    const server = tls.createServer({ ...serverTlsOptions(certs, defaultHost), ...extra }, onSecure);
    server.on("tlsClientError", () => {}); // a refused client is the client's test to report
    return server;
  };
}

/** STARTTLS-style: a plain TCP socket upgraded in place, as c2s does after <proceed/>. */
function upgradedTcp(certs: DomainCertificates, defaultHost: string) {
  return (onSecure: (socket: TLSSocket) => void) =>
    createTcpServer((plain) => {
      const secure = new tls.TLSSocket(plain, { isServer: true, ...serverTlsOptions(certs, defaultHost) });
      secure.once("secure", () => onSecure(secure));
      secure.on("error", () => {});
    });
}

describe("generateSelfSigned", () => {
  const domains = ["example.com", "chat.example.org"];
  const pair = generateSelfSigned(domains);
  const cert = new X509Certificate(pair.certPem);

  test("is an ECDSA P-256 certificate signed by its own key, matching the private key", () => {
    assert.equal(cert.publicKey.asymmetricKeyType, "ec");
    assert.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve, "prime256v1");
    assert.ok(cert.verify(cert.publicKey));
    assert.ok(cert.checkPrivateKey(createPrivateKey(pair.keyPem)));
    assert.equal(cert.ca, false);
  });

  test("names every domain and its wildcard, and nothing the client did not configure", () => {
    assert.equal(cert.subjectAltName, "DNS:example.com, DNS:*.example.com, DNS:chat.example.org, DNS:*.chat.example.org");
    for (const host of ["example.com", "conference.example.com", "upload.chat.example.org"]) {
      assert.ok(certificateCovers(pair.certPem, host), host);
    }
    assert.equal(certificateCovers(pair.certPem, "example.net"), false);
    assert.equal(certificateCovers(pair.certPem, "a.b.example.com"), false);
    assert.match(cert.subject, /CN=example\.com/);
  });

  test("is usable by TLS servers and clients, and valid for the requested days", () => {
    assert.deepEqual(cert.keyUsage, ["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]); // extKeyUsage, in node's naming
    const short = describeCertificate(generateSelfSigned(["example.com"], { days: 10 }).certPem);
    assert.equal(short.notAfter.getTime() - short.notBefore.getTime(), 10 * DAY_MS);
    assert.ok(short.notBefore.getTime() <= Date.now());
  });

  test("dates from 2050 on are GeneralizedTime and still parse", () => {
    const late = describeCertificate(generateSelfSigned(["example.com"], { notBefore: new Date("2049-12-31T00:00:00Z"), days: 2 }).certPem);
    assert.equal(late.notBefore.toISOString(), "2049-12-31T00:00:00.000Z");
    assert.equal(late.notAfter.toISOString(), "2050-01-02T00:00:00.000Z");
  });

  test("each certificate has its own random serial and key", () => {
    const other = new X509Certificate(generateSelfSigned(domains).certPem);
    assert.notEqual(other.serialNumber, cert.serialNumber);
    assert.notEqual(other.fingerprint256, cert.fingerprint256);
    assert.ok(cert.serialNumber.length >= 30);
  });

  test("refuses impossible validity periods", () => {
    assert.throws(() => generateSelfSigned(["example.com"], { days: 0 }), RangeError);
    assert.throws(() => generateSelfSigned(["example.com"], { days: 826 }), RangeError);
    assert.throws(() => generateSelfSigned([]), /at least one domain/);
  });

  test("lists components explicitly under a one-label domain, where wildcards are refused", () => {
    const local = generateSelfSigned(["localhost"], { extraNames: ["conference.localhost", "conference.example.com"] });
    assert.deepEqual(describeCertificate(local.certPem).dnsNames, ["localhost", "*.localhost", "conference.localhost", "conference.example.com"]);
    const covered = generateSelfSigned(["example.com"], { extraNames: ["conference.example.com"] });
    assert.deepEqual(describeCertificate(covered.certPem).dnsNames, ["example.com", "*.example.com"]);
  });

  test("OpenSSL reads the extensions as intended", { skip: !hasOpenssl() }, () => {
    const text = execFileSync("openssl", ["x509", "-noout", "-text"], { input: pair.certPem }).toString();
    assert.match(text, /Version: 3 \(0x2\)/);
    assert.match(text, /Signature Algorithm: ecdsa-with-SHA256/);
    assert.match(text, /X509v3 Basic Constraints: critical\s+CA:FALSE/);
    assert.match(text, /X509v3 Key Usage: critical\s+Digital Signature\n/);
    assert.match(text, /X509v3 Extended Key Usage:\s+TLS Web Server Authentication, TLS Web Client Authentication/);
    assert.match(text, /X509v3 Subject Key Identifier/);
  });
});

describe("describeCertificate", () => {
  test("reports subject, names, validity and whether it signed itself", () => {
    const pair = generateSelfSigned(["example.com"], { notBefore: new Date("2030-01-01T00:00:00Z"), days: 30 });
    const description = describeCertificate(pair.certPem);
    assert.match(description.subject, /CN=example\.com/);
    assert.deepEqual(description.dnsNames, ["example.com", "*.example.com"]);
    assert.equal(description.notBefore.toISOString(), "2030-01-01T00:00:00.000Z");
    assert.equal(description.notAfter.toISOString(), "2030-01-31T00:00:00.000Z");
    assert.equal(description.selfSigned, true);
    assert.equal(description.fingerprintSha256, new X509Certificate(pair.certPem).fingerprint256);
  });

  test("a certificate issued by someone else is not self-signed", () => {
    const issued = forgeCertificate(forge.md.sha256.create(), { issuerName: "Example CA" });
    assert.equal(describeCertificate(issued).selfSigned, false);
  });
});

describe("TLS handshakes", () => {
  const pair = generateSelfSigned(["example.com", "chat.test"]);
  const certs = { "example.com": pair, "chat.test": pair };

  for (const [transport, listen] of [
    ["Direct TLS", directTls(certs, "example.com")],
    ["STARTTLS upgrade", upgradedTcp(certs, "example.com")],
  ] as const) {
    test(`${transport}: a client trusting the certificate verifies the domain and its components`, TIMEOUT, async () => {
      for (const servername of ["example.com", "conference.example.com", "chat.test", "upload.chat.test"]) {
        await connect(listen, { servername, ca: pair.certPem }, ({ client }) => {
          assert.equal(client.authorized, true, `${servername}: ${client.authorizationError}`);
          assert.equal(tls.checkServerIdentity(servername, client.getPeerCertificate()), undefined);
        });
      }
    });
  }

  test("a client asking for another name refuses the certificate", TIMEOUT, async () => {
    await assert.rejects(
      connect(directTls(certs, "example.com"), { servername: "example.net", ca: pair.certPem }, () => {}),
      /Hostname\/IP does not match certificate's altnames/,
    );
  });

  test("each virtual host gets its own certificate by SNI; unknown names get the default", TIMEOUT, async () => {
    const a = generateSelfSigned(["a.example"]);
    const b = generateSelfSigned(["b.example"]);
    const listen = directTls({ "a.example": a, "b.example": b }, "a.example");
    const served = async (servername: string, ca: string): Promise<string> => {
      let fingerprint = "";
      await connect(listen, { servername, ca, checkServerIdentity: () => undefined }, ({ client }) => {
        fingerprint = client.getPeerX509Certificate()!.fingerprint256;
      });
      return fingerprint;
    };
    const fingerprintOf = (pem: string) => new X509Certificate(pem).fingerprint256;
    assert.equal(await served("b.example", b.certPem), fingerprintOf(b.certPem));
    assert.equal(await served("muc.b.example", b.certPem), fingerprintOf(b.certPem));
    assert.equal(await served("a.example", a.certPem), fingerprintOf(a.certPem));
    assert.equal(await served("elsewhere.example", a.certPem), fingerprintOf(a.certPem));
  });

  test("a one-label domain's components validate when listed", TIMEOUT, async () => {
    const local = generateSelfSigned(["localhost"], { extraNames: ["conference.localhost"] });
    const listen = directTls({ localhost: local }, "localhost");
    for (const servername of ["localhost", "conference.localhost"]) {
      await connect(listen, { servername, ca: local.certPem }, ({ client }) => assert.equal(client.authorized, true));
    }
    // Without the explicit name, `*.localhost` alone does not satisfy verifiers.
    const bare = generateSelfSigned(["localhost"]);
    assert.ok(tls.checkServerIdentity("conference.localhost", new X509Certificate(bare.certPem).toLegacyObject()) instanceof Error);
  });
});

describe("sniCallback", () => {
  test("chooses the host, then its nearest parent, then the default, ignoring case", () => {
    const a = generateSelfSigned(["a.example"]);
    const b = generateSelfSigned(["b.example"]);
    const sub = generateSelfSigned(["muc.b.example"]);
    const contexts = createSecureContexts({ "a.example": a, "b.example": b, "muc.b.example": sub });
    const pick = sniCallback(contexts, "a.example");
    const chosen = (name: string) => {
      let context: tls.SecureContext | undefined;
      pick(name, (error, ctx) => {
        assert.equal(error, null);
        context = ctx;
      });
      return context;
    };
    assert.equal(chosen("B.Example"), contexts.get("b.example"));
    assert.equal(chosen("upload.b.example"), contexts.get("b.example"));
    assert.equal(chosen("x.muc.b.example"), contexts.get("muc.b.example"));
    assert.equal(chosen("nowhere.test"), contexts.get("a.example"));
    assert.notEqual(contexts.get("a.example"), contexts.get("b.example"));
  });

  test("hosts sharing a certificate share one context", () => {
    const pair = generateSelfSigned(["a.example", "b.example"]);
    const contexts = createSecureContexts({ "a.example": pair, "b.example": pair });
    assert.equal(contexts.get("a.example"), contexts.get("b.example"));
  });
});

describe("channel bindings", () => {
  const pair = generateSelfSigned(["example.com"]);
  const certs = { "example.com": pair };
  const clientOptions = { servername: "example.com", ca: pair.certPem };

  test("TLS 1.3: both ends derive the same tls-exporter and tls-server-end-point", TIMEOUT, async () => {
    const exporters: Buffer[] = [];
    for (let i = 0; i < 2; i++) {
      await connect(directTls(certs, "example.com"), clientOptions, ({ server, client }) => {
        assert.equal(server.getProtocol(), "TLSv1.3");
        const serverSide = channelBindingData(server);
        const clientSide = channelBindingData(client, "client");
        assert.equal(serverSide["tls-exporter"]?.length, 32);
        assert.deepEqual(serverSide["tls-exporter"], clientSide["tls-exporter"]);
        assert.deepEqual(serverSide["tls-server-end-point"], clientSide["tls-server-end-point"]);
        exporters.push(serverSide["tls-exporter"]!);
      });
    }
    // The exporter binds to the connection: a second connection gets different bytes.
    assert.notDeepEqual(exporters[0], exporters[1]);
  });

  test("a server socket's bindings: the end-point of the certificate its SNI name got (made once per certificate), the exporter derived on reading", TIMEOUT, async () => {
    const a = generateSelfSigned(["a.example"]);
    const b = generateSelfSigned(["b.example"]);
    const hosts = { "a.example": a, "b.example": b };
    const endPoints = serverEndPoints(hosts, "a.example");
    for (const [servername, ca] of [["b.example", b.certPem], ["muc.b.example", b.certPem], ["a.example", a.certPem], ["elsewhere.example", a.certPem]] as const) {
      await connect(directTls(hosts, "a.example"), { servername, ca, checkServerIdentity: () => undefined }, ({ server, client }) => {
        const sni = (server as TLSSocket & { servername?: string | false }).servername;
        const serverSide = serverChannelBindings(server, endPoints(sni));
        const clientSide = channelBindingData(client, "client");
        assert.ok(clientSide["tls-server-end-point"], servername);
        assert.deepEqual(serverSide["tls-server-end-point"], clientSide["tls-server-end-point"], `${servername}: the certificate the client saw`);
        assert.deepEqual(Object.keys(serverSide).sort(), ["tls-exporter", "tls-server-end-point"]);
        assert.deepEqual(serverSide["tls-exporter"], clientSide["tls-exporter"], `${servername}: the exporter`);
      });
    }
  });

  test("tls-server-end-point is the SHA-256 of the ECDSA-SHA256 certificate", TIMEOUT, async () => {
    const der = new X509Certificate(pair.certPem).raw;
    await connect(directTls(certs, "example.com"), clientOptions, ({ server }) => {
      assert.deepEqual(channelBindingData(server)["tls-server-end-point"], createHash("sha256").update(der).digest());
    });
  });

  test("TLS 1.2: no tls-exporter (RFC 9266 requires TLS 1.3), tls-server-end-point still agrees", TIMEOUT, async () => {
    await connect(directTls(certs, "example.com", { maxVersion: "TLSv1.2" }), clientOptions, ({ server, client }) => {
      assert.equal(server.getProtocol(), "TLSv1.2");
      const serverSide = channelBindingData(server);
      assert.equal(serverSide["tls-exporter"], undefined);
      assert.deepEqual(serverSide["tls-server-end-point"], channelBindingData(client, "client")["tls-server-end-point"]);
    });
  });

  test("an Ed25519 certificate leaves tls-server-end-point out (RFC 5929 names no hash for it)", { ...TIMEOUT, skip: !hasOpenssl() }, async () => {
    const dir = mkdtempSync(join(tmpdir(), "parley-openssl-"));
    let ed25519: CertificatePair;
    try {
      const [keyPath, certPath] = [join(dir, "k"), join(dir, "c")];
      execFileSync("openssl", ["req", "-x509", "-nodes", "-newkey", "ed25519", "-subj", "/CN=example.com", "-addext", "subjectAltName=DNS:example.com", "-days", "1", "-keyout", keyPath, "-out", certPath], { stdio: "ignore" });
      ed25519 = { certPem: readFileSync(certPath, "utf8"), keyPem: readFileSync(keyPath, "utf8") };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    await connect(directTls({ "example.com": ed25519 }, "example.com"), { servername: "example.com", ca: ed25519.certPem }, ({ server, client }) => {
      const serverSide = channelBindingData(server);
      assert.equal(serverSide["tls-server-end-point"], undefined);
      assert.equal(channelBindingData(client, "client")["tls-server-end-point"], undefined);
      assert.equal(serverSide["tls-exporter"]?.length, 32);
    });
  });
});

const rsaKeys = (() => {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 1024 });
  return {
    privateKey: forge.pki.privateKeyFromPem(privateKey.export({ type: "pkcs1", format: "pem" }) as string),
    publicKey: forge.pki.publicKeyFromPem(publicKey.export({ type: "spki", format: "pem" }) as string),
  };
})();

/** An RSA certificate signed with the given digest, made by node-forge (independent of our DER writer). */
function forgeCertificate(digest: forge.md.MessageDigest, opts: { issuerName?: string } = {}): string {
  const cert = forge.pki.createCertificate();
  cert.publicKey = rsaKeys.publicKey;
  cert.serialNumber = "01";
  cert.validity.notBefore = new Date();
  cert.validity.notAfter = new Date(Date.now() + DAY_MS);
  cert.setSubject([{ name: "commonName", value: "example.com" }]);
  cert.setIssuer([{ name: "commonName", value: opts.issuerName ?? "example.com" }]);
  cert.sign(rsaKeys.privateKey, digest);
  return forge.pki.certificateToPem(cert);
}

describe("ensureCertificates", () => {
  const configIn = (dir: string, extra = "") => parseConfig(`domains = ["example.com", "chat.test"]\n${extra}`, dir);

  test("generates a certificate once into data/certs, with a private key only the owner can read", TIMEOUT, async () => {
    await withTempDir(async (dir) => {
      const config = configIn(dir);
      const first = await ensureCertificates(config);
      assert.deepEqual(Object.keys(first), ["example.com", "chat.test"]);
      assert.equal(first["example.com"], first["chat.test"]);
      const certPath = join(dir, "data", "certs", "example.com.crt");
      const keyPath = join(dir, "data", "certs", "example.com.key");
      assert.equal(readFileSync(certPath, "utf8"), first["example.com"].certPem);
      assert.equal(readFileSync(keyPath, "utf8"), first["example.com"].keyPem);
      assert.equal(statSync(keyPath).mode & 0o777, 0o600);
      assert.deepEqual(describeCertificate(first["example.com"].certPem).dnsNames, ["example.com", "*.example.com", "chat.test", "*.chat.test"]);

      const second = await ensureCertificates(configIn(dir));
      assert.deepEqual(second["example.com"], first["example.com"]);
    });
  });

  test("regenerates when the domains change, the files are damaged, or the certificate expired", TIMEOUT, async () => {
    await withTempDir(async (dir) => {
      const certPath = join(dir, "data", "certs", "example.com.crt");
      const keyPath = join(dir, "data", "certs", "example.com.key");
      const original = (await ensureCertificates(configIn(dir)))["example.com"];

      const widened = (await ensureCertificates(parseConfig('domains = ["example.com", "chat.test", "new.test"]', dir)))["example.com"];
      assert.notEqual(widened.certPem, original.certPem);
      assert.ok(certificateCovers(widened.certPem, "new.test"));

      const withComponent = (await ensureCertificates(parseConfig('domains = ["example.com"]', dir), { extraNames: ["muc.chat.test"] }))["example.com"];
      assert.ok(certificateCovers(withComponent.certPem, "muc.chat.test"));

      writeFileSync(certPath, "not a certificate");
      const repaired = (await ensureCertificates(configIn(dir)))["example.com"];
      assert.ok(new X509Certificate(repaired.certPem).checkPrivateKey(createPrivateKey(readFileSync(keyPath, "utf8"))));

      const expired = generateSelfSigned(["example.com", "chat.test"], { notBefore: new Date(Date.now() - 400 * DAY_MS), days: 365 });
      writeFileSync(certPath, expired.certPem);
      writeFileSync(keyPath, expired.keyPem);
      const renewed = (await ensureCertificates(configIn(dir)))["example.com"];
      assert.notEqual(renewed.certPem, expired.certPem);
      assert.ok(describeCertificate(renewed.certPem).notAfter.getTime() > Date.now() + 300 * DAY_MS);

      const mismatched = generateSelfSigned(["example.com", "chat.test"]);
      writeFileSync(keyPath, mismatched.keyPem);
      const rematched = (await ensureCertificates(configIn(dir)))["example.com"];
      assert.ok(new X509Certificate(rematched.certPem).checkPrivateKey(createPrivateKey(rematched.keyPem)));
    });
  });

  test("uses configured files, and per-host files where given, generating nothing it does not need", TIMEOUT, async () => {
    await withTempDir(async (dir) => {
      const shared = generateSelfSigned(["example.com", "chat.test"]);
      const muc = generateSelfSigned(["conference.chat.test"]);
      await mkdir(join(dir, "pem"));
      const files: Array<[string, CertificatePair]> = [["shared", shared], ["muc", muc]];
      for (const [name, pair] of files) {
        writeFileSync(join(dir, "pem", `${name}.crt`), pair.certPem);
        writeFileSync(join(dir, "pem", `${name}.key`), pair.keyPem);
      }
      const config = configIn(
        dir,
        ['[tls]', 'certificate = "pem/shared.crt"', 'key = "pem/shared.key"', '[tls.domains."conference.chat.test"]', 'certificate = "pem/muc.crt"', 'key = "pem/muc.key"'].join("\n"),
      );
      const certs = await ensureCertificates(config);
      assert.deepEqual(certs, { "conference.chat.test": muc, "example.com": shared, "chat.test": shared });
      assert.equal(existsSync(join(dir, "data")), false);

      const onlyOneOverride = configIn(dir, ['[tls.domains."chat.test"]', 'certificate = "pem/shared.crt"', 'key = "pem/shared.key"'].join("\n"));
      const mixed = await ensureCertificates(onlyOneOverride);
      assert.deepEqual(mixed["chat.test"], shared);
      assert.equal(mixed["example.com"].certPem, readFileSync(join(dir, "data", "certs", "example.com.crt"), "utf8"));
    });
  });

  test("unreadable, malformed or mismatched configured files are errors naming the setting", TIMEOUT, async () => {
    await withTempDir(async (dir) => {
      const pair = generateSelfSigned(["example.com"]);
      const other = generateSelfSigned(["example.com"]);
      writeFileSync(join(dir, "good.crt"), pair.certPem);
      writeFileSync(join(dir, "other.key"), other.keyPem);
      writeFileSync(join(dir, "good.key"), pair.keyPem);
      writeFileSync(join(dir, "junk.crt"), "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
      const config = parseConfig(
        [
          'domains = ["example.com", "chat.test"]',
          "[tls]",
          'certificate = "good.crt"',
          'key = "other.key"',
          '[tls.domains."chat.test"]',
          'certificate = "junk.crt"',
          'key = "good.key"',
          '[tls.domains."muc.chat.test"]',
          'certificate = "good.crt"',
          'key = "missing.key"',
        ].join("\n"),
        dir,
      );
      await assert.rejects(ensureCertificates(config), (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.deepEqual(error.problems, [
          `tls.domains."chat.test".certificate: ${join(dir, "junk.crt")} is not a PEM certificate`,
          `tls.domains."muc.chat.test".key: cannot read ${join(dir, "missing.key")}: ENOENT`,
          `tls.key: ${join(dir, "other.key")} does not belong to the certificate in ${join(dir, "good.crt")}`,
        ]);
        return true;
      });
    });
  });
});
