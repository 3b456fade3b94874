// XEP-0077 2.4 §3.1.1 and §11 (Security Considerations): in-band registration invites mass
// account creation, so each network address may create only so many accounts an hour.
// A sliding window of creation times per address; a reservation is taken before the account is
// written and given back if creation fails, so two racing connections cannot both slip through.
import { isIPv4, isIPv6 } from "node:net";

const HOUR_MS = 60 * 60 * 1000;
/** Past this many tracked addresses, expired ones are swept before adding another. */
const SWEEP_AT = 10_000;

/**
 * The key an address is counted under. An IPv6 host is normally given a whole /64, so counting
 * single IPv6 addresses would let one host register without limit; IPv4-mapped IPv6 addresses
 * count as the IPv4 address they are.
 */
export function addressKey(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped && isIPv4(mapped[1])) return mapped[1];
  if (!isIPv6(ip)) return ip;
  const withoutZone = ip.split("%")[0];
  const [head, tail] = withoutZone.includes("::") ? withoutZone.split("::") : [withoutZone, undefined];
  const headGroups = head === "" ? [] : head.split(":");
  const tailGroups = tail === undefined || tail === "" ? [] : tail.split(":");
  // An embedded IPv4 tail (::1.2.3.4) occupies the last two groups, which a /64 never reaches.
  const missing = 8 - headGroups.length - tailGroups.length;
  const groups = tail === undefined ? headGroups : [...headGroups, ...Array<string>(Math.max(missing, 0)).fill("0"), ...tailGroups];
  return `${groups
    .slice(0, 4)
    .map((g) => g.toLowerCase().replace(/^0+(?=.)/, ""))
    .join(":")}::/64`;
}

export class RegistrationLimiter {
  private readonly byAddress = new Map<string, number[]>();

  constructor(
    private readonly perHour: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Reserves one registration for `ip`; false when the address has used its hourly allowance. */
  tryTake(ip: string): boolean {
    const key = addressKey(ip);
    const now = this.now();
    if (!this.byAddress.has(key) && this.byAddress.size >= SWEEP_AT) this.sweep(now);
    const times = this.recent(key, now);
    if (times.length >= this.perHour) return false;
    times.push(now);
    this.byAddress.set(key, times);
    return true;
  }

  /** Gives back the latest reservation of `ip` (the account was not created after all). */
  refund(ip: string): void {
    const key = addressKey(ip);
    const times = this.byAddress.get(key);
    if (!times) return;
    times.pop();
    if (times.length === 0) this.byAddress.delete(key);
  }

  /** How many addresses are being tracked (for tests of the memory bound). */
  get size(): number {
    return this.byAddress.size;
  }

  private recent(key: string, now: number): number[] {
    const times = this.byAddress.get(key) ?? [];
    const firstLive = times.findIndex((t) => now - t < HOUR_MS);
    return firstLive === -1 ? [] : firstLive === 0 ? times : times.slice(firstLive);
  }

  private sweep(now: number): void {
    for (const [key, times] of this.byAddress) {
      if (times.length === 0 || now - times[times.length - 1] >= HOUR_MS) this.byAddress.delete(key);
    }
  }
}
