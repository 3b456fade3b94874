// End-to-end specs for the generic XEP-0060 1.26.0 service at pubsub.<domain>
// (server/modules/pep/service.ts, `[modules.pep] pubsub_service = true`): discovery, node
// creation and ownership, publishing rights, subscriptions and notifications, RSM, access
// models, configure and delete.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startTestServer, type TestServer } from "../../support/server.ts";
import { accountsOn } from "../../support/accounts.ts";
import { assertError } from "../../support/stanzas.ts";
import { xml, type Element } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import { parseStanzaError } from "../../../protocol/errors.ts";
import type { XmppClient } from "../../../conformance/client/client.ts";
import roster from "../../../server/modules/roster/index.ts";
import presence from "../../../server/modules/presence/index.ts";
import message from "../../../server/modules/message/index.ts";
import disco from "../../../server/modules/disco/index.ts";
import pep from "../../../server/modules/pep/index.ts";

let t: TestServer;
let service: string;
before(async () => {
  t = await startTestServer({ modules: [roster, presence, message, disco, pep], toml: "[modules.pep]\npubsub_service = true\n" });
  service = `pubsub.${t.domain}`;
});
after(async () => {
  await t.stop();
});

const { account, connected } = accountsOn(() => t);
let counter = 0;
const nodeName = () => `urn:example:service:${++counter}`;

function ps(c: XmppClient, type: "get" | "set", ...children: Element[]): Promise<Element> {
  return c.iq(xml("iq", { type, to: service }, xml("pubsub", { xmlns: NS.pubsub }, ...children)));
}

function owner(c: XmppClient, type: "get" | "set", child: Element): Promise<Element> {
  return c.iq(xml("iq", { type, to: service }, xml("pubsub", { xmlns: NS.pubsubOwner }, child)));
}

function publishTo(c: XmppClient, node: string, id: string, text: string): Promise<Element> {
  return ps(c, "set", xml("publish", { node }, xml("item", { id }, xml("entry", { xmlns: "urn:example" }, text))));
}

function ids(reply: Element): string[] {
  return reply.getChild("pubsub", NS.pubsub)!.getChild("items")!.getChildren("item").map((i) => i.attrs.id);
}

function accessForm(model: string): Element {
  return xml("x", { xmlns: NS.dataForms, type: "submit" },
    xml("field", { var: "FORM_TYPE", type: "hidden" }, xml("value", {}, NS.pubsubNodeConfig)),
    xml("field", { var: "pubsub#access_model" }, xml("value", {}, model)));
}

const isEvent = (node: string) => (el: Element) => el.name === "message" && el.attrs.from === service && el.getChild("event", NS.pubsubEvent)?.getChild("items")?.attrs.node === node;

describe("a generic pubsub service at pubsub.<domain> (XEP-0060)", () => {
  test("the server lists it, and it says what it is", async () => {
    const c = await connected(await account("romeo"));
    const items = await c.iq(xml("iq", { type: "get", to: t.domain }, xml("query", { xmlns: NS.discoItems })));
    assert.ok(items.getChild("query", NS.discoItems)!.getChildren("item").some((i) => i.attrs.jid === service));
    const info = await c.iq(xml("iq", { type: "get", to: service }, xml("query", { xmlns: NS.discoInfo })));
    const q = info.getChild("query", NS.discoInfo)!;
    assert.ok(q.getChildren("identity").some((i) => i.attrs.category === "pubsub" && i.attrs.type === "service"));
    assert.ok(q.getChildren("feature").some((f) => f.attrs.var === `${NS.pubsub}#create-nodes`));
  });

  test("the creator owns the node; others may read and subscribe but not publish until made publishers", async () => {
    const romeo = await connected(await account("romeo"));
    const juliet = await connected(await account("juliet"));
    const node = nodeName();
    assert.equal((await ps(romeo, "set", xml("create", { node }))).attrs.type, "result");
    assertError(await ps(juliet, "set", xml("create", { node })), "conflict");
    assert.equal((await publishTo(romeo, node, "1", "first")).attrs.type, "result");
    assertError(await publishTo(juliet, node, "x", "nope"), "forbidden");

    const sub = await ps(juliet, "set", xml("subscribe", { node, jid: juliet.jid! }));
    assert.equal(sub.getChild("pubsub", NS.pubsub)!.getChild("subscription")!.attrs.subscription, "subscribed");
    // The last item on subscription, then live notifications.
    const last = await juliet.next(isEvent(node));
    assert.equal(last.getChild("event", NS.pubsubEvent)!.getChild("items")!.getChild("item")!.attrs.id, "1");
    await publishTo(romeo, node, "2", "second");
    const live = await juliet.next(isEvent(node));
    assert.equal(live.getChild("event", NS.pubsubEvent)!.getChild("items")!.getChild("item")!.attrs.id, "2");

    // Made a publisher, juliet publishes.
    await owner(romeo, "set", xml("affiliations", { node }, xml("affiliation", { jid: juliet.jid!.split("/")[0], affiliation: "publisher" })));
    assert.equal((await publishTo(juliet, node, "3", "third")).attrs.type, "result");
    assert.deepEqual(ids(await ps(romeo, "get", xml("items", { node }))), ["1", "2", "3"]);
    const page = await romeo.iq(xml("iq", { type: "get", to: service }, xml("pubsub", { xmlns: NS.pubsub }, xml("items", { node }), xml("set", { xmlns: NS.rsm }, xml("max", {}, "2")))));
    assert.deepEqual(ids(page), ["1", "2"]);
    assert.equal(page.getChild("pubsub", NS.pubsub)!.getChild("set", NS.rsm)!.getChildText("count"), "3");
    // Only the owner configures.
    assertError(await owner(juliet, "get", xml("configure", { node })), "forbidden");
  });

  test("whitelist nodes refuse non-members; presence access is not offered; delete tells subscribers", async () => {
    const romeo = await connected(await account("romeo"));
    const juliet = await connected(await account("juliet"));
    const node = nodeName();
    await ps(romeo, "set", xml("create", { node }), xml("configure", {}, accessForm("whitelist")));
    await publishTo(romeo, node, "1", "members only");
    assert.equal(parseStanzaError(await ps(juliet, "get", xml("items", { node })))?.appSpecific?.getName(), "closed-node");
    assertError(await owner(romeo, "set", xml("configure", { node }, accessForm("presence"))), "not-acceptable");
    await owner(romeo, "set", xml("configure", { node }, accessForm("open")));
    assert.deepEqual(ids(await ps(juliet, "get", xml("items", { node }))), ["1"]);

    await ps(juliet, "set", xml("subscribe", { node, jid: juliet.jid! }));
    await juliet.next(isEvent(node));
    assert.equal((await owner(romeo, "set", xml("delete", { node }))).attrs.type, "result");
    await juliet.next((el) => el.attrs.from === service && el.getChild("event", NS.pubsubEvent)?.getChild("delete")?.attrs.node === node);
    assertError(await ps(juliet, "get", xml("items", { node })), "item-not-found");
  });
});
