// Loading the scenario files (conformance/scenarios/**/*.scenario, see format.ts) from disk.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { parseScenario, type Scenario } from "./format.ts";

export const SCENARIO_EXTENSION = ".scenario";

/** The scenarios shipped with the runner. */
export const BUILTIN_SCENARIO_DIR = fileURLToPath(new URL("../scenarios", import.meta.url));

function walk(dir: string, out: string[], depth = 0): void {
  if (depth > 8) return;
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path, out, depth + 1);
    else if (name.endsWith(SCENARIO_EXTENSION)) out.push(path);
  }
}

/** Every scenario under `dir`, sorted by id; a syntax error in any file throws ScenarioSyntaxError. */
export function loadScenarios(dir: string = BUILTIN_SCENARIO_DIR): Scenario[] {
  const files: string[] = [];
  walk(dir, files);
  return files.map((file) => {
    const id = relative(dir, file).slice(0, -SCENARIO_EXTENSION.length).split(sep).join("/");
    return parseScenario(readFileSync(file, "utf8"), id, relative(process.cwd(), file) || file);
  });
}
