// Finding where a remote XMPP server listens: RFC 6120 §3.2 (SRV `_xmpp-server._tcp`, then the
// domain itself on 5269 when there is no SRV record) and XEP-0368 v1.1.0 (`_xmpps-server._tcp`
// for Direct TLS), every candidate tried in order by the caller.
//
// Resolution is an interface so that tests, and deployments with fixed peers, never touch
// DNS: StaticResolver answers from `[s2s.routes]`; DnsResolver (node:dns) is used only when
// `s2s.dns` is on and no static route names the domain.
import { promises as dnsPromises } from "node:dns";
import { isIP } from "node:net";
import type { S2sRoute } from "../../core/config.ts";

export interface S2sEndpoint {
  /** Host name or IP address to connect to. */
  readonly host: string;
  readonly port: number;
  /** XEP-0368: TLS from the first byte, no STARTTLS. */
  readonly directTls: boolean;
}

export interface S2sResolver {
  /** Candidates in the order they should be tried; [] when the domain cannot be found. */
  resolve(domain: string): Promise<S2sEndpoint[]>;
}

/** Answers only for domains named in `[s2s.routes]`. */
export class StaticResolver implements S2sResolver {
  constructor(private readonly routes: Readonly<Record<string, readonly S2sRoute[]>>) {}

  has(domain: string): boolean {
    return Object.hasOwn(this.routes, domain);
  }

  async resolve(domain: string): Promise<S2sEndpoint[]> {
    return (this.routes[domain] ?? []).map((r) => ({ host: r.host, port: r.port, directTls: r.directTls }));
  }
}

/** The subset of node:dns a DnsResolver uses, so that it can be exercised without a network. */
export interface SrvLookup {
  resolveSrv(name: string): Promise<Array<{ name: string; port: number; priority: number; weight: number }>>;
}

interface SrvRecord {
  name: string;
  port: number;
  priority: number;
  weight: number;
}

/** RFC 2782 ordering: by priority, then weighted random within a priority. */
export function orderSrv(records: readonly SrvRecord[], random: () => number = Math.random): SrvRecord[] {
  const byPriority = new Map<number, SrvRecord[]>();
  for (const r of records) byPriority.set(r.priority, [...(byPriority.get(r.priority) ?? []), r]);
  const out: SrvRecord[] = [];
  for (const priority of [...byPriority.keys()].sort((a, b) => a - b)) {
    const pool = [...byPriority.get(priority)!];
    while (pool.length > 0) {
      const total = pool.reduce((sum, r) => sum + r.weight, 0);
      let pick = 0;
      if (total > 0) {
        let n = random() * total;
        pick = pool.findIndex((r) => (n -= r.weight) < 0);
        if (pick < 0) pick = pool.length - 1;
      }
      out.push(pool.splice(pick, 1)[0]);
    }
  }
  return out;
}

/**
 * SRV resolution. Direct TLS and STARTTLS records are merged by priority, Direct TLS first at
 * equal priority (XEP-0368 §3); a single "." target means the service is decidedly not
 * offered (RFC 2782); no record at all falls back to the domain on 5269 (RFC 6120 §3.2.1).
 */
export class DnsResolver implements S2sResolver {
  constructor(private readonly lookup: SrvLookup = dnsPromises) {}

  async resolve(domain: string): Promise<S2sEndpoint[]> {
    if (isIP(domain) !== 0) return [{ host: domain, port: 5269, directTls: false }];
    const [tls, tcp] = await Promise.all([this.srv(`_xmpps-server._tcp.${domain}`), this.srv(`_xmpp-server._tcp.${domain}`)]);
    const refused = (records: SrvRecord[] | null) => records !== null && records.length === 1 && (records[0].name === "." || records[0].name === "");
    if (refused(tcp) && (tls === null || refused(tls))) return [];
    const merged: Array<SrvRecord & { directTls: boolean }> = [];
    for (const r of orderSrv(tls && !refused(tls) ? tls : [])) merged.push({ ...r, directTls: true });
    for (const r of orderSrv(tcp && !refused(tcp) ? tcp : [])) merged.push({ ...r, directTls: false });
    if (merged.length === 0) return [{ host: domain, port: 5269, directTls: false }];
    // Stable sort keeps the weighted order inside a priority and Direct TLS before STARTTLS.
    merged.sort((a, b) => a.priority - b.priority || Number(b.directTls) - Number(a.directTls));
    return merged.map((r) => ({ host: r.name.replace(/\.$/, ""), port: r.port, directTls: r.directTls }));
  }

  private async srv(name: string): Promise<SrvRecord[] | null> {
    try {
      return await this.lookup.resolveSrv(name);
    } catch {
      return null;
    }
  }
}

/** Static routes first; the fallback (DNS) only for domains they do not name. */
export class ChainResolver implements S2sResolver {
  constructor(
    private readonly routes: StaticResolver,
    private readonly fallback: S2sResolver | null,
  ) {}

  async resolve(domain: string): Promise<S2sEndpoint[]> {
    if (this.routes.has(domain)) return this.routes.resolve(domain);
    return this.fallback ? this.fallback.resolve(domain) : [];
  }
}
