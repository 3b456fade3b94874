// Specs for server/modules/presence/subscription.ts against RFC 6121 Appendix A: every row of
// Tables 2-9 (the RFC's own tables, transcribed), and a property: two servers that apply the
// tables to each other's stanzas never disagree about who is subscribed to whom.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  NO_SUBSCRIPTION,
  inbound,
  outbound,
  type SubscriptionState,
  type SubscriptionType,
} from "../../../server/modules/presence/subscription.ts";

const STATES: Record<string, SubscriptionState> = {
  "None": { ...NO_SUBSCRIPTION },
  "None + Pending Out": { ...NO_SUBSCRIPTION, pendingOut: true },
  "None + Pending In": { ...NO_SUBSCRIPTION, pendingIn: true },
  "None + Pending Out+In": { ...NO_SUBSCRIPTION, pendingOut: true, pendingIn: true },
  "To": { ...NO_SUBSCRIPTION, subscription: "to" },
  "To + Pending In": { ...NO_SUBSCRIPTION, subscription: "to", pendingIn: true },
  "From": { ...NO_SUBSCRIPTION, subscription: "from" },
  "From + Pending Out": { ...NO_SUBSCRIPTION, subscription: "from", pendingOut: true },
  "Both": { ...NO_SUBSCRIPTION, subscription: "both" },
};

function nameOf(s: SubscriptionState): string {
  const found = Object.entries(STATES).find(([, v]) => v.subscription === s.subscription && v.pendingIn === s.pendingIn && v.pendingOut === s.pendingOut);
  assert.ok(found, `not one of the nine states: ${JSON.stringify(s)}`);
  return found[0];
}

// [existing state, routed or delivered, new state ("" = no state change, "pre-approval")]
type Row = [string, boolean, string];

const OUTBOUND: Record<SubscriptionType, Row[]> = {
  // Table 2
  subscribe: [
    ["None", true, "None + Pending Out"],
    ["None + Pending Out", true, ""],
    ["None + Pending In", true, "None + Pending Out+In"],
    ["None + Pending Out+In", true, ""],
    ["To", true, ""],
    ["To + Pending In", true, ""],
    ["From", true, "From + Pending Out"],
    ["From + Pending Out", true, ""],
    ["Both", true, ""],
  ],
  // Table 3
  unsubscribe: [
    ["None", true, ""],
    ["None + Pending Out", true, "None"],
    ["None + Pending In", true, ""],
    ["None + Pending Out+In", true, "None + Pending In"],
    ["To", true, "None"],
    ["To + Pending In", true, "None + Pending In"],
    ["From", true, ""],
    ["From + Pending Out", true, "From"],
    ["Both", true, "From"],
  ],
  // Table 4
  subscribed: [
    ["None", false, "pre-approval"],
    ["None + Pending Out", false, "pre-approval"],
    ["None + Pending In", true, "From"],
    ["None + Pending Out+In", true, "From + Pending Out"],
    ["To", false, "pre-approval"],
    ["To + Pending In", true, "Both"],
    ["From", false, ""],
    ["From + Pending Out", false, ""],
    ["Both", false, ""],
  ],
  // Table 5
  unsubscribed: [
    ["None", false, ""],
    ["None + Pending Out", false, ""],
    ["None + Pending In", true, "None"],
    ["None + Pending Out+In", true, "None + Pending Out"],
    ["To", false, ""],
    ["To + Pending In", true, "To"],
    ["From", true, "None"],
    ["From + Pending Out", true, "None + Pending Out"],
    ["Both", true, "To"],
  ],
};

const INBOUND: Record<SubscriptionType, Row[]> = {
  // Table 6
  subscribe: [
    ["None", true, "None + Pending In"],
    ["None + Pending Out", true, "None + Pending Out+In"],
    ["None + Pending In", false, ""],
    ["None + Pending Out+In", false, ""],
    ["To", true, "To + Pending In"],
    ["To + Pending In", false, ""],
    ["From", false, ""],
    ["From + Pending Out", false, ""],
    ["Both", false, ""],
  ],
  // Table 7
  unsubscribe: [
    ["None", false, ""],
    ["None + Pending Out", false, ""],
    ["None + Pending In", true, "None"],
    ["None + Pending Out+In", true, "None + Pending Out"],
    ["To", false, ""],
    ["To + Pending In", true, "To"],
    ["From", true, "None"],
    ["From + Pending Out", true, "None + Pending Out"],
    ["Both", true, "To"],
  ],
  // Table 8
  subscribed: [
    ["None", false, ""],
    ["None + Pending Out", true, "To"],
    ["None + Pending In", false, ""],
    ["None + Pending Out+In", true, "To + Pending In"],
    ["To", false, ""],
    ["To + Pending In", false, ""],
    ["From", false, ""],
    ["From + Pending Out", true, "Both"],
    ["Both", false, ""],
  ],
  // Table 9
  unsubscribed: [
    ["None", false, ""],
    ["None + Pending Out", true, "None"],
    ["None + Pending In", false, ""],
    ["None + Pending Out+In", true, "None + Pending In"],
    ["To", true, "None"],
    ["To + Pending In", true, "None + Pending In"],
    ["From", false, ""],
    ["From + Pending Out", true, "From"],
    ["Both", true, "From"],
  ],
};

const TYPES: SubscriptionType[] = ["subscribe", "unsubscribe", "subscribed", "unsubscribed"];

describe("outbound subscription stanzas (RFC 6121 Tables 2-5)", () => {
  for (const type of TYPES) {
    for (const [existing, route, next] of OUTBOUND[type]) {
      test(`${type} in "${existing}": ${route ? "routed" : "not routed"}, ${next || "no state change"}`, () => {
        const d = outbound(type, STATES[existing]);
        assert.equal(d.route, route);
        if (next === "pre-approval") {
          assert.equal(nameOf(d.next), existing);
          assert.equal(d.next.approved, true);
        } else {
          assert.equal(nameOf(d.next), next || existing);
        }
      });
    }
  }

  test("unsubscribed cancels a pre-approval without routing (§3.2.2 rule 2)", () => {
    for (const existing of ["None", "None + Pending Out", "To"]) {
      const d = outbound("unsubscribed", { ...STATES[existing], approved: true });
      assert.equal(d.route, false);
      assert.equal(d.next.approved, false);
      assert.equal(nameOf(d.next), existing);
    }
  });
});

describe("inbound subscription stanzas (RFC 6121 Tables 6-9)", () => {
  for (const type of TYPES) {
    for (const [existing, deliver, next] of INBOUND[type]) {
      test(`${type} in "${existing}": ${deliver ? "delivered" : "not delivered"}, ${next || "no state change"}`, () => {
        const d = inbound(type, STATES[existing]);
        assert.equal(d.deliver, deliver);
        assert.equal(nameOf(d.next), next || existing);
      });
    }
  }

  test("a subscriber asking again is answered subscribed (Table 6 [2])", () => {
    for (const existing of ["From", "From + Pending Out", "Both"]) assert.equal(inbound("subscribe", STATES[existing]).autoReply, "subscribed");
  });

  test("a pre-approved request is granted on the spot, and the approval used up (§3.4, Table 6 [1])", () => {
    for (const [existing, granted] of [["None", "From"], ["None + Pending Out", "From + Pending Out"], ["To", "Both"]]) {
      const d = inbound("subscribe", { ...STATES[existing], approved: true });
      assert.equal(d.deliver, false);
      assert.equal(d.autoReply, "subscribed");
      assert.equal(nameOf(d.next), granted);
      assert.equal(d.next.approved, false);
    }
  });

  test("an unsubscribe that changes the state is answered unsubscribed (Table 7 [1])", () => {
    for (const [existing, , next] of INBOUND.unsubscribe) {
      assert.equal(inbound("unsubscribe", STATES[existing]).autoReply, next ? "unsubscribed" : null);
    }
  });
});

test("two servers applying the tables to each other's stanzas always agree (property)", () => {
  type Side = "user" | "contact";
  const action = fc.record({ by: fc.constantFrom<Side>("user", "contact"), type: fc.constantFrom(...TYPES) });
  fc.assert(
    fc.property(fc.array(action, { maxLength: 40 }), (actions) => {
      const s: Record<Side, SubscriptionState> = { user: { ...NO_SUBSCRIPTION }, contact: { ...NO_SUBSCRIPTION } };
      const other = (side: Side): Side => (side === "user" ? "contact" : "user");
      for (const { by, type } of actions) {
        const out = outbound(type, s[by]);
        s[by] = out.next;
        if (!out.route) continue;
        const to = other(by);
        const received = inbound(type, s[to]);
        s[to] = received.next;
        if (received.autoReply) s[by] = inbound(received.autoReply, s[by]).next;
        for (const side of ["user", "contact"] as const) {
          const mine = s[side];
          const theirs = s[other(side)];
          const to_ = mine.subscription === "to" || mine.subscription === "both";
          const from_ = theirs.subscription === "from" || theirs.subscription === "both";
          assert.equal(to_, from_, `${side}'s 'to' and the other's 'from' agree after ${by} sent ${type}`);
          assert.equal(mine.pendingOut, theirs.pendingIn, `${side}'s request is pending on both sides after ${by} sent ${type}`);
          nameOf(mine);
          // A pre-approval only lasts while the contact is neither subscribed nor asking.
          if (mine.approved) assert.ok(mine.subscription !== "from" && mine.subscription !== "both" && !mine.pendingIn);
        }
      }
    }),
    { numRuns: 500 },
  );
});
