// Reports of a conformance run: a table per specification, the XEP-0479 verdicts, the details
// of every failure (the stanza expected and the ones that came), JUnit XML for CI and a JSON
// summary that conformance/reference/results.ts turns into RESULTS.md.
import { escapeAttr, escapeText } from "../protocol/xml/serialize.ts";
import type { Discovery, ScenarioResult } from "./runner.ts";
import type { SuiteVerdict } from "./compliance.ts";

export interface SpecSummary {
  spec: string;
  passed: number;
  /** MUST scenarios that failed (or could not run to the end). */
  failedMust: number;
  /** SHOULD and MAY scenarios that failed. */
  failedShould: number;
  skipped: number;
}

/** "RFC 6120" < "RFC 6121" < "XEP-0030" < "XEP-0199". */
export function compareSpecs(a: string, b: string): number {
  const key = (s: string) => [s.startsWith("RFC") ? 0 : 1, Number(s.replace(/\D/g, "")) || 0] as const;
  const [ka, kb] = [key(a), key(b)];
  return ka[0] - kb[0] || ka[1] - kb[1] || a.localeCompare(b);
}

export function isFailure(r: ScenarioResult): boolean {
  return r.outcome === "fail" || r.outcome === "error";
}

export function mustFailures(results: ScenarioResult[]): ScenarioResult[] {
  return results.filter((r) => isFailure(r) && r.scenario.level === "MUST");
}

export function summarizeBySpec(results: ScenarioResult[]): SpecSummary[] {
  const by = new Map<string, SpecSummary>();
  for (const r of results) {
    const spec = r.scenario.spec;
    const s = by.get(spec) ?? { spec, passed: 0, failedMust: 0, failedShould: 0, skipped: 0 };
    if (r.outcome === "pass") s.passed++;
    else if (r.outcome === "skip") s.skipped++;
    else if (r.scenario.level === "MUST") s.failedMust++;
    else s.failedShould++;
    by.set(spec, s);
  }
  return [...by.values()].sort((a, b) => compareSpecs(a.spec, b.spec));
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + " ".repeat(n - s.length);
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => pad(c, widths[i])).join("  ").trimEnd();
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

export function formatSpecTable(results: ScenarioResult[]): string {
  const rows = summarizeBySpec(results).map((s) => [
    s.spec,
    String(s.passed),
    String(s.failedMust),
    String(s.failedShould),
    String(s.skipped),
    s.failedMust > 0 ? "FAIL" : s.passed === 0 ? "not tested" : s.failedShould > 0 ? "pass (SHOULD missed)" : "pass",
  ]);
  return table(["Specification", "passed", "failed MUST", "failed SHOULD", "skipped", "result"], rows);
}

export function formatCompliance(verdicts: SuiteVerdict[]): string {
  const lines: string[] = [];
  const rows = verdicts.map((v) => [
    v.category,
    v.level,
    v.verdict === "compliant" ? (v.untested.length ? "compliant*" : "compliant") : "NOT compliant",
    [v.failed.length ? `failed: ${v.failed.join(", ")}` : "", v.missing.length ? `missing: ${v.missing.join(", ")}` : "", v.untested.length ? `*not tested: ${v.untested.join(", ")}` : ""]
      .filter(Boolean)
      .join("; "),
  ]);
  lines.push(table(["Category", "Level", "Verdict", "Details"], rows));
  lines.push("* compliant on the strength of what the server advertises, or of what a c2s client cannot observe.");
  return lines.join("\n");
}

export function formatFailures(results: ScenarioResult[]): string {
  const out: string[] = [];
  for (const r of results.filter(isFailure)) {
    const s = r.scenario;
    out.push(`✗ [${s.level}] ${s.spec} ${s.section} — ${s.title}`.replace(/\s+—/, " —"));
    out.push(`  scenario: ${s.file}${r.failure?.line ? `:${r.failure.line}` : ""}`);
    if (r.failure?.step) out.push(`  step:     ${r.failure.step.split("\n").join(" ")}`);
    out.push(`  problem:  ${r.reason ?? "?"}`);
    if (r.failure?.expected) out.push(`  expected: ${r.failure.expected}`);
    if (r.failure) {
      if (r.failure.received.length === 0) out.push("  received: nothing unclaimed");
      else {
        out.push("  received:");
        for (const x of r.failure.received) out.push(`    ${x}`);
      }
    }
    for (const p of r.cleanupProblems) out.push(`  cleanup:  ${p}`);
    out.push("");
  }
  return out.join("\n");
}

/** One <testsuite> per specification; SHOULD and MAY failures are failures of type "SHOULD"/"MAY". */
export function junitXml(results: ScenarioResult[], name: string): string {
  const bySpec = new Map<string, ScenarioResult[]>();
  for (const r of results) bySpec.set(r.scenario.spec, [...(bySpec.get(r.scenario.spec) ?? []), r]);
  const a = escapeAttr;
  const suites: string[] = [];
  for (const spec of [...bySpec.keys()].sort(compareSpecs)) {
    const rs = bySpec.get(spec)!;
    const failures = rs.filter((r) => r.outcome === "fail").length;
    const errors = rs.filter((r) => r.outcome === "error").length;
    const skipped = rs.filter((r) => r.outcome === "skip").length;
    const time = rs.reduce((t, r) => t + r.ms, 0) / 1000;
    const cases = rs.map((r) => {
      const s = r.scenario;
      const caseName = `[${s.level}] ${s.section ? s.section + " " : ""}${s.title} (${s.id})`;
      const open = `    <testcase classname="${a(spec)}" name="${a(caseName)}" time="${(r.ms / 1000).toFixed(3)}"`;
      if (r.outcome === "pass") return `${open}/>`;
      if (r.outcome === "skip") return `${open}>\n      <skipped message="${a(r.reason ?? "")}"/>\n    </testcase>`;
      const details = [
        r.failure?.step ? `step (line ${r.failure.line}): ${r.failure.step}` : "",
        r.failure?.expected ? `expected: ${r.failure.expected}` : "",
        ...(r.failure?.received ?? []).map((x) => `received: ${x}`),
      ]
        .filter(Boolean)
        .join("\n");
      const tag = r.outcome === "error" ? "error" : "failure";
      return `${open}>\n      <${tag} type="${s.level}" message="${a(r.reason ?? "")}">${escapeText(details)}</${tag}>\n    </testcase>`;
    });
    suites.push(
      `  <testsuite name="${a(spec)}" tests="${rs.length}" failures="${failures}" errors="${errors}" skipped="${skipped}" time="${time.toFixed(3)}">\n${cases.join("\n")}\n  </testsuite>`,
    );
  }
  const total = results.length;
  const failures = results.filter((r) => r.outcome === "fail").length;
  const errors = results.filter((r) => r.outcome === "error").length;
  const skipped = results.filter((r) => r.outcome === "skip").length;
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="${a(name)}" tests="${total}" failures="${failures}" errors="${errors}" skipped="${skipped}">\n${suites.join("\n")}\n</testsuites>\n`;
}

export interface JsonReport {
  server: string;
  software?: { name: string; version: string };
  domain: string;
  date: string;
  results: Array<{ id: string; spec: string; section: string; title: string; level: string; outcome: string; reason?: string }>;
  compliance: Array<{ category: string; level: string; verdict: string; failed: string[]; missing: string[]; untested: string[] }>;
  discovery?: { serverFeatures: string[]; accountFeatures: string[]; streamFeatures: string[]; items: string[] };
}

export function jsonReport(name: string, domain: string, results: ScenarioResult[], verdicts: SuiteVerdict[], discovery: Discovery | null): JsonReport {
  return {
    server: name,
    software: discovery?.software,
    domain,
    date: new Date().toISOString(),
    results: results.map((r) => ({
      id: r.scenario.id,
      spec: r.scenario.spec,
      section: r.scenario.section,
      title: r.scenario.title,
      level: r.scenario.level,
      outcome: r.outcome,
      reason: r.reason,
    })),
    compliance: verdicts.map((v) => ({ category: v.category, level: v.level, verdict: v.verdict, failed: v.failed, missing: v.missing, untested: v.untested })),
    discovery: discovery
      ? { serverFeatures: discovery.serverFeatures, accountFeatures: discovery.accountFeatures, streamFeatures: discovery.streamFeatures, items: discovery.items.map((i) => i.jid) }
      : undefined,
  };
}
