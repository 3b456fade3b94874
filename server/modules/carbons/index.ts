// XEP-0280: Message Carbons 1.0.1 (urn:xmpp:carbons:2): every resource of a user that enables
// carbons sees both sides of the user's conversations. Which messages are copied: rules.ts (§6).
//
// - §3: the feature is the server's (a client asks its own server's disco#info before enabling).
// - §4, §5 (enable, disable): an IQ-set the client addresses to its own account (no 'to');
//   the state is per session (session.data), so a new stream starts with carbons off. Repeated
//   enables or disables are answered with a result (§10.1). Only a local client session can
//   enable its own carbons; anything else gets <not-allowed/> (§4.1).
// - Received copies (§7): after the message module has delivered a message under RFC 6121 §8.5,
//   `message/delivered` tells us which sessions got it; every other carbons-enabled session of
//   the recipient account gets <received/>. A message kept by offline storage counts as
//   delivered to nobody, so the enabled sessions (a negative priority, say) still see it.
// - Sent copies (§8): a message a client sends goes, as <sent/>, to every other carbons-enabled
//   session of the sender (whether or not the sender itself enabled carbons).
// - A message a user sends to their own account (bare or another resource of theirs) is both
//   sent and received; each session still gets it once, as §7 and §8 each intend: the addressed
//   session(s) the message itself, the sender nothing more, and every other enabled session one
//   <sent/> copy, since it is the user's own words.
// - Private (§9): <private/> or the XEP-0334 <no-copy/> hint means no copies, on either side;
//   the <private/> element is removed before the message reaches a local recipient (§9 "the
//   receiving server SHOULD remove"), but not on the way out to another server.
//
// Ordering (why the priorities): the archive (XEP-0313) adds its XEP-0359 <stanza-id/> on the
// message/* hooks above DELIVERY_PRIORITY, and the copies must carry the stanza as delivered.
// Received copies are made from `message/delivered`, which the message module fires from its
// DELIVERY_PRIORITY handler after the recipients got the message: after every archive hook,
// whatever its priority, and right after the original, so a copy never overtakes it. Sent
// copies are made on pre-message/* at DELIVERY_PRIORITY, below any outgoing-side archive or
// filter (blocking, privacy) that may stamp or stop the message first. <private/> is stripped at
// DELIVERY_PRIORITY + 1: after the archive has seen the message as sent, before delivery.
import { StanzaError } from "../../../protocol/errors.ts";
import { NS } from "../../../protocol/ns.ts";
import type { Element } from "../../../protocol/xml/element.ts";
import type { Jid } from "../../../protocol/jid.ts";
import { defineModule, type ModuleApi } from "../../core/module.ts";
import type { IqEvent, StanzaEvent } from "../../core/router.ts";
import type { ClientSession } from "../../core/sessions.ts";
import { DELIVERED_EVENT, DELIVERY_PRIORITY, type DeliveredMessageEvent } from "../message/index.ts";
import { carbonCopy, eligibleForCarbons, refusesCopies, type CarbonDirection } from "./rules.ts";

export { eligibleForCarbons, carbonCopy } from "./rules.ts";

/** Sent copies: on pre-message/*, after everything else on the sender's side. */
export const SENT_COPY_PRIORITY = DELIVERY_PRIORITY;
/** Removing <private/>: just before delivery to a local recipient. */
export const STRIP_PRIVATE_PRIORITY = DELIVERY_PRIORITY + 1;

const MODULE = "carbons";

/** Whether this session has enabled carbons (XEP-0280 §4). */
export function carbonsEnabled(session: ClientSession): boolean {
  return session.data.get(MODULE) === true;
}

function setEnabled(ev: IqEvent, on: boolean): true {
  const session = ev.origin;
  if (!session) throw new StanzaError("not-allowed", "only a client of this server can change its own carbons");
  if (on) session.data.set(MODULE, true);
  else session.data.delete(MODULE);
  return true;
}

/** Sends `direction` copies of `stanza` to the account's enabled sessions, except `skip`. */
function copyTo(m: ModuleApi, direction: CarbonDirection, stanza: Element, account: Jid, skip: ReadonlySet<ClientSession>): void {
  for (const session of m.sessions.resources(account)) {
    if (skip.has(session) || !session.jid || !carbonsEnabled(session)) continue;
    session.send(carbonCopy(direction, stanza, account, session.jid));
  }
}

export default defineModule({
  name: MODULE,
  xeps: [
    {
      xep: 280,
      version: "1.0.1",
      status: "complete",
      note: "§6.1 rules without copies of errors; urn:xmpp:carbons:rules:0 not advertised",
    },
  ],
  depends: ["message"],
  setup(m) {
    m.addFeature(NS.carbons);
    m.onIq("set", NS.carbons, "enable", (ev) => setEnabled(ev, true), { targets: ["self"] });
    m.onIq("set", NS.carbons, "disable", (ev) => setEnabled(ev, false), { targets: ["self"] });

    // Messages that asked for no copies, remembered across the removal of <private/>.
    const privateMessages = new WeakSet<Element>();

    const sent = (ev: StanzaEvent): void => {
      const origin = ev.origin;
      if (!origin) return;
      // To the user's own account: handled once it is known who got it (see message/delivered).
      if (ev.to.bare.equals(ev.from.bare)) return;
      if (!eligibleForCarbons(ev.stanza, "sent")) return;
      copyTo(m, "sent", ev.stanza, ev.from.bare, new Set([origin]));
    };
    for (const target of ["bare", "full", "self"]) m.hook(`pre-message/${target}`, sent, SENT_COPY_PRIORITY);

    const stripPrivate = (ev: StanzaEvent): void => {
      if (!refusesCopies(ev.stanza)) return;
      privateMessages.add(ev.stanza);
      const marker = ev.stanza.getChild("private", NS.carbons);
      if (marker) ev.stanza.remove(marker);
    };
    for (const target of ["bare", "full", "self"]) m.hook(`message/${target}`, stripPrivate, STRIP_PRIVATE_PRIORITY);

    m.hook<DeliveredMessageEvent>(DELIVERED_EVENT, (ev) => {
      if (privateMessages.has(ev.stanza)) return;
      const fromOwnClient = ev.origin !== null && ev.from.bare.equals(ev.account);
      const direction: CarbonDirection = fromOwnClient ? "sent" : "received";
      if (!eligibleForCarbons(ev.stanza, direction)) return;
      const skip = new Set(ev.recipients);
      // The sender of a message to its own account, or a local session writing to itself.
      for (const session of m.sessions.resources(ev.account)) if (session.jid?.equals(ev.from)) skip.add(session);
      copyTo(m, direction, ev.stanza, ev.account, skip);
    });
  },
});
