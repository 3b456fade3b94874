// End-to-end specs for server/modules/disco: XEP-0030 disco#info and disco#items of the server
// and of accounts, XEP-0128 extension forms, and the server's XEP-0115 caps stream feature.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startTestServer, type TestServer } from "../../support/server.ts";
import { accountsOn } from "../../support/accounts.ts";
import { assertError } from "../../support/stanzas.ts";
import type { XmppClient } from "../../../conformance/client/client.ts";
import { xml, type Element } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import { buildForm } from "../../../protocol/forms.ts";
import { capsVer, discoInfoFromQuery } from "../../../protocol/caps.ts";
import { defineModule } from "../../../server/core/module.ts";
import disco, { CAPS_NODE, INFO_EXTENSIONS_EVENT, ITEMS_EVENT, type DiscoInfoExtensionsEvent, type DiscoItemsEvent } from "../../../server/modules/disco/index.ts";
import ping from "../../../server/modules/ping/index.ts";
import version from "../../../server/modules/version/index.ts";
import last from "../../../server/modules/last/index.ts";

const CONTACT_FORM = "http://jabber.org/network/serverinfo";

// A module of the kind that extends disco: a XEP-0157 form for the server, an item, and a form
// on accounts. It also declares a feature, from a module loaded after disco.
const extension = defineModule({
  name: "spec-extension",
  xeps: [],
  setup(m) {
    m.addFeature("urn:example:late-feature");
    m.hook<DiscoInfoExtensionsEvent>(INFO_EXTENSIONS_EVENT, (ev) => {
      const formType = ev.target === "host" ? CONTACT_FORM : "urn:example:account-info";
      ev.forms.push(
        buildForm({
          type: "result",
          fields: [
            { var: "FORM_TYPE", type: "hidden", values: [formType] },
            { var: "admin-addresses", type: "list-multi", values: ["xmpp:admin@localhost", "mailto:admin@localhost"] },
          ],
        }),
      );
    });
    m.hook<DiscoItemsEvent>(ITEMS_EVENT, (ev) => {
      if (ev.target === "host") ev.items.push({ jid: "conference.localhost", name: "Chatrooms" });
    });
  },
});

let t: TestServer;
before(async () => {
  // disco first: what later modules declare must still be advertised.
  t = await startTestServer({ users: ["romeo", "juliet", "nurse"], modules: [disco, ping, version, last, extension] });
});
after(async () => {
  await t.stop();
});

function infoQuery(c: XmppClient, to: string | undefined, node?: string): Promise<Element> {
  return c.iq(xml("iq", { type: "get", to }, xml("query", { xmlns: NS.discoInfo, node })));
}

function itemsQuery(c: XmppClient, to: string | undefined, node?: string): Promise<Element> {
  return c.iq(xml("iq", { type: "get", to }, xml("query", { xmlns: NS.discoItems, node })));
}

function features(result: Element): string[] {
  return result.getChild("query", NS.discoInfo)!.getChildren("feature").map((f) => f.attrs.var);
}

function identities(result: Element): string[] {
  return result.getChild("query", NS.discoInfo)!.getChildren("identity").map((i) => `${i.attrs.category}/${i.attrs.type}/${i.attrs.name ?? ""}`);
}

const { setSubscription } = accountsOn(() => t);

describe("the server (XEP-0030 §3, §4)", () => {
  test("disco#info lists server/im and the features of every loaded module, whatever the load order", async () => {
    const c = await t.login("romeo");
    const r = await infoQuery(c, "localhost");
    assert.equal(r.attrs.type, "result");
    assert.equal(r.attrs.from, "localhost");
    assert.deepEqual(identities(r), ["server/im/Parley"]);
    const got = features(r);
    for (const ns of [NS.discoInfo, NS.discoItems, NS.caps, NS.ping, NS.version, NS.last, "urn:example:late-feature"]) assert.ok(got.includes(ns), ns);
    assert.ok(!got.includes(NS.time), "a module that is not loaded is not advertised");
    assert.equal(new Set(got).size, got.length, "no feature twice");
    await c.close();
  });

  test("extension forms (XEP-0128) follow the features", async () => {
    const c = await t.login("romeo");
    const query = (await infoQuery(c, "localhost")).getChild("query", NS.discoInfo)!;
    const form = query.getChild("x", NS.dataForms);
    assert.ok(form);
    assert.equal(form.attrs.type, "result");
    const formType = form.getChildren("field").find((f) => f.attrs.var === "FORM_TYPE");
    assert.equal(formType?.getChildText("value"), CONTACT_FORM);
    await c.close();
  });

  test("disco#items lists what modules add", async () => {
    const c = await t.login("romeo");
    const r = await itemsQuery(c, "localhost");
    assert.equal(r.attrs.type, "result");
    const items = r.getChild("query", NS.discoItems)!.getChildren("item");
    assert.deepEqual(items.map((i) => [i.attrs.jid, i.attrs.name]), [["conference.localhost", "Chatrooms"]]);
    await c.close();
  });

  test("unknown nodes are item-not-found, for info and for items", async () => {
    const c = await t.login("romeo");
    assertError(await infoQuery(c, "localhost", "urn:example:nothing-here"), "item-not-found");
    assertError(await infoQuery(c, "localhost", `${CAPS_NODE}#not-the-ver`), "item-not-found");
    assertError(await itemsQuery(c, "localhost", "urn:example:nothing-here"), "item-not-found");
    await c.close();
  });
});

describe("entity capabilities of the server (XEP-0115)", () => {
  test("after authentication the stream features carry <c/>, whose ver is the hash of disco#info", async () => {
    const c = await t.login("romeo");
    const caps = c.features?.getChild("c", NS.caps);
    assert.ok(caps, "a <c/> stream feature");
    assert.equal(caps.attrs.hash, "sha-1");
    assert.equal(caps.attrs.node, CAPS_NODE);
    const query = (await infoQuery(c, "localhost")).getChild("query", NS.discoInfo)!;
    assert.equal(caps.attrs.ver, capsVer(discoInfoFromQuery(query)), "a client verifying the hash accepts it");
    await c.close();
  });

  test("the node#ver node answers with the same information and echoes the node (§6.2)", async () => {
    const c = await t.login("romeo");
    const ver = c.features!.getChild("c", NS.caps)!.attrs.ver;
    const plain = (await infoQuery(c, "localhost")).getChild("query", NS.discoInfo)!;
    const r = await infoQuery(c, "localhost", `${CAPS_NODE}#${ver}`);
    assert.equal(r.attrs.type, "result");
    const query = r.getChild("query", NS.discoInfo)!;
    assert.equal(query.attrs.node, `${CAPS_NODE}#${ver}`);
    assert.deepEqual(discoInfoFromQuery(query), discoInfoFromQuery(plain));
    await c.close();
  });

  test("before authentication there is no <c/>", async () => {
    const c = await t.connect();
    assert.ok(c.features?.getChild("mechanisms", NS.sasl), "these are the pre-auth features");
    assert.equal(c.features?.getChild("c", NS.caps), undefined);
    c.destroy();
  });
});

describe("accounts (XEP-0030 §3.1 on behalf of a bare JID)", () => {
  test("an account may always ask about itself, by its bare JID or with no 'to'", async () => {
    const c = await t.login("nurse");
    for (const to of ["nurse@localhost", undefined]) {
      const r = await infoQuery(c, to);
      assert.equal(r.attrs.type, "result");
      assert.deepEqual(identities(r), ["account/registered/"]);
      const got = features(r);
      for (const ns of [NS.discoInfo, NS.discoItems, NS.last]) assert.ok(got.includes(ns), ns);
      assert.ok(!got.includes(NS.ping), "server features are not account features");
      const form = r.getChild("query", NS.discoInfo)!.getChild("x", NS.dataForms);
      assert.ok(form, "account extension forms are included");
    }
    const items = await itemsQuery(c, "nurse@localhost");
    assert.equal(items.attrs.type, "result");
    await c.close();
  });

  test("another user sees an account only while subscribed to its presence", async () => {
    const romeo = await t.login("romeo");
    assertError(await infoQuery(romeo, "juliet@localhost"), "service-unavailable");
    assertError(await itemsQuery(romeo, "juliet@localhost"), "service-unavailable");

    // Juliet subscribed to Romeo is not Romeo subscribed to Juliet.
    await setSubscription("juliet", "romeo", "to");
    assertError(await infoQuery(romeo, "juliet@localhost"), "service-unavailable");

    for (const subscription of ["from", "both"] as const) {
      await setSubscription("juliet", "romeo", subscription);
      const r = await infoQuery(romeo, "juliet@localhost");
      assert.equal(r.attrs.type, "result", subscription);
      assert.equal(r.attrs.from, "juliet@localhost");
      assert.deepEqual(identities(r), ["account/registered/"]);
      assert.equal((await itemsQuery(romeo, "juliet@localhost")).attrs.type, "result");
    }
    await t.server.storage.roster.remove(t.domain, "juliet", "romeo@localhost");
    assertError(await infoQuery(romeo, "juliet@localhost"), "service-unavailable");
    await romeo.close();
  });

  test("an account that does not exist answers like one the asker may not see", async () => {
    const romeo = await t.login("romeo");
    assertError(await infoQuery(romeo, "nobody@localhost"), "service-unavailable");
    await romeo.close();
  });

  test("nodes of an account are item-not-found, once the asker may see it", async () => {
    const nurse = await t.login("nurse");
    assertError(await infoQuery(nurse, "nurse@localhost", "urn:example:node"), "item-not-found");
    assertError(await itemsQuery(nurse, "nurse@localhost", "urn:example:node"), "item-not-found");
    const romeo = await t.login("romeo");
    assertError(await infoQuery(romeo, "nurse@localhost", "urn:example:node"), "service-unavailable");
    await nurse.close();
    await romeo.close();
  });
});
