// XEP-0357 §5, §6: the registrations an account's devices enabled, kept in SQL (migration
// 0005_push) so that they survive restarts, and cached per account: every message to an
// account with no registration must not cost a query.
import type { Kysely } from "kysely";
import type { Jid } from "../../../protocol/jid.ts";
import type { DataForm } from "../../../protocol/forms.ts";
import type { Storage } from "../../core/storage/index.ts";
import type { PushTables } from "./tables.ts";

export interface Registration {
  /** The account's bare JID. */
  account: string;
  service: string;
  node: string;
  resource: string;
  publishOptions?: DataForm;
}

const MAX_CACHED_ACCOUNTS = 50_000;

export class RegistrationStore {
  private readonly db: Kysely<PushTables>;
  private readonly cache = new Map<string, Promise<Registration[]>>();

  constructor(
    storage: Storage,
    private readonly maxPerAccount = 20,
  ) {
    this.db = storage.db.withTables<PushTables>() as unknown as Kysely<PushTables>;
  }

  list(account: Jid): Promise<Registration[]> {
    const key = account.bare.toString();
    let hit = this.cache.get(key);
    if (!hit) {
      // Bounded: a busy server forgets and re-reads rather than growing without end.
      if (this.cache.size >= MAX_CACHED_ACCOUNTS) this.cache.clear();
      hit = this.load(account);
      this.cache.set(key, hit);
      hit.catch(() => this.cache.delete(key));
    }
    return hit;
  }

  private async load(account: Jid): Promise<Registration[]> {
    const rows = await this.db
      .selectFrom("push_registrations")
      .selectAll()
      .where("host", "=", account.domain)
      .where("username", "=", account.local)
      .orderBy("created_at")
      .execute();
    return rows.map((r) => {
      const reg: Registration = { account: account.bare.toString(), service: r.service, node: r.node, resource: r.resource };
      if (r.options) reg.publishOptions = JSON.parse(r.options) as DataForm;
      return reg;
    });
  }

  /** §5: enabling the same service and node again replaces its options and device. */
  async put(account: Jid, reg: Omit<Registration, "account">): Promise<void> {
    const row = {
      host: account.domain,
      username: account.local,
      service: reg.service,
      node: reg.node,
      resource: reg.resource,
      options: reg.publishOptions ? JSON.stringify(reg.publishOptions) : null,
      created_at: Date.now(),
    };
    await this.db.transaction().execute(async (tx) => {
      await tx
        .deleteFrom("push_registrations")
        .where("host", "=", row.host)
        .where("username", "=", row.username)
        .where("service", "=", row.service)
        .where("node", "=", row.node)
        .execute();
      await tx.insertInto("push_registrations").values(row).execute();
      // Apps reinstalled on a phone enable new nodes and never disable the old ones: the
      // oldest registrations beyond the limit go, so an account cannot fan one message out
      // to an unbounded number of publishes.
      const all = await tx
        .selectFrom("push_registrations")
        .select(["service", "node"])
        .where("host", "=", row.host)
        .where("username", "=", row.username)
        .orderBy("created_at", "desc")
        .execute();
      for (const old of all.slice(this.maxPerAccount)) {
        await tx
          .deleteFrom("push_registrations")
          .where("host", "=", row.host)
          .where("username", "=", row.username)
          .where("service", "=", old.service)
          .where("node", "=", old.node)
          .execute();
      }
    });
    this.cache.delete(account.bare.toString());
  }

  /** §6: one node, or every node at that service when `node` is absent. Returns how many went. */
  async remove(account: Jid, service: string, node?: string): Promise<number> {
    let q = this.db.deleteFrom("push_registrations").where("host", "=", account.domain).where("username", "=", account.local).where("service", "=", service);
    if (node !== undefined) q = q.where("node", "=", node);
    const result = await q.executeTakeFirst();
    this.cache.delete(account.bare.toString());
    return Number(result.numDeletedRows);
  }

  /** When an account is deleted. */
  async removeAll(account: Jid): Promise<void> {
    await this.db.deleteFrom("push_registrations").where("host", "=", account.domain).where("username", "=", account.local).execute();
    this.cache.delete(account.bare.toString());
  }
}
