// bench/readme.ts: the README shows the summary of the latest bench:compare run.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { README_END, README_START, readmeSummary, withResults } from "../../bench/readme.ts";

const RESULTS = [
  "# Benchmark: Parley beside Prosody and ejabberd",
  "",
  "Generated on 2026-11-27 20:40 UTC.",
  "",
  "| a | b |",
  "| --- | ---: |",
  "| logins | 193 |",
  "",
  "## Ratios",
  "",
  "| x | 1.2× |",
  "",
  "## How it was measured",
  "",
  "- login: details only the report keeps",
].join("\n");

describe("the README's benchmark section", () => {
  test("keeps the table and ratios, drops the title and the method, and moves headings one level down", () => {
    const summary = readmeSummary(RESULTS);
    assert.match(summary, /^Generated on 2026-11-27 20:40 UTC\./);
    assert.match(summary, /\| logins \| 193 \|/);
    assert.match(summary, /^### Ratios$/m);
    assert.doesNotMatch(summary, /Benchmark: Parley beside/);
    assert.doesNotMatch(summary, /details only the report keeps/);
  });

  test("replaces what was between the markers and nothing else, again and again", () => {
    const readme = `# Parley\n\nbefore\n${README_START}\nold figures\n${README_END}\nafter\n`;
    const once = withResults(readme, RESULTS);
    assert.ok(once.startsWith("# Parley\n\nbefore\n"));
    assert.ok(once.endsWith(`${README_END}\nafter\n`));
    assert.doesNotMatch(once, /old figures/);
    assert.match(once, /\| logins \| 193 \|/);
    assert.equal(withResults(once, RESULTS), once);
  });

  test("a README without the markers is an error, not a silent no-op", () => {
    assert.throws(() => withResults("# Parley\n", RESULTS), /no <!-- bench-results:start -->/);
  });
});
