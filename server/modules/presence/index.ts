// RFC 6121 §3 (managing presence subscriptions, with §3.4 pre-approval and the state tables of
// Appendix A) and §4 (exchanging presence: initial presence, probes, broadcast, unavailable,
// directed presence, priority), with the presence parts of §8.5 (delivery to local accounts).
//
// Where things happen:
// - `pre-presence/{bare,full,host}` (a local client addressed someone): subscription stanzas
//   are processed on the sender's roster, stamped with the sender's bare JID and routed; other
//   presence is remembered as directed presence (§4.6) and left to the router.
// - `presence/self` (a client's presence with no 'to'): broadcast (§4.2, §4.4, §4.5).
// - `presence/bare`, `presence/full` (presence for a local account): subscription stanzas are
//   processed on the addressee's roster, probes are answered on the account's behalf (§4.3.2),
//   everything else is delivered (§8.5.2.1.2, §8.5.3).
// - `c2s/closed`: a resource that disappears goes unavailable (§4.5.2).
// Roster changes go through the roster module (ROSTER_UPDATE), so they are serialised with
// roster sets and pushed in order. Nothing is routed while an account's roster is locked.
import { randomBytes } from "node:crypto";
import { defineModule } from "../../core/module.ts";
import { Element, clone, xml } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import { tryParseJid, type Jid } from "../../../protocol/jid.ts";
import { delayElement } from "../../../protocol/delay.ts";
import { rosterItem, type RosterItem } from "../../core/storage/index.ts";
import type { StanzaEvent } from "../../core/router.ts";
import type { ClientSession } from "../../core/sessions.ts";
import type { SessionEvent, StreamFeaturesEvent } from "../../transports/c2s.ts";
import { ROSTER_UPDATE, type RosterUpdateEvent } from "../roster/api.ts";
import { KeyedLock } from "../roster/lock.ts";
import {
  NO_SUBSCRIPTION,
  SUBSCRIPTION_TYPES,
  hasFrom,
  hasTo,
  inbound,
  outbound,
  sameState,
  type InboundDecision,
  type OutboundDecision,
  type SubscriptionState,
  type SubscriptionType,
} from "./subscription.ts";
import { PendingRequests } from "./pending.ts";

const DEFAULT_MAX_PENDING = 200;

function stateOf(item: RosterItem | null, pendingIn: boolean): SubscriptionState {
  if (!item) return { ...NO_SUBSCRIPTION, pendingIn };
  return { subscription: item.subscription, pendingOut: item.askOut, pendingIn, approved: item.approved };
}

/** The roster item that records `state` (pending-in is kept elsewhere), or undefined for none. */
function itemFor(current: RosterItem | null, contact: string, state: SubscriptionState): RosterItem | undefined {
  const stateless = state.subscription === "none" && !state.pendingOut && !state.approved;
  // A contact the user never added gets no item just for having no subscription (§3.1.3).
  if (!current && stateless) return undefined;
  return { ...(current ?? rosterItem(contact)), subscription: state.subscription, askOut: state.pendingOut, approved: state.approved };
}

/** A copy of `presence` addressed to `to`. */
function addressed(presence: Element, to: string): Element {
  const copy = clone(presence);
  copy.attrs.to = to;
  return copy;
}

/** §4.7.2.3: an integer from -128 to 127, 0 when absent; the stanza is corrected to match. */
function takePriority(presence: Element): number {
  const el = presence.getChild("priority");
  if (!el) return 0;
  const text = el.getText().trim();
  const parsed = /^[+-]?\d{1,10}$/.test(text) ? Number(text) : 0;
  const priority = Math.max(-128, Math.min(127, parsed));
  // "If the server [overrides the priority] it MUST communicate the modified priority value."
  if (String(priority) !== text) el.text(String(priority));
  return priority;
}

function newId(): string {
  return randomBytes(6).toString("base64url");
}

export default defineModule({
  name: "presence",
  xeps: [
    {
      xep: "RFC 6121",
      version: "2011-03",
      status: "complete",
      note: "§3 subscriptions with §3.4 pre-approval and App. A states, §4 presence, §8.5 presence delivery",
    },
  ],
  depends: ["roster"],
  setup(m) {
    const maxPending = m.config.max_pending_requests ?? DEFAULT_MAX_PENDING;
    if (typeof maxPending !== "number" || !Number.isSafeInteger(maxPending) || maxPending < 1) {
      throw new Error(`[modules.presence] max_pending_requests must be a positive integer, got ${JSON.stringify(maxPending)}`);
    }
    const pending = new PendingRequests(m.store(), maxPending);
    const roster = m.storage.roster;
    // Presence of one resource is handled in order, and not after its session has gone (a late
    // broadcast of available presence would leave a ghost at every contact). The key is the full
    // JID, so that when a new session takes over a resource (RFC 6120 §7.7.2.2), the old one's
    // unavailable presence, claimed as the old one closes, goes out before the new one's presence.
    const resourceLock = new KeyedLock();
    const lockKey = (session: ClientSession): string => session.jid?.toString() ?? session.id;
    const gone = new WeakSet<ClientSession>();

    // §3.4: pre-approval is supported, and says so.
    m.hook<StreamFeaturesEvent>("c2s/features", ({ features }) => {
      features.append(xml("sub", { xmlns: NS.preApproval }));
    });

    const available = (account: Jid): ClientSession[] => m.sessions.resources(account).filter((s) => s.presence !== null && s.jid);
    const interested = (account: Jid): ClientSession[] => m.sessions.resources(account).filter((s) => s.interested && s.jid);

    /**
     * Changes the subscription state between `account` and `contact` under the account's roster
     * lock. `decide` sees the current state and returns the next; the roster item and the
     * pending-in record follow it. `beforePush` runs after the change is stored and before it
     * is pushed, when there is a push.
     */
    const updateSubscription = async (
      account: Jid,
      contact: string,
      decide: (state: SubscriptionState) => SubscriptionState,
      opts: { request?: Element; beforePush?: () => void } = {},
    ): Promise<{ before: SubscriptionState; after: SubscriptionState; pushed: boolean }> => {
      let before = NO_SUBSCRIPTION;
      let after = NO_SUBSCRIPTION;
      const ev: RosterUpdateEvent = {
        account,
        contact,
        change: async (current) => {
          const pendingIn = await pending.has(account, contact);
          before = stateOf(current, pendingIn);
          after = decide(before);
          if (sameState(before, after)) return undefined;
          if (after.pendingIn !== pendingIn) {
            if (!after.pendingIn) await pending.remove(account, contact);
            else if (!opts.request || !(await pending.add(account, contact, opts.request))) {
              // Too many unanswered requests: this one is dropped, as if never received.
              m.log.warn({ account: account.toString(), contact }, "too many pending subscription requests; dropping one");
              after = before;
              return undefined;
            }
          }
          return itemFor(current, contact, after);
        },
        beforePush: opts.beforePush,
      };
      if (!(await m.fire(ROSTER_UPDATE, ev))) throw new Error("the presence module needs the roster module loaded");
      return { before, after, pushed: ev.result?.version != null };
    };

    /** §3.1.5, §3.4: the user's current presence, from each available resource, to a new subscriber. */
    const sendCurrentPresence = async (account: Jid, to: string): Promise<void> => {
      for (const session of available(account)) await m.send(addressed(session.presence!, to));
    };

    /** §3.2.2, §3.3.3: unavailable from each available resource, to someone who loses the subscription. */
    const sendUnavailable = async (account: Jid, to: string): Promise<void> => {
      for (const session of available(account)) {
        await m.send(xml("presence", { from: session.jid!.toString(), to, type: "unavailable" }));
      }
    };

    // ---- outbound subscription stanzas (§3.1.1-2, §3.1.5, §3.2.1-2, §3.3.1-2, §3.4.2) ----------

    const outboundSubscription = async (ev: StanzaEvent, type: SubscriptionType): Promise<void> => {
      const account = ev.from.bare;
      // §3.1.2 rule 1: subscriptions are between bare JIDs, whatever the client wrote.
      const contact = ev.to.bare.toString();
      // Everyone is implicitly subscribed to their own presence (§4.2.2); there is nothing to manage.
      if (ev.to.bare.equals(account)) return;
      let decision: OutboundDecision = { route: false, next: NO_SUBSCRIPTION };
      const { before } = await updateSubscription(account, contact, (state) => {
        decision = outbound(type, state);
        return decision.next;
      });
      if (!decision.route) return;
      const stanza = clone(ev.stanza);
      stanza.attrs.from = account.toString();
      stanza.attrs.to = contact;
      // §3.2.2: while the contact is still subscribed, tell it every resource is gone.
      if (type === "unsubscribed" && hasFrom(before.subscription)) await sendUnavailable(account, contact);
      await m.send(stanza);
      // §3.1.5: an approval is followed by the user's current presence.
      if (type === "subscribed") await sendCurrentPresence(account, contact);
    };

    // ---- inbound subscription stanzas (§3.1.3, §3.1.6, §3.2.3, §3.3.3) ------------------------

    const inboundSubscription = async (ev: StanzaEvent, type: SubscriptionType): Promise<void> => {
      const account = ev.to.bare;
      const contact = ev.from.bare.toString();
      // §8.5.1: subscription stanzas for an account that does not exist are ignored.
      if (!(await m.storage.users.get(account.domain, account.local))) return;
      const stanza = clone(ev.stanza);
      stanza.attrs.from = contact;
      stanza.attrs.to = account.toString();
      let decision: InboundDecision = { deliver: false, next: NO_SUBSCRIPTION, autoReply: null };
      let delivered = false;
      const deliver = () => {
        if (delivered || !decision.deliver) return;
        delivered = true;
        // §3.1.3 rule 3: requests go to available resources; §3.1.6, §3.2.3, §3.3.3: the other
        // three to interested resources, before the roster push they explain.
        const to = type === "subscribe" ? available(account) : interested(account);
        for (const session of to) session.send(stanza);
      };
      const { before, after } = await updateSubscription(
        account,
        contact,
        (state) => {
          decision = inbound(type, state);
          return decision.next;
        },
        { request: type === "subscribe" ? stanza : undefined, beforePush: deliver },
      );
      // A dropped request (too many pending) changed nothing and is not delivered.
      if (type === "subscribe" && decision.deliver && !after.pendingIn) return;
      deliver();
      if (decision.autoReply) {
        await m.send(xml("presence", { from: account.toString(), to: contact, type: decision.autoReply, id: newId() }));
      }
      if (decision.autoReply === "subscribed") await sendCurrentPresence(account, contact);
      // §3.3.3 step 3: the former subscriber sees every resource go.
      if (type === "unsubscribe" && hasFrom(before.subscription)) await sendUnavailable(account, contact);
    };

    // ---- probes (§4.3.2, §4.6.6) ----------------------------------------------------------------

    const answerProbe = async (ev: StanzaEvent): Promise<void> => {
      const account = ev.to.bare;
      const prober = ev.from;
      const probeId = ev.stanza.attrs.id;
      const resources = ev.to.isBare()
        ? m.sessions.resources(account)
        : [m.sessions.get(ev.to)].filter((s): s is ClientSession => s !== undefined);
      const item = await roster.get(account.domain, account.local, prober.bare.toString());
      // An account is implicitly subscribed to itself (§4.2.2).
      const subscribed = hasFrom(item?.subscription ?? "none") || prober.bare.equals(account);
      if (!subscribed) {
        // §4.6.6: someone who got directed presence may ask about that resource, and learns
        // only whether it is there.
        let answered = false;
        for (const session of resources) {
          const told = session.directedPresence.has(prober.toString()) || session.directedPresence.has(prober.bare.toString());
          if (!told || !session.jid) continue;
          answered = true;
          await m.send(xml("presence", { from: session.jid.toString(), to: prober.toString(), id: probeId, type: session.presence ? undefined : "unavailable" }));
        }
        if (answered) return;
        // §4.3.2 rule 1: a remote server that believes it is subscribed learns otherwise, which
        // repairs its roster. Local accounts share this server's rosters and cannot disagree.
        if (!m.isLocalHost(prober.domain)) {
          await m.send(xml("presence", { from: account.toString(), to: prober.bare.toString(), type: "unsubscribed", id: probeId }));
        }
        return;
      }
      const online = resources.filter((s) => s.presence !== null && s.jid);
      if (online.length === 0) {
        // §4.3.2 rule 3: unavailable, from the address asked about, with the time it went offline.
        const reply = xml("presence", { from: ev.to.toString(), to: prober.toString(), type: "unavailable", id: probeId });
        if (ev.to.isBare()) {
          const last = await m.storage.lastActivity.get(account.domain, account.local);
          if (last) reply.append(delayElement(new Date(last.logoutSeconds * 1000)));
        }
        await m.send(reply);
        return;
      }
      for (const session of online) {
        // §4.3.2 rule 4: the full XML of each resource's last presence, keeping its id; a probe
        // of one full JID learns only that the resource is available.
        const reply = ev.to.isBare()
          ? addressed(session.presence!, prober.toString())
          : xml("presence", { from: session.jid!.toString(), to: prober.toString(), id: probeId });
        await m.send(reply);
      }
    };

    // ---- broadcast (§4.2, §4.4, §4.5) -------------------------------------------------------------

    const becomeAvailable = async (session: ClientSession, stanza: Element): Promise<void> => {
      if (gone.has(session) || !session.jid) return;
      const jid = session.jid;
      const account = jid.bare;
      const presence = clone(stanza);
      delete presence.attrs.to;
      presence.attrs.from = jid.toString();
      session.priority = takePriority(presence);
      const initial = session.presence === null;
      session.presence = presence;
      const { items } = await roster.list(account.domain, account.local);
      // §4.2.2, §4.4.2: to every subscriber, and to all of the account's available resources.
      // Contacts are independent of each other; one slow remote domain should not hold up the rest.
      await Promise.all(items.filter((i) => hasFrom(i.subscription)).map((i) => m.send(addressed(presence, i.jid))));
      for (const other of available(account)) other.send(addressed(presence, other.jid!.toString()));
      if (!initial) return;
      // §4.2.2, §4.3.1: ask for the presence of every contact the user is subscribed to. Probes
      // to local contacts come from the new resource, so that only it gets the answers; remote
      // ones from the bare JID, as the RFC says.
      await Promise.all(
        items.filter((i) => hasTo(i.subscription)).map((item) => {
          const local = m.isLocalHost(tryParseJid(item.jid)?.domain ?? "");
          return m.send(xml("presence", { type: "probe", from: local ? jid.toString() : account.toString(), to: item.jid, id: newId() }));
        }),
      );
      // The account's other resources, seen from the new one.
      for (const other of available(account)) {
        if (other !== session) session.send(addressed(other.presence!, jid.toString()));
      }
      // §3.1.3 rule 4: requests that arrived while the user was away, or are still unanswered.
      for (const request of (await pending.list(account)).values()) session.send(request);
    };

    /** §4.5.2: the resource goes unavailable, gracefully (`stanza`) or not (null). */
    const becomeUnavailable = async (session: ClientSession, stanza: Element | null): Promise<void> => {
      if (!session.jid) return;
      const jid = session.jid;
      const account = jid.bare;
      const wasAvailable = session.presence !== null;
      const directed = [...session.directedPresence];
      session.directedPresence.clear();
      session.presence = null;
      session.priority = 0;
      if (!wasAvailable && directed.length === 0) return;
      const unavailable = stanza ? clone(stanza) : xml("presence", { type: "unavailable" });
      delete unavailable.attrs.to;
      unavailable.attrs.from = jid.toString();
      const told = new Set<string>();
      if (wasAvailable) {
        const { items } = await roster.list(account.domain, account.local);
        const subscribers = items.filter((i) => hasFrom(i.subscription));
        for (const item of subscribers) told.add(item.jid);
        await Promise.all(subscribers.map((i) => m.send(addressed(unavailable, i.jid))));
        // The account's available resources, and the one that said it (when it still listens).
        for (const other of m.sessions.resources(account)) {
          if ((other.presence !== null || other === session) && other.jid) other.send(addressed(unavailable, other.jid.toString()));
        }
        // XEP-0012: when the account was last seen, and what it said on leaving.
        await m.storage.lastActivity.set(account.domain, account.local, {
          logoutSeconds: Math.floor(Date.now() / 1000),
          status: unavailable.getChildText("status") ?? "",
        });
      }
      // §4.6.3 rule 2: everyone who got directed presence learns that the resource has gone.
      const untold = directed.filter((to) => !told.has(tryParseJid(to)?.bare.toString() ?? to));
      await Promise.all(untold.map((to) => m.send(addressed(unavailable, to))));
    };

    // ---- hooks ------------------------------------------------------------------------------

    const fromClient = async (ev: StanzaEvent): Promise<boolean> => {
      const session = ev.origin;
      if (!session) return false;
      const type = ev.stanza.attrs.type;
      if (type !== undefined && SUBSCRIPTION_TYPES.has(type)) {
        await outboundSubscription(ev, type as SubscriptionType);
        return true;
      }
      if (type !== undefined && type !== "unavailable") return false;
      // §4.6: directed presence. The account's own resources are not "other entities".
      if (ev.to.bare.equals(ev.from.bare)) return false;
      const target = ev.to.toString();
      await resourceLock.run(lockKey(session), async () => {
        if (gone.has(session)) return;
        if (type === "unavailable") {
          session.directedPresence.delete(target);
          return;
        }
        // §4.6.3 rule 1: a subscriber hears about the end of the session from the broadcast.
        if (session.presence !== null) {
          const item = await roster.get(ev.from.domain, ev.from.local, ev.to.bare.toString());
          if (hasFrom(item?.subscription ?? "none")) return;
        }
        session.directedPresence.add(target);
      });
      return false;
    };
    m.hook<StanzaEvent>("pre-presence/bare", fromClient);
    m.hook<StanzaEvent>("pre-presence/full", fromClient);
    m.hook<StanzaEvent>("pre-presence/host", fromClient);

    m.hook<StanzaEvent>("presence/self", async (ev) => {
      const session = ev.origin;
      if (!session) return true;
      const type = ev.stanza.attrs.type;
      await resourceLock.run(lockKey(session), async () => {
        if (type === undefined) await becomeAvailable(session, ev.stanza);
        else if (type === "unavailable") await becomeUnavailable(session, ev.stanza);
        // Subscription stanzas and probes with no addressee have nothing to act on.
      });
      return true;
    });

    /** An unavailable presence from an entity ends the directed presence sent to it (§4.6.1). */
    const forgetDirected = (sessions: ClientSession[], from: Jid): void => {
      for (const session of sessions) session.directedPresence.delete(from.toString());
    };

    m.hook<StanzaEvent>("presence/bare", async (ev) => {
      const type = ev.stanza.attrs.type;
      if (type !== undefined && SUBSCRIPTION_TYPES.has(type)) {
        await inboundSubscription(ev, type as SubscriptionType);
        return true;
      }
      if (type === "probe") {
        await answerProbe(ev);
        return true;
      }
      // §8.5.2.1.2: to every available resource, with 'to' left as the bare JID.
      const recipients = available(ev.to.bare);
      if (type === "unavailable") forgetDirected(m.sessions.resources(ev.to.bare), ev.from);
      for (const session of recipients) session.send(ev.stanza);
      return true;
    });

    m.hook<StanzaEvent>("presence/full", async (ev) => {
      const type = ev.stanza.attrs.type;
      const session = m.sessions.get(ev.to);
      if (type !== undefined && SUBSCRIPTION_TYPES.has(type)) {
        // §3.1.3: a request to a full JID counts as one to the bare JID; §8.5.3.2.2: the other
        // three only when the resource exists.
        if (type === "subscribe" || session) await inboundSubscription(ev, type as SubscriptionType);
        return true;
      }
      if (type === "probe") {
        await answerProbe(ev);
        return true;
      }
      // §8.5.3.1: to the resource if it is connected; §8.5.3.2.2: otherwise dropped.
      if (session) {
        if (type === "unavailable") forgetDirected([session], ev.from);
        session.send(ev.stanza);
      }
      return true;
    });

    m.hook<SessionEvent>("c2s/closed", async ({ session }) => {
      gone.add(session);
      // Nobody above this hook catches (the connection is already gone), and an uncaught
      // rejection would end the process: a failure here is logged, not thrown.
      try {
        await resourceLock.run(lockKey(session), () => becomeUnavailable(session, null));
      } catch (err) {
        m.log.error({ err, jid: session.jid?.toString() }, "could not broadcast unavailable presence for a closed session");
      }
    });
  },
});
