// XEP-0049: Private XML Storage 1.2. An account keeps one XML fragment per namespace, readable and
// writable only by itself. A get for a namespace with nothing stored returns the empty element
// asked for (§3.1); another account's storage is <forbidden/> (§3.3); the reserved jabber:*
// namespaces and a query without exactly one child are <not-acceptable/> (§3.2, §2).
// Fragments are small (client settings, legacy bookmarks): the module key-value store holds them.
// `storage:bookmarks` is answered by the bookmarks module first when it is loaded (XEP-0402 compat).
import { defineModule } from "../../core/module.ts";
import { NS } from "../../../protocol/ns.ts";
import { xml, childElements, type Element } from "../../../protocol/xml/element.ts";
import { StanzaError } from "../../../protocol/errors.ts";
import { stanzaFromText, stanzaToText } from "../../core/storage/stanza-text.ts";
import type { IqEvent } from "../../core/router.ts";

/** The one child of the query, refused when the XEP says so. */
function fragmentOf(ev: IqEvent): Element {
  const children = childElements(ev.payload);
  if (children.length !== 1) throw new StanzaError("not-acceptable", "exactly one child element is stored or asked for");
  const child = children[0]!;
  const ns = child.getNS() ?? "";
  if (ns === "" || ns.startsWith("jabber:")) throw new StanzaError("not-acceptable", "that namespace cannot be used for private storage");
  return child;
}

export default defineModule({
  name: "private",
  xeps: [{ xep: 49, version: "1.2", status: "complete" }],
  setup(m) {
    const store = m.store();
    m.addFeature(NS.privateStorage, "account");

    m.onIq("get", NS.privateStorage, "query", async (ev) => {
      const asked = fragmentOf(ev);
      const ns = asked.getNS()!;
      const stored = await store.get(ev.from.bare, `ns:${ns}`);
      const fragment = typeof stored === "string" ? stanzaFromText(stored) : null;
      return xml("query", { xmlns: NS.privateStorage }, fragment ?? xml(asked.getName(), { xmlns: ns }));
    }, { targets: ["self"] });

    m.onIq("set", NS.privateStorage, "query", async (ev): Promise<true> => {
      const fragment = fragmentOf(ev);
      await store.set(ev.from.bare, `ns:${fragment.getNS()!}`, stanzaToText(fragment));
      return true;
    }, { targets: ["self"] });

    for (const type of ["get", "set"] as const) {
      m.onIq(type, NS.privateStorage, "query", () => {
        throw new StanzaError("forbidden", "private storage is for the account itself");
      }, { targets: ["bare"] });
    }
  },
});
