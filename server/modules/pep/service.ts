// XEP-0060: Publish-Subscribe 1.26.0 as a generic service at pubsub.<host> (opt-in:
// `[modules.pep] pubsub_service = true`), on the same store, codecs and paging as PEP: node
// create (§8.1), publish with auto-create (§7.1), retract (§7.2), items with max_items, ids and
// RSM (§6.5), subscribe and unsubscribe (§6.1, §6.2), subscriptions and affiliations (§5.6,
// §5.7), configure, purge, delete and affiliations by the owner (§8.2, §8.5, §8.4, §8.9), and
// discovery (§5). Nodes are leaves; the access models are open and whitelist; the creator is the
// owner; publishing takes an owner or publisher affiliation; notifications go to subscribers.
// Only accounts of the host may create nodes.
import { randomBytes } from "node:crypto";
import { xml, childElements, type Element } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import { StanzaError, errorReply } from "../../../protocol/errors.ts";
import { tryParseJid, type Jid } from "../../../protocol/jid.ts";
import { buildRsmResponse, parseRsmRequest } from "../../../protocol/rsm.ts";
import {
  PEP_DEFAULT_CONFIG,
  applyConfigForm,
  configForm,
  eventElement,
  itemElement,
  itemLimit,
  parseMaxItems,
  preconditionsMet,
  publishOptionsConfig,
  pubsubError,
  subscriptionElement,
  type NodeConfig,
} from "../../../protocol/pubsub.ts";
import { stanzaFromText, stanzaToText } from "../../core/storage/stanza-text.ts";
import type { ModuleApi } from "../../core/module.ts";
import type { IqEvent, StanzaEvent } from "../../core/router.ts";
import { KeyedLock } from "../roster/lock.ts";
import type { Affiliation, NodeMeta, PubSubStore, Service } from "./store.ts";
import { pageOf } from "./paging.ts";

const MAX_PAGE = 256;
const SERVICE_DEFAULT_CONFIG: Readonly<NodeConfig> = Object.freeze({ ...PEP_DEFAULT_CONFIG, accessModel: "open", maxItems: 10, sendLastPublishedItem: "on_sub" });

export const SERVICE_FEATURES = [
  "create-nodes",
  "publish",
  "auto-create",
  "publish-options",
  "retrieve-items",
  "retract-items",
  "subscribe",
  "retrieve-subscriptions",
  "retrieve-affiliations",
  "modify-affiliations",
  "config-node",
  "purge-nodes",
  "delete-nodes",
  "access-open",
  "access-whitelist",
  "persistent-items",
  "item-ids",
  "multi-items",
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

export class PubSubService {
  readonly #lock = new KeyedLock();
  #nodes: Promise<Map<string, NodeMeta>> | undefined;
  readonly #service: Service;

  constructor(
    private readonly m: ModuleApi,
    private readonly store: PubSubStore,
    readonly domain: string,
    private readonly host: string,
  ) {
    this.#service = { host: domain, username: "" };
  }

  #all(): Promise<Map<string, NodeMeta>> {
    if (!this.#nodes) {
      this.#nodes = this.store.nodes(this.#service);
      this.#nodes.catch(() => (this.#nodes = undefined));
    }
    return this.#nodes;
  }

  async #node(name: string): Promise<NodeMeta> {
    const node = (await this.#all()).get(name);
    if (!node) throw new StanzaError("item-not-found");
    return node;
  }

  #affiliation(node: NodeMeta, jid: Jid): Affiliation | "none" {
    return node.affiliations.get(jid.bare.toString()) ?? "none";
  }

  #mayRead(node: NodeMeta, jid: Jid): StanzaError | null {
    const a = this.#affiliation(node, jid);
    if (a === "outcast") return new StanzaError("forbidden");
    if (a !== "none" || node.config.accessModel === "open") return null;
    return pubsubError("not-allowed", "closed-node");
  }

  #ownerOf(node: NodeMeta, jid: Jid): void {
    if (this.#affiliation(node, jid) !== "owner") throw new StanzaError("forbidden", "only an owner of the node may do that");
  }

  /** Service nodes take open or whitelist; the others need a roster the service does not have. */
  #checkConfig(config: NodeConfig): NodeConfig {
    if (config.accessModel !== "open" && config.accessModel !== "whitelist") throw new StanzaError("not-acceptable", "this service offers the open and whitelist access models");
    return config;
  }

  async handle(ev: StanzaEvent): Promise<void> {
    if (ev.kind !== "iq") return; // messages and presence to the service are dropped
    const type = ev.stanza.attrs.type;
    if (type !== "get" && type !== "set") return;
    try {
      const payload = await this.#answer(ev as IqEvent, type);
      await this.m.send(xml("iq", { type: "result", id: ev.stanza.attrs.id, from: ev.stanza.attrs.to, to: ev.stanza.attrs.from }, payload ?? null));
    } catch (err) {
      const error = err instanceof StanzaError ? err : new StanzaError("internal-server-error");
      if (!(err instanceof StanzaError)) this.m.log.error({ err }, "pubsub service request failed");
      const reply = errorReply(ev.stanza, error);
      if (reply) await this.m.send(reply);
    }
  }

  async #answer(ev: IqEvent, type: "get" | "set"): Promise<Element | undefined> {
    const p = ev.payload;
    const ns = p.getNS();
    if (ev.to.local !== "" || ev.to.resource !== "") throw new StanzaError("service-unavailable");
    if (type === "get" && ns === NS.discoInfo) return this.#discoInfo(p.attrs.node, ev.from);
    if (type === "get" && ns === NS.discoItems) return this.#discoItems(p.attrs.node, ev.from);
    if (p.getName() !== "pubsub" || (ns !== NS.pubsub && ns !== NS.pubsubOwner)) throw new StanzaError("service-unavailable");
    const [op] = childElements(p).filter((c) => c.getName() !== "publish-options" && c.getName() !== "configure" && c.getName() !== "set");
    const configure = p.getChild("configure");
    const verb = op ?? configure;
    if (!verb) throw new StanzaError("bad-request");
    const from = ev.from;
    if (ns === NS.pubsubOwner) return this.#owner(type, verb, from);
    if (type === "get") {
      if (verb.getName() === "items") return this.#items(verb, p, from);
      if (verb.getName() === "subscriptions") return this.#subscriptions(verb, from);
      if (verb.getName() === "affiliations") return this.#affiliations(from);
      throw pubsubError("feature-not-implemented", "unsupported");
    }
    switch (verb.getName()) {
      case "create":
        return this.#create(verb, configure, from);
      case "publish":
        return this.#publish(verb, p.getChild("publish-options"), from);
      case "retract":
        return this.#retract(verb, from);
      case "subscribe":
        return this.#subscribe(verb, from);
      case "unsubscribe":
        return this.#unsubscribe(verb, from);
      default:
        throw pubsubError("feature-not-implemented", "unsupported");
    }
  }

  async #discoInfo(name: string | undefined, from: Jid): Promise<Element> {
    if (name === undefined) {
      return xml("query", { xmlns: NS.discoInfo },
        xml("identity", { category: "pubsub", type: "service", name: "Publish-Subscribe" }),
        xml("feature", { var: NS.discoInfo }),
        xml("feature", { var: NS.discoItems }),
        xml("feature", { var: NS.pubsub }),
        ...SERVICE_FEATURES.map((f) => xml("feature", { var: f })));
    }
    const node = await this.#node(name);
    if (this.#mayRead(node, from)) throw new StanzaError("item-not-found");
    return xml("query", { xmlns: NS.discoInfo, node: name }, xml("identity", { category: "pubsub", type: "leaf" }), xml("feature", { var: NS.pubsub }));
  }

  async #discoItems(name: string | undefined, from: Jid): Promise<Element> {
    const query = xml("query", { xmlns: NS.discoItems, node: name });
    if (name === undefined) {
      for (const [n, node] of await this.#all()) if (!this.#mayRead(node, from)) query.append(xml("item", { jid: this.domain, node: n }));
      return query;
    }
    // §5.5: the items of a leaf node, by id.
    const node = await this.#node(name);
    const refused = this.#mayRead(node, from);
    if (refused) throw refused;
    for (const item of await this.store.items(this.#service, name)) query.append(xml("item", { jid: this.domain, name: item.id }));
    return query;
  }

  async #create(el: Element, configure: Element | undefined, from: Jid): Promise<undefined> {
    // Instant nodes (§8.1.2) are not offered: the node is named by its creator.
    const name = nodeName(el);
    if (from.domain !== this.host) throw new StanzaError("forbidden", "only local accounts create nodes here");
    const form = configure?.getChild("x", NS.dataForms);
    const config = this.#checkConfig(form ? applyConfigForm({ ...SERVICE_DEFAULT_CONFIG }, form) : { ...SERVICE_DEFAULT_CONFIG });
    await this.#lock.run(name, async () => {
      const nodes = await this.#all();
      if (nodes.has(name)) throw new StanzaError("conflict", "the node exists");
      const node = await this.store.createNode(this.#service, name, config);
      await this.store.setAffiliation(this.#service, name, from.bare.toString(), "owner");
      node.affiliations.set(from.bare.toString(), "owner");
      nodes.set(name, node);
    });
    return undefined;
  }

  async #publish(el: Element, options: Element | undefined, from: Jid): Promise<Element> {
    const name = nodeName(el);
    const items = el.getChildren("item");
    if (items.length !== 1) throw pubsubError("bad-request", items.length === 0 ? "item-required" : "invalid-payload");
    const payloads = childElements(items[0]!);
    if (payloads.length !== 1) throw pubsubError("bad-request", payloads.length === 0 ? "payload-required" : "invalid-payload");
    const id = items[0]!.attrs.id || newId();
    const optionsForm = options?.getChild("x", NS.dataForms);
    const wanted = optionsForm ? publishOptionsConfig(optionsForm) : {};
    const text = stanzaToText(payloads[0]!);
    const node = await this.#lock.run(name, async () => {
      const nodes = await this.#all();
      let node = nodes.get(name);
      if (!node) {
        if (from.domain !== this.host) throw new StanzaError("item-not-found");
        node = await this.store.createNode(this.#service, name, this.#checkConfig({ ...SERVICE_DEFAULT_CONFIG, ...wanted }));
        await this.store.setAffiliation(this.#service, name, from.bare.toString(), "owner");
        node.affiliations.set(from.bare.toString(), "owner");
        nodes.set(name, node);
      } else {
        const a = this.#affiliation(node, from);
        if (a !== "owner" && a !== "publisher") throw new StanzaError("forbidden", "publishing takes a publisher affiliation");
        if (!preconditionsMet(node.config, wanted)) throw pubsubError("conflict", "precondition-not-met");
      }
      await this.store.publish(this.#service, name, { id, publisher: from.bare.toString(), payload: text }, itemLimit(node.config));
      return node;
    });
    this.#notify(name, node, () => eventElement(name, { items: [itemElement(id, stanzaFromText(text) ?? undefined)] }));
    return xml("pubsub", { xmlns: NS.pubsub }, xml("publish", { node: name }, xml("item", { id })));
  }

  async #retract(el: Element, from: Jid): Promise<undefined> {
    const name = nodeName(el);
    const ids = el.getChildren("item").map((i) => i.attrs.id);
    if (ids.length === 0 || ids.some((id) => !id)) throw pubsubError("bad-request", "item-required");
    const node = await this.#node(name);
    const a = this.#affiliation(node, from);
    if (a !== "owner" && a !== "publisher") throw new StanzaError("forbidden");
    const existing = await this.store.retract(this.#service, name, ids as string[]);
    if (existing.length < ids.length) throw new StanzaError("item-not-found");
    if (el.attrs.notify === "true" || el.attrs.notify === "1") this.#notify(name, node, () => eventElement(name, { retract: existing }));
    return undefined;
  }

  async #items(el: Element, pubsub: Element, from: Jid): Promise<Element> {
    const name = nodeName(el);
    const max = parseMaxItems(el.attrs.max_items);
    const rsm = parseRsmRequest(pubsub.getChild("set", NS.rsm));
    const node = await this.#node(name);
    const refused = this.#mayRead(node, from);
    if (refused) throw refused;
    const ids = el.getChildren("item").map((i) => i.attrs.id).filter((id): id is string => id !== undefined);
    let items = await this.store.items(this.#service, name, ids.length > 0 ? ids : undefined);
    if (max !== undefined) items = items.slice(-max);
    const listing = xml("items", { node: name });
    if (!rsm) {
      for (const i of items.slice(-MAX_PAGE)) listing.append(itemElement(i.id, stanzaFromText(i.payload) ?? undefined));
      return xml("pubsub", { xmlns: NS.pubsub }, listing);
    }
    const { page, response } = pageOf(items, rsm, MAX_PAGE);
    for (const i of page) listing.append(itemElement(i.id, stanzaFromText(i.payload) ?? undefined));
    return xml("pubsub", { xmlns: NS.pubsub }, listing, buildRsmResponse(response));
  }

  async #subscribe(el: Element, from: Jid): Promise<Element> {
    const name = nodeName(el);
    const jid = el.attrs.jid === undefined ? null : tryParseJid(el.attrs.jid);
    if (!jid) throw pubsubError("bad-request", "jid-required");
    if (!jid.bare.equals(from.bare)) throw pubsubError("bad-request", "invalid-jid");
    const node = await this.#node(name);
    const refused = this.#mayRead(node, from);
    if (refused) throw refused;
    const subid = await this.store.subscribe(this.#service, name, jid.toString(), newId());
    if (node.config.sendLastPublishedItem !== "never") {
      setImmediate(() => {
        this.store
          .lastItem(this.#service, name)
          .then((last) => (last ? this.#send(jid.toString(), eventElement(name, { items: [itemElement(last.id, stanzaFromText(last.payload) ?? undefined)] })) : undefined))
          .catch((err: unknown) => this.m.log.error({ err }, "sending the last item to a subscriber failed"));
      });
    }
    return xml("pubsub", { xmlns: NS.pubsub }, subscriptionElement(name, jid.toString(), "subscribed", subid));
  }

  async #unsubscribe(el: Element, from: Jid): Promise<undefined> {
    const name = nodeName(el);
    const jid = el.attrs.jid === undefined ? null : tryParseJid(el.attrs.jid);
    if (!jid) throw pubsubError("bad-request", "jid-required");
    if (!jid.bare.equals(from.bare)) throw pubsubError("bad-request", "invalid-jid");
    await this.#node(name);
    if (!(await this.store.unsubscribe(this.#service, name, jid.toString()))) throw pubsubError("unexpected-request", "not-subscribed");
    return undefined;
  }

  async #subscriptions(el: Element, from: Jid): Promise<Element> {
    const wanted = el.attrs.node;
    const list = xml("subscriptions", { node: wanted });
    for (const s of await this.store.subscriptionsOf(this.#service, from.bare.toString())) {
      if (wanted === undefined || s.node === wanted) list.append(subscriptionElement(s.node, s.jid, "subscribed", s.subid));
    }
    return xml("pubsub", { xmlns: NS.pubsub }, list);
  }

  async #affiliations(from: Jid): Promise<Element> {
    const list = xml("affiliations");
    for (const [name, node] of await this.#all()) {
      const a = this.#affiliation(node, from);
      if (a !== "none") list.append(xml("affiliation", { node: name, affiliation: a }));
    }
    return xml("pubsub", { xmlns: NS.pubsub }, list);
  }

  async #owner(type: "get" | "set", el: Element, from: Jid): Promise<Element | undefined> {
    const name = nodeName(el);
    const node = await this.#node(name);
    this.#ownerOf(node, from);
    const verb = el.getName();
    if (type === "get") {
      if (verb === "configure") return xml("pubsub", { xmlns: NS.pubsubOwner }, xml("configure", { node: name }, configForm(node.config)));
      if (verb === "affiliations") {
        return xml("pubsub", { xmlns: NS.pubsubOwner }, xml("affiliations", { node: name }, ...[...node.affiliations].map(([jid, affiliation]) => xml("affiliation", { jid, affiliation }))));
      }
      if (verb === "subscriptions") {
        const subs = await this.store.subscribers(this.#service, name);
        return xml("pubsub", { xmlns: NS.pubsubOwner }, xml("subscriptions", { node: name }, ...subs.map((s) => subscriptionElement(undefined, s.jid, "subscribed", s.subid))));
      }
      throw pubsubError("feature-not-implemented", "unsupported");
    }
    await this.#lock.run(name, async () => {
      if (verb === "configure") {
        const form = el.getChild("x", NS.dataForms);
        if (!form) throw new StanzaError("bad-request", "a configuration form is needed");
        node.config = this.#checkConfig(applyConfigForm(node.config, form));
        await this.store.setConfig(this.#service, name, node.config);
        await this.store.trim(this.#service, name, itemLimit(node.config));
      } else if (verb === "delete") {
        this.#notify(name, node, () => eventElement(name, { delete: true }), await this.store.subscribers(this.#service, name));
        (await this.#all()).delete(name);
        await this.store.deleteNode(this.#service, name);
      } else if (verb === "purge") {
        await this.store.purge(this.#service, name);
        this.#notify(name, node, () => eventElement(name, { purge: true }));
      } else if (verb === "affiliations") {
        for (const a of el.getChildren("affiliation")) {
          const jid = a.attrs.jid === undefined ? null : tryParseJid(a.attrs.jid);
          if (!jid) throw new StanzaError("jid-malformed");
          const value = a.attrs.affiliation;
          const bare = jid.bare.toString();
          if (value === "none") {
            await this.store.setAffiliation(this.#service, name, bare, null);
            node.affiliations.delete(bare);
          } else if (value === "owner" || value === "publisher" || value === "member" || value === "outcast") {
            await this.store.setAffiliation(this.#service, name, bare, value);
            node.affiliations.set(bare, value);
          } else {
            throw new StanzaError("bad-request", "unknown affiliation");
          }
        }
      } else {
        throw pubsubError("feature-not-implemented", "unsupported");
      }
    });
    return undefined;
  }

  #send(to: string, event: Element): Promise<void> {
    return this.m.send(xml("message", { from: this.domain, to, type: "headline", id: newId() }, event));
  }

  /** Notifications to the node's subscribers that may read it (§7.1.2). */
  #notify(name: string, node: NodeMeta, event: () => Element, known?: { jid: string }[]): void {
    void (async () => {
      const subs = known ?? (await this.store.subscribers(this.#service, name));
      for (const s of subs) {
        const jid = tryParseJid(s.jid);
        if (jid && !this.#mayRead(node, jid)) await this.#send(s.jid, event());
      }
    })().catch((err: unknown) => this.m.log.error({ err }, "pubsub notification failed"));
  }
}
