// RFC 6121 §2 (managing the roster) with XEP-0237 v1.3 / RFC 6121 §2.6 (roster versioning).
//
// Roster gets and sets are handled for the account itself only (`self`); a roster request to
// another account is refused with <forbidden/> (§2.1.5, §2.3.3). Every change, whether from a
// roster set or from the presence module's subscription handling (ROSTER_UPDATE), is made under
// the account's lock, bumps the version once and is pushed to the interested resources (§2.1.6)
// with that version, so pushes arrive in the order of the changes (§2.6.3).
import { randomBytes } from "node:crypto";
import { defineModule, iqResult, type ModuleApi } from "../../core/module.ts";
import { xml, type Element } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import { StanzaError } from "../../../protocol/errors.ts";
import { rosterItem, type RosterItem } from "../../core/storage/index.ts";
import type { IqEvent } from "../../core/router.ts";
import type { Jid } from "../../../protocol/jid.ts";
import type { StreamFeaturesEvent } from "../../transports/c2s.ts";
import { ROSTER_UPDATE, hasFrom, hasTo, type RosterUpdateEvent } from "./api.ts";
import { itemElement, parseRosterSet, removedItemElement, sameItem, type RosterLimits } from "./items.ts";
import { KeyedLock } from "./lock.ts";

export interface RosterSettings extends RosterLimits {
  /** Most items one roster may hold; adding more is a <policy-violation/>. */
  maxItems: number;
}

const DEFAULTS: RosterSettings = { maxItems: 1000, maxNameLength: 1024, maxGroupLength: 1024, maxGroups: 64 };

function readSettings(m: ModuleApi): RosterSettings {
  const positive = (key: string, fallback: number): number => {
    const value = m.config[key];
    if (value === undefined) return fallback;
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1) {
      throw new Error(`[modules.roster] ${key} must be a positive integer, got ${JSON.stringify(value)}`);
    }
    return value;
  };
  return {
    maxItems: positive("max_items", DEFAULTS.maxItems),
    maxNameLength: positive("max_name_length", DEFAULTS.maxNameLength),
    maxGroupLength: positive("max_group_length", DEFAULTS.maxGroupLength),
    maxGroups: positive("max_groups", DEFAULTS.maxGroups),
  };
}

export default defineModule({
  name: "roster",
  xeps: [
    { xep: "RFC 6121", version: "2011-03", status: "complete", note: "§2 roster management; §3 subscriptions are in the presence module" },
    { xep: 237, version: "1.3", status: "complete", note: "a stale version gets the whole roster, not interim pushes" },
  ],
  setup(m) {
    const settings = readSettings(m);
    const lock = new KeyedLock();
    const roster = m.storage.roster;

    // §2.6.1: versioning is merely advertised, never negotiated.
    m.hook<StreamFeaturesEvent>("c2s/features", ({ features }) => {
      features.append(xml("ver", { xmlns: NS.rosterVersioning }));
    });

    /** §2.1.6: a push of one item to every interested resource, each with its own id. */
    const push = (account: Jid, item: () => Element, version: number): void => {
      for (const session of m.sessions.resources(account)) {
        if (!session.interested || !session.jid) continue;
        // No 'from': a push is implicitly from the account's bare JID (§2.1.6 rule 2).
        session.send(
          xml("iq", { type: "set", id: `push-${randomBytes(6).toString("base64url")}`, to: session.jid.toString() },
            xml("query", { xmlns: NS.roster, ver: String(version) }, item())),
        );
      }
    };

    const pushChange = (account: Jid, contact: string, after: RosterItem | null, version: number): void => {
      push(account, () => (after ? itemElement(after) : removedItemElement(contact)), version);
    };

    /** Answers the roster IQ of `ev` on the connection it came from. */
    const answer = (ev: IqEvent, payload?: Element): void => {
      const origin = ev.origin!;
      const reply = iqResult(ev.stanza, payload);
      reply.attrs.to = origin.jid?.toString() ?? reply.attrs.to;
      origin.send(reply);
    };

    const makesRoom = async (account: Jid, before: RosterItem | null): Promise<void> => {
      if (before) return;
      const { items } = await roster.list(account.domain, account.local);
      if (items.length >= settings.maxItems) throw new StanzaError("policy-violation", `a roster holds at most ${settings.maxItems} contacts`);
    };

    /**
     * §2.5.2: removing a contact ends the subscriptions both ways. Routed after the lock is
     * released, because the contact's server (maybe this one) answers and takes its own lock.
     */
    const cancelSubscriptions = async (account: Jid, removed: RosterItem): Promise<void> => {
      const from = account.toString();
      const id = () => randomBytes(6).toString("base64url");
      // A pending request is withdrawn too, so the contact is not left with a question nobody asks.
      if (hasTo(removed) || removed.askOut) {
        await m.send(xml("presence", { from, to: removed.jid, type: "unsubscribe", id: id() }));
      }
      if (hasFrom(removed)) {
        // §3.2.2: unavailable from every available resource while the contact is still subscribed.
        for (const session of m.sessions.resources(account)) {
          if (session.presence && session.jid) {
            await m.send(xml("presence", { from: session.jid.toString(), to: removed.jid, type: "unavailable" }));
          }
        }
        await m.send(xml("presence", { from, to: removed.jid, type: "unsubscribed", id: id() }));
      }
    };

    // §2.1.3, §2.2: the roster get, with XEP-0237 versioning.
    m.hook<IqEvent>(`iq-get/self/${NS.roster}:query`, async (ev) => {
      if (!ev.origin) return false;
      const account = ev.from.bare;
      await lock.run(account.toString(), async () => {
        // Interested from now on: any change after this read is pushed (§2.1.6), and since
        // changes take the same lock, none can fall between the read and the result.
        ev.origin!.interested = true;
        const { version, items } = await roster.list(account.domain, account.local);
        const known = ev.payload.attrs.ver;
        // §2.6.3: the client's copy is current, so an empty result; pushes will bring changes.
        if (known !== undefined && known === String(version)) return answer(ev);
        answer(ev, xml("query", { xmlns: NS.roster, ver: String(version) }, ...items.map(itemElement)));
      });
      return true;
    });

    // §2.3, §2.4, §2.5: add, update and remove.
    m.hook<IqEvent>(`iq-set/self/${NS.roster}:query`, async (ev) => {
      if (!ev.origin) return false;
      const account = ev.from.bare;
      let removed: RosterItem | null;
      try {
        const request = parseRosterSet(ev.payload, settings);
        const contact = request.jid.toString();
        if (request.kind === "update" && request.jid.equals(account)) {
          // RFC 6121 §2.3.3 interoperability note: what other servers answer for one's own JID.
          throw new StanzaError("not-allowed", "your own JID cannot be a contact in your roster");
        }
        removed = await lock.run(account.toString(), async (): Promise<RosterItem | null> => {
          const before = await roster.get(account.domain, account.local, contact);
          if (request.kind === "remove") {
            // §2.5.3 (its example shows type 'modify'; RFC 6120 §8.3.3.7 makes it 'cancel').
            if (!before) throw new StanzaError("item-not-found", `${contact} is not in the roster`);
            const version = await roster.remove(account.domain, account.local, contact);
            answer(ev);
            if (version !== null) pushChange(account, contact, null, version);
            return before;
          }
          await makesRoom(account, before);
          // §2.4.1: the item is replaced as sent; the subscription state is the server's to keep.
          const after: RosterItem = { ...(before ?? rosterItem(contact)), name: request.name, groups: request.groups };
          if (sameItem(before, after)) {
            answer(ev);
            return null;
          }
          const version = await roster.upsert(account.domain, account.local, after);
          answer(ev);
          pushChange(account, contact, after, version);
          return null;
        });
      } catch (err) {
        if (!(err instanceof StanzaError)) throw err;
        m.bounce(ev, err);
        return true;
      }
      if (removed) await cancelSubscriptions(account, removed);
      return true;
    });

    // §2.1.5, §2.3.3: only the account itself may read or change its roster.
    const refuse = () => {
      throw new StanzaError("forbidden", "a roster belongs to its account alone");
    };
    m.onIq("get", NS.roster, "query", refuse, { targets: ["bare"] });
    m.onIq("set", NS.roster, "query", refuse, { targets: ["bare"] });

    m.hook<RosterUpdateEvent>(ROSTER_UPDATE, async (ev) => {
      const { account, contact } = ev;
      await lock.run(account.bare.toString(), async () => {
        const before = await roster.get(account.domain, account.local, contact);
        const next = await ev.change(before);
        if (next === undefined || sameItem(before, next) || (next === null && before === null)) {
          ev.result = { before, after: before, version: null };
          return;
        }
        let version: number | null;
        if (next === null) {
          version = await roster.remove(account.domain, account.local, contact);
        } else {
          if (next.jid !== contact) throw new TypeError(`roster/update for ${contact} returned an item for ${next.jid}`);
          await makesRoom(account, before);
          version = await roster.upsert(account.domain, account.local, next);
        }
        ev.result = { before, after: next, version };
        ev.beforePush?.(next);
        if (version !== null) pushChange(account.bare, contact, next, version);
      });
      return true;
    });
  },
});
