// The conformance runner (conformance/) against a freshly started Parley with its built-in
// module list: every scenario whose requirements Parley meets (disco, stream features or a
// probe) must pass at the MUST level; scenarios for modules Parley does not load are skipped.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startTestServer, type TestServer } from "../support/server.ts";
import { ConformanceRunner, type ScenarioResult } from "../../conformance/runner.ts";
import { loadScenarios } from "../../conformance/scenario/load.ts";
import { formatFailures, mustFailures } from "../../conformance/report.ts";

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

  test("the scenarios for the core (RFC 6120) ran rather than being skipped", () => {
    const core = results.filter((r) => r.scenario.spec === "RFC 6120");
    assert.ok(core.length >= 10, `${core.length} RFC 6120 scenarios`);
    assert.ok(core.filter((r) => r.outcome === "pass").length >= core.length / 2, "most RFC 6120 scenarios ran and passed");
  });
});
