// End-to-end specs for server/modules/roster: RFC 6121 §2 (roster get, set, remove, pushes,
// error cases) and XEP-0237 v1.3 / RFC 6121 §2.6 (roster versioning), over real sockets.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startTestServer, type TestServer } from "../../support/server.ts";
import { accountsOn } from "../../support/accounts.ts";
import { acknowledgedPush, isRosterPush, pushedItem } from "../../support/stanzas.ts";
import { xml, type Element } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import { parseStanzaError } from "../../../protocol/errors.ts";
import type { XmppClient } from "../../../conformance/client/client.ts";
import roster from "../../../server/modules/roster/index.ts";

let t: TestServer;
before(async () => {
  t = await startTestServer({ modules: [roster], toml: "[modules.roster]\nmax_items = 3\nmax_name_length = 20\nmax_group_length = 10\n" });
});
after(async () => {
  await t.stop();
});

const { account, bare } = accountsOn(() => t);

async function getRoster(c: XmppClient, ver?: string): Promise<Element> {
  return c.iq(xml("iq", { type: "get" }, xml("query", { xmlns: NS.roster, ver })));
}

async function setItem(c: XmppClient, item: Element): Promise<Element> {
  return c.iq(xml("iq", { type: "set" }, xml("query", { xmlns: NS.roster }, item)));
}

function itemsOf(result: Element): Map<string, Element> {
  const query = result.getChild("query", NS.roster);
  assert.ok(query, "a roster result carries a query");
  return new Map(query.getChildren("item").map((i) => [i.attrs.jid, i]));
}

function groups(item: Element): string[] {
  return item.getChildren("group").map((g) => g.getText());
}

function conditionOf(reply: Element): string | undefined {
  assert.equal(reply.attrs.type, "error", "an error reply");
  return parseStanzaError(reply)?.condition;
}

describe("roster get", () => {
  test("a new account has an empty roster with a version, and versioning is advertised", async () => {
    const c = await t.login(await account("romeo"));
    assert.ok(c.features?.getChild("ver", NS.rosterVersioning), "<ver xmlns='urn:xmpp:features:rosterver'/> after authentication");
    const result = await getRoster(c);
    assert.equal(result.attrs.type, "result");
    const query = result.getChild("query", NS.roster);
    assert.ok(query);
    assert.equal(query.getChildren("item").length, 0);
    assert.ok(query.attrs.ver !== undefined && query.attrs.ver !== "", "a ver even when nothing has changed yet");
    await c.close();
  });

  test("a roster get to one's own bare JID is answered like one without a 'to'", async () => {
    const user = await account("romeo");
    const c = await t.login(user);
    assert.equal((await setItem(c, xml("item", { jid: "nurse@example.com" }))).attrs.type, "result");
    const result = await c.iq(xml("iq", { type: "get", to: bare(user) }, xml("query", { xmlns: NS.roster })));
    assert.equal(result.attrs.type, "result");
    assert.ok(itemsOf(result).has("nurse@example.com"));
    await c.close();
  });

  test("a roster get or set addressed to another account is forbidden", async () => {
    const juliet = await account("juliet");
    const c = await t.login(await account("romeo"));
    const get = await c.iq(xml("iq", { type: "get", to: bare(juliet) }, xml("query", { xmlns: NS.roster })));
    assert.equal(conditionOf(get), "forbidden");
    assert.equal(parseStanzaError(get)?.type, "auth");
    const set = await c.iq(xml("iq", { type: "set", to: bare(juliet) }, xml("query", { xmlns: NS.roster }, xml("item", { jid: "nurse@example.com" }))));
    assert.equal(conditionOf(set), "forbidden");
    const j = await t.login(juliet);
    assert.equal(itemsOf(await getRoster(j)).size, 0, "juliet's roster was not touched");
    await Promise.all([c.close(), j.close()]);
  });
});

describe("roster set and pushes", () => {
  test("adding an item: result to the sender, a push with the new ver to every interested resource only", async () => {
    const user = await account("juliet");
    const balcony = await t.login(user, { resource: "balcony" });
    const chamber = await t.login(user, { resource: "chamber" });
    const garden = await t.login(user, { resource: "garden" }); // never asks for the roster
    await getRoster(balcony);
    await getRoster(chamber);

    const result = await setItem(balcony, xml("item", { jid: "nurse@example.com", name: "Nurse" }, xml("group", {}, "Servants")));
    assert.equal(result.attrs.type, "result");
    assert.equal(result.getChild("query"), undefined, "a roster set's result is empty");

    const pushes = [await acknowledgedPush(balcony, "nurse@example.com"), await acknowledgedPush(chamber, "nurse@example.com")];
    for (const p of pushes) {
      assert.ok(p.attrs.from === undefined || p.attrs.from === bare(user), "a push comes from the account itself");
      assert.ok(p.attrs.id, "a push has an id");
      const item = pushedItem(p);
      assert.equal(item.attrs.name, "Nurse");
      assert.equal(item.attrs.subscription, "none");
      assert.equal(item.attrs.ask, undefined);
      assert.deepEqual(groups(item), ["Servants"]);
    }
    assert.equal(pushes[0].attrs.to, `${bare(user)}/balcony`);
    assert.equal(pushes[1].attrs.to, `${bare(user)}/chamber`);
    assert.notEqual(pushes[0].attrs.id, pushes[1].attrs.id);
    const ver = pushes[0].getChild("query", NS.roster)!.attrs.ver;
    assert.ok(ver);
    assert.equal(pushes[1].getChild("query", NS.roster)!.attrs.ver, ver);
    assert.equal((await getRoster(balcony)).getChild("query", NS.roster)!.attrs.ver, ver, "the push's ver is the roster's version");
    assert.ok(await garden.nothing(isRosterPush("nurse@example.com")), "a resource that never asked for the roster gets no push");
    await Promise.all([balcony.close(), chamber.close(), garden.close()]);
  });

  test("an update replaces the handle and groups exactly as sent; an empty name removes the handle", async () => {
    const c = await t.login(await account("juliet"));
    await getRoster(c);
    await setItem(c, xml("item", { jid: "romeo@example.net", name: "Romeo" }, xml("group", {}, "Friends")));
    await acknowledgedPush(c, "romeo@example.net");

    await setItem(c, xml("item", { jid: "romeo@example.net", name: "Romeo" }, xml("group", {}, "Friends"), xml("group", {}, "Lovers")));
    assert.deepEqual(groups(pushedItem(await acknowledgedPush(c, "romeo@example.net"))), ["Friends", "Lovers"]);

    await setItem(c, xml("item", { jid: "romeo@example.net", name: "MyRomeo" }));
    const renamed = pushedItem(await acknowledgedPush(c, "romeo@example.net"));
    assert.equal(renamed.attrs.name, "MyRomeo");
    assert.deepEqual(groups(renamed), [], "no <group/> means no groups");

    await setItem(c, xml("item", { jid: "romeo@example.net", name: "" }));
    assert.equal(pushedItem(await acknowledgedPush(c, "romeo@example.net")).attrs.name, undefined);

    const items = itemsOf(await getRoster(c));
    assert.equal(items.size, 1);
    assert.equal(items.get("romeo@example.net")!.attrs.name, undefined);
    await c.close();
  });

  test("'subscription', 'ask' and 'approved' in a roster set are ignored", async () => {
    const c = await t.login(await account("juliet"));
    await getRoster(c);
    await setItem(c, xml("item", { jid: "tybalt@example.org", subscription: "both", ask: "subscribe", approved: "true" }));
    const item = pushedItem(await acknowledgedPush(c, "tybalt@example.org"));
    assert.equal(item.attrs.subscription, "none");
    assert.equal(item.attrs.ask, undefined);
    assert.equal(item.attrs.approved, undefined);
    await c.close();
  });

  test("removing an item pushes subscription='remove'; removing an absent one is item-not-found", async () => {
    const user = await account("juliet");
    const balcony = await t.login(user, { resource: "balcony" });
    const chamber = await t.login(user, { resource: "chamber" });
    await getRoster(balcony);
    await getRoster(chamber);
    await setItem(balcony, xml("item", { jid: "nurse@example.com" }));
    await acknowledgedPush(balcony, "nurse@example.com");
    await acknowledgedPush(chamber, "nurse@example.com");

    const result = await setItem(chamber, xml("item", { jid: "nurse@example.com", subscription: "remove" }));
    assert.equal(result.attrs.type, "result");
    for (const c of [balcony, chamber]) {
      const item = pushedItem(await acknowledgedPush(c, "nurse@example.com"));
      assert.equal(item.attrs.subscription, "remove");
    }
    assert.equal(itemsOf(await getRoster(balcony)).size, 0);

    const again = await setItem(chamber, xml("item", { jid: "nurse@example.com", subscription: "remove" }));
    assert.equal(conditionOf(again), "item-not-found");
    await Promise.all([balcony.close(), chamber.close()]);
  });
});

describe("roster versioning (XEP-0237)", () => {
  test("the current ver gets an empty result, an older or empty ver the whole roster with the new ver", async () => {
    const c = await t.login(await account("romeo"));
    await setItem(c, xml("item", { jid: "mercutio@example.com" }));
    const first = (await getRoster(c, "")).getChild("query", NS.roster)!;
    assert.equal(first.getChildren("item").length, 1, "ver='' bootstraps with the whole roster");
    const ver1 = first.attrs.ver;

    const same = await getRoster(c, ver1);
    assert.equal(same.attrs.type, "result");
    assert.equal(same.getChild("query"), undefined, "an empty IQ result, not an empty query");

    await setItem(c, xml("item", { jid: "benvolio@example.net" }));
    const push2 = await acknowledgedPush(c, "benvolio@example.net");
    const ver2 = push2.getChild("query", NS.roster)!.attrs.ver;
    assert.ok(ver2 && ver2 !== ver1, "every change has a new ver");

    const stale = (await getRoster(c, ver1)).getChild("query", NS.roster)!;
    assert.equal(stale.attrs.ver, ver2);
    assert.deepEqual(stale.getChildren("item").map((i) => i.attrs.jid).sort(), ["benvolio@example.net", "mercutio@example.com"]);
    assert.equal((await getRoster(c, ver2)).getChild("query"), undefined);
    await c.close();
  });

  test("a roster set that changes nothing does not change the version", async () => {
    const c = await t.login(await account("romeo"));
    await getRoster(c);
    await setItem(c, xml("item", { jid: "mercutio@example.com", name: "M" }));
    const ver = (await acknowledgedPush(c, "mercutio@example.com")).getChild("query", NS.roster)!.attrs.ver;
    assert.equal((await setItem(c, xml("item", { jid: "mercutio@example.com", name: "M" }))).attrs.type, "result");
    assert.equal((await getRoster(c, ver)).getChild("query"), undefined);
    await c.close();
  });
});

describe("roster set errors (RFC 6121 §2.3.3)", () => {
  const cases: Array<[string, () => Element, string]> = [
    ["two items", () => xml("query", { xmlns: NS.roster }, xml("item", { jid: "a@example.com" }), xml("item", { jid: "b@example.com" })), "bad-request"],
    ["no item", () => xml("query", { xmlns: NS.roster }), "bad-request"],
    ["duplicate groups", () => xml("query", { xmlns: NS.roster }, xml("item", { jid: "a@example.com" }, xml("group", {}, "Servants"), xml("group", {}, "Servants"))), "bad-request"],
    ["an empty group", () => xml("query", { xmlns: NS.roster }, xml("item", { jid: "a@example.com" }, xml("group", {}))), "not-acceptable"],
    ["a name over the configured limit", () => xml("query", { xmlns: NS.roster }, xml("item", { jid: "a@example.com", name: "x".repeat(21) })), "not-acceptable"],
    ["a group over the configured limit", () => xml("query", { xmlns: NS.roster }, xml("item", { jid: "a@example.com" }, xml("group", {}, "g".repeat(11)))), "not-acceptable"],
    ["an item without a jid", () => xml("query", { xmlns: NS.roster }, xml("item", { name: "Nobody" })), "bad-request"],
    ["a malformed jid", () => xml("query", { xmlns: NS.roster }, xml("item", { jid: "a@b@example.com" })), "jid-malformed"],
    ["a full jid", () => xml("query", { xmlns: NS.roster }, xml("item", { jid: "a@example.com/phone" })), "bad-request"],
  ];
  for (const [what, query, condition] of cases) {
    test(`${what}: <${condition}/>, and nothing changes`, async () => {
      const c = await t.login(await account("juliet"));
      const ver = (await getRoster(c)).getChild("query", NS.roster)!.attrs.ver;
      const reply = await c.iq(xml("iq", { type: "set" }, query()));
      assert.equal(conditionOf(reply), condition);
      assert.equal((await getRoster(c, ver)).getChild("query"), undefined, "the version did not move");
      assert.ok(await c.nothing((el) => el.name === "iq" && el.attrs.type === "set", 100), "no push");
      await c.close();
    });
  }

  test("one's own JID cannot be added (not-allowed, as other servers answer)", async () => {
    const user = await account("juliet");
    const c = await t.login(user);
    assert.equal(conditionOf(await setItem(c, xml("item", { jid: bare(user) }))), "not-allowed");
    await c.close();
  });

  test("a roster holds at most max_items contacts (policy-violation); updates and removals still work", async () => {
    const c = await t.login(await account("juliet"));
    for (const n of [1, 2, 3]) assert.equal((await setItem(c, xml("item", { jid: `c${n}@example.com` }))).attrs.type, "result");
    assert.equal(conditionOf(await setItem(c, xml("item", { jid: "c4@example.com" }))), "policy-violation");
    assert.equal((await setItem(c, xml("item", { jid: "c1@example.com", name: "One" }))).attrs.type, "result");
    assert.equal((await setItem(c, xml("item", { jid: "c1@example.com", subscription: "remove" }))).attrs.type, "result");
    assert.equal((await setItem(c, xml("item", { jid: "c4@example.com" }))).attrs.type, "result");
    await c.close();
  });
});
