// XEP-0030: Service Discovery 2.5 (disco#info and disco#items of the server and of accounts),
// XEP-0128: Service Discovery Extensions 1.0 (forms other modules append), and XEP-0115: Entity
// Capabilities 1.6.0 for the server (the <c/> stream feature and its node#ver disco node).
//
// What is advertised is read from the server's registry at request time, so a module loaded
// after this one is still listed, and a module that is not loaded is not.
//
// Accounts (XEP-0030 §3.1 lets the server answer for them): the account itself may always ask;
// another entity only if it is subscribed to the account's presence (the account's roster item
// for it is 'from' or 'both'), the rule RFC 6121 uses for presence and XEP-0012 for last
// activity. Everybody else, and anybody asking about an account that does not exist, gets the
// same <service-unavailable/> (RFC 6121 §8.5.1), so the answer does not reveal which accounts
// exist.
//
// Nodes: the server's caps node (https://parley.im#<ver>) is answered as XEP-0115 §6.2
// requires; any other node is <item-not-found/>. A module that serves nodes (ad-hoc commands,
// PEP) answers them with its own m.onIq at a priority above DISCO_PRIORITY.
import { StanzaError } from "../../../protocol/errors.ts";
import { NS } from "../../../protocol/ns.ts";
import { Element, xml } from "../../../protocol/xml/element.ts";
import { parseJid, type Jid } from "../../../protocol/jid.ts";
import { parseForm, type DataForm } from "../../../protocol/forms.ts";
import { capsElement, capsVer, type CapsIdentity } from "../../../protocol/caps.ts";
import { defineModule, type ModuleApi } from "../../core/module.ts";
import type { IqEvent } from "../../core/router.ts";
import type { DiscoInfo } from "../../core/module.ts";
import type { StreamFeaturesEvent } from "../../transports/c2s.ts";

/** XEP-0115 §4: the URI that names the software; the server's node#ver is its disco node. */
export const CAPS_NODE = "https://parley.im";

/** Below default, so a module answering its own nodes goes first whatever the load order. */
export const DISCO_PRIORITY = -10;

/**
 * XEP-0128: append extension forms (<x xmlns='jabber:x:data' type='result'/> with a hidden
 * FORM_TYPE) to `forms`. For the server, handlers must be synchronous: the XEP-0115 hash is
 * computed for the stream features, which cannot wait.
 */
export const INFO_EXTENSIONS_EVENT = "disco/info-extensions";

/** Append items (components, PEP nodes) to a node-less disco#items answer. */
export const ITEMS_EVENT = "disco/items";

export type DiscoTarget = "host" | "account";

export interface DiscoInfoExtensionsEvent {
  readonly target: DiscoTarget;
  /** The server's domain or the account's bare JID. */
  readonly to: Jid;
  readonly forms: Element[];
}

export interface DiscoItem {
  jid: string;
  node?: string;
  name?: string;
}

export interface DiscoItemsEvent {
  readonly target: DiscoTarget;
  readonly to: Jid;
  /** Who asks: items may depend on it (a contact sees the PEP nodes it may read). */
  readonly from: Jid;
  readonly items: DiscoItem[];
}

interface Answer {
  /** What the XEP-0115 hash covers. */
  input: { identities: CapsIdentity[]; features: string[]; forms: DataForm[] };
  /** The same forms, as sent. */
  forms: Element[];
}

function uniqueIdentities(info: DiscoInfo): CapsIdentity[] {
  const seen = new Map<string, CapsIdentity>();
  for (const id of info.identities) {
    const key = `${id.category}/${id.type}/${id.name ?? ""}`;
    if (!seen.has(key)) seen.set(key, { category: id.category, type: id.type, ...(id.name !== undefined ? { name: id.name } : {}) });
  }
  return [...seen.values()];
}

/** Runs the extension event; with synchronous handlers `forms` is complete when this returns. */
function gatherForms(m: ModuleApi, target: DiscoTarget, to: Jid): { forms: Element[]; done: Promise<boolean> } {
  const forms: Element[] = [];
  const done = m.fire<DiscoInfoExtensionsEvent>(INFO_EXTENSIONS_EVENT, { target, to, forms });
  return { forms, done };
}

function answerOf(info: DiscoInfo, forms: Element[], log: ModuleApi["log"]): Answer {
  const parsed: DataForm[] = [];
  const kept: Element[] = [];
  for (const form of forms) {
    try {
      parsed.push(parseForm(form));
      kept.push(form);
    } catch (err) {
      log.warn({ err }, "a disco#info extension is not a valid data form; left out");
    }
  }
  return { input: { identities: uniqueIdentities(info), features: [...info.features], forms: parsed }, forms: kept };
}

function infoQuery(answer: Answer, node: string | undefined): Element {
  const query = xml("query", { xmlns: NS.discoInfo, node });
  for (const id of answer.input.identities) query.append(xml("identity", { category: id.category, type: id.type, name: id.name }));
  for (const feature of answer.input.features) query.append(xml("feature", { var: feature }));
  for (const form of answer.forms) query.append(form);
  return query;
}

function itemsQuery(items: DiscoItem[]): Element {
  return xml("query", { xmlns: NS.discoItems }, ...items.map((i) => xml("item", { jid: i.jid, node: i.node, name: i.name })));
}

/** XEP-0030 §3.1 on behalf of an account: the account itself, or a presence subscriber. */
async function assertMayDiscover(m: ModuleApi, ev: IqEvent): Promise<void> {
  if (ev.target === "self") return;
  const item = await m.storage.roster.get(ev.to.domain, ev.to.local, ev.from.bare.toString());
  const subscribed = item !== null && (item.subscription === "from" || item.subscription === "both");
  if (!subscribed || !(await m.storage.users.exists(ev.to.domain, ev.to.local))) throw new StanzaError("service-unavailable");
}

export default defineModule({
  name: "disco",
  xeps: [
    { xep: 30, version: "2.5", status: "complete" },
    { xep: 115, version: "1.6.0", status: "partial", note: "the server's own capabilities (stream feature); clients' caps are not cached" },
    { xep: 128, version: "1.0", status: "complete" },
  ],
  setup(m) {
    m.addIdentity({ category: "server", type: "im", name: "Parley" });
    m.addIdentity({ category: "account", type: "registered" }, "account");
    for (const on of ["host", "account"] as const) {
      m.addFeature(NS.discoInfo, on);
      m.addFeature(NS.discoItems, on);
    }
    m.addFeature(NS.caps);

    const hostAnswer = async (ev: IqEvent): Promise<Answer> => {
      const { forms, done } = gatherForms(m, "host", ev.to);
      await done;
      return answerOf(m.disco.host, forms, m.log);
    };

    m.onIq("get", NS.discoInfo, "query", async (ev) => {
      const node = ev.payload.attrs.node;
      const answer = await hostAnswer(ev);
      if (node !== undefined && node !== `${CAPS_NODE}#${capsVer(answer.input)}`) throw new StanzaError("item-not-found");
      return infoQuery(answer, node);
    }, { targets: ["host"], priority: DISCO_PRIORITY });

    m.onIq("get", NS.discoInfo, "query", async (ev) => {
      await assertMayDiscover(m, ev);
      if (ev.payload.attrs.node !== undefined) throw new StanzaError("item-not-found");
      const { forms, done } = gatherForms(m, "account", ev.to);
      await done;
      return infoQuery(answerOf(m.disco.account, forms, m.log), undefined);
    }, { targets: ["bare", "self"], priority: DISCO_PRIORITY });

    m.onIq("get", NS.discoItems, "query", async (ev) => {
      if (ev.target !== "host") await assertMayDiscover(m, ev);
      if (ev.payload.attrs.node !== undefined) throw new StanzaError("item-not-found");
      const items: DiscoItem[] = [];
      await m.fire<DiscoItemsEvent>(ITEMS_EVENT, { target: ev.target === "host" ? "host" : "account", to: ev.to, from: ev.from, items });
      return itemsQuery(items);
    }, { targets: ["host", "bare", "self"], priority: DISCO_PRIORITY });

    // XEP-0115 §6.3 (servers may put their caps in stream features): clients learn what the
    // server offers without a disco#info round trip at every login.
    m.hook<StreamFeaturesEvent>("c2s/features", ({ session, features }) => {
      const { forms, done } = gatherForms(m, "host", parseJid(session.host));
      done.catch((err: unknown) => m.log.error({ err }, "a disco#info extension failed"));
      features.append(capsElement(CAPS_NODE, capsVer(answerOf(m.disco.host, forms, m.log).input)));
    });
  },
});
