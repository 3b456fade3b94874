// Issue 6's crash test: while messages flow to an offline user, the server is killed with
// SIGKILL and started again on the same storage. Every message the sender got an XEP-0198 <a/>
// for must be in the recipient's offline storage, exactly once. Runs on SQLite and PostgreSQL.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import net from "node:net";
import pg from "pg";
import { xml, type Element } from "../../protocol/xml/element.ts";
import { NS } from "../../protocol/ns.ts";
import { XmppClient } from "../../conformance/client/client.ts";
import { POSTGRES_TEST_URL, uniqueName } from "./core/storage/both.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const MAIN = join(ROOT, "server/cli/main.ts");

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((r) => server.close(r));
  return port;
}

async function run(args: string[], input = ""): Promise<number | null> {
  const child = spawn(process.execPath, ["--import", "tsx", MAIN, ...args], { cwd: ROOT, stdio: "pipe" });
  child.stdin.end(input);
  child.stdout.resume();
  child.stderr.resume();
  return new Promise((r) => child.on("close", r));
}

/** Starts `parley start` and resolves once it listens. */
async function startServer(config: string, port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", MAIN, "start", "--config", config], { cwd: ROOT, stdio: "pipe" });
  child.stdout!.resume();
  child.stderr!.resume();
  for (let i = 0; i < 200; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: "127.0.0.1", port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on("error", () => resolve(false));
    });
    if (up) return child;
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill("SIGKILL");
  throw new Error("the server did not start");
}

const isSm = (name: string) => (el: Element) => el.getNS() === NS.sm && el.getName() === name;

async function crashScenario(database: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "parley-crash-"));
  const port = await freePort();
  const config = join(dir, "parley.toml");
  writeFileSync(
    config,
    [
      `domains = ["localhost"]`,
      `data_dir = "${dir}"`,
      `[c2s]`,
      `port = ${port}`,
      `direct_tls_port = 0`,
      `[http]`,
      `enabled = false`,
      `[database]`,
      `url = "${database}"`,
      `[log]`,
      `level = "silent"`,
      `[limits]`,
      `stanzas_per_second = 10000`,
      `stanza_burst = 10000`,
      `c2s_rate_bytes_per_second = 10000000`,
      `c2s_burst_bytes = 10000000`,
      "",
    ].join("\n"),
  );
  let server: ChildProcess | null = null;
  try {
    assert.equal(await run(["adduser", "romeo@localhost", "-c", config], "pass-romeo\n"), 0);
    assert.equal(await run(["adduser", "juliet@localhost", "-c", config], "pass-juliet\n"), 0);
    server = await startServer(config, port);
    const ca = readFileSync(join(dir, "certs", "localhost.crt"), "utf8");

    const romeo = await XmppClient.connect({ host: "127.0.0.1", port, domain: "localhost", ca, timeout: 10_000 });
    await romeo.login({ username: "romeo", password: "pass-romeo", resource: "sender" });
    romeo.send(xml("enable", { xmlns: NS.sm }));
    await romeo.next(isSm("enabled"));
    // Count every <a h/> the server sends; the highest is what it promised to keep.
    let acked = 0;
    romeo.socket.on("data", (d: Buffer) => {
      for (const m of d.toString().matchAll(/<a [^>]*h=["'](\d+)["']/g)) acked = Math.max(acked, Number(m[1]));
    });
    const total = 400;
    for (let i = 1; i <= total; i++) {
      romeo.send(xml("message", { to: "juliet@localhost", type: "chat", id: `m${i}` }, xml("body", {}, `msg ${i}`)));
      if (i % 10 === 0) romeo.write("<r xmlns='urn:xmpp:sm:3'/>");
      if (i === total / 2) {
        // Halfway, once some acks are in, the server dies without a chance to flush anything.
        for (let w = 0; w < 200 && acked < total / 4; w++) await new Promise((r) => setTimeout(r, 5));
        server.kill("SIGKILL");
        break;
      }
      if (i % 25 === 0) await new Promise((r) => setImmediate(r));
    }
    await new Promise<void>((r) => server!.once("exit", () => r()));
    romeo.destroy();
    assert.ok(acked > 0, "the sender was acknowledged some messages before the crash");
    if (process.env.PARLEY_SPEC_LOG) console.log(`acknowledged ${acked} of ${total / 2} sent before SIGKILL`);

    server = await startServer(config, port);
    const juliet = await XmppClient.connect({ host: "127.0.0.1", port, domain: "localhost", ca, timeout: 10_000 });
    await juliet.login({ username: "juliet", password: "pass-juliet", resource: "phone" });
    juliet.send(xml("presence", {}));
    const bodies: string[] = [];
    for (;;) {
      try {
        const m = await juliet.next((el) => el.name === "message" && el.getChildText("body") !== null, 1500);
        bodies.push(m.getChildText("body")!);
      } catch {
        break;
      }
    }
    const counts = new Map<string, number>();
    for (const b of bodies) counts.set(b, (counts.get(b) ?? 0) + 1);
    for (let i = 1; i <= acked; i++) assert.equal(counts.get(`msg ${i}`), 1, `acknowledged message ${i} is stored exactly once`);
    for (const [body, n] of counts) assert.equal(n, 1, `${body} delivered once`);
    // In order, too (XEP-0160): what came is a prefix-ordered sequence.
    const numbers = bodies.map((b) => Number(b.slice(4)));
    assert.deepEqual(numbers, [...numbers].sort((a, b) => a - b));
    await juliet.close();
  } finally {
    server?.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("SIGKILL while messages flow: nothing acknowledged is lost, nothing is doubled", () => {
  test("on SQLite", async () => {
    await crashScenario("parley.sqlite");
  });

  test("on PostgreSQL", async () => {
    const name = uniqueName("parley_crash").replace(/-/g, "_");
    const admin = new pg.Client({ connectionString: POSTGRES_TEST_URL });
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE ${name}`);
      const url = new URL(POSTGRES_TEST_URL);
      url.pathname = `/${name}`;
      await crashScenario(url.toString());
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {});
      await admin.end();
    }
  });
});
