// Reads V8 CPU profiles written by `node --cpu-prof` (the .cpuprofile JSON of the Chrome DevTools
// protocol, Profiler.Profile) and names the top frames by self time and by total (inclusive)
// time, so a missed target can be explained in the report with what the server spent its time on.
//
//   node --import tsx bench/profile.ts FILE.cpuprofile [--top 25]
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { relative } from "node:path";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface FrameTime {
  frame: string;
  selfMs: number;
  totalMs: number;
  selfPct: number;
  totalPct: number;
}

export function frameName(f: CallFrame): string {
  const name = f.functionName || "(anonymous)";
  if (!f.url) return name;
  let where = f.url.replace(/^file:\/\//, "");
  const nm = where.lastIndexOf("node_modules/");
  if (nm >= 0) where = where.slice(nm + "node_modules/".length);
  else if (where.startsWith("/")) where = relative(process.cwd(), where) || where;
  return `${name} ${where}:${f.lineNumber + 1}`;
}

/** Self and inclusive time per frame (a recursive frame counts once per sample in total time). */
export function summarizeProfile(profile: CpuProfile): { totalMs: number; frames: FrameTime[] } {
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of profile.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  let totalMs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const ms = (profile.timeDeltas[i + 1] ?? profile.timeDeltas[i] ?? 0) / 1000;
    totalMs += ms;
    const leaf = byId.get(profile.samples[i]);
    if (!leaf) continue;
    const leafName = frameName(leaf.callFrame);
    self.set(leafName, (self.get(leafName) ?? 0) + ms);
    const seen = new Set<string>();
    // Bounded by the depth of the tree: parents form a chain to the root.
    for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) {
      const name = frameName(byId.get(id)!.callFrame);
      if (seen.has(name)) continue;
      seen.add(name);
      total.set(name, (total.get(name) ?? 0) + ms);
    }
  }
  const frames = [...total.keys()].map((frame) => {
    const s = self.get(frame) ?? 0;
    const t = total.get(frame) ?? 0;
    return { frame, selfMs: s, totalMs: t, selfPct: totalMs ? (s / totalMs) * 100 : 0, totalPct: totalMs ? (t / totalMs) * 100 : 0 };
  });
  return { totalMs, frames };
}

/** The top frames by self time, without the idle and program pseudo-frames. */
export function topSelf(summary: { frames: FrameTime[] }, top: number): FrameTime[] {
  return summary.frames
    .filter((f) => !/^\((idle|root)\)/.test(f.frame))
    .sort((a, b) => b.selfMs - a.selfMs)
    .slice(0, top);
}

export function topTotal(summary: { frames: FrameTime[] }, top: number): FrameTime[] {
  return summary.frames
    .filter((f) => !/^\((idle|root|program|garbage collector)\)/.test(f.frame))
    .sort((a, b) => b.totalMs - a.totalMs)
    .slice(0, top);
}

function main(argv: string[]): void {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { top: { type: "string", default: "25" } } });
  const top = Number(values.top);
  for (const file of positionals) {
    const summary = summarizeProfile(JSON.parse(readFileSync(file, "utf8")) as CpuProfile);
    const idle = summary.frames.find((f) => f.frame === "(idle)")?.selfMs ?? 0;
    console.log(`${file}: ${(summary.totalMs / 1000).toFixed(1)} s sampled, ${((idle / summary.totalMs) * 100).toFixed(0)}% idle`);
    console.log("  self time:");
    for (const f of topSelf(summary, top)) console.log(`    ${f.selfPct.toFixed(1).padStart(5)}%  ${f.frame}`);
    console.log("  total time:");
    for (const f of topTotal(summary, top)) console.log(`    ${f.totalPct.toFixed(1).padStart(5)}%  ${f.frame}`);
  }
}

if (process.argv[1] && import.meta.filename === process.argv[1]) main(process.argv.slice(2));
