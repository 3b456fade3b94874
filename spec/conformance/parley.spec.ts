// The conformance runner (conformance/) against a freshly started Parley with its built-in
// module list: every scenario whose requirements Parley meets (disco, stream features or a
// probe) must pass at the MUST level; scenarios for modules Parley does not load are skipped.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startTestServer, type TestServer } from "../support/server.ts";
import { ConformanceRunner, isPeerRole, type ScenarioResult } from "../../conformance/runner.ts";
import { loadScenarios } from "../../conformance/scenario/load.ts";
import { formatFailures, mustFailures } from "../../conformance/report.ts";
import { TestRoutes, startFederated } from "../server/transports/s2s-support.ts";

let t: TestServer;
let results: ScenarioResult[] = [];

before(async () => {
  t = await startTestServer({ users: ["alice", "bob", "carol"] });
  const scenarios = loadScenarios();
  const runner = new ConformanceRunner(
    {
      host: t.host,
      port: t.port,
      directTlsPort: t.directTlsPort,
      domain: t.domain,
      ca: t.ca,
      accounts: ["alice", "bob", "carol"].map((u) => ({ username: u, password: `pass-${u}` })),
      timeout: 3000,
      websocketUrl: `ws://127.0.0.1:${t.httpPort}/xmpp-websocket`,
      boshUrl: `http://127.0.0.1:${t.httpPort}/http-bind`,
    },
    scenarios,
  );
  try {
    results = await runner.run(scenarios.filter((s) => s.provides.length === 0));
  } finally {
    runner.destroy();
  }
});

after(async () => {
  await t.stop();
});

describe("Parley against the conformance scenarios", () => {
  test("every MUST scenario that Parley's features allow passes", () => {
    const failed = mustFailures(results);
    assert.equal(failed.length, 0, `MUST scenarios failed:\n${formatFailures(failed)}`);
  });

  test("the WebSocket (RFC 7395) and BOSH (XEP-0124/0206) scenarios ran and passed", () => {
    for (const prefix of ["rfc7395/", "xep-0206/"]) {
      const mine = results.filter((r) => r.scenario.id.startsWith(prefix));
      assert.ok(mine.length >= 5, `${mine.length} ${prefix} scenarios`);
      const notPassed = mine.filter((r) => r.outcome !== "pass");
      assert.deepEqual(notPassed.map((r) => `${r.scenario.id}: ${r.outcome} ${r.reason ?? ""}`), []);
    }
  });

  test("the scenarios for the core (RFC 6120) ran rather than being skipped", () => {
    const core = results.filter((r) => r.scenario.spec === "RFC 6120");
    assert.ok(core.length >= 10, `${core.length} RFC 6120 scenarios`);
    assert.ok(core.filter((r) => r.outcome === "pass").length >= core.length / 2, "most RFC 6120 scenarios ran and passed");
  });
});

describe("Parley with a second Parley: the scenarios across servers (--peer-*)", () => {
  const routes = new TestRoutes();
  let x: TestServer;
  let y: TestServer;
  let across: ScenarioResult[] = [];
  before(async () => {
    x = await startFederated(routes, { domain: "x.localhost", address: "127.0.0.75", users: ["alice", "bob", "carol"] });
    y = await startFederated(routes, { domain: "y.localhost", address: "127.0.0.76", users: ["juliet", "nurse"] });
    const scenarios = loadScenarios();
    const runner = new ConformanceRunner(
      {
        host: x.host,
        port: x.port,
        domain: x.domain,
        ca: x.ca,
        accounts: ["alice", "bob", "carol"].map((u) => ({ username: u, password: `pass-${u}` })),
        timeout: 5000,
        peer: { host: y.host, port: y.port, domain: y.domain, ca: y.ca, accounts: ["juliet", "nurse"].map((u) => ({ username: u, password: `pass-${u}` })) },
      },
      scenarios,
    );
    try {
      // Every scenario with an account on the peer: subscriptions and presence (rfc6121-s2s/),
      // PEP across servers (xep-0163/s2s-*).
      across = await runner.run(scenarios.filter((s) => s.provides.length === 0 && s.accounts.some(isPeerRole)));
    } finally {
      runner.destroy();
    }
  });
  after(async () => {
    await x?.stop();
    await y?.stop();
  });

  test("without a peer those scenarios are skipped, not failed", () => {
    const alone = results.filter((r) => r.scenario.id.startsWith("rfc6121-s2s/"));
    assert.ok(alone.length >= 5);
    for (const r of alone) assert.match(`${r.outcome} ${r.reason}`, /^skip needs a peer server/);
  });

  test("every scenario across servers ran and passed", () => {
    assert.ok(across.filter((r) => r.scenario.id.startsWith("rfc6121-s2s/")).length >= 5, "the rfc6121-s2s scenarios ran");
    assert.ok(across.filter((r) => r.scenario.id.startsWith("xep-0163/s2s-")).length >= 3, "the PEP scenarios across servers ran");
    assert.deepEqual(across.filter((r) => r.outcome !== "pass").map((r) => `${r.scenario.id}: ${r.outcome} ${r.reason ?? ""}`), [], formatFailures(across.filter((r) => r.outcome === "fail")));
  });
});
