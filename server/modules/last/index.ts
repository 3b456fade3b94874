// XEP-0012: Last Activity 2.0. To the server (§5): seconds since it started. To an account's
// bare JID (§4): 0 while the account has an available resource, else the seconds since its
// last resource went offline and the status it left with.
//
// Who may ask about an account (§4): the account itself, and entities subscribed to its
// presence (the account's roster item for them is 'from' or 'both'); anyone else gets
// <forbidden/>. No such account is <service-unavailable/> (RFC 6121 §8.5.1), an account never
// seen offline is <item-not-found/>.
//
// The logout time and status are written by the presence module when a resource goes
// unavailable (RFC 6121 §4.5.2); this module only reads them.
import { StanzaError } from "../../../protocol/errors.ts";
import { NS } from "../../../protocol/ns.ts";
import { xml } from "../../../protocol/xml/element.ts";
import { defineModule, type ModuleApi } from "../../core/module.ts";
import type { IqEvent } from "../../core/router.ts";

const nowSeconds = () => Math.floor(Date.now() / 1000);

async function accountLastActivity(m: ModuleApi, ev: IqEvent) {
  const { domain, local } = ev.to;
  if (!(await m.storage.users.exists(domain, local))) throw new StanzaError("service-unavailable");
  if (ev.target !== "self") {
    const item = await m.storage.roster.get(domain, local, ev.from.bare.toString());
    if (item === null || (item.subscription !== "from" && item.subscription !== "both")) throw new StanzaError("forbidden");
  }
  if (m.sessions.resources(ev.to).some((s) => s.presence !== null)) return xml("query", { xmlns: NS.last, seconds: "0" });
  // A logout's record goes through the group-commit writer: one that happened before this
  // query is in the answer, committed or not yet.
  await m.storage.writer.sync().catch(() => {});
  const record = await m.storage.lastActivity.get(domain, local);
  if (!record) throw new StanzaError("item-not-found");
  const seconds = Math.max(0, nowSeconds() - record.logoutSeconds);
  return xml("query", { xmlns: NS.last, seconds: String(seconds) }, record.status === "" ? null : record.status);
}

export default defineModule({
  name: "last",
  xeps: [{ xep: 12, version: "2.0", status: "complete" }],
  setup(m) {
    const startedAt = nowSeconds();
    m.addFeature(NS.last);
    m.addFeature(NS.last, "account");

    m.onIq("get", NS.last, "query", () => xml("query", { xmlns: NS.last, seconds: String(nowSeconds() - startedAt) }), { targets: ["host"] });
    m.onIq("get", NS.last, "query", (ev) => accountLastActivity(m, ev), { targets: ["bare", "self"] });
  },
});
