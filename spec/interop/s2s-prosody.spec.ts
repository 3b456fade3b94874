// Interop, RFC 6120 server-to-server streams between Parley and Prosody from Debian, both ways:
// XEP-0220 dialback over STARTTLS with self-signed certificates, and SASL EXTERNAL (XEP-0178)
// when both trust a test CA. Prosody finds Parley through /etc/hosts and the RFC 6120 §3.2
// fallback (the domain on 5269); its resolver (libunbound) reads a resolv.conf naming only
// 127.0.0.1, so nothing leaves the machine. Parley uses a static route from [s2s.routes].
// Domains are *.test, not *.localhost: libunbound treats localhost. as a redirect zone and
// refuses /etc/hosts entries under it.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { appendFileSync, chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { xml } from "../../protocol/xml/element.ts";
import { XmppClient } from "../../conformance/client/client.ts";
import { startTestServer, type TestServer } from "../support/server.ts";
import { ensureDebianServer } from "./support/debian.ts";
import { waitForPort } from "../../bench/reference/servers.ts";
import { inboundMethods, makeTestCa, outboundMethod } from "../server/transports/s2s-support.ts";



interface Pair {
  parley: TestServer;
  /** A logged-in client of the Prosody user "paula". */
  paula(resource: string): Promise<XmppClient>;
  stop(): Promise<void>;
}

/**
 * Prosody serving `prosodyDomain` on `prosodyIp`, and Parley serving `parleyDomain` on
 * `parleyIp`, both with s2s on 5269. With `ca`, both present certificates from one test CA
 * and trust it; otherwise each has a self-signed certificate.
 */
async function startPair(o: { prosodyDomain: string; prosodyIp: string; parleyDomain: string; parleyIp: string; ca: boolean }): Promise<Pair> {
  const dir = mkdtempSync(join(tmpdir(), "parley-interop-prosody-"));
  const hostsLines = [`${o.prosodyIp} ${o.prosodyDomain}`, `${o.parleyIp} ${o.parleyDomain}`];
  const hosts = readFileSync("/etc/hosts", "utf8");
  const missing = hostsLines.filter((l) => !hosts.split("\n").includes(l));
  // Appended, not rewritten: other specs may be adding their own names at the same moment.
  if (missing.length) appendFileSync("/etc/hosts", `${hosts.endsWith("\n") ? "" : "\n"}${missing.join("\n")}\n`);
  mkdirSync(join(dir, "certs"));
  mkdirSync(join(dir, "data"));
  let clientCa: string;
  let s2sExtra = "";
  let tlsToml = "";
  let prosodyTls = "s2s_secure_auth = false";
  if (o.ca) {
    const issued = makeTestCa(join(dir, "certs"), [o.prosodyDomain, o.parleyDomain]);
    clientCa = issued.ca;
    const mine = issued.files[o.parleyDomain];
    s2sExtra = `ca_file = "${issued.caFile}"\nsecure_domains = ["${o.prosodyDomain}"]\n`;
    tlsToml = `[tls]\ncertificate = "${mine.certificate}"\nkey = "${mine.key}"\n`;
    prosodyTls = `s2s_secure_auth = true\nssl = { cafile = "${issued.caFile}" }`;
  } else {
    execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", `/CN=${o.prosodyDomain}`,
      "-addext", `subjectAltName=DNS:${o.prosodyDomain}`, "-keyout", join(dir, "certs", `${o.prosodyDomain}.key`), "-out", join(dir, "certs", `${o.prosodyDomain}.crt`)], { stdio: "ignore" });
    clientCa = readFileSync(join(dir, "certs", `${o.prosodyDomain}.crt`), "utf8");
  }
  writeFileSync(join(dir, "resolv.conf"), "nameserver 127.0.0.1\n");
  const config = join(dir, "prosody.cfg.lua");
  writeFileSync(config, `
pidfile = "${dir}/prosody.pid"
data_path = "${dir}/data"
log = { info = "${dir}/prosody.log"; error = "${dir}/prosody.err" }
interfaces = { "${o.prosodyIp}" }
c2s_ports = { 5222 }
c2s_direct_tls_ports = { }
s2s_ports = { 5269 }
http_ports = { }
https_ports = { }
certificates = "${dir}/certs"
unbound = { resolvconf = "${dir}/resolv.conf"; hoststxt = "/etc/hosts" }
authentication = "internal_hashed"
c2s_require_encryption = true
s2s_require_encryption = true
${prosodyTls}
modules_enabled = { "roster"; "saslauth"; "tls"; "dialback"; "disco"; "ping"; "presence" }
VirtualHost "${o.prosodyDomain}"
`);
  execFileSync("chown", ["-R", "prosody:prosody", dir]);
  chmodSync(dir, 0o755);
  const asProsody = (...args: string[]) =>
    execFileSync("setpriv", ["--reuid=prosody", "--regid=prosody", "--init-groups", "env", "HOME=/var/lib/prosody", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  const stopProsody = () => {
    try {
      process.kill(Number(readFileSync(join(dir, "prosody.pid"), "utf8").trim()), "SIGTERM");
    } catch {
      // not started
    }
  };
  const cleanup = () => {
    stopProsody();
    if (process.env.PARLEY_SPEC_LOG) {
      for (const f of ["prosody.log", "prosody.err"]) if (existsSync(join(dir, f))) process.stderr.write(readFileSync(join(dir, f), "utf8"));
    }
    const now = readFileSync("/etc/hosts", "utf8");
    writeFileSync("/etc/hosts", now.split("\n").filter((l) => !hostsLines.includes(l)).join("\n"));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    asProsody("prosody", "--config", config, "-D");
    await waitForPort(o.prosodyIp, 5222, 30_000);
    asProsody("prosodyctl", "--config", config, "register", "paula", o.prosodyDomain, "pass-paula");
    const parley = await startTestServer({
      domain: o.parleyDomain,
      users: ["peter"],
      s2sPort: 5269,
      ca: o.ca ? clientCa : undefined,
      toml: `[s2s]\nenabled = true\ninterfaces = ["${o.parleyIp}"]\ndns = false\n${s2sExtra}[s2s.routes]\n"${o.prosodyDomain}" = "${o.prosodyIp}:5269"\n${tlsToml}`,
    });
    return {
      parley,
      async paula(resource) {
        const c = await XmppClient.connect({ host: o.prosodyIp, port: 5222, domain: o.prosodyDomain, ca: clientCa });
        await c.login({ username: "paula", password: "pass-paula", resource });
        return c;
      },
      async stop() {
        await parley.stop();
        cleanup();
      },
    };
  } catch (err) {
    cleanup();
    throw err;
  }
}

const skip = ensureDebianServer("/usr/bin/prosody", "prosody", "Prosody");

describe("Parley and Prosody federate with dialback (self-signed certificates)", { skip: skip ?? false }, () => {
  let pair: Pair;
  before(async () => {
    pair = await startPair({ prosodyDomain: "pro.test", prosodyIp: "127.0.0.41", parleyDomain: "par.test", parleyIp: "127.0.0.42", ca: false });
  });
  after(async () => {
    await pair?.stop();
  });

  test("a Parley user writes to a Prosody user, who answers", async () => {
    const peter = await pair.parley.login("peter", { resource: "p" });
    const p = await pair.paula("p");
    peter.send(xml("message", { to: "paula@pro.test/p", type: "chat" }, xml("body", {}, "hello prosody")));
    const got = await p.next((el) => el.name === "message" && el.getChildText("body") === "hello prosody", 20_000);
    assert.equal(got.attrs.from, "peter@par.test/p");
    p.send(xml("message", { to: "peter@par.test/p", type: "chat" }, xml("body", {}, "hello parley")));
    const back = await peter.next((el) => el.name === "message" && el.getChildText("body") === "hello parley", 20_000);
    assert.equal(back.attrs.from, "paula@pro.test/p");
    assert.equal(outboundMethod(pair.parley, "pro.test", "par.test"), "dialback");
    assert.deepEqual(inboundMethods(pair.parley, "pro.test"), ["dialback"]);
    p.destroy();
  });

  test("a Prosody user writes first to a Parley user", async () => {
    const peter = await pair.parley.login("peter", { resource: "q" });
    const p = await pair.paula("q");
    p.send(xml("message", { to: "peter@par.test/q", type: "chat" }, xml("body", {}, "prosody first")));
    const got = await peter.next((el) => el.name === "message" && el.getChildText("body") === "prosody first", 20_000);
    assert.equal(got.attrs.from, "paula@pro.test/q");
    p.destroy();
  });
});

describe("Parley and Prosody federate with SASL EXTERNAL (a test CA both trust)", { skip: skip ?? false }, () => {
  let pair: Pair;
  before(async () => {
    pair = await startPair({ prosodyDomain: "pro-ca.test", prosodyIp: "127.0.0.45", parleyDomain: "par-ca.test", parleyIp: "127.0.0.46", ca: true });
  });
  after(async () => {
    await pair?.stop();
  });

  test("chat both ways over certificate-authenticated streams", async () => {
    const peter = await pair.parley.login("peter", { resource: "p" });
    const p = await pair.paula("p");
    peter.send(xml("message", { to: "paula@pro-ca.test/p", type: "chat" }, xml("body", {}, "certified hello")));
    const got = await p.next((el) => el.name === "message" && el.getChildText("body") === "certified hello", 20_000);
    assert.equal(got.attrs.from, "peter@par-ca.test/p");
    p.send(xml("message", { to: "peter@par-ca.test/p", type: "chat" }, xml("body", {}, "certified answer")));
    const back = await peter.next((el) => el.name === "message" && el.getChildText("body") === "certified answer", 20_000);
    assert.equal(back.attrs.from, "paula@pro-ca.test/p");
    assert.equal(outboundMethod(pair.parley, "pro-ca.test", "par-ca.test"), "external");
    assert.deepEqual(inboundMethods(pair.parley, "pro-ca.test"), ["external"]);
    p.destroy();
  });
});
