// Reports of the conformance runner: XEP-0479 verdicts (conformance/compliance.ts), the tables,
// JUnit XML and the side-by-side RESULTS.md (conformance/report.ts, reference/results.ts).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { parseScenario } from "../../conformance/scenario/format.ts";
import type { Discovery, Outcome, ScenarioResult } from "../../conformance/runner.ts";
import { complianceVerdicts, judgeSpec } from "../../conformance/compliance.ts";
import { formatSpecTable, jsonReport, junitXml, mustFailures, summarizeBySpec } from "../../conformance/report.ts";
import { resultsMarkdown } from "../../conformance/reference/results.ts";
import { parseXml } from "../../conformance/scenario/format.ts";

function result(id: string, spec: string, level: string, outcome: Outcome, reason?: string): ScenarioResult {
  const scenario = parseScenario(`spec: ${spec} §1\nlevel: ${level}\nclients: romeo\n\nromeo syncs\n`, id);
  return { scenario, outcome, reason, cleanupProblems: [], ms: 5 };
}

function discovery(features: string[]): Discovery {
  return { features: new Set(features), serverFeatures: features, accountFeatures: [], accountIdentities: [], serverIdentities: [], streamFeatures: [], items: [] };
}

describe("XEP-0479 verdicts", () => {
  test("a spec passes on its scenarios, fails on a MUST failure, and is advertised or missing otherwise", () => {
    const results = [result("a", "RFC 6120", "MUST", "pass"), result("b", "RFC 6120", "SHOULD", "fail"), result("c", "RFC 6121", "MUST", "fail")];
    assert.equal(judgeSpec("RFC 6120", results, null).status, "passed");
    assert.equal(judgeSpec("RFC 6121", results, null).status, "failed");
    assert.equal(judgeSpec("XEP-0280", results, discovery(["urn:xmpp:carbons:2"])).status, "advertised");
    assert.equal(judgeSpec("XEP-0280", results, discovery([])).status, "missing");
    assert.equal(judgeSpec("XEP-0114", results, null).status, "not observable");
  });

  test("IM needs the Core category too; Advanced needs more than Basic", () => {
    const results = [result("a", "RFC 6120", "MUST", "pass"), result("c", "RFC 6121", "MUST", "pass")];
    const d = discovery(["http://jabber.org/protocol/disco#info", "vcard-temp", "urn:xmpp:carbons:2", "urn:xmpp:sm:3", "urn:xmpp:csi:0"]);
    const verdicts = complianceVerdicts(results, d);
    const im = verdicts.find((v) => v.category === "IM" && v.level === "Basic")!;
    assert.ok(im.specs.some((s) => s.spec === "RFC 6120"), "IM includes Core");
    assert.deepEqual(im.missing.sort(), ["RFC 7590", "XEP-0045", "XEP-0249", "XEP-0363"].sort());
    const mobile = verdicts.find((v) => v.category === "Mobile" && v.level === "Basic")!;
    assert.deepEqual(mobile.missing, ["RFC 7590"]);
    const mobileAdvanced = verdicts.find((v) => v.category === "Mobile" && v.level === "Advanced")!;
    assert.ok(mobileAdvanced.missing.includes("XEP-0357") && mobileAdvanced.verdict === "not compliant");
  });
});

describe("reports", () => {
  const results = [
    result("rfc6120/a", "RFC 6120", "MUST", "pass"),
    result("rfc6120/b", "RFC 6120", "MUST", "fail", "romeo received no matching stanza"),
    result("xep-0199/c", "XEP-0199", "SHOULD", "fail", "late"),
    result("xep-0054/d", "XEP-0054", "MUST", "skip", "the server does not have vcard-temp"),
  ];
  results[1].failure = { line: 7, step: "romeo receives: <iq/>", message: "x", expected: "<iq/>", received: ["<message/>"] };

  test("only MUST failures count for the exit status", () => {
    assert.deepEqual(mustFailures(results).map((r) => r.scenario.id), ["rfc6120/b"]);
    assert.deepEqual(summarizeBySpec(results).map((s) => [s.spec, s.passed, s.failedMust, s.failedShould, s.skipped]), [
      ["RFC 6120", 1, 1, 0, 0],
      ["XEP-0054", 0, 0, 0, 1],
      ["XEP-0199", 0, 0, 1, 0],
    ]);
    assert.match(formatSpecTable(results), /RFC 6120 +1 +1 +0 +0 +FAIL/);
  });

  test("JUnit XML is well-formed, one suite per spec, with the expected and received stanzas", () => {
    const text = junitXml(results, "test <server>");
    const doc = parseXml(text.replace(/^<\?xml[^>]*\?>\n/, ""));
    assert.equal(doc.getName(), "testsuites");
    assert.equal(doc.attrs.failures, "2");
    assert.equal(doc.attrs.skipped, "1");
    const suites = doc.getChildren("testsuite");
    assert.deepEqual(suites.map((s) => s.attrs.name), ["RFC 6120", "XEP-0054", "XEP-0199"]);
    const failure = suites[0].getChildren("testcase")[1].getChild("failure")!;
    assert.equal(failure.attrs.type, "MUST");
    assert.match(failure.getText(), /expected: <iq\/>\nreceived: <message\/>/);
  });

  test("RESULTS.md puts the servers side by side", () => {
    const a = jsonReport("Parley", "localhost", results, complianceVerdicts(results, null), null);
    const b = jsonReport("Other", "other.test", results.map((r) => ({ ...r, outcome: "pass" as const })), complianceVerdicts(results, null), null);
    const md = resultsMarkdown([a, b], "## Notes\nwhy");
    assert.match(md, /\| Scenario \| Spec \| Level \| Parley \| Other \|/);
    assert.match(md, /`rfc6120\/b`.*\| ✗ \| ✓ \|/);
    assert.match(md, /`xep-0199\/c`.*\| ✗ \(should\) \| ✓ \|/);
    assert.match(md, /## Notes\nwhy/);
  });
});
