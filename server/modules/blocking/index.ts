// XEP-0191: Blocking Command 1.3. The blocklist (§3.2 get, §3.3 block, §3.4 unblock, §3.5 unblock
// all) with pushes to the account's resources, kept in the module store, and enforced on every
// stanza between the account and a blocked JID (matching rules: ./match.ts).
//
// Enforcement, and why at these priorities:
// - Inbound (`<kind>/{bare,full}` at BLOCKING_PRIORITY, above message delivery (-100), MAM's
//   archive (10), carbons and the presence module (0)): from a blocked JID, presence of every
//   kind is dropped without an answer, messages and IQ get/set get <service-unavailable/>, IQ
//   results and errors are dropped (§3.3, "the user will appear offline to the contact").
// - Outbound from a client (`pre-<kind>/{bare,full,host}`, above the presence module's
//   subscription processing and MAM): <not-acceptable/> with <blocked xmlns='urn:xmpp:blocking:errors'/>.
// - Outbound from the server on the account's behalf (presence broadcasts, probes, PEP events:
//   routed with no origin, so no pre- hook sees them): dropped silently, both on delivery to a
//   local contact and on `route/remote`.
// - On block, each newly blocked subscriber (or receiver of directed presence) gets unavailable
//   presence from each available resource first; on unblock, subscribers get the current
//   presence again and contacts the account is subscribed to are probed, so both sides catch up.
// Pushes go to every resource that asked for the blocklist or the roster: both mark a client
// that keeps local state about contacts.
import { randomBytes } from "node:crypto";
import { xml, clone, childElements, type Element } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import { StanzaError } from "../../../protocol/errors.ts";
import { tryParseJid, type Jid } from "../../../protocol/jid.ts";
import { defineModule } from "../../core/module.ts";
import type { IqEvent, StanzaEvent } from "../../core/router.ts";
import type { ClientSession } from "../../core/sessions.ts";
import { KeyedLock } from "../roster/lock.ts";
import { isBlocked } from "./match.ts";

/** Above every module that delivers, archives or processes stanzas to and from an account. */
export const BLOCKING_PRIORITY = 100;

const STORE_KEY = "blocklist";
const REQUESTED = "blocking:requested";

/** §3.3: what a client gets for a stanza it tries to send to a JID it blocked. */
export function blockedError(): StanzaError {
  return new StanzaError("not-acceptable", { type: "cancel", appSpecific: xml("blocked", { xmlns: NS.blockingErrors }) });
}

function newId(): string {
  return randomBytes(6).toString("base64url");
}

/** The <item jid/> children of a block or unblock, normalised; <jid-malformed/> for a bad one. */
function itemsOf(payload: Element): string[] {
  const jids: string[] = [];
  for (const item of childElements(payload)) {
    if (item.getName() !== "item" || item.getNS() !== NS.blocking) continue;
    const jid = item.attrs.jid === undefined ? null : tryParseJid(item.attrs.jid);
    if (!jid) throw new StanzaError("jid-malformed", "every item needs a valid 'jid'");
    jids.push(jid.toString());
  }
  return [...new Set(jids)];
}

function itemElements(jids: Iterable<string>): Element[] {
  return [...jids].map((jid) => xml("item", { jid }));
}

export default defineModule({
  name: "blocking",
  xeps: [{ xep: 191, version: "1.3", status: "complete", note: "enforced for messages, presence and IQs, both ways; XEP-0377 reports are not read" }],
  depends: ["roster"],
  setup(m) {
    const store = m.store();
    const lock = new KeyedLock();
    const cache = new Map<string, Promise<ReadonlySet<string>>>();
    /** Most accounts block nobody: they share one empty list (changes are made on copies). */
    const NOBODY: ReadonlySet<string> = new Set();

    const blocklistOf = (account: Jid): Promise<ReadonlySet<string>> => {
      const key = account.bare.toString();
      let list = cache.get(key);
      if (!list) {
        list = store.get(account.bare, STORE_KEY).then((value) => {
          const items = Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
          return items.length === 0 ? NOBODY : new Set(items);
        });
        cache.set(key, list);
        // A failed read must not be remembered as the answer.
        list.catch(() => cache.delete(key));
      }
      return list;
    };

    const save = async (account: Jid, list: Set<string>): Promise<void> => {
      await store.set(account.bare, STORE_KEY, [...list]);
      cache.set(account.bare.toString(), Promise.resolve(list));
    };

    const isLocalAccount = (jid: Jid): boolean => jid.local !== "" && m.isLocalHost(jid.domain);

    /** True when `account` (a local account) blocks `other`. The account's own server is never blocked. */
    const blocks = async (account: Jid, other: Jid): Promise<boolean> => {
      if (!isLocalAccount(account) || other.bare.equals(account.bare)) return false;
      if (other.local === "" && other.resource === "" && other.domain === account.domain) return false;
      return isBlocked(await blocklistOf(account), other);
    };

    m.addFeature(NS.blocking, "host");

    // ---- the blocklist (§3.2-§3.5) ---------------------------------------------------------------

    const push = (account: Jid, payload: () => Element): void => {
      for (const session of m.sessions.resources(account)) {
        if (!session.jid || !(session.interested || session.data.get(REQUESTED) === true)) continue;
        session.send(xml("iq", { type: "set", id: `block-${newId()}`, to: session.jid.toString() }, payload()));
      }
    };

    const available = (account: Jid): ClientSession[] => m.sessions.resources(account).filter((s) => s.presence !== null && s.jid);

    /** Roster contacts (subscription 'from'/'both', or 'to'/'both') covered by `items`. */
    const contactsCovered = async (account: Jid, items: Set<string>, direction: "from" | "to"): Promise<string[]> => {
      const { items: roster } = await m.storage.roster.list(account.domain, account.local);
      return roster
        .filter((i) => i.subscription === "both" || i.subscription === direction)
        .map((i) => i.jid)
        .filter((jid) => {
          const parsed = tryParseJid(jid);
          return parsed !== null && isBlocked(items, parsed);
        });
    };

    /** §3.3: the newly blocked stop seeing the account: unavailable from each available resource. */
    const goUnavailableFor = async (account: Jid, blocked: Set<string>): Promise<void> => {
      const subscribers = await contactsCovered(account, blocked, "from");
      for (const session of available(account)) {
        const directed = [...session.directedPresence].filter((to) => {
          const parsed = tryParseJid(to);
          return parsed !== null && isBlocked(blocked, parsed);
        });
        for (const to of directed) session.directedPresence.delete(to);
        for (const to of new Set([...subscribers, ...directed])) {
          await m.send(xml("presence", { from: session.jid!.toString(), to, type: "unavailable" }));
        }
      }
    };

    /** §3.4: the unblocked see the account again, and the account learns their presence again. */
    const catchUpWith = async (account: Jid, unblocked: Set<string>): Promise<void> => {
      const subscribers = await contactsCovered(account, unblocked, "from");
      const subscriptions = await contactsCovered(account, unblocked, "to");
      const resources = available(account);
      for (const session of resources) {
        for (const to of subscribers) {
          const presence = clone(session.presence!);
          presence.attrs.from = session.jid!.toString();
          presence.attrs.to = to;
          await m.send(presence);
        }
      }
      if (resources.length === 0) return;
      for (const to of subscriptions) {
        const local = m.isLocalHost(tryParseJid(to)?.domain ?? "");
        // As the presence module probes at login: local answers go to the resources that ask.
        const from = local ? resources.map((s) => s.jid!.toString()) : [account.toString()];
        for (const f of from) await m.send(xml("presence", { type: "probe", from: f, to, id: newId() }));
      }
    };

    m.onIq("get", NS.blocking, "blocklist", async (ev) => {
      ev.origin?.data.set(REQUESTED, true);
      const list = await blocklistOf(ev.from.bare);
      return xml("blocklist", { xmlns: NS.blocking }, ...itemElements(list));
    }, { targets: ["self"] });

    m.onIq("set", NS.blocking, "block", async (ev: IqEvent): Promise<true> => {
      const account = ev.from.bare;
      const items = itemsOf(ev.payload);
      // §3.3: a block names at least one JID.
      if (items.length === 0) throw new StanzaError("bad-request", "a block needs at least one item");
      await lock.run(account.toString(), async () => {
        const list = new Set(await blocklistOf(account));
        const added = new Set(items.filter((jid) => !list.has(jid)));
        if (added.size === 0) return;
        // Before the block is in force, or the unavailable presence would itself be blocked.
        await goUnavailableFor(account, added);
        for (const jid of added) list.add(jid);
        await save(account, list);
        push(account, () => xml("block", { xmlns: NS.blocking }, ...itemElements(added)));
      });
      return true;
    }, { targets: ["self"] });

    m.onIq("set", NS.blocking, "unblock", async (ev: IqEvent): Promise<true> => {
      const account = ev.from.bare;
      const items = itemsOf(ev.payload);
      await lock.run(account.toString(), async () => {
        const list = new Set(await blocklistOf(account));
        // §3.5: an unblock with no items empties the list.
        const removed = new Set(items.length === 0 ? list : items.filter((jid) => list.has(jid)));
        if (removed.size === 0) return;
        for (const jid of removed) list.delete(jid);
        await save(account, list);
        push(account, () => xml("unblock", { xmlns: NS.blocking }, ...(items.length === 0 ? [] : itemElements(removed))));
        await catchUpWith(account, removed);
      });
      return true;
    }, { targets: ["self"] });

    // ---- enforcement -----------------------------------------------------------------------------

    /** Inbound: a stanza for a local account, from anyone (a client, the server, a remote domain). */
    const inbound = async (ev: StanzaEvent): Promise<boolean> => {
      // The sender's own account blocked the addressee: server-generated traffic on its behalf.
      if (!ev.origin && (await blocks(ev.from.bare, ev.to))) return true;
      if (!(await blocks(ev.to.bare, ev.from))) return false;
      const type = ev.stanza.attrs.type;
      if (ev.kind === "message" || (ev.kind === "iq" && (type === "get" || type === "set"))) {
        m.bounce(ev, new StanzaError("service-unavailable"));
      }
      return true;
    };

    /** Outbound from a client: the account blocked the addressee. */
    const outbound = async (ev: StanzaEvent): Promise<boolean> => {
      if (!(await blocks(ev.from.bare, ev.to))) return false;
      // Answers are not answered (RFC 6120 §8.3.1): an IQ result or error is just not routed.
      const type = ev.stanza.attrs.type;
      if (!(ev.kind === "iq" && (type === "result" || type === "error"))) m.bounce(ev, blockedError());
      return true;
    };

    /** Outbound to a remote domain from the server on a local account's behalf. */
    const toRemote = async (ev: StanzaEvent): Promise<boolean> => !ev.origin && (await blocks(ev.from.bare, ev.to));

    for (const kind of ["message", "presence", "iq"]) {
      for (const target of ["bare", "full"]) m.hook<StanzaEvent>(`${kind}/${target}`, inbound, BLOCKING_PRIORITY);
      for (const target of ["bare", "full", "host"]) m.hook<StanzaEvent>(`pre-${kind}/${target}`, outbound, BLOCKING_PRIORITY);
    }
    m.hook<StanzaEvent>("route/remote", toRemote, BLOCKING_PRIORITY);
  },
});
