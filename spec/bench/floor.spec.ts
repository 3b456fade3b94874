// The login floor (bench/floor.ts): the generator's own clients log in to it over STARTTLS and
// Direct TLS, with SCRAM-SHA-1 checked both ways, and a wrong password is refused, so the floor
// the analysis quotes is a real login exchange and not a shortcut the generator would reject.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startFloor, type FloorServer } from "../../bench/floor.ts";
import { freePort } from "../../bench/harness.ts";
import { closeAll, loginBatch } from "../../bench/scenarios/login.ts";
import { benchAccounts } from "../../bench/scenarios/common.ts";
import type { ServerAddress } from "../../bench/load/client.ts";

describe("login floor", () => {
  let floor: FloorServer;
  let address: ServerAddress;
  before(async () => {
    const host = "127.0.0.1";
    address = { host, port: await freePort(host), directTlsPort: await freePort(host), domain: "floor.test" };
    floor = await startFloor({ host, port: address.port, tlsPort: address.directTlsPort, domain: address.domain, password: "floor-pass" });
  });
  after(() => floor.close());

  for (const mode of ["starttls", "direct-tls"] as const) {
    test(`the generator logs in over ${mode}, binds and gets its presence back`, async () => {
      const accounts = benchAccounts("floor", 6, "floor-pass");
      const { result, clients } = await loginBatch({ address, accounts, mode, resource: "r", concurrency: 3, timeoutMs: 10_000, budgetMs: 30_000 });
      try {
        assert.deepEqual(result.failures, {});
        assert.equal(result.succeeded, 6);
        assert.deepEqual(clients.map((c) => c.jid).sort(), accounts.map((a) => `${a.username}@floor.test/r`).sort());
      } finally {
        await closeAll(clients);
      }
    });
  }

  test("a wrong password fails SCRAM", async () => {
    const { result, clients } = await loginBatch({ address, accounts: benchAccounts("floor", 1, "wrong"), mode: "starttls", resource: "r", concurrency: 1, timeoutMs: 10_000, budgetMs: 30_000 });
    await closeAll(clients);
    assert.equal(result.succeeded, 0);
    assert.deepEqual(Object.keys(result.failures), ["sasl-failure"]);
  });
});
