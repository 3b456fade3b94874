// Pieces the benchmark scenarios share: accounts, sleeping, and CPU meters for the generator
// itself (process.cpuUsage) and for the server (/proc/<pid>/stat), so that a saturated generator
// is never mistaken for a slow server.
import { performance } from "node:perf_hooks";
import { readCpuSeconds } from "../load/proc.ts";

export interface Account {
  username: string;
  password: string;
}

/** Accounts <prefix>0 .. <prefix>(count-1), all with the same password. */
export function benchAccounts(prefix: string, count: number, password: string): Account[] {
  return Array.from({ length: count }, (_, i) => ({ username: `${prefix}${i}`, password }));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface CpuUse {
  /** % of one core used by this process over the measured wall time. */
  generatorPct: number;
  /** Likewise for the server, or null when its pid is unknown or unreadable. */
  serverPct: number | null;
}

/** Starts measuring; stop(wallMs) gives the CPU use since. */
export function cpuMeter(serverPid?: number): { stop(wallMs?: number): CpuUse } {
  const started = performance.now();
  const mine = process.cpuUsage();
  const server = serverPid ? readCpuSeconds(serverPid) : null;
  return {
    stop(wallMs = performance.now() - started): CpuUse {
      const used = process.cpuUsage(mine);
      const serverNow = serverPid ? readCpuSeconds(serverPid) : null;
      return {
        generatorPct: ((used.user + used.system) / 1000 / wallMs) * 100,
        serverPct: server !== null && serverNow !== null ? (((serverNow - server) * 1000) / wallMs) * 100 : null,
      };
    },
  };
}
