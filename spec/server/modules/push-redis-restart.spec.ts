// Push delivery jobs on BullMQ survive a real restart of Redis. The spec runs its own
// redis-server (never the shared one at 6379) on a free loopback port with a temporary data
// directory, configured as an operator must for durable jobs (README, "Push"):
// `--appendonly yes --appendfsync always`, so every write Redis acknowledged is on disk before
// the acknowledgement. Jobs are queued through the whole path (a message to an absent user, the
// XEP-0357 publish, the app server's queue) while the fake APNs is down or slow; Redis is then
// killed with SIGKILL and started again on the same directory and port, Parley's connections
// (ioredis) reconnect, and every job is delivered exactly once.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { xml } from "../../../protocol/xml/element.ts";
import { parseJid } from "../../../protocol/jid.ts";
import { buildEnable, publishOptionsForm } from "../../../protocol/push.ts";
import { startTestServer, type TestServer } from "../../support/server.ts";
import { accountsOn } from "../../support/accounts.ts";
import { startFakePushServices, type FakeApns, type FakeFcm, type FakeWebPush, appServerToml } from "../../support/fake-push.ts";
import roster from "../../../server/modules/roster/index.ts";
import presence from "../../../server/modules/presence/index.ts";
import message from "../../../server/modules/message/index.ts";
import offline from "../../../server/modules/offline/index.ts";
import push from "../../../server/modules/push/index.ts";
import pushAppserver, { APPSERVER_NS, appServers } from "../../../server/modules/push-appserver/index.ts";

const APP = "push.localhost";
/** Debian's /usr/bin/redis-server, or the first on PATH. */
const REDIS_SERVER = ["/usr/bin", ...(process.env.PATH ?? "").split(":").filter((d) => d !== "")].map((d) => join(d, "redis-server")).find((p) => existsSync(p));
/** Ports this spec may use for its own Redis. */
const PORTS = Array.from({ length: 11 }, (_, i) => 16379 + i);

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once("error", () => resolve(false));
    probe.listen(port, "127.0.0.1", () => probe.close(() => resolve(true)));
  });
}

/** PING over a plain socket: true once Redis answers +PONG (not -LOADING while it reads its AOF). */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    let text = "";
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.on("error", () => done(false));
    socket.on("connect", () => socket.write("PING\r\n"));
    socket.on("data", (d: Buffer) => {
      text += d.toString("latin1");
      if (text.includes("\r\n")) done(text.startsWith("+PONG"));
    });
  });
}

async function until(check: () => boolean | Promise<boolean>, what: string, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.fail(`${what}: not in ${ms} ms`);
}

/** One redis-server process of this spec's, restartable on the same port and directory. */
class OwnRedis {
  private proc: ChildProcess | null = null;
  private constructor(
    readonly port: number,
    readonly dir: string,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(binary: string): Promise<OwnRedis> {
    let port = 0;
    for (const p of PORTS) {
      if (await portIsFree(p)) {
        port = p;
        break;
      }
    }
    assert.ok(port > 0, `no free port in ${PORTS[0]}-${PORTS[PORTS.length - 1]} for the spec's Redis`);
    const redis = new OwnRedis(port, mkdtempSync(join(tmpdir(), "parley-redis-")));
    await redis.run(binary);
    return redis;
  }

  async run(binary: string): Promise<void> {
    // The operator's durable configuration (README): an append-only file fsynced on every write.
    const args = ["--port", String(this.port), "--bind", "127.0.0.1", "--dir", this.dir, "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no", "--logfile", join(this.dir, "redis.log")];
    const proc = spawn(binary, args, { stdio: "ignore" });
    this.proc = proc;
    // Never left behind, even when the spec process dies half-way.
    const reap = () => proc.kill("SIGKILL");
    process.once("exit", reap);
    proc.once("exit", () => process.removeListener("exit", reap));
    await until(async () => proc.exitCode === null && (await ping(this.port)), `redis-server on ${this.port} answering`);
  }

  /** SIGKILL: no shutdown, no final write; only what was fsynced survives. */
  async kill(): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null) return;
    const gone = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
    proc.kill("SIGKILL");
    await gone;
    this.proc = null;
  }

  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }

  log(): string {
    try {
      return readFileSync(join(this.dir, "redis.log"), "utf8");
    } catch {
      return "";
    }
  }
}

const skip = REDIS_SERVER ? false : "redis-server is not installed (Debian package redis-server): this spec needs a Redis process of its own to kill and restart";

describe("BullMQ push jobs across a real Redis restart (kill -9, appendonly, appendfsync always)", { skip }, () => {
  let redis: OwnRedis;
  let apns: FakeApns;
  let fcm: FakeFcm;
  let web: FakeWebPush;
  let dir: string;
  let t: TestServer;
  const accounts = accountsOn(() => t);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "parley-push-restart-"));
    redis = await OwnRedis.start(REDIS_SERVER!);
    ({ apns, fcm, web } = await startFakePushServices());
    t = await startTestServer({
      modules: [roster, presence, message, offline, push, pushAppserver],
      toml: `[redis]\nurl = "${redis.url}"\n[modules.push]\ncoalesce_ms = 200\n${appServerToml(dir, { apns, fcm, web }, { max_attempts: 30, backoff_ms: 100, job_lock_ms: 4000, redis_prefix: `restart-${randomBytes(4).toString("hex")}` })}`,
    });
  });
  after(async () => {
    await t?.stop();
    await Promise.all([apns?.stop(), fcm?.stop(), web?.stop()]);
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** A user whose phone registered an APNs token with the app server, enabled push, and left. */
  async function absentPhone(token: string): Promise<string> {
    const user = await accounts.account("romeo");
    const phone = await t.login(user, { resource: "phone" });
    const answer = await phone.iq(xml("iq", { type: "set", to: APP }, xml("register", { xmlns: APPSERVER_NS, type: "apns", token })));
    const { node, secret } = answer.getChild("registered", APPSERVER_NS)!.attrs;
    const enabled = await phone.iq(xml("iq", { type: "set" }, buildEnable({ jid: parseJid(APP), node: node!, publishOptions: publishOptionsForm({ secret: secret! }) })));
    assert.equal(enabled.attrs.type, "result");
    const jid = parseJid(phone.jid!);
    await phone.close();
    await until(() => !t.server.sessions.get(jid), "the phone's session gone");
    return user;
  }

  const delivered = (token: string) => apns.requests.filter((r) => r.token === token).length;
  const queue = () => appServers.get(APP)!.queue;

  test("jobs queued while APNs is down, and one published while Redis is down, are each delivered once after Redis is killed and restarted", async () => {
    const tokens = Array.from({ length: 6 }, () => randomBytes(32).toString("hex"));
    for (const token of tokens) apns.failing.add(token);
    const users: string[] = [];
    for (const token of tokens) users.push(await absentPhone(token));
    const juliet = await t.login(await accounts.account("juliet"));
    users.forEach((user, i) => juliet.send(xml("message", { to: accounts.bare(user), type: "chat" }, xml("body", {}, `before the crash ${i}`))));

    // Every job is in Redis (acknowledged) and has been tried against the dead service at least once.
    await until(async () => (await queue().pending()) === tokens.length, "six jobs queued");
    await until(() => tokens.every((tk) => apns.failures.includes(tk)), "each job tried once against the failing APNs");

    await redis.kill();
    // A message while Redis is gone: its publish waits for Redis (ioredis queues the command
    // until it is connected again) instead of being lost or refused.
    const lateToken = randomBytes(32).toString("hex");
    const lateUser = await absentPhone(lateToken);
    juliet.send(xml("message", { to: accounts.bare(lateUser), type: "chat" }, xml("body", {}, "during the outage")));
    await new Promise((r) => setTimeout(r, 700));
    assert.equal(delivered(lateToken), 0);

    await redis.run(REDIS_SERVER!);
    for (const token of tokens) apns.failing.delete(token);

    const all = [...tokens, lateToken];
    await until(() => all.every((tk) => delivered(tk) >= 1), "every job delivered after the restart", 30_000);
    // Long enough for any duplicate (a job run twice) to show.
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual(all.map(delivered), all.map(() => 1), "each job delivered exactly once");
    assert.equal(await queue().pending(), 0);
    assert.deepEqual(await queue().deadLetters(), []);
    assert.deepEqual(apns.refusals, []);
    assert.match(redis.log(), /DB loaded from append only file/, "the restarted Redis read its append-only file");
    await juliet.close();
  });

  test("deliveries in flight to a slow APNs when Redis dies, and jobs still waiting, are each delivered once", async () => {
    apns.delayMs = 1200;
    try {
      // More jobs than the worker runs at once (4): some are in flight, the others wait in Redis.
      const tokens = Array.from({ length: 8 }, () => randomBytes(32).toString("hex"));
      const users: string[] = [];
      for (const token of tokens) users.push(await absentPhone(token));
      const juliet = await t.login(await accounts.account("juliet"));
      users.forEach((user, i) => juliet.send(xml("message", { to: accounts.bare(user), type: "chat" }, xml("body", {}, `slow ${i}`))));
      await until(async () => apns.inFlight > 0 && (await queue().pending()) === tokens.length, "jobs queued, some in flight");

      await redis.kill();
      await new Promise((r) => setTimeout(r, 400));
      await redis.run(REDIS_SERVER!);
      // A job the worker was claiming at the kill (the claim written, the answer lost) waits
      // for its claim to run out (job_lock_ms = 4000, then the next stalled-job check): late,
      // but neither lost nor run twice.

      await until(() => tokens.every((tk) => delivered(tk) >= 1), "every job delivered after the restart", 30_000);
      await new Promise((r) => setTimeout(r, 2500));
      assert.deepEqual(tokens.map(delivered), tokens.map(() => 1), "each job delivered exactly once");
      assert.equal(await queue().pending(), 0);
      assert.deepEqual(await queue().deadLetters(), []);
      await juliet.close();
    } finally {
      apns.delayMs = 0;
    }
  });
});
