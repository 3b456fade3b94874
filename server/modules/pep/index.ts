// XEP-0163: Personal Eventing Protocol 1.2, on the XEP-0060 (Publish-Subscribe 1.26.0) subset PEP
// clients use: publish with auto-create (§7.1, XEP-0163 §4.2) and publish-options preconditions
// (§7.1.5), item retrieval (§6.5: all, by id, max_items, XEP-0059 RSM pages), retract (§7.2),
// explicit subscribe and unsubscribe (§6.1, §6.2) and the subscriptions list (§5.6), node
// create, configure, purge and delete (§8.1, §8.2, §8.5, §8.4), affiliations (§8.9), the access
// models open, presence (the PEP default), roster and whitelist (§4.5), and notifications
// filtered by each resource's XEP-0115 caps (XEP-0163 §4.4: only resources whose caps include
// `<node>+notify`), with the last published item sent to a resource that comes online
// (XEP-0163 §4.3.3) and to a new explicit subscriber (§6.1.7). A caps ver not seen before is
// resolved when the presence announcing it arrives, local or over s2s; a remote contact's
// resources are those whose presence (with caps) reached the account.
// XEP-0223 private nodes are ordinary nodes with access_model=whitelist and persist_items.
// OMEMO (XEP-0384) device lists and bundles are ordinary nodes here: the server carries them and
// never reads them.
//
// Storage: the tables of migration 0004_pubsub (store.ts). Node configurations and
// affiliations of an account are cached after first use; items are read from the database.
//
// Other modules (bookmarks compatibility, avatars) reach the engine through PEP_ENGINE_EVENT and
// follow changes through PEP_CHANGED_EVENT. `[modules.pep] pubsub_service = true` adds a
// generic XEP-0060 service at pubsub.<host> on the same store (service.ts).
import { randomBytes } from "node:crypto";
import { xml, childElements, type Element } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import { StanzaError } from "../../../protocol/errors.ts";
import { tryParseJid, type Jid } from "../../../protocol/jid.ts";
import { buildRsmResponse, parseRsmRequest } from "../../../protocol/rsm.ts";
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
  subscriptionElement,
  type NodeConfig,
} from "../../../protocol/pubsub.ts";
import { stanzaFromText, stanzaToText } from "../../core/storage/stanza-text.ts";
import { defineModule } from "../../core/module.ts";
import type { IqEvent, StanzaEvent } from "../../core/router.ts";
import type { SessionEvent } from "../../transports/c2s.ts";
import { KeyedLock } from "../roster/lock.ts";
import { ITEMS_EVENT, type DiscoItemsEvent } from "../disco/index.ts";
import { CapsCache } from "./caps.ts";
import { pageOf } from "./paging.ts";
import { PubSubService } from "./service.ts";
import { SettingsReader } from "../../core/config.ts";
import { PubSubStore, type Affiliation, type NodeMeta, type Service, type StoredItem } from "./store.ts";

/** Below blocking (100), above presence handling (0): caps are read before presence is delivered. */
const CAPS_PRIORITY = 50;
/** Bounds the approvals remembered between a <presence type='subscribed'/> and the presence after it. */
const MAX_PENDING_APPROVALS = 10_000;
/** The most items one retrieval returns without RSM (the node maximum bounds it anyway). */
const MAX_PAGE = 256;

/** Fired (with a PepEngineRequest) by modules that need the engine; the pep module fills it in. */
export const PEP_ENGINE_EVENT = "pep/engine";
/** Fired after a node of an account changed (PepChange). */
export const PEP_CHANGED_EVENT = "pep/changed";

export interface PepItem {
  id: string;
  payload: Element;
}

export interface PepChange {
  owner: Jid;
  node: string;
  /** What happened: an item published (with it), items retracted, or the node deleted. */
  published?: PepItem;
  retracted?: string[];
  deleted?: true;
  /** Who caused it: a client's bare JID, or the `tag` an engine caller passed. */
  by: string;
}

/** What other modules may do with an account's nodes. */
export interface PepEngine {
  /** Publishes as the owner, auto-creating the node with `options` (not preconditions here). */
  publish(owner: Jid, node: string, item: { id?: string; payload: Element }, options: Partial<NodeConfig>, tag: string): Promise<string>;
  /** The items of a node, oldest first; null when the node does not exist. */
  items(owner: Jid, node: string): Promise<PepItem[] | null>;
  retract(owner: Jid, node: string, ids: string[], tag: string): Promise<void>;
}

export interface PepEngineRequest {
  engine?: PepEngine;
}

/** XEP-0163 §4 / XEP-0060 §5.1 features an account with PEP advertises. */
const FEATURES = [
  "publish",
  "auto-create",
  "publish-options",
  "create-nodes",
  "retrieve-items",
  "retract-items",
  "purge-nodes",
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
  "subscribe",
  "retrieve-subscriptions",
  "modify-affiliations",
  "retrieve-affiliations",
  "rsm",
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

function serviceOf(owner: Jid): Service {
  return { host: owner.domain, username: owner.local };
}

export default defineModule({
  name: "pep",
  xeps: [
    { xep: 163, version: "1.2", status: "partial", note: "auto-create, publish-options, access models, +notify filtering; last item at login, at a contact's presence and at subscription approval (a remote contact's resources only once their caps are known)" },
    { xep: 60, version: "1.26.0", status: "partial", note: "PEP on accounts and, with pubsub_service = true, a pubsub.<domain> service: leaf nodes, open/whitelist, subscriptions, RSM, purge; no collections, no subscription options or approval" },
    { xep: 115, version: "1.6.0", status: "partial", note: "clients' caps resolved and cached per ver for +notify" },
    { xep: 223, version: "1.1", status: "complete", note: "whitelist, persistent nodes; publish-options preconditions" },
  ],
  depends: ["roster"],
  setup(m) {
    const settings = new SettingsReader(m.config, `modules.${m.name}`);
    const serviceEnabled = settings.boolean("pubsub_service", false);
    settings.finish();
    const store = new PubSubStore(m.storage);

    // XEP-0060 as a generic service at pubsub.<host> (service.ts), on the same store.
    if (serviceEnabled) {
      const services = new Map<string, string>();
      for (const host of m.hosts) {
        const service = new PubSubService(m, store, `pubsub.${host}`, host);
        m.addComponent(service.domain, (ev) => service.handle(ev));
        services.set(host, service.domain);
      }
      m.hook<DiscoItemsEvent>(ITEMS_EVENT, ({ target, to, items }) => {
        const domain = target === "host" ? services.get(to.domain) : undefined;
        if (domain) items.push({ jid: domain, name: "Publish-Subscribe" });
        return false;
      });
    }
    const lock = new KeyedLock();
    const cache = new Map<string, Promise<Map<string, NodeMeta>>>();
    const caps = new CapsCache(
      (iq) => m.request(iq),
      (jid) => (m.isLocalHost(jid.domain) ? jid.domain : m.hosts[0]!),
    );
    /** `${owner} ${full}`: resources already sent the owner's last items since they came online. */
    const greeted = new Set<string>();
    /** `${owner} ${contact}`: approvals whose following presence is still to come. */
    const approved = new Set<string>();

    m.addIdentity({ category: "pubsub", type: "pep" }, "account");
    for (const feature of FEATURES) m.addFeature(feature, "account");

    const nodesOf = (owner: Jid): Promise<Map<string, NodeMeta>> => {
      const key = owner.bare.toString();
      let nodes = cache.get(key);
      if (!nodes) {
        nodes = store.nodes(serviceOf(owner));
        cache.set(key, nodes);
        nodes.catch(() => cache.delete(key));
      }
      return nodes;
    };

    m.hook<{ jid: Jid }>("account/deleting", async ({ jid }) => {
      await lock.run(jid.bare.toString(), async () => {
        await store.deleteService(serviceOf(jid));
        cache.delete(jid.bare.toString());
      });
      return false;
    });

    // Awaited before the publisher's result, so that a client that reads the converted form
    // (the vCard of XEP-0398, the legacy bookmarks of XEP-0402 #compat) right after sees it.
    const changed = async (change: PepChange): Promise<void> => {
      await m.fire<PepChange>(PEP_CHANGED_EVENT, change).catch((err: unknown) => m.log.error({ err }, "a PEP change listener failed"));
    };

    // ---- who may see what (XEP-0060 §4.5, §6.5.9) ---------------------------------------------------

    const affiliationOf = (owner: Jid, node: NodeMeta, jid: Jid): Affiliation | "none" => {
      if (jid.bare.equals(owner.bare)) return "owner";
      return node.affiliations.get(jid.bare.toString()) ?? "none";
    };

    /** Null when `requester` may read `node` of `owner`, else the error to answer with. */
    const denial = async (owner: Jid, requester: Jid, node: NodeMeta): Promise<StanzaError | null> => {
      const affiliation = affiliationOf(owner, node, requester);
      if (affiliation === "owner" || affiliation === "publisher") return null;
      if (affiliation === "outcast") return new StanzaError("forbidden");
      const model = node.config.accessModel;
      if (model === "open") return null;
      if (model === "whitelist") return affiliation === "member" ? null : pubsubError("not-allowed", "closed-node");
      const item = await m.storage.roster.get(owner.domain, owner.local, requester.bare.toString());
      const subscribed = item !== null && (item.subscription === "from" || item.subscription === "both");
      if (model === "presence") return subscribed ? null : pubsubError("not-authorized", "presence-subscription-required");
      const inGroup = item !== null && item.groups.some((g) => node.config.rosterGroupsAllowed.includes(g));
      return inGroup ? null : pubsubError("not-authorized", "not-in-roster-group");
    };

    // ---- notifications (XEP-0163 §4.3, §4.4; XEP-0060 §7.1.2) ---------------------------------------

    /** Full JIDs that may get notifications of `node` through presence, before +notify filtering. */
    const presenceCandidates = async (owner: Jid, node: NodeMeta): Promise<Jid[]> => {
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

    const notifyTo = async (owner: Jid, to: string, event: Element): Promise<void> => {
      await m.send(xml("message", { from: owner.bare.toString(), to, type: "headline", id: newId() }, event));
    };

    const notify = async (owner: Jid, name: string, node: NodeMeta, event: () => Element): Promise<void> => {
      const sent = new Set<string>();
      const recipients = await presenceCandidates(owner, node);
      const wanted = await Promise.all(recipients.map((full) => wantsNotifications(full, name)));
      recipients.forEach((full, i) => {
        if (wanted[i]) sent.add(full.toString());
      });
      // Explicit subscriptions (XEP-0060 §6.1) get notifications whatever their caps say.
      for (const sub of await store.subscribers(serviceOf(owner), name)) {
        const jid = tryParseJid(sub.jid);
        if (!jid || (await denial(owner, jid, node))) continue;
        sent.add(jid.toString());
      }
      await Promise.all([...sent].map((to) => notifyTo(owner, to, event())));
    };

    const notifyInBackground = (owner: Jid, name: string, node: NodeMeta, event: () => Element): void => {
      notify(owner, name, node, event).catch((err: unknown) => m.log.error({ err }, "PEP notification failed"));
    };

    const lastItemEvent = async (owner: Jid, name: string): Promise<Element | null> => {
      const last = await store.lastItem(serviceOf(owner), name);
      return last ? eventElement(name, { items: [itemElement(last.id, payloadOf(last))] }) : null;
    };

    /** XEP-0163 §4.3.2: a resource that comes online gets the last item of each node it wants and may see. */
    const sendLastItems = async (owner: Jid, full: Jid): Promise<void> => {
      const key = `${owner.bare.toString()} ${full.toString()}`;
      if (greeted.has(key)) return;
      const nodes = await nodesOf(owner);
      if (nodes.size === 0) return;
      // Only the owner's resources and its presence subscribers: directed presence is not a subscription.
      if (!full.bare.equals(owner.bare)) {
        const item = await m.storage.roster.get(owner.domain, owner.local, full.bare.toString());
        if (item === null || (item.subscription !== "from" && item.subscription !== "both")) return;
      }
      if (greeted.has(key)) return;
      greeted.add(key);
      const features = await caps.featuresOf(full);
      if (!features) return;
      for (const [name, node] of nodes) {
        if (node.config.sendLastPublishedItem !== "on_sub_and_presence") continue;
        if (!features.has(notifyFeature(name)) || (await denial(owner, full, node))) continue;
        const event = await lastItemEvent(owner, name);
        if (event) await notifyTo(owner, full.toString(), event);
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

    /**
     * Remembers a resource's caps and resolves a ver not seen before at once (XEP-0115 §6.2), so
     * that the first publication after it comes online is filtered without waiting for a query.
     */
    const observeCaps = (full: Jid, presence: Element): void => {
      caps.observe(full, presence);
      void caps.featuresOf(full);
    };

    // A client's own presence: its caps, and its own account's last items on initial presence.
    m.hook<StanzaEvent>("presence/self", (ev) => {
      const session = ev.origin;
      if (!session?.jid) return false;
      const type = ev.stanza.attrs.type;
      if (type === undefined) {
        observeCaps(session.jid, ev.stanza);
        greetInBackground(session.jid.bare, session.jid);
      } else if (type === "unavailable") {
        forgetResource(session.jid);
      }
      return false;
    }, CAPS_PRIORITY);

    // A contact's presence reaching an account: its caps, and the account's last items for it.
    // And the other way round: a local account's presence reaching a local contact (as it does
    // right after the account approved the contact's subscription, RFC 6121 §3.1.5) brings the
    // contact's resources the account's last items (XEP-0163 §4.3.1).
    const contactPresence = (ev: StanzaEvent): boolean => {
      const type = ev.stanza.attrs.type;
      if (ev.from.isBare() || ev.from.bare.equals(ev.to.bare)) return false;
      if (type === undefined) {
        observeCaps(ev.from, ev.stanza);
        greetInBackground(ev.to.bare, ev.from);
        const approval = `${ev.from.bare.toString()} ${ev.to.bare.toString()}`;
        if (approved.delete(approval)) {
          for (const s of m.sessions.resources(ev.to.bare)) if (s.presence !== null && s.jid) greetInBackground(ev.from.bare, s.jid);
        }
      } else if (type === "unavailable") {
        forgetResource(ev.from);
      }
      return false;
    };
    // An account approving a contact's subscription: its next presence to the contact is the
    // one that follows the approval (RFC 6121 §3.1.5), sent once the roster says "from".
    m.hook<StanzaEvent>("pre-presence/bare", (ev) => {
      if (ev.stanza.attrs.type !== "subscribed" || !ev.origin) return false;
      if (approved.size >= MAX_PENDING_APPROVALS) approved.clear();
      approved.add(`${ev.from.bare.toString()} ${ev.to.bare.toString()}`);
      return false;
    }, CAPS_PRIORITY);
    // A remote contact: that presence leaves through s2s, and the contact's resources are the
    // ones whose caps this server has seen (its presence reached the account before).
    m.hook<StanzaEvent>("route/remote", (ev) => {
      if (ev.kind !== "presence" || ev.stanza.attrs.type !== undefined || !m.isLocalHost(ev.from.domain)) return false;
      if (approved.delete(`${ev.from.bare.toString()} ${ev.to.bare.toString()}`)) {
        for (const full of caps.resourcesOf(ev.to.bare)) {
          const jid = tryParseJid(full);
          if (jid) greetInBackground(ev.from.bare, jid);
        }
      }
      return false;
    }, CAPS_PRIORITY);
    m.hook<StanzaEvent>("presence/bare", contactPresence, CAPS_PRIORITY);
    m.hook<StanzaEvent>("presence/full", contactPresence, CAPS_PRIORITY);
    m.hook<SessionEvent>("c2s/closed", ({ session }) => {
      if (session.jid) forgetResource(session.jid);
    });

    // ---- the engine (shared by the IQ handlers and other modules) ----------------------------------

    /** `wanted` configures a new node; for an existing one it is a precondition unless `internal`. */
    const doPublish = async (owner: Jid, name: string, id: string, payload: Element, wanted: Partial<NodeConfig>, by: string, internal = false): Promise<void> => {
      const payloadText = stanzaToText(payload);
      const node = await lock.run(owner.toString(), async () => {
        const nodes = await nodesOf(owner);
        let node = nodes.get(name);
        if (!node) {
          node = await store.createNode(serviceOf(owner), name, { ...PEP_DEFAULT_CONFIG, ...wanted });
          nodes.set(name, node);
        } else if (!internal && !preconditionsMet(node.config, wanted)) {
          throw pubsubError("conflict", "precondition-not-met");
        }
        await store.publish(serviceOf(owner), name, { id, publisher: owner.toString(), payload: payloadText }, itemLimit(node.config));
        return node;
      });
      notifyInBackground(owner, name, node, () => eventElement(name, { items: [itemElement(id, stanzaFromText(payloadText) ?? undefined)] }));
      await changed({ owner, node: name, published: { id, payload: stanzaFromText(payloadText)! }, by });
    };

    const doRetract = async (owner: Jid, name: string, ids: string[], notifyRetract: boolean, by: string): Promise<void> => {
      const node = await lock.run(owner.toString(), async () => {
        const node = (await nodesOf(owner)).get(name);
        if (!node) throw new StanzaError("item-not-found");
        const existing = await store.retract(serviceOf(owner), name, ids);
        if (existing.length < ids.length) throw new StanzaError("item-not-found");
        return node;
      });
      if (notifyRetract) notifyInBackground(owner, name, node, () => eventElement(name, { retract: ids }));
      await changed({ owner, node: name, retracted: ids, by });
    };

    const engine: PepEngine = {
      publish: async (owner, name, item, options, tag) => {
        const id = item.id ?? newId();
        await doPublish(owner.bare, name, id, item.payload, options, tag, true);
        return id;
      },
      items: async (owner, name) => {
        if (!(await nodesOf(owner.bare)).has(name)) return null;
        const rows = await store.items(serviceOf(owner), name);
        return rows.flatMap((r) => {
          const payload = payloadOf(r);
          return payload ? [{ id: r.id, payload }] : [];
        });
      },
      retract: async (owner, name, ids, tag) => {
        const existing = new Set((await store.items(serviceOf(owner), name, ids)).map((i) => i.id));
        const present = ids.filter((id) => existing.has(id));
        if (present.length > 0) await doRetract(owner.bare, name, present, true, tag);
      },
    };
    m.hook<PepEngineRequest>(PEP_ENGINE_EVENT, (req) => {
      req.engine = engine;
      return true;
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
      await doPublish(owner, name, id, payloads[0]!, wanted, owner.toString());
      return xml("pubsub", { xmlns: NS.pubsub }, xml("publish", { node: name }, xml("item", { id })));
    };

    const retract = async (ev: IqEvent, retractEl: Element): Promise<true> => {
      const owner = ownerOnly(ev);
      const name = nodeName(retractEl);
      const ids = retractEl.getChildren("item").map((i) => i.attrs.id);
      if (ids.length === 0 || ids.some((id) => !id)) throw pubsubError("bad-request", "item-required");
      const notifyFlag = retractEl.attrs.notify;
      await doRetract(owner, name, ids as string[], notifyFlag === "true" || notifyFlag === "1", owner.toString());
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
        nodes.set(name, await store.createNode(serviceOf(owner), name, config));
      });
      return true;
    };

    /** XEP-0060 §6.1: explicit subscription of the sender's own JID (full or bare, as asked). */
    const subscribe = async (ev: IqEvent, el: Element): Promise<Element> => {
      const owner = ev.to.bare;
      const name = nodeName(el);
      const jid = el.attrs.jid === undefined ? null : tryParseJid(el.attrs.jid);
      if (!jid) throw pubsubError("bad-request", "jid-required");
      // §6.1.3.1: only one's own JID may be subscribed.
      if (!jid.bare.equals(ev.from.bare)) throw pubsubError("bad-request", "invalid-jid");
      const node = (await nodesOf(owner)).get(name);
      if (!node) throw new StanzaError("item-not-found");
      const refused = await denial(owner, ev.from, node);
      if (refused) throw refused;
      const subid = await store.subscribe(serviceOf(owner), name, jid.toString(), newId());
      // §6.1.7: the last published item goes to the new subscriber, after the IQ result.
      if (node.config.sendLastPublishedItem !== "never") {
        setImmediate(() => {
          lastItemEvent(owner, name)
            .then((event) => (event ? notifyTo(owner, jid.toString(), event) : undefined))
            .catch((err: unknown) => m.log.error({ err }, "sending the last item to a subscriber failed"));
        });
      }
      return xml("pubsub", { xmlns: NS.pubsub }, subscriptionElement(name, jid.toString(), "subscribed", subid));
    };

    const unsubscribe = async (ev: IqEvent, el: Element): Promise<true> => {
      const owner = ev.to.bare;
      const name = nodeName(el);
      const jid = el.attrs.jid === undefined ? null : tryParseJid(el.attrs.jid);
      if (!jid) throw pubsubError("bad-request", "jid-required");
      if (!jid.bare.equals(ev.from.bare)) throw pubsubError("bad-request", "invalid-jid");
      if (!(await nodesOf(owner)).has(name)) throw new StanzaError("item-not-found");
      // §6.2.3.2: unsubscribing what is not subscribed.
      if (!(await store.unsubscribe(serviceOf(owner), name, jid.toString()))) throw pubsubError("unexpected-request", "not-subscribed");
      return true;
    };

    m.onIq("set", NS.pubsub, "pubsub", async (ev) => {
      const publishEl = ev.payload.getChild("publish");
      if (publishEl) return publish(ev, publishEl, ev.payload.getChild("publish-options"));
      const retractEl = ev.payload.getChild("retract");
      if (retractEl) return retract(ev, retractEl);
      const createEl = ev.payload.getChild("create");
      if (createEl) return create(ev, createEl, ev.payload.getChild("configure"));
      const subscribeEl = ev.payload.getChild("subscribe");
      if (subscribeEl) return subscribe(ev, subscribeEl);
      const unsubscribeEl = ev.payload.getChild("unsubscribe");
      if (unsubscribeEl) return unsubscribe(ev, unsubscribeEl);
      throw pubsubError("feature-not-implemented", "unsupported");
    }, { targets: ["self", "bare"] });

    const retrieve = async (ev: IqEvent, itemsEl: Element): Promise<Element> => {
      const owner = ev.to.bare;
      const name = nodeName(itemsEl);
      const max = parseMaxItems(itemsEl.attrs.max_items);
      const rsm = parseRsmRequest(ev.payload.getChild("set", NS.rsm));
      const node = (await nodesOf(owner)).get(name);
      if (!node || !(await m.storage.users.exists(owner.domain, owner.local))) throw new StanzaError("item-not-found");
      const refused = await denial(owner, ev.from, node);
      if (refused) throw refused;
      const wantedIds = itemsEl.getChildren("item").map((i) => i.attrs.id).filter((id): id is string => id !== undefined);
      let items = await store.items(serviceOf(owner), name, wantedIds.length > 0 ? wantedIds : undefined);
      if (max !== undefined) items = items.slice(-max);
      const listing = xml("items", { node: name });
      if (!rsm) {
        for (const i of items.slice(-MAX_PAGE)) listing.append(itemElement(i.id, payloadOf(i)));
        return xml("pubsub", { xmlns: NS.pubsub }, listing);
      }
      const { page, response } = pageOf(items, rsm, MAX_PAGE);
      for (const i of page) listing.append(itemElement(i.id, payloadOf(i)));
      return xml("pubsub", { xmlns: NS.pubsub }, listing, buildRsmResponse(response));
    };

    m.onIq("get", NS.pubsub, "pubsub", async (ev) => {
      const itemsEl = ev.payload.getChild("items");
      if (itemsEl) return retrieve(ev, itemsEl);
      const subscriptions = ev.payload.getChild("subscriptions");
      if (subscriptions) {
        // §5.6: the requester's own subscriptions at this account's service.
        const owner = ev.to.bare;
        const mine = await store.subscriptionsOf(serviceOf(owner), ev.from.bare.toString());
        const wanted = subscriptions.attrs.node;
        const list = xml("subscriptions", { node: wanted });
        for (const s of mine) if (wanted === undefined || s.node === wanted) list.append(subscriptionElement(s.node, s.jid, "subscribed", s.subid));
        return xml("pubsub", { xmlns: NS.pubsub }, list);
      }
      const affiliations = ev.payload.getChild("affiliations");
      if (affiliations) {
        // §5.7: the requester's own affiliations.
        const owner = ev.to.bare;
        const list = xml("affiliations", {});
        for (const [name, node] of await nodesOf(owner)) {
          const a = affiliationOf(owner, node, ev.from);
          if (a !== "none") list.append(xml("affiliation", { node: name, affiliation: a }));
        }
        return xml("pubsub", { xmlns: NS.pubsub }, list);
      }
      throw pubsubError("feature-not-implemented", "unsupported");
    }, { targets: ["self", "bare"] });

    // ---- owner use cases (XEP-0060 §8) ---------------------------------------------------------------

    m.onIq("get", NS.pubsubOwner, "pubsub", async (ev) => {
      const owner = ownerOnly(ev);
      const configure = ev.payload.getChild("configure");
      const affiliations = ev.payload.getChild("affiliations");
      const subscriptions = ev.payload.getChild("subscriptions");
      const el = configure ?? affiliations ?? subscriptions;
      if (!el) throw pubsubError("feature-not-implemented", "unsupported");
      const name = nodeName(el);
      const node = (await nodesOf(owner)).get(name);
      if (!node) throw new StanzaError("item-not-found");
      if (configure) return xml("pubsub", { xmlns: NS.pubsubOwner }, xml("configure", { node: name }, configForm(node.config)));
      if (subscriptions) {
        const subs = await store.subscribers(serviceOf(owner), name);
        return xml("pubsub", { xmlns: NS.pubsubOwner }, xml("subscriptions", { node: name }, ...subs.map((s) => subscriptionElement(undefined, s.jid, "subscribed", s.subid))));
      }
      return xml(
        "pubsub",
        { xmlns: NS.pubsubOwner },
        xml(
          "affiliations",
          { node: name },
          xml("affiliation", { jid: owner.toString(), affiliation: "owner" }),
          ...[...node.affiliations].map(([jid, affiliation]) => xml("affiliation", { jid, affiliation })),
        ),
      );
    }, { targets: ["self", "bare"] });

    m.onIq("set", NS.pubsubOwner, "pubsub", async (ev): Promise<true> => {
      const owner = ownerOnly(ev);
      const configure = ev.payload.getChild("configure");
      const del = ev.payload.getChild("delete");
      const purge = ev.payload.getChild("purge");
      const affiliations = ev.payload.getChild("affiliations");
      const el = configure ?? del ?? purge ?? affiliations;
      if (!el) throw pubsubError("feature-not-implemented", "unsupported");
      const name = nodeName(el);
      const s = serviceOf(owner);
      const node = await lock.run(owner.toString(), async () => {
        const nodes = await nodesOf(owner);
        const node = nodes.get(name);
        if (!node) throw new StanzaError("item-not-found");
        if (configure) {
          const form = configure.getChild("x", NS.dataForms);
          if (!form) throw new StanzaError("bad-request", "a configuration form is needed");
          node.config = applyConfigForm(node.config, form);
          await store.setConfig(s, name, node.config);
          await store.trim(s, name, itemLimit(node.config));
        } else if (del) {
          nodes.delete(name);
          await store.deleteNode(s, name);
        } else if (purge) {
          await store.purge(s, name);
        } else {
          const changes: [string, Affiliation | null][] = [];
          for (const a of affiliations!.getChildren("affiliation")) {
            const jid = a.attrs.jid === undefined ? null : tryParseJid(a.attrs.jid);
            if (!jid) throw new StanzaError("jid-malformed");
            const value = a.attrs.affiliation;
            if (value === "none") changes.push([jid.bare.toString(), null]);
            else if (value === "member" || value === "publisher" || value === "outcast") changes.push([jid.bare.toString(), value]);
            else throw new StanzaError("not-acceptable", "affiliations here are member, publisher, outcast or none");
          }
          for (const [jid, value] of changes) {
            await store.setAffiliation(s, name, jid, value);
            if (value === null) node.affiliations.delete(jid);
            else node.affiliations.set(jid, value);
          }
        }
        return node;
      });
      if (del) {
        notifyInBackground(owner, name, node, () => eventElement(name, { delete: true }));
        await changed({ owner, node: name, deleted: true, by: owner.toString() });
      } else if (purge) {
        notifyInBackground(owner, name, node, () => eventElement(name, { purge: true }));
      }
      return true;
    }, { targets: ["self", "bare"] });

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
