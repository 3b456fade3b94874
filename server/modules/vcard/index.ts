// XEP-0054: vcard-temp 1.2. A user publishes their own vCard (an IQ set with no 'to', or to
// their own bare JID) and anyone may read it at the user's bare JID.
//
// §3.1 lets a server answer a request for a missing vCard with <item-not-found/> or with an
// empty <vCard/>. Parley sends the empty <vCard/>: clients treat it as "no vCard" either way,
// and several (avatar fetchers among them) show an error, or retry, on item-not-found.
// Publishing on someone else's JID is <forbidden/>; a request for an account that does not
// exist is <service-unavailable/>, as RFC 6121 §8.5.1 says for IQs to a missing account.
import { defineModule } from "../../core/module.ts";
import { NS } from "../../../protocol/ns.ts";
import { xml, type Element } from "../../../protocol/xml/element.ts";
import { StanzaError } from "../../../protocol/errors.ts";
import { vcardFromText, vcardToText } from "./stored.ts";
import type { Jid } from "../../../protocol/jid.ts";

/** Fired after an account published its vCard. */
export const VCARD_UPDATED_EVENT = "vcard/updated";
export interface VCardUpdatedEvent {
  jid: Jid;
  vcard: Element;
}

export default defineModule({
  name: "vcard",
  xeps: [{ xep: 54, version: "1.2", status: "complete", note: "A missing vCard is answered with an empty <vCard/>" }],
  setup(m) {
    m.addFeature(NS.vcard, "host");
    m.addFeature(NS.vcard, "account");

    const emptyVCard = () => xml("vCard", { xmlns: NS.vcard });

    async function vcardOf(account: Jid) {
      const stored = await m.storage.vcards.get(account.domain, account.local);
      if (!stored) return emptyVCard();
      const vcard = vcardFromText(stored.xml);
      if (!vcard) m.log.warn({ account: account.toString() }, "a stored vCard does not parse; answering with an empty one");
      return vcard ?? emptyVCard();
    }

    m.onIq("get", NS.vcard, "vCard", (ev) => vcardOf(ev.to.bare), { targets: ["self"] });

    m.onIq(
      "get",
      NS.vcard,
      "vCard",
      async (ev) => {
        if (!(await m.storage.users.exists(ev.to.domain, ev.to.local))) return; // service-unavailable
        return vcardOf(ev.to.bare);
      },
      { targets: ["bare"] },
    );

    m.onIq(
      "set",
      NS.vcard,
      "vCard",
      async (ev): Promise<true> => {
        await m.storage.vcards.set(ev.to.domain, ev.to.local, vcardToText(ev.payload));
        // Listeners (the avatar module's XEP-0398 conversion) follow the account's vCard.
        await m.fire<VCardUpdatedEvent>(VCARD_UPDATED_EVENT, { jid: ev.to.bare, vcard: ev.payload });
        return true;
      },
      { targets: ["self"] },
    );

    m.onIq(
      "set",
      NS.vcard,
      "vCard",
      () => {
        throw new StanzaError("forbidden", "you can only publish your own vCard");
      },
      { targets: ["bare"] },
    );
  },
});
