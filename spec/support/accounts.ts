// Test support: accounts and their clients on a TestServer, as RFC 6121 describes a user's life:
// a roster (§2), subscriptions (§3), and initial presence that makes a resource available (§4.2).
import { createAccount } from "../../server/core/accounts.ts";
import { rosterItem, type Subscription } from "../../server/core/storage/index.ts";
import { xml, type Element } from "../../protocol/xml/element.ts";
import { NS } from "../../protocol/ns.ts";
import { SaslFailure, type XmppClient } from "../../conformance/client/client.ts";
import type { TestServer } from "./server.ts";
import { isPresence } from "./stanzas.ts";

export interface Accounts {
  /** A fresh account named after `name`, so that tests never see each other's rosters. */
  account(name: string): Promise<string>;
  /** The bare JID of the local account `user`. */
  bare(user: string): string;
  /**
   * Puts `contact` (a local user, or any JID) in `owner`'s roster with that subscription, as a
   * finished subscription dance would, without a dance.
   */
  setSubscription(owner: string, contact: string, subscription: Subscription): Promise<void>;
  /** Logged in and interested (it has asked for its roster, RFC 6121 §2.1.6), not yet available. */
  connected(user: string, resource?: string): Promise<XmppClient>;
  /** Connected, interested, and available with `content` in its initial presence; its echo consumed. */
  online(user: string, resource?: string, ...content: Element[]): Promise<XmppClient>;
  /** The client's roster, by contact JID. */
  rosterOf(c: XmppClient): Promise<Map<string, Element>>;
  /** A round trip: everything the client sent before has been processed by the server. */
  settle(c: XmppClient): Promise<void>;
}

/**
 * Account helpers bound to the server `server()` returns; a getter, because specs start their
 * server in a `before` hook. connected, online, rosterOf and settle need the roster module.
 */
export function accountsOn(server: () => TestServer): Accounts {
  let counter = 0;
  const accounts: Accounts = {
    async account(name) {
      const t = server();
      const user = `${name}${++counter}`;
      await createAccount(t.server.storage, t.domain, user, `pass-${user}`);
      return user;
    },
    bare(user) {
      return `${user}@${server().domain}`;
    },
    async setSubscription(owner, contact, subscription) {
      const t = server();
      await t.server.storage.roster.upsert(t.domain, owner, rosterItem(contact.includes("@") ? contact : accounts.bare(contact), { subscription }));
    },
    async connected(user, resource) {
      const c = await server().login(user, { resource });
      await accounts.rosterOf(c);
      return c;
    },
    async online(user, resource, ...content) {
      const c = await accounts.connected(user, resource);
      c.send(xml("presence", {}, ...content));
      await c.next(isPresence(c.jid!, undefined));
      return c;
    },
    async rosterOf(c) {
      const result = await c.iq(xml("iq", { type: "get" }, xml("query", { xmlns: NS.roster })));
      return new Map(result.getChild("query", NS.roster)!.getChildren("item").map((i) => [i.attrs.jid, i]));
    },
    async settle(c) {
      await accounts.rosterOf(c);
    },
  };
  return accounts;
}

/**
 * Whether `username` can log in with `password` on a fresh stream to `server` (a TestServer, or
 * any server a spec can connect to): false on the SASL not-authorized failure (RFC 6120
 * §6.5.10), anything else is thrown.
 */
export async function canLogIn(server: { connect(): Promise<XmppClient> }, username: string, password: string): Promise<boolean> {
  const c = await server.connect();
  try {
    await c.login({ username, password });
    return true;
  } catch (e) {
    if (e instanceof SaslFailure && e.condition === "not-authorized") return false;
    throw e;
  } finally {
    c.destroy();
  }
}
