// The `parley` command line, as an operator uses it: real processes on a temporary
// configuration, and a real client logging in to the server they manage.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import net from "node:net";
import { PassThrough } from "node:stream";
import { XmppClient } from "../../conformance/client/client.ts";
import { canLogIn } from "../support/accounts.ts";
import { generateSelfSigned } from "../../server/core/tls.ts";
import { checkConfiguration } from "../../server/cli/check.ts";
import { readPassword } from "../../server/cli/password.ts";
import { CliError } from "../../server/cli/errors.ts";
import { builtinModules } from "../../server/modules/index.ts";
import { main } from "../../server/cli/main.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const MAIN = join(ROOT, "server/cli/main.ts");

interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
}

function collect(child: ChildProcess, input?: string): Promise<Outcome> {
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  child.stdin!.end(input ?? "");
  return new Promise((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })));
}

function parley(args: string[], input?: string): Promise<Outcome> {
  return collect(spawn(process.execPath, ["--import", "tsx", MAIN, ...args], { cwd: ROOT, stdio: "pipe" }), input);
}

/**
 * The same command run inside this process: for the many refusals, which would otherwise cost
 * a Node start each. The flows an operator depends on are spawned as real processes.
 */
async function inProcess(args: string[], input?: string): Promise<Outcome> {
  let stdout = "";
  let stderr = "";
  const stdin = new PassThrough();
  stdin.end(input ?? "");
  const code = await main(args, { stdout: (l) => (stdout += `${l}\n`), stderr: (l) => (stderr += `${l}\n`), stdin, prompts: { write: () => true } });
  return { code, stdout, stderr };
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((r) => server.close(r));
  return port;
}

let dir: string;
let config: string;
let port: number;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), "parley-cli-"));
  port = await freePort();
  config = join(dir, "parley.toml");
  // HTTP on a free port too: another Parley on this machine may hold the default 5280.
  writeFileSync(config, `domains = ["localhost"]\ndata_dir = "data"\n[c2s]\nport = ${port}\ndirect_tls_port = ${await freePort()}\n[http]\nport = ${await freePort()}\ntls_port = ${await freePort()}\n[limits]\nauth_failure_delay_ms = 0\n[log]\nlevel = "warn"\n`);
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe("parley on the command line", () => {
  test("--help lists the commands; an unknown command or option is a usage error (exit 2)", async () => {
    const help = await parley(["--help"]);
    assert.equal(help.code, 0);
    for (const command of ["start", "adduser JID", "passwd JID", "deluser JID", "migrate", "check", "cert"]) assert.match(help.stdout, new RegExp(command));
    const unknown = await inProcess(["frobnicate"]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command "frobnicate"/);
    const misplaced = await inProcess(["check", "--force", "-c", config]);
    assert.equal(misplaced.code, 2);
    assert.match(misplaced.stderr, /--force does not apply to check/);
  });

  test("the bin script runs from any directory", async () => {
    const out = await collect(spawn(process.execPath, [join(ROOT, "server/cli/bin.mjs"), "--version"], { cwd: dir, stdio: "pipe" }));
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /^parley \d+\.\d+\.\d+/);
  });

  test("check names a misspelt key and fails; on a new install it asks for the migration", async () => {
    const bad = join(dir, "bad.toml");
    writeFileSync(bad, `domains = ["localhost"]\n[c2s]\nprot = 5222\n`);
    const misspelt = await parley(["check", "--config", bad]);
    assert.equal(misspelt.code, 1);
    assert.match(misspelt.stdout, /c2s\.prot: unknown key \(did you mean "port"\?\)/);
    const fresh = await inProcess(["check", "-c", config]);
    assert.equal(fresh.code, 1);
    assert.match(fresh.stdout, /parley migrate/);
  });

  test("migrate and cert make a new install pass check", async () => {
    const migrate = await parley(["migrate", "-c", config]);
    assert.equal(migrate.code, 0, migrate.stderr);
    assert.match(migrate.stdout, /applied/);
    assert.match((await inProcess(["migrate", "-c", config])).stdout, /up to date/);

    const cert = await parley(["cert", "-c", config]);
    assert.equal(cert.code, 0, cert.stderr);
    const certificate = /^certificate: (.+)$/m.exec(cert.stdout)?.[1];
    const key = /^key: +(.+)$/m.exec(cert.stdout)?.[1];
    assert.ok(certificate && existsSync(certificate), "the certificate path printed exists");
    assert.ok(key && existsSync(key), "the key path printed exists");

    const checked = await parley(["check", "-c", config]);
    assert.equal(checked.code, 0, checked.stdout);
    assert.match(checked.stdout, /no problems found/);
  });

  test("adduser reads the password from stdin, never from the arguments; duplicates and foreign domains are refused", async () => {
    const added = await parley(["adduser", "romeo@localhost", "-c", config], "wherefore art thou\n");
    assert.equal(added.code, 0, added.stderr);
    assert.match(added.stdout, /created romeo@localhost/);
    assert.equal((await inProcess(["adduser", "juliet@localhost", "-c", config], "balcony\r\nignored second line\n")).code, 0);

    const inArgs = await inProcess(["adduser", "mallory@localhost", "secret", "-c", config]);
    assert.equal(inArgs.code, 2);
    assert.match(inArgs.stderr, /never given as arguments/);
    assert.equal((await inProcess(["deluser", "mallory@localhost", "-c", config])).code, 1, "the password given as an argument made no account");

    const again = await inProcess(["adduser", "romeo@localhost", "-c", config], "other\n");
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already exists/);
    const foreign = await inProcess(["adduser", "romeo@example.org", "-c", config], "x\n");
    assert.equal(foreign.code, 1);
    assert.match(foreign.stderr, /example\.org is not a domain this server serves/);
    const empty = await inProcess(["adduser", "tybalt@localhost", "-c", config], "");
    assert.equal(empty.code, 1);
    assert.match(empty.stderr, /no password/);
  });

  describe("against a running server", () => {
    let server: ChildProcess;
    let exited: Promise<Outcome>;
    let ca: string;

    const running = { connect: () => XmppClient.connect({ host: "127.0.0.1", port, domain: "localhost", ca }) };

    before(async () => {
      ca = readFileSync(join(dir, "data", "certs", "localhost.crt"), "utf8");
      server = spawn(process.execPath, ["--import", "tsx", MAIN, "start", "--config", config], { cwd: ROOT, stdio: "pipe" });
      exited = collect(server);
      for (let attempt = 0; ; attempt++) {
        const up = await new Promise<boolean>((resolve) => {
          const s = net.connect({ host: "127.0.0.1", port }, () => {
            s.destroy();
            resolve(true);
          });
          s.on("error", () => resolve(false));
        });
        if (up) break;
        if (server.exitCode !== null) throw new Error(`the server exited with ${server.exitCode}: ${(await exited).stderr}`);
        if (attempt >= 100) throw new Error("the server did not listen within 10 s");
        await new Promise((r) => setTimeout(r, 100));
      }
    });
    after(() => {
      if (server.exitCode === null) server.kill("SIGKILL");
    });

    test("a user made by adduser logs in", async () => {
      assert.ok(await canLogIn(running, "romeo", "wherefore art thou"));
      assert.equal(await canLogIn(running, "romeo", "wrong"), false);
    });

    test("passwd changes the password", async () => {
      const out = await parley(["passwd", "romeo@localhost", "-c", config], "a rose by any other name\n");
      assert.equal(out.code, 0, out.stderr);
      assert.equal((await inProcess(["passwd", "nobody@localhost", "-c", config], "x\n")).code, 1);
      assert.ok(await canLogIn(running, "romeo", "a rose by any other name"));
      assert.equal(await canLogIn(running, "romeo", "wherefore art thou"), false);
    });

    test("deluser removes the account", async () => {
      const out = await parley(["deluser", "romeo@localhost", "-c", config]);
      assert.equal(out.code, 0, out.stderr);
      assert.equal(await canLogIn(running, "romeo", "a rose by any other name"), false);
      assert.equal((await inProcess(["deluser", "romeo@localhost", "-c", config])).code, 1, "deleting twice fails");
    });

    test("SIGTERM closes every stream with <system-shutdown/> and exits 0", async () => {
      const juliet = await running.connect();
      await juliet.login({ username: "juliet", password: "balcony" });
      server.kill("SIGTERM");
      assert.equal((await juliet.waitClosed(10_000))?.condition, "system-shutdown");
      const { code, stderr } = await exited;
      assert.equal(code, 0, stderr);
    });

    test("a second server on the same port fails with one clear line", async () => {
      const blocker = net.createServer();
      await new Promise<void>((r) => blocker.listen(port, "127.0.0.1", () => r()));
      try {
        const out = await parley(["start", "-c", config]);
        assert.equal(out.code, 1);
        assert.match(out.stderr, new RegExp(`^parley: cannot listen on 127\\.0\\.0\\.1:${port}: the address is already in use`, "m"));
        assert.doesNotMatch(out.stderr, /\n\s+at /, "no stack trace");
      } finally {
        blocker.close();
      }
    });
  });
});

describe("check, in process", () => {
  function configWith(extra: string): string {
    const d = mkdtempSync(join(tmpdir(), "parley-check-"));
    writeFileSync(join(d, "parley.toml"), `domains = ["localhost"]\n[database]\nurl = ":memory:"\n${extra}`);
    return d;
  }

  test("a certificate for other names, or expired, is reported with its path", async () => {
    const d = configWith(`[tls]\ncertificate = "other.crt"\nkey = "other.key"\n`);
    const other = generateSelfSigned(["example.org"]);
    writeFileSync(join(d, "other.crt"), other.certPem);
    writeFileSync(join(d, "other.key"), other.keyPem);
    let report = await checkConfiguration(join(d, "parley.toml"), builtinModules);
    assert.ok(report.problems.some((p) => /other\.crt does not cover localhost/.test(p)), report.problems.join("\n"));

    const expired = generateSelfSigned(["localhost"], { notBefore: new Date(Date.now() - 3 * 86_400_000), days: 1 });
    writeFileSync(join(d, "other.crt"), expired.certPem);
    writeFileSync(join(d, "other.key"), expired.keyPem);
    report = await checkConfiguration(join(d, "parley.toml"), builtinModules);
    assert.ok(report.problems.some((p) => /other\.crt expired on/.test(p)), report.problems.join("\n"));

    writeFileSync(join(d, "other.key"), other.keyPem);
    report = await checkConfiguration(join(d, "parley.toml"), builtinModules);
    assert.ok(report.problems.some((p) => /other\.key does not belong to the certificate/.test(p)), report.problems.join("\n"));
    rmSync(d, { recursive: true, force: true });
  });

  test("a missing certificate file and an unknown module are problems", async () => {
    const d = configWith(`[tls]\ncertificate = "missing.crt"\nkey = "missing.key"\n[modules]\ndisabled = ["no-such-module"]\n`);
    const report = await checkConfiguration(join(d, "parley.toml"), builtinModules);
    assert.ok(report.problems.some((p) => /tls\.certificate: cannot read .*missing\.crt \(ENOENT\)/.test(p)), report.problems.join("\n"));
    assert.ok(report.problems.some((p) => /no module named "no-such-module"/.test(p)), report.problems.join("\n"));
    rmSync(d, { recursive: true, force: true });
  });
});

describe("password prompt on a terminal", () => {
  /** A stand-in for a TTY stdin: records raw mode, delivers keystrokes. */
  function terminal() {
    const input = Object.assign(new PassThrough(), { isTTY: true, rawModes: [] as boolean[] });
    Object.assign(input, { setRawMode: (mode: boolean) => input.rawModes.push(mode) });
    let shown = "";
    const output = { write: (text: string) => (shown += text) };
    return { input, output, shown: () => shown };
  }

  test("reads without echo, honours backspace, asks twice and leaves raw mode", async () => {
    const { input, output, shown } = terminal();
    const answer = readPassword({ input, output, prompt: "Password: ", confirm: true });
    input.write("sec");
    input.write("x\u007fret\r");
    await new Promise((r) => setImmediate(r));
    input.write("secret\n");
    assert.equal(await answer, "secret");
    assert.doesNotMatch(shown(), /sec/, "nothing typed is echoed");
    assert.match(shown(), /Password: .*\n.*Repeat/s);
    assert.deepEqual(input.rawModes, [true, false, true, false]);
  });

  test("two different entries, or Ctrl-C, fail without a password", async () => {
    let t = terminal();
    let answer = readPassword({ input: t.input, output: t.output, prompt: "P: ", confirm: true });
    t.input.write("one\r");
    await new Promise((r) => setImmediate(r));
    t.input.write("two\r");
    await assert.rejects(answer, (e: unknown) => e instanceof CliError && /do not match/.test(e.message));

    t = terminal();
    answer = readPassword({ input: t.input, output: t.output, prompt: "P: ", confirm: false });
    t.input.write("abc\u0003");
    await assert.rejects(answer, (e: unknown) => e instanceof CliError && e.exitCode === 130);
    assert.deepEqual(t.input.rawModes, [true, false]);
  });
});
