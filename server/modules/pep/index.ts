// XEP-0163: Personal Eventing Protocol 1.2, on the XEP-0060 (Publish-Subscribe 1.26.0) subset PEP
// clients use: publish with auto-create (§7.1, XEP-0163 §4.2) and publish-options preconditions
// (§7.1.5), item retrieval (§6.5: all, by id, max_items), retract (§7.2), node create, configure
// and delete (§8.1, §8.2, §8.4), whitelist affiliations (§8.9), the access models open,
// presence (the PEP default), roster and whitelist (§4.5), and notifications filtered by each
// resource's XEP-0115 caps (XEP-0163 §4.4: only resources whose caps include `<node>+notify`),
// with the last published item sent to a resource that comes online (XEP-0163 §4.3.2).
// OMEMO (XEP-0384) device lists and bundles are ordinary nodes here: the server carries them and
// never reads them.
//
// Storage: each account's nodes and items are one JSON value in the module store, loaded once
// and cached. That is enough for device lists, bundles, avatars' metadata and bookmarks; a real
// table (items queried and trimmed in SQL) is due before large nodes are allowed.
import { randomBytes } from "node:crypto";
import { xml, childElements, type Element } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import { StanzaError } from "../../../protocol/errors.ts";
import { tryParseJid, type Jid } from "../../../protocol/jid.ts";
import {
  PEP_DEFAULT_CONFIG,
  applyConfigForm,
  configForm,
  eventElement,
  itemElement,
  itemLimit,
  notifyFeature,
  parseMaxItems,
  preconditionsMet,
  publishOptionsConfig,
  pubsubError,
  type NodeConfig,
} from "../../../protocol/pubsub.ts";
import { stanzaFromText, stanzaToText } from "../../core/storage/stanza-text.ts";
import type { JsonValue } from "../../core/storage/index.ts";
import { defineModule } from "../../core/module.ts";
import type { IqEvent, StanzaEvent } from "../../core/router.ts";
import type { SessionEvent } from "../../transports/c2s.ts";
import { KeyedLock } from "../roster/lock.ts";
import { ITEMS_EVENT, type DiscoItemsEvent } from "../disco/index.ts";
import { CapsCache } from "./caps.ts";

interface StoredItem {
  id: string;
  payload: string;
}

interface PepNode {
  config: NodeConfig;
  /** Oldest first. */
  items: StoredItem[];
  /** Bare JIDs with affiliation member: the whitelist (XEP-0060 §4.5). */
  members: string[];
}

type Nodes = Map<string, PepNode>;

const STORE_KEY = "nodes";
/** Below blocking (100), above presence handling (0): caps are read before presence is delivered. */
const CAPS_PRIORITY = 50;

/** XEP-0163 §4 / XEP-0060 §5.1 features an account with PEP advertises. */
const FEATURES = [
  "publish",
  "auto-create",
  "publish-options",
  "create-nodes",
  "retrieve-items",
  "retract-items",
  "delete-nodes",
  "config-node",
  "access-presence",
  "access-open",
  "access-roster",
  "access-whitelist",
  "last-published",
  "persistent-items",
  "multi-items",
  "item-ids",
  "presence-notifications",
  "modify-affiliations",
  "retrieve-affiliations",
].map((f) => `${NS.pubsub}#${f}`);

function newId(): string {
  return randomBytes(9).toString("base64url");
}

function nodeName(el: Element): string {
  const node = el.attrs.node;
  if (node === undefined || node === "") throw pubsubError("bad-request", "nodeid-required");
  return node;
}

function payloadOf(item: StoredItem): Element | undefined {
  return stanzaFromText(item.payload) ?? undefined;
}

function decodeNodes(value: JsonValue | undefined): Nodes {
  const nodes: Nodes = new Map();
  if (!value || typeof value !== "object" || Array.isArray(value)) return nodes;
  for (const [name, raw] of Object.entries(value)) {
    const n = raw as unknown as PepNode;
    nodes.set(name, { config: { ...PEP_DEFAULT_CONFIG, ...n.config }, items: n.items ?? [], members: n.members ?? [] });
  }
  return nodes;
}

function encodeNodes(nodes: Nodes): JsonValue {
  return Object.fromEntries([...nodes].map(([name, node]) => [name, node as unknown as JsonValue]));
}

export default defineModule({
  name: "pep",
  xeps: [
    { xep: 163, version: "1.2", status: "partial", note: "auto-create, publish-options, access models, +notify filtering, last item on login; not on subscription approval" },
    { xep: 60, version: "1.26.0", status: "partial", note: "the PEP subset on accounts: no explicit subscriptions, no collections, no pubsub.<domain> service" },
    { xep: 115, version: "1.6.0", status: "partial", note: "clients' caps resolved and cached per ver for +notify" },
  ],
  depends: ["roster"],
  setup(m) {
    const store = m.store();
    const lock = new KeyedLock();
    const cache = new Map<string, Promise<Nodes>>();
    const caps = new CapsCache(
      (iq) => m.request(iq),
      (jid) => (m.isLocalHost(jid.domain) ? jid.domain : m.hosts[0]!),
    );
    /** `${owner} ${full}`: resources already sent the owner's last items since they came online. */
    const greeted = new Set<string>();

    m.addIdentity({ category: "pubsub", type: "pep" }, "account");
    for (const feature of FEATURES) m.addFeature(feature, "account");

    const nodesOf = (owner: Jid): Promise<Nodes> => {
      const key = owner.bare.toString();
      let nodes = cache.get(key);
      if (!nodes) {
        nodes = store.get(owner.bare, STORE_KEY).then(decodeNodes);
        cache.set(key, nodes);
        nodes.catch(() => cache.delete(key));
      }
      return nodes;
    };

    const save = (owner: Jid, nodes: Nodes): Promise<void> => store.set(owner.bare, STORE_KEY, encodeNodes(nodes));

    // ---- who may see what (XEP-0060 §4.5, §6.5.9) ---------------------------------------------------

    /** Null when `requester` may read `node` of `owner`, else the error to answer with. */
    const denial = async (owner: Jid, requester: Jid, node: PepNode): Promise<StanzaError | null> => {
      if (requester.bare.equals(owner.bare)) return null;
      const model = node.config.accessModel;
      if (model === "open") return null;
      if (model === "whitelist") return node.members.includes(requester.bare.toString()) ? null : pubsubError("not-allowed", "closed-node");
      const item = await m.storage.roster.get(owner.domain, owner.local, requester.bare.toString());
      const subscribed = item !== null && (item.subscription === "from" || item.subscription === "both");
      if (model === "presence") return subscribed ? null : pubsubError("not-authorized", "presence-subscription-required");
      const inGroup = item !== null && item.groups.some((g) => node.config.rosterGroupsAllowed.includes(g));
      return inGroup ? null : pubsubError("not-authorized", "not-in-roster-group");
    };

    // ---- notifications (XEP-0163 §4.3, §4.4) --------------------------------------------------------

    /** Full JIDs that may get notifications of `node`, before +notify filtering. */
    const candidates = async (owner: Jid, node: PepNode): Promise<Jid[]> => {
      const out: Jid[] = [];
      for (const s of m.sessions.resources(owner)) if (s.presence !== null && s.jid) out.push(s.jid);
      const { items } = await m.storage.roster.list(owner.domain, owner.local);
      for (const item of items) {
        if (item.subscription !== "from" && item.subscription !== "both") continue;
        const contact = tryParseJid(item.jid);
        if (!contact || (await denial(owner, contact, node))) continue;
        if (m.isLocalHost(contact.domain)) {
          for (const s of m.sessions.resources(contact)) if (s.presence !== null && s.jid) out.push(s.jid);
        } else {
          for (const full of caps.resourcesOf(contact)) out.push(tryParseJid(full)!);
        }
      }
      return out;
    };

    const wantsNotifications = async (full: Jid, node: string): Promise<boolean> => (await caps.featuresOf(full))?.has(notifyFeature(node)) === true;

    const notifyTo = async (owner: Jid, full: Jid, event: Element): Promise<void> => {
      await m.send(xml("message", { from: owner.bare.toString(), to: full.toString(), type: "headline", id: newId() }, event));
    };

    const notify = async (owner: Jid, name: string, node: PepNode, event: () => Element): Promise<void> => {
      const recipients = await candidates(owner, node);
      await Promise.all(
        recipients.map(async (full) => {
          if (await wantsNotifications(full, name)) await notifyTo(owner, full, event());
        }),
      );
    };

    const notifyInBackground = (owner: Jid, name: string, node: PepNode, event: () => Element): void => {
      notify(owner, name, node, event).catch((err: unknown) => m.log.error({ err }, "PEP notification failed"));
    };

    /** XEP-0163 §4.3.2: a resource that comes online gets the last item of each node it wants and may see. */
    const sendLastItems = async (owner: Jid, full: Jid): Promise<void> => {
      const key = `${owner.bare.toString()} ${full.toString()}`;
      if (greeted.has(key)) return;
      greeted.add(key);
      const nodes = await nodesOf(owner);
      if (nodes.size === 0) return;
      // Only the owner's resources and its presence subscribers: directed presence is not a subscription.
      if (!full.bare.equals(owner.bare)) {
        const item = await m.storage.roster.get(owner.domain, owner.local, full.bare.toString());
        if (item === null || (item.subscription !== "from" && item.subscription !== "both")) return;
      }
      const features = await caps.featuresOf(full);
      if (!features) return;
      for (const [name, node] of nodes) {
        const last = node.items.at(-1);
        if (!last || !features.has(notifyFeature(name)) || (await denial(owner, full, node))) continue;
        await notifyTo(owner, full, eventElement(name, { items: [itemElement(last.id, payloadOf(last))] }));
      }
    };

    const greetInBackground = (owner: Jid, full: Jid): void => {
      sendLastItems(owner, full).catch((err: unknown) => m.log.error({ err }, "sending the last PEP items failed"));
    };

    const forgetResource = (full: Jid): void => {
      caps.forget(full);
      const suffix = ` ${full.toString()}`;
      for (const key of greeted) if (key.endsWith(suffix)) greeted.delete(key);
    };

    // A client's own presence: its caps, and its own account's last items on initial presence.
    m.hook<StanzaEvent>("presence/self", (ev) => {
      const session = ev.origin;
      if (!session?.jid) return false;
      const type = ev.stanza.attrs.type;
      if (type === undefined) {
        caps.observe(session.jid, ev.stanza);
        greetInBackground(session.jid.bare, session.jid);
      } else if (type === "unavailable") {
        forgetResource(session.jid);
      }
      return false;
    }, CAPS_PRIORITY);

    // A contact's presence reaching an account: its caps, and the account's last items for it.
    const contactPresence = (ev: StanzaEvent): boolean => {
      const type = ev.stanza.attrs.type;
      if (ev.from.isBare() || ev.from.bare.equals(ev.to.bare)) return false;
      if (type === undefined) {
        caps.observe(ev.from, ev.stanza);
        greetInBackground(ev.to.bare, ev.from);
      } else if (type === "unavailable") {
        forgetResource(ev.from);
      }
      return false;
    };
    m.hook<StanzaEvent>("presence/bare", contactPresence, CAPS_PRIORITY);
    m.hook<StanzaEvent>("presence/full", contactPresence, CAPS_PRIORITY);
    m.hook<SessionEvent>("c2s/closed", ({ session }) => {
      if (session.jid) forgetResource(session.jid);
    });

    // ---- pubsub requests -----------------------------------------------------------------------------

    const ownerOnly = (ev: IqEvent): Jid => {
      if (ev.target !== "self") throw new StanzaError("forbidden", "only the account may change its PEP nodes");
      return ev.from.bare;
    };

    const publish = async (ev: IqEvent, publishEl: Element, options: Element | undefined): Promise<Element> => {
      const owner = ownerOnly(ev);
      const name = nodeName(publishEl);
      const items = publishEl.getChildren("item");
      if (items.length === 0) throw pubsubError("bad-request", "item-required");
      if (items.length > 1) throw pubsubError("bad-request", "invalid-payload");
      const payloads = childElements(items[0]!);
      if (payloads.length === 0) throw pubsubError("bad-request", "payload-required");
      if (payloads.length > 1) throw pubsubError("bad-request", "invalid-payload");
      const id = items[0]!.attrs.id || newId();
      const optionsForm = options?.getChild("x", NS.dataForms);
      const wanted = optionsForm ? publishOptionsConfig(optionsForm) : {};
      const payloadText = stanzaToText(payloads[0]!);
      const node = await lock.run(owner.toString(), async () => {
        const nodes = await nodesOf(owner);
        let node = nodes.get(name);
        if (!node) {
          node = { config: { ...PEP_DEFAULT_CONFIG, ...wanted }, items: [], members: [] };
          nodes.set(name, node);
        } else if (!preconditionsMet(node.config, wanted)) {
          throw pubsubError("conflict", "precondition-not-met");
        }
        node.items = node.items.filter((i) => i.id !== id);
        node.items.push({ id, payload: payloadText });
        node.items = node.items.slice(-itemLimit(node.config));
        await save(owner, nodes);
        return node;
      });
      notifyInBackground(owner, name, node, () => eventElement(name, { items: [itemElement(id, stanzaFromText(payloadText) ?? undefined)] }));
      return xml("pubsub", { xmlns: NS.pubsub }, xml("publish", { node: name }, xml("item", { id })));
    };

    const retract = async (ev: IqEvent, retractEl: Element): Promise<true> => {
      const owner = ownerOnly(ev);
      const name = nodeName(retractEl);
      const ids = retractEl.getChildren("item").map((i) => i.attrs.id);
      if (ids.length === 0 || ids.some((id) => !id)) throw pubsubError("bad-request", "item-required");
      const node = await lock.run(owner.toString(), async () => {
        const nodes = await nodesOf(owner);
        const node = nodes.get(name);
        if (!node) throw new StanzaError("item-not-found");
        if (ids.some((id) => !node.items.some((i) => i.id === id))) throw new StanzaError("item-not-found");
        node.items = node.items.filter((i) => !ids.includes(i.id));
        await save(owner, nodes);
        return node;
      });
      const notifyFlag = retractEl.attrs.notify;
      if (notifyFlag === "true" || notifyFlag === "1") notifyInBackground(owner, name, node, () => eventElement(name, { retract: ids as string[] }));
      return true;
    };

    const create = async (ev: IqEvent, createEl: Element, configure: Element | undefined): Promise<true> => {
      const owner = ownerOnly(ev);
      const name = nodeName(createEl);
      const form = configure?.getChild("x", NS.dataForms);
      const config = form ? applyConfigForm({ ...PEP_DEFAULT_CONFIG }, form) : { ...PEP_DEFAULT_CONFIG };
      await lock.run(owner.toString(), async () => {
        const nodes = await nodesOf(owner);
        if (nodes.has(name)) throw new StanzaError("conflict", "the node exists");
        nodes.set(name, { config, items: [], members: [] });
        await save(owner, nodes);
      });
      return true;
    };

    m.onIq("set", NS.pubsub, "pubsub", async (ev) => {
      const publishEl = ev.payload.getChild("publish");
      if (publishEl) return publish(ev, publishEl, ev.payload.getChild("publish-options"));
      const retractEl = ev.payload.getChild("retract");
      if (retractEl) return retract(ev, retractEl);
      const createEl = ev.payload.getChild("create");
      if (createEl) return create(ev, createEl, ev.payload.getChild("configure"));
      // XEP-0163 §4.1: contacts are subscribed through presence and caps, not explicitly.
      throw pubsubError("feature-not-implemented", "unsupported");
    }, { targets: ["self", "bare"] });

    m.onIq("get", NS.pubsub, "pubsub", async (ev) => {
      const itemsEl = ev.payload.getChild("items");
      if (!itemsEl) throw pubsubError("feature-not-implemented", "unsupported");
      const owner = ev.to.bare;
      const name = nodeName(itemsEl);
      const max = parseMaxItems(itemsEl.attrs.max_items);
      const node = (await nodesOf(owner)).get(name);
      if (!node || !(await m.storage.users.exists(owner.domain, owner.local))) throw new StanzaError("item-not-found");
      const refused = await denial(owner, ev.from, node);
      if (refused) throw refused;
      const wantedIds = itemsEl.getChildren("item").map((i) => i.attrs.id).filter((id): id is string => id !== undefined);
      let items = wantedIds.length > 0 ? node.items.filter((i) => wantedIds.includes(i.id)) : node.items;
      if (max !== undefined) items = items.slice(-max);
      return xml("pubsub", { xmlns: NS.pubsub }, xml("items", { node: name }, ...items.map((i) => itemElement(i.id, payloadOf(i)))));
    }, { targets: ["self", "bare"] });

    // ---- owner use cases (XEP-0060 §8) ---------------------------------------------------------------

    m.onIq("get", NS.pubsubOwner, "pubsub", async (ev) => {
      const owner = ownerOnly(ev);
      const configure = ev.payload.getChild("configure");
      const affiliations = ev.payload.getChild("affiliations");
      const el = configure ?? affiliations;
      if (!el) throw pubsubError("feature-not-implemented", "unsupported");
      const name = nodeName(el);
      const node = (await nodesOf(owner)).get(name);
      if (!node) throw new StanzaError("item-not-found");
      if (configure) return xml("pubsub", { xmlns: NS.pubsubOwner }, xml("configure", { node: name }, configForm(node.config)));
      return xml(
        "pubsub",
        { xmlns: NS.pubsubOwner },
        xml("affiliations", { node: name }, xml("affiliation", { jid: owner.toString(), affiliation: "owner" }), ...node.members.map((jid) => xml("affiliation", { jid, affiliation: "member" }))),
      );
    }, { targets: ["self"] });

    m.onIq("set", NS.pubsubOwner, "pubsub", async (ev): Promise<true> => {
      const owner = ownerOnly(ev);
      const configure = ev.payload.getChild("configure");
      const del = ev.payload.getChild("delete");
      const affiliations = ev.payload.getChild("affiliations");
      const el = configure ?? del ?? affiliations;
      if (!el) throw pubsubError("feature-not-implemented", "unsupported");
      const name = nodeName(el);
      const deleted = await lock.run(owner.toString(), async () => {
        const nodes = await nodesOf(owner);
        const node = nodes.get(name);
        if (!node) throw new StanzaError("item-not-found");
        if (configure) {
          const form = configure.getChild("x", NS.dataForms);
          if (!form) throw new StanzaError("bad-request", "a configuration form is needed");
          node.config = applyConfigForm(node.config, form);
          node.items = node.items.slice(-itemLimit(node.config));
        } else if (del) {
          nodes.delete(name);
        } else {
          for (const a of affiliations!.getChildren("affiliation")) {
            const jid = a.attrs.jid === undefined ? null : tryParseJid(a.attrs.jid);
            if (!jid) throw new StanzaError("jid-malformed");
            const bare = jid.bare.toString();
            node.members = node.members.filter((j) => j !== bare);
            if (a.attrs.affiliation === "member" || a.attrs.affiliation === "publisher") node.members.push(bare);
            else if (a.attrs.affiliation !== "none") throw new StanzaError("not-acceptable", "affiliations here are member or none");
          }
        }
        await save(owner, nodes);
        return del ? node : null;
      });
      if (deleted) notifyInBackground(owner, name, deleted, () => eventElement(name, { delete: true }));
      return true;
    }, { targets: ["self"] });

    // ---- discovery (XEP-0060 §5.2-§5.4 on the account) ----------------------------------------------

    m.onIq("get", NS.discoInfo, "query", async (ev) => {
      const name = ev.payload.attrs.node;
      if (name === undefined) return undefined;
      const owner = ev.to.bare;
      const node = (await nodesOf(owner)).get(name);
      if (!node || (await denial(owner, ev.from, node))) return undefined;
      return xml(
        "query",
        { xmlns: NS.discoInfo, node: name },
        xml("identity", { category: "pubsub", type: "leaf" }),
        xml("feature", { var: NS.pubsub }),
      );
    }, { targets: ["self", "bare"], priority: 0 });

    m.hook<DiscoItemsEvent>(ITEMS_EVENT, async (ev) => {
      if (ev.target !== "account") return false;
      const owner = ev.to.bare;
      for (const [name, node] of await nodesOf(owner)) {
        if (!(await denial(owner, ev.from, node))) ev.items.push({ jid: owner.toString(), node: name });
      }
      return false;
    });
  },
});
