// Specs for protocol/pubsub.ts: XEP-0060 1.26.0 node configuration, publish-options
// preconditions (§7.1.5) and notification events, as XEP-0163 1.2 uses them.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { xml, type Element } from "../../protocol/xml/element.ts";
import { NS } from "../../protocol/ns.ts";
import { StanzaError } from "../../protocol/errors.ts";
import {
  MAX_ITEMS_LIMIT,
  PEP_DEFAULT_CONFIG,
  applyConfigForm,
  configForm,
  eventElement,
  itemLimit,
  parseMaxItems,
  preconditionsMet,
  publishOptionsConfig,
  type NodeConfig,
} from "../../protocol/pubsub.ts";

function form(formType: string, fields: Record<string, string | string[]>): Element {
  return xml("x", { xmlns: NS.dataForms, type: "submit" },
    xml("field", { var: "FORM_TYPE", type: "hidden" }, xml("value", {}, formType)),
    ...Object.entries(fields).map(([k, v]) => xml("field", { var: k, type: Array.isArray(v) ? "list-multi" : undefined }, ...(Array.isArray(v) ? v : [v]).map((x) => xml("value", {}, x)))));
}

function conditionOf(fn: () => unknown): { condition: string; app?: string } {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof StanzaError);
    return { condition: e.condition, app: e.appSpecific?.getName() };
  }
  assert.fail("expected a StanzaError");
}

describe("publish-options (XEP-0060 §7.1.5)", () => {
  test("reads the options PEP clients send", () => {
    const wanted = publishOptionsConfig(form(NS.pubsubPublishOptions, { "pubsub#access_model": "open", "pubsub#persist_items": "true", "pubsub#max_items": "max" }));
    assert.deepEqual(wanted, { accessModel: "open", persistItems: true, maxItems: "max" });
  });

  test("an option the service cannot meet is precondition-not-met", () => {
    assert.deepEqual(conditionOf(() => publishOptionsConfig(form(NS.pubsubPublishOptions, { "pubsub#access_model": "authorize" }))), { condition: "conflict", app: "precondition-not-met" });
    assert.deepEqual(conditionOf(() => publishOptionsConfig(form(NS.pubsubPublishOptions, { "pubsub#unknown": "1" }))), { condition: "conflict", app: "precondition-not-met" });
    assert.deepEqual(conditionOf(() => publishOptionsConfig(form(NS.pubsubPublishOptions, { "pubsub#max_items": "-1" }))), { condition: "conflict", app: "precondition-not-met" });
  });

  test("a form of another FORM_TYPE is a bad request", () => {
    assert.equal(conditionOf(() => publishOptionsConfig(form(NS.pubsubNodeConfig, {}))).condition, "bad-request");
  });

  test("preconditions compare with the node's configuration", () => {
    const node: NodeConfig = { ...PEP_DEFAULT_CONFIG, accessModel: "open", maxItems: "max" };
    assert.ok(preconditionsMet(node, { accessModel: "open", maxItems: "max" }));
    assert.ok(preconditionsMet(node, {}));
    assert.ok(!preconditionsMet(node, { accessModel: "presence" }));
    assert.ok(!preconditionsMet(node, { maxItems: 10 }));
    assert.ok(!preconditionsMet(node, { persistItems: false }));
  });

  test("property: a configuration always meets the preconditions read from its own form", () => {
    const configs = fc.record({
      accessModel: fc.constantFrom("open", "presence", "roster", "whitelist" as const),
      persistItems: fc.boolean(),
      maxItems: fc.oneof(fc.constant("max" as const), fc.integer({ min: 0, max: 1000 })),
      rosterGroupsAllowed: fc.array(fc.constantFrom("friends", "family", "work"), { maxLength: 3 }).map((a) => [...new Set(a)]),
      sendLastPublishedItem: fc.constantFrom("never", "on_sub", "on_sub_and_presence" as const),
    });
    fc.assert(fc.property(configs, (config) => {
      const x = configForm(config as NodeConfig, "form");
      x.attrs.type = "submit";
      return preconditionsMet(config as NodeConfig, applyConfigForm(PEP_DEFAULT_CONFIG, x));
    }));
  });
});

describe("node configuration (XEP-0060 §8.2)", () => {
  test("a submitted form changes the named fields only", () => {
    const next = applyConfigForm(PEP_DEFAULT_CONFIG, form(NS.pubsubNodeConfig, { "pubsub#access_model": "roster", "pubsub#roster_groups_allowed": ["friends", "family"] }));
    assert.deepEqual(next, { ...PEP_DEFAULT_CONFIG, accessModel: "roster", rosterGroupsAllowed: ["friends", "family"] });
    assert.equal(PEP_DEFAULT_CONFIG.accessModel, "presence");
  });

  test("values the service cannot hold are not-acceptable", () => {
    assert.equal(conditionOf(() => applyConfigForm(PEP_DEFAULT_CONFIG, form(NS.pubsubNodeConfig, { "pubsub#persist_items": "maybe" }))).condition, "not-acceptable");
  });

  test("item limits: max is the service's limit, non-persistent nodes keep the last item", () => {
    assert.equal(itemLimit({ ...PEP_DEFAULT_CONFIG, maxItems: "max" }), MAX_ITEMS_LIMIT);
    assert.equal(itemLimit({ ...PEP_DEFAULT_CONFIG, maxItems: 10 }), 10);
    assert.equal(itemLimit({ ...PEP_DEFAULT_CONFIG, maxItems: 10, persistItems: false }), 1);
    assert.equal(itemLimit({ ...PEP_DEFAULT_CONFIG, maxItems: 1_000_000 }), MAX_ITEMS_LIMIT);
  });
});

describe("items requests and events", () => {
  test("max_items must be a positive integer", () => {
    assert.equal(parseMaxItems(undefined), undefined);
    assert.equal(parseMaxItems("3"), 3);
    for (const bad of ["0", "-1", "x", "1.5"]) assert.equal(conditionOf(() => parseMaxItems(bad)).condition, "bad-request");
  });

  test("events carry items, retractions or a deletion", () => {
    const items = eventElement("n", { items: [xml("item", { id: "1" })], retract: ["2"] });
    assert.equal(items.getNS(), NS.pubsubEvent);
    assert.equal(items.getChild("items")?.attrs.node, "n");
    assert.equal(items.getChild("items")?.getChild("retract")?.attrs.id, "2");
    assert.equal(eventElement("n", { delete: true }).getChild("delete")?.attrs.node, "n");
  });
});
