// XEP-0060: Publish-Subscribe 1.26.0, the subset XEP-0163 (Personal Eventing Protocol 1.2) uses:
// node configuration (§16.4.4 pubsub#node_config), publish-options preconditions (§7.1.5), the
// pubsub#errors application conditions (§7, §6.5.9) and event notifications (§7.1.2.1, §7.2.2.1,
// §8.4.3). Pure codecs: no storage, no routing.
import { xml, type Element } from "./xml/element.ts";
import { NS } from "./ns.ts";
import { StanzaError, type StanzaErrorCondition } from "./errors.ts";
import { FORM_TYPE_FIELD, buildForm, formType, parseForm, type DataForm, type FormField } from "./forms.ts";

export type AccessModel = "open" | "presence" | "roster" | "whitelist";
const ACCESS_MODELS: ReadonlySet<string> = new Set(["open", "presence", "roster", "whitelist"]);

/** What a service may keep of one node at most; "max" in pubsub#max_items means this. */
export const MAX_ITEMS_LIMIT = 256;

export interface NodeConfig {
  accessModel: AccessModel;
  persistItems: boolean;
  /** A count, or "max" (XEP-0060 §16.4.4, as of 1.15: the service's maximum). */
  maxItems: number | "max";
  /** Roster groups allowed under access model "roster". */
  rosterGroupsAllowed: string[];
  /** §12.20: when the last item goes to a new subscriber, or (PEP) to a resource coming online. */
  sendLastPublishedItem: SendLast;
}

export type SendLast = "never" | "on_sub" | "on_sub_and_presence";
const SEND_LAST: ReadonlySet<string> = new Set(["never", "on_sub", "on_sub_and_presence"]);

/** XEP-0163 §4.2 / §4.6: what an auto-created PEP node gets. */
export const PEP_DEFAULT_CONFIG: Readonly<NodeConfig> = Object.freeze({
  accessModel: "presence",
  persistItems: true,
  maxItems: 1,
  rosterGroupsAllowed: [],
  sendLastPublishedItem: "on_sub_and_presence",
});

/** The effective item limit of a node. */
export function itemLimit(config: NodeConfig): number {
  const n = config.maxItems === "max" ? MAX_ITEMS_LIMIT : Math.min(config.maxItems, MAX_ITEMS_LIMIT);
  return config.persistItems ? Math.max(n, 1) : 1;
}

/** An error with a pubsub#errors application condition (XEP-0060 §7.1.3 and friends). */
export function pubsubError(condition: StanzaErrorCondition, pubsubCondition?: string, text?: string): StanzaError {
  return new StanzaError(condition, { text, appSpecific: pubsubCondition ? xml(pubsubCondition, { xmlns: NS.pubsubErrors }) : undefined });
}

const FIELD = {
  access: "pubsub#access_model",
  persist: "pubsub#persist_items",
  maxItems: "pubsub#max_items",
  groups: "pubsub#roster_groups_allowed",
  sendLast: "pubsub#send_last_published_item",
} as const;

function parseBool(value: string | undefined): boolean | undefined {
  if (value === "1" || value === "true") return true;
  if (value === "0" || value === "false") return false;
  return undefined;
}

/** One field's value as stored in a NodeConfig; throws on values the service cannot hold. */
function readField(field: FormField, error: () => StanzaError): Partial<NodeConfig> {
  const value = field.values[0];
  switch (field.var) {
    case FIELD.access:
      if (value === undefined || !ACCESS_MODELS.has(value)) throw error();
      return { accessModel: value as AccessModel };
    case FIELD.persist: {
      const b = parseBool(value);
      if (b === undefined) throw error();
      return { persistItems: b };
    }
    case FIELD.maxItems: {
      if (value === "max") return { maxItems: "max" };
      if (value === undefined || !/^\d{1,9}$/.test(value)) throw error();
      return { maxItems: Number(value) };
    }
    case FIELD.groups:
      return { rosterGroupsAllowed: [...field.values] };
    case FIELD.sendLast:
      if (value === undefined || !SEND_LAST.has(value)) throw error();
      return { sendLastPublishedItem: value as SendLast };
    default:
      throw error();
  }
}

/** The fields of a submitted form (node_config or publish-options) other than FORM_TYPE. */
function submittedFields(x: Element, expectedType: string): FormField[] {
  const form = parseForm(x);
  const type = formType(form);
  if (type !== undefined && type !== expectedType) throw new StanzaError("bad-request", `expected FORM_TYPE ${expectedType}`);
  return form.fields.filter((f) => f.var !== undefined && f.var !== FORM_TYPE_FIELD);
}

/** XEP-0060 §8.2.4: a submitted configuration applied to `current`; <not-acceptable/> for what the service cannot do. */
export function applyConfigForm(current: NodeConfig, x: Element): NodeConfig {
  const next: NodeConfig = { ...current, rosterGroupsAllowed: [...current.rosterGroupsAllowed] };
  for (const field of submittedFields(x, NS.pubsubNodeConfig)) {
    Object.assign(next, readField(field, () => new StanzaError("not-acceptable", `unsupported value for ${field.var}`)));
  }
  return next;
}

/**
 * XEP-0060 §7.1.5: publish-options are preconditions. For a node being created they are its
 * configuration; for an existing node each must equal the node's value, else
 * <conflict/><precondition-not-met/>. An option the service does not know is not met.
 */
export function publishOptionsConfig(x: Element): Partial<NodeConfig> {
  const out: Partial<NodeConfig> = {};
  for (const field of submittedFields(x, NS.pubsubPublishOptions)) {
    Object.assign(out, readField(field, () => pubsubError("conflict", "precondition-not-met", `cannot meet ${field.var}`)));
  }
  return out;
}

export function preconditionsMet(config: NodeConfig, wanted: Partial<NodeConfig>): boolean {
  if (wanted.accessModel !== undefined && wanted.accessModel !== config.accessModel) return false;
  if (wanted.persistItems !== undefined && wanted.persistItems !== config.persistItems) return false;
  if (wanted.maxItems !== undefined && String(wanted.maxItems) !== String(config.maxItems)) return false;
  if (wanted.sendLastPublishedItem !== undefined && wanted.sendLastPublishedItem !== config.sendLastPublishedItem) return false;
  if (wanted.rosterGroupsAllowed !== undefined) {
    const a = [...wanted.rosterGroupsAllowed].sort();
    const b = [...config.rosterGroupsAllowed].sort();
    if (a.length !== b.length || a.some((g, i) => g !== b[i])) return false;
  }
  return true;
}

/** XEP-0060 §8.2: the node_config form describing `config`. */
export function configForm(config: NodeConfig, type: "form" | "result" = "form"): Element {
  const form: DataForm = {
    type,
    fields: [
      { var: FORM_TYPE_FIELD, type: "hidden", values: [NS.pubsubNodeConfig] },
      {
        var: FIELD.access,
        type: "list-single",
        options: [...ACCESS_MODELS].map((value) => ({ value })),
        values: [config.accessModel],
      },
      { var: FIELD.persist, type: "boolean", values: [config.persistItems ? "1" : "0"] },
      { var: FIELD.maxItems, type: "text-single", values: [String(config.maxItems)] },
      { var: FIELD.groups, type: "list-multi", values: [...config.rosterGroupsAllowed] },
      {
        var: FIELD.sendLast,
        type: "list-single",
        options: [...SEND_LAST].map((value) => ({ value })),
        values: [config.sendLastPublishedItem],
      },
    ],
  };
  return buildForm(form);
}

/** An <item/> as published or notified: its id and payload. */
export function itemElement(id: string, payload?: Element): Element {
  return xml("item", { id }, payload ?? null);
}

/** §7.1.2.1 / §7.2.2.1 / §8.4.3: the <event/> of a notification message. */
export function eventElement(node: string, change: { items?: Element[]; retract?: string[]; delete?: true; purge?: true; configuration?: Element }): Element {
  const event = xml("event", { xmlns: NS.pubsubEvent });
  if (change.delete) {
    event.append(xml("delete", { node }));
    return event;
  }
  if (change.purge) {
    event.append(xml("purge", { node }));
    return event;
  }
  if (change.configuration) {
    event.append(xml("configuration", { node }, change.configuration));
    return event;
  }
  const items = xml("items", { node });
  for (const item of change.items ?? []) items.append(item);
  for (const id of change.retract ?? []) items.append(xml("retract", { id }));
  event.append(items);
  return event;
}

/** XEP-0060 §6.5.7: max_items on an items request, or undefined; <bad-request/> when not a positive integer. */
export function parseMaxItems(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d{1,9}$/.test(value) || Number(value) === 0) throw new StanzaError("bad-request", "max_items must be a positive integer");
  return Number(value);
}

/** XEP-0115 §1.1 / XEP-0163 §4.4: the +notify feature that filters notifications of `node`. */
export function notifyFeature(node: string): string {
  return `${node}+notify`;
}

/** §6.1.2: a <subscription/> as the service reports it. */
export function subscriptionElement(node: string | undefined, jid: string, state: "subscribed" | "none", subid?: string): Element {
  return xml("subscription", { node, jid, subscription: state, subid });
}
