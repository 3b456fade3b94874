// Puts the latest comparison (bench/RESULTS.md, written by `npm run bench:compare`) into the
// README between its bench markers, so the README always shows the last run with its date and
// machine. Only the summary goes in: the table, the ratios and the targets; the README links the
// rest (how it was measured, the MAM pages, the profile reading).
import { readFileSync, writeFileSync } from "node:fs";

export const README_START = "<!-- bench-results:start -->";
export const README_END = "<!-- bench-results:end -->";

/** The part of a RESULTS.md the README shows: everything before "## How it was measured", headings one level down. */
export function readmeSummary(results: string): string {
  const cut = results.indexOf("\n## How it was measured");
  const summary = (cut === -1 ? results : results.slice(0, cut)).trim();
  return summary
    .split("\n")
    .filter((line) => !line.startsWith("# "))
    .map((line) => (/^#{2,5} /.test(line) ? `#${line}` : line))
    .join("\n")
    .trim();
}

/** The README text with the summary of `results` between the markers (which must both be there). */
export function withResults(readme: string, results: string): string {
  const start = readme.indexOf(README_START);
  const end = readme.indexOf(README_END);
  if (start === -1 || end === -1 || end < start) throw new Error(`the README has no ${README_START} … ${README_END} section`);
  const body = `${readmeSummary(results)}\n\nThe full report, with how it was measured and what the profiles show: [bench/RESULTS.md](bench/RESULTS.md).`;
  return `${readme.slice(0, start + README_START.length)}\n${body}\n${readme.slice(end)}`;
}

export function updateReadme(readmePath: string, resultsPath: string): void {
  writeFileSync(readmePath, withResults(readFileSync(readmePath, "utf8"), readFileSync(resultsPath, "utf8")));
}

// `node --import tsx bench/readme.ts`: refresh the README from the RESULTS.md there is.
if (import.meta.url === `file://${process.argv[1]}`) {
  const root = new URL("..", import.meta.url).pathname;
  updateReadme(`${root}README.md`, `${root}bench/RESULTS.md`);
}
