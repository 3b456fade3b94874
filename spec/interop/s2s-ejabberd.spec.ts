// Interop, RFC 6120 server-to-server streams with XEP-0220 dialback over STARTTLS and
// self-signed certificates: Parley (par-e.test, 127.0.0.44) and ejabberd from Debian (ej.test,
// 127.0.0.43) federate both ways. ejabberd resolves through an inetrc that reads /etc/hosts and
// names only 127.0.0.1 as DNS server (s2s_dns_retries: 1, since 0 skips the A-record fallback);
// Parley uses a static route. Its own Erlang node name and distribution port keep it apart
// from any other ejabberd on the machine.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { xml } from "../../protocol/xml/element.ts";
import { XmppClient } from "../../conformance/client/client.ts";
import { startTestServer, type TestServer } from "../support/server.ts";
import { ensureDebianServer } from "./support/debian.ts";
import { waitForPort } from "../../bench/reference/servers.ts";

const EJABBERD = "127.0.0.43";
const PARLEY = "127.0.0.44";
const HOSTS_LINES = [`${EJABBERD} ej.test`, `${PARLEY} par-e.test`];



const skip = ensureDebianServer("/usr/sbin/ejabberdctl", "ejabberd", "ejabberd");

describe("Parley and ejabberd federate with dialback", { skip: skip ?? false }, () => {
  const dir = mkdtempSync(join(tmpdir(), "parley-interop-ejabberd-"));
  let parley: TestServer;
  let ejabberdCert = "";
  const ctl = (...args: string[]) =>
    execFileSync("ejabberdctl", ["--config-dir", join(dir, "config"), "--config", join(dir, "config", "ejabberd.yml"), "--ctl-config", join(dir, "config", "ejabberdctl.cfg"),
      "--spool", join(dir, "spool"), "--logs", join(dir, "logs"), ...args], { stdio: ["ignore", "pipe", "pipe"], timeout: 120_000 });

  before(async () => {
    const hosts = readFileSync("/etc/hosts", "utf8");
    const missing = HOSTS_LINES.filter((l) => !hosts.split("\n").includes(l));
    // Appended, not rewritten: other specs may be adding their own names at the same moment.
    if (missing.length) appendFileSync("/etc/hosts", `${hosts.endsWith("\n") ? "" : "\n"}${missing.join("\n")}\n`);
    execFileSync("mkdir", ["-p", join(dir, "config"), join(dir, "spool"), join(dir, "logs")]);
    execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=ej.test",
      "-addext", "subjectAltName=DNS:ej.test", "-keyout", join(dir, "ej.key"), "-out", join(dir, "ej.crt")], { stdio: "ignore" });
    ejabberdCert = readFileSync(join(dir, "ej.crt"), "utf8");
    writeFileSync(join(dir, "ej.pem"), ejabberdCert + readFileSync(join(dir, "ej.key"), "utf8"));
    writeFileSync(join(dir, "config", "ejabberd.yml"), `
hosts:
  - ej.test
loglevel: info
certfiles:
  - "${dir}/ej.pem"
listen:
  - port: 5222
    ip: "${EJABBERD}"
    module: ejabberd_c2s
    starttls_required: true
  - port: 5269
    ip: "${EJABBERD}"
    module: ejabberd_s2s_in
auth_method: internal
auth_password_format: scram
s2s_use_starttls: required
s2s_dns_timeout: 2
s2s_dns_retries: 1
acl:
  local:
    user_regexp: ""
access_rules:
  local:
    allow: local
  c2s:
    allow: all
modules:
  mod_disco: {}
  mod_ping: {}
  mod_roster: {}
  mod_s2s_dialback: {}
`);
    writeFileSync(join(dir, "config", "ejabberdctl.cfg"), "ERLANG_NODE=parley-s2s-interop@localhost\nERL_DIST_PORT=47431\nINET_DIST_INTERFACE=127.0.0.1\n");
    writeFileSync(join(dir, "config", "inetrc"), '{lookup, [file, dns]}.\n{hosts_file, "/etc/hosts"}.\n{resolv_conf, ""}.\n{nameserver, {127,0,0,1}, 53}.\n');
    execFileSync("chown", ["-R", "ejabberd:ejabberd", dir]);
    chmodSync(dir, 0o755);
    ctl("start");
    ctl("started");
    await waitForPort(EJABBERD, 5222, 60_000);
    ctl("register", "erin", "ej.test", "pass-erin");
    parley = await startTestServer({
      domain: "par-e.test",
      users: ["peter"],
      s2sPort: 5269,
      toml: `[s2s]\nenabled = true\ninterfaces = ["${PARLEY}"]\ndns = false\n[s2s.routes]\n"ej.test" = "${EJABBERD}:5269"\n`,
    });
  });

  after(async () => {
    await parley?.stop();
    if (process.env.PARLEY_SPEC_LOG && existsSync(join(dir, "logs", "ejabberd.log"))) process.stderr.write(readFileSync(join(dir, "logs", "ejabberd.log"), "utf8"));
    try {
      ctl("stop");
      ctl("stopped");
    } catch {
      // not started
    }
    const hosts = readFileSync("/etc/hosts", "utf8");
    writeFileSync("/etc/hosts", hosts.split("\n").filter((l) => !HOSTS_LINES.includes(l)).join("\n"));
    rmSync(dir, { recursive: true, force: true });
  });

  async function erin(resource: string): Promise<XmppClient> {
    const c = await XmppClient.connect({ host: EJABBERD, port: 5222, domain: "ej.test", ca: ejabberdCert });
    await c.login({ username: "erin", password: "pass-erin", resource });
    return c;
  }

  test("a Parley user writes to an ejabberd user, who answers", async () => {
    const peter = await parley.login("peter", { resource: "p" });
    const e = await erin("p");
    peter.send(xml("message", { to: "erin@ej.test/p", type: "chat" }, xml("body", {}, "hello ejabberd")));
    const got = await e.next((el) => el.name === "message" && el.getChildText("body") === "hello ejabberd", 20_000);
    assert.equal(got.attrs.from, "peter@par-e.test/p");
    e.send(xml("message", { to: "peter@par-e.test/p", type: "chat" }, xml("body", {}, "hello parley")));
    const back = await peter.next((el) => el.name === "message" && el.getChildText("body") === "hello parley", 20_000);
    assert.equal(back.attrs.from, "erin@ej.test/p");
    e.destroy();
  });

  test("an ejabberd user writes first to a Parley user", async () => {
    const peter = await parley.login("peter", { resource: "q" });
    const e = await erin("q");
    e.send(xml("message", { to: "peter@par-e.test/q", type: "chat" }, xml("body", {}, "ejabberd first")));
    const got = await peter.next((el) => el.name === "message" && el.getChildText("body") === "ejabberd first", 20_000);
    assert.equal(got.attrs.from, "erin@ej.test/q");
    e.destroy();
  });
});
