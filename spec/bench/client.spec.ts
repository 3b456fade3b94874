// The load generator against Parley itself: its SCRAM-SHA-1 client (RFC 5802) against Parley's
// server mechanism, and its hand-negotiated streams (RFC 6120 STARTTLS, XEP-0368 Direct TLS,
// SASL, binding), chat steps and the muc scenario (XEP-0045 joins, an instant room, groupchat
// steps) against a real server on 127.0.0.1.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServerMechanism, deriveScramCredentials, type ScramCredentials } from "../../protocol/sasl/index.ts";
import { clearKeyCache, exportKeyCache, importKeyCache, pbkdf2Count, scramSha1 } from "../../bench/load/scram.ts";
import { BenchClient, LoginError, assertLoopback } from "../../bench/load/client.ts";
import { ChatRun } from "../../bench/scenarios/chat.ts";
import { loginBatch, closeAll } from "../../bench/scenarios/login.ts";
import { MucRoom } from "../../bench/scenarios/muc.ts";
import { benchAccounts } from "../../bench/scenarios/common.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

async function serverAccepts(password: string, stored: string | ScramCredentials): Promise<boolean> {
  const credentials = typeof stored === "string" ? deriveScramCredentials(stored, "SHA-1", { iterations: 4096 }) : stored;
  const server = createServerMechanism("SCRAM-SHA-1", {
    channelBinding: {},
    offeredPlus: false,
    getScramCredentials: async () => credentials,
    verifyPlain: async () => false,
  })!;
  const client = scramSha1("juliet", password);
  const challenge = await server.step(Buffer.from(client.initialResponse, "base64"));
  assert.equal(challenge.kind, "challenge");
  if (challenge.kind !== "challenge") return false;
  const final = await server.step(Buffer.from(client.respond(challenge.data.toString("base64")), "base64"));
  if (final.kind !== "success") return false;
  assert.ok(client.verify(final.data!.toString("base64")), "the server proved it knows the credentials");
  return true;
}

describe("SCRAM-SHA-1 client of the load generator", () => {
  test("logs in against Parley's server mechanism, and not with a wrong password", async () => {
    assert.equal(await serverAccepts("secret", "secret"), true);
    assert.equal(await serverAccepts("wrong", "secret"), false);
  });

  test("runs PBKDF2 once per password and salt, not once per login", async () => {
    const shared = deriveScramCredentials("same", "SHA-1", { iterations: 4096 });
    const before = pbkdf2Count();
    for (let i = 0; i < 3; i++) assert.equal(await serverAccepts("same", shared), true);
    assert.equal(pbkdf2Count() - before, 1);
    // Another salt is another computation.
    assert.equal(await serverAccepts("same", "same"), true);
    assert.equal(pbkdf2Count() - before, 2);
  });

  test("a cache written by one generator saves the next one its PBKDF2", async () => {
    const shared = deriveScramCredentials("carried", "SHA-1", { iterations: 4096 });
    assert.equal(await serverAccepts("carried", shared), true);
    const saved = JSON.parse(JSON.stringify(exportKeyCache()));
    clearKeyCache();
    assert.ok(importKeyCache(saved) >= 1);
    assert.equal(importKeyCache({ broken: ["a"] }), 0);
    const before = pbkdf2Count();
    assert.equal(await serverAccepts("carried", shared), true);
    assert.equal(pbkdf2Count(), before);
  });

  test("refuses a server signature that does not match", () => {
    const client = scramSha1("juliet", "secret");
    assert.equal(client.verify(Buffer.from("v=AAAA").toString("base64")), false);
  });
});

describe("load generator against Parley", () => {
  let t: TestServer;
  const users = ["bench0", "bench1", "bench2", "bench3"];
  before(async () => {
    t = await startTestServer({ users });
  });
  after(async () => t?.stop());

  const address = () => ({ host: t.host, port: t.port, directTlsPort: t.directTlsPort, domain: t.domain });
  const accounts = () => benchAccounts("bench", users.length, "").map((a) => ({ ...a, password: `pass-${a.username}` }));

  test("logs in with STARTTLS and with Direct TLS, bound to the resource asked for", async () => {
    for (const mode of ["starttls", "direct-tls"] as const) {
      const client = new BenchClient(address(), { username: "bench0", password: "pass-bench0", resource: `r-${mode}` });
      const ms = await client.login(mode, 10_000);
      assert.ok(ms >= 0);
      assert.equal(client.jid, `bench0@localhost/r-${mode}`);
      await client.close();
    }
  });

  test("reports a wrong password as a SASL failure", async () => {
    const client = new BenchClient(address(), { username: "bench1", password: "nope", resource: "r" });
    await assert.rejects(client.login("starttls", 10_000), (err: unknown) => err instanceof LoginError && err.reason === "sasl-failure");
  });

  test("a batch of logins, then a chat step in which every message arrives once", async () => {
    const { result, clients } = await loginBatch({ address: address(), accounts: accounts(), mode: "starttls", resource: "chat", concurrency: 2, timeoutMs: 10_000, budgetMs: 30_000 });
    assert.equal(result.succeeded, users.length);
    assert.deepEqual(result.failures, {});
    try {
      const run = new ChatRun({ clients, domain: t.domain, noStore: true, durationMs: 500, drainMs: 5000, p99LimitMs: 10_000, lossLimitPct: 0.1 });
      assert.equal(run.pairs, 2);
      const step = await run.runStep(100);
      assert.equal(step.sent, 50);
      assert.equal(step.received, 50);
      assert.equal(step.lost, 0);
      assert.equal(step.duplicates, 0);
      assert.equal(step.errors, 0);
      assert.equal(step.latencyMs.count, 50);
      assert.ok(step.passed, step.note);
      // A second step does not count the first one's messages.
      const second = await run.runStep(200);
      assert.equal(second.received, second.sent);
      assert.equal(second.step, step.step + 1);
    } finally {
      await closeAll(clients);
    }
  });

  test("a muc room: every occupant joins, then each message reaches every occupant once", async () => {
    const { clients } = await loginBatch({ address: address(), accounts: accounts(), mode: "starttls", resource: "muc", concurrency: 2, timeoutMs: 10_000, budgetMs: 30_000 });
    assert.equal(clients.length, users.length);
    const room = new MucRoom({ room: `bench@conference.${t.domain}`, durationMs: 500, drainMs: 5000, p99LimitMs: 10_000, lossLimitPct: 0.1, joinTimeoutMs: 10_000 });
    try {
      const first = await room.join(clients, 2, 2, 30_000);
      assert.equal(first.created, true, "the first joiner made the room and configured it as an instant room");
      assert.equal(first.joined, 2);
      assert.deepEqual(first.failures, {});
      assert.equal(first.joinMs.count, 2);
      // A bigger room: the same room, two more occupants.
      const second = await room.join(clients, 4, 2, 30_000);
      assert.equal(second.created, false);
      assert.equal(second.attempted, 2);
      assert.equal(second.joined, 4);
      assert.equal(second.missingPresence, 0, "every occupant was told of every other (§7.2.3)");

      const step = await room.runStep(400); // 100 messages/s to 4 occupants for 0.5 s
      assert.equal(step.occupants, 4);
      assert.equal(step.messagesPerSecond, 100);
      assert.equal(step.sent, 50);
      assert.equal(step.expected, 200);
      assert.equal(step.delivered, 200, "every occupant, the sender included, got every message");
      assert.equal(step.lost, 0);
      assert.equal(step.duplicates, 0);
      assert.equal(step.errors, 0);
      assert.equal(step.latencyMs.count, 200);
      assert.ok(step.latencyMs.p50 >= 0 && step.latencyMs.max >= step.latencyMs.p99);
      assert.ok(step.deliveredPerSecond > 0);
      assert.ok(step.passed, step.note);

      // Find-max counts each step on its own and names the highest that passed.
      const found = await room.findMax([200, 400], () => undefined, 0, 0);
      assert.equal(found.steps.length, 2);
      assert.deepEqual(found.steps.map((s) => s.delivered), found.steps.map((s) => s.expected));
      assert.equal(found.maxPassingRate, 400);
      assert.equal(found.steps[1].step, found.steps[0].step + 1);
    } finally {
      await room.leave();
      await closeAll(clients);
    }
  });

  test("a join the room refuses is reported, not waited for", async () => {
    const { clients } = await loginBatch({ address: address(), accounts: accounts().slice(0, 2), mode: "starttls", resource: "refused", concurrency: 2, timeoutMs: 10_000, budgetMs: 30_000 });
    const told: string[] = [];
    const options = { room: `refused@conference.${t.domain}`, durationMs: 500, drainMs: 1000, p99LimitMs: 1000, lossLimitPct: 0.1, joinTimeoutMs: 10_000, log: (line: string) => told.push(line) };
    const owner = new MucRoom(options);
    // A second harness on the same room hands out the same nick (n1): the room says conflict.
    const intruder = new MucRoom(options);
    try {
      assert.equal((await owner.join(clients, 1, 1, 10_000)).joined, 1);
      const refused = await intruder.join(clients.slice(1), 1, 1, 10_000);
      assert.equal(refused.joined, 0);
      assert.deepEqual(refused.failures, { conflict: 1 });
      assert.equal(told.length, 1);
      await assert.rejects(intruder.runStep(100), /nobody is in the room/);
    } finally {
      await owner.leave();
      await closeAll(clients);
    }
  });

  test("refuses to connect anywhere but loopback", () => {
    assert.throws(() => assertLoopback("10.0.0.1"));
    assert.throws(() => assertLoopback("localhost"));
    assert.doesNotThrow(() => assertLoopback("127.0.0.12"));
  });
});
