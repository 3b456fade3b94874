// What the benchmark reads about the server process from Linux's /proc (proc(5)): its resident
// memory (VmRSS in /proc/<pid>/status) and CPU time (utime + stime in /proc/<pid>/stat).
import { readFileSync } from "node:fs";

/** Resident set size of a process in KiB, or null if it cannot be read. */
export function readRssKiB(pid: number): number | null {
  try {
    return parseRssKiB(readFileSync(`/proc/${pid}/status`, "utf8"));
  } catch {
    return null;
  }
}

export function parseRssKiB(status: string): number | null {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  return m ? Number(m[1]) : null;
}

/** CPU seconds (user + system) a process has used, or null if it cannot be read. */
export function readCpuSeconds(pid: number): number | null {
  try {
    return parseCpuSeconds(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return null;
  }
}

/** Fields 14 and 15 of /proc/<pid>/stat are utime and stime in clock ticks (100 per second on Linux). */
export function parseCpuSeconds(stat: string, ticksPerSecond = 100): number | null {
  // The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return null;
  return (utime + stime) / ticksPerSecond;
}
