// RFC 6121 Appendix A (subscription states) as two pure functions: Tables 2-5 for subscription
// stanzas a local user sends (outbound), Tables 6-9 for those a local user receives (inbound),
// with §3.4 pre-approval folded in. States are seen from the user's side, as in the RFC.
import type { Subscription } from "../../core/storage/index.ts";

export type SubscriptionType = "subscribe" | "subscribed" | "unsubscribe" | "unsubscribed";

export const SUBSCRIPTION_TYPES: ReadonlySet<string> = new Set<SubscriptionType>(["subscribe", "subscribed", "unsubscribe", "unsubscribed"]);

export interface SubscriptionState {
  subscription: Subscription;
  /** "Pending Out": the user asked the contact and has no answer yet (ask='subscribe'). */
  pendingOut: boolean;
  /** "Pending In": the contact asked the user and has no answer yet. */
  pendingIn: boolean;
  /** §3.4: the user pre-approved a request the contact has not made yet. */
  approved: boolean;
}

export const NO_SUBSCRIPTION: SubscriptionState = { subscription: "none", pendingOut: false, pendingIn: false, approved: false };

export interface OutboundDecision {
  /** Whether the stanza goes on to the contact ("ROUTE?" in Tables 2-5). */
  route: boolean;
  next: SubscriptionState;
}

export interface InboundDecision {
  /** Whether the stanza is delivered to the user ("DELIVER?" in Tables 6-9). */
  deliver: boolean;
  next: SubscriptionState;
  /** What the server answers on the user's behalf (Table 6 [2], §3.1.3 rule 2, Table 7 [1]). */
  autoReply: "subscribed" | "unsubscribed" | null;
}

export function hasTo(s: Subscription): boolean {
  return s === "to" || s === "both";
}

export function hasFrom(s: Subscription): boolean {
  return s === "from" || s === "both";
}

function compose(to: boolean, from: boolean): Subscription {
  return to ? (from ? "both" : "to") : from ? "from" : "none";
}

function withTo(s: Subscription, to: boolean): Subscription {
  return compose(to, hasFrom(s));
}

function withFrom(s: Subscription, from: boolean): Subscription {
  return compose(hasTo(s), from);
}

/** Tables 2-5 and §3.4.2: the user sends a subscription stanza to the contact. */
export function outbound(type: SubscriptionType, state: SubscriptionState): OutboundDecision {
  const s = state.subscription;
  switch (type) {
    case "subscribe":
      // Table 2: always routed; "Pending Out" unless the user is already subscribed.
      return { route: true, next: hasTo(s) ? state : { ...state, pendingOut: true } };
    case "unsubscribe":
      // Table 3: always routed; the user's subscription and any pending request end.
      return { route: true, next: { ...state, subscription: withTo(s, false), pendingOut: false } };
    case "subscribed":
      // Table 4: an answer to a pending request is routed; without one it is a pre-approval,
      // unless the contact is subscribed already.
      if (state.pendingIn) return { route: true, next: { ...state, subscription: withFrom(s, true), pendingIn: false, approved: false } };
      if (hasFrom(s)) return { route: false, next: state };
      return { route: false, next: { ...state, approved: true } };
    case "unsubscribed":
      // Table 5: denying a request or cancelling the contact's subscription is routed; otherwise
      // it only cancels a pre-approval (§3.2.2 rules 1-2).
      if (state.pendingIn || hasFrom(s)) {
        return { route: true, next: { ...state, subscription: withFrom(s, false), pendingIn: false, approved: false } };
      }
      return { route: false, next: { ...state, approved: false } };
  }
}

/** Tables 6-9 and §3.1.3: the contact sends a subscription stanza to the user. */
export function inbound(type: SubscriptionType, state: SubscriptionState): InboundDecision {
  const s = state.subscription;
  switch (type) {
    case "subscribe":
      // Table 6 [2]: already subscribed, so the contact only lost track; say yes again.
      if (hasFrom(s)) return { deliver: false, next: state, autoReply: "subscribed" };
      // §3.1.3 rule 2 and Table 6 [1]: a pre-approved request is granted at once.
      if (state.approved) return { deliver: false, next: { ...state, subscription: withFrom(s, true), approved: false }, autoReply: "subscribed" };
      // Table 6: one pending request per contact is enough.
      if (state.pendingIn) return { deliver: false, next: state, autoReply: null };
      return { deliver: true, next: { ...state, pendingIn: true }, autoReply: null };
    case "unsubscribe":
      // Table 7: the contact drops its subscription or withdraws its request.
      if (hasFrom(s) || state.pendingIn) {
        return { deliver: true, next: { ...state, subscription: withFrom(s, false), pendingIn: false }, autoReply: "unsubscribed" };
      }
      return { deliver: false, next: state, autoReply: null };
    case "subscribed":
      // Table 8: only an answer to the user's pending request counts.
      if (state.pendingOut) return { deliver: true, next: { ...state, subscription: withTo(s, true), pendingOut: false }, autoReply: null };
      return { deliver: false, next: state, autoReply: null };
    case "unsubscribed":
      // Table 9: a refusal of the user's request, or the end of the user's subscription.
      if (state.pendingOut || hasTo(s)) {
        return { deliver: true, next: { ...state, subscription: withTo(s, false), pendingOut: false }, autoReply: null };
      }
      return { deliver: false, next: state, autoReply: null };
  }
}

export function sameState(a: SubscriptionState, b: SubscriptionState): boolean {
  return a.subscription === b.subscription && a.pendingOut === b.pendingOut && a.pendingIn === b.pendingIn && a.approved === b.approved;
}
