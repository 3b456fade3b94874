// End-to-end specs for server/modules/presence: RFC 6121 §3 (presence subscriptions, §3.4
// pre-approval, the Appendix A states) seen from two users' clients over real sockets.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startTestServer, type TestServer } from "../../support/server.ts";
import { accountsOn } from "../../support/accounts.ts";
import { acknowledgedPush, isPresence, isRosterPush, pushedItem } from "../../support/stanzas.ts";
import { xml, type Element } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import type { XmppClient } from "../../../conformance/client/client.ts";
import roster from "../../../server/modules/roster/index.ts";
import presence from "../../../server/modules/presence/index.ts";

let t: TestServer;
before(async () => {
  t = await startTestServer({ modules: [roster, presence] });
});
after(async () => {
  await t.stop();
});

const { account, bare, online, rosterOf, settle } = accountsOn(() => t);

/** The item of the next push about `jid` (acknowledged). */
async function pushed(c: XmppClient, jid: string): Promise<Element> {
  return pushedItem(await acknowledgedPush(c, jid));
}

/** Two fresh accounts, each with one resource online. */
async function romeoAndJuliet(): Promise<{ romeo: string; juliet: string; r: XmppClient; j: XmppClient }> {
  const romeo = await account("romeo");
  const juliet = await account("juliet");
  return { romeo, juliet, r: await online(romeo), j: await online(juliet) };
}

function state(item: Element | undefined): string {
  if (!item) return "absent";
  return [item.attrs.subscription ?? "none", item.attrs.ask ? "ask" : "", item.attrs.approved === "true" ? "approved" : ""].filter(Boolean).join("+");
}

function send(c: XmppClient, to: string, type: string): void {
  c.send(xml("presence", { to, type }));
}

describe("the subscription dance between two users (RFC 6121 §3.1-§3.3)", () => {
  let romeo: string;
  let juliet: string;
  let r1: XmppClient;
  let r2: XmppClient;
  let j: XmppClient;
  before(async () => {
    romeo = await account("romeo");
    juliet = await account("juliet");
    r1 = await online(romeo, "orchard");
    r2 = await online(romeo, "garden");
    j = await online(juliet, "balcony");
  });
  after(async () => {
    await Promise.all([r1.close(), r2.close(), j.close()]);
  });

  test("romeo asks: both his resources see juliet as none+ask; juliet gets the request from his bare JID", async () => {
    j.send(xml("presence", {}, xml("show", {}, "away"))); // something for romeo to receive later
    await settle(j);
    r1.send(xml("presence", { to: `${bare(juliet)}/balcony`, type: "subscribe", id: "sub1" }, xml("status", {}, "it is I")));
    for (const c of [r1, r2]) assert.equal(state(await pushed(c, bare(juliet))), "none+ask");
    const request = await j.next(isPresence(bare(romeo), "subscribe"));
    assert.equal(request.attrs.to, bare(juliet), "addressed to the bare JID");
    assert.equal(request.attrs.id, "sub1");
    assert.equal(request.getChildText("status"), "it is I", "the request arrives whole");
    assert.equal((await rosterOf(j)).has(bare(romeo)), false, "no roster item for romeo until juliet approves");
    assert.ok(await r1.nothing(isPresence(`${bare(juliet)}/balcony`, undefined), 100), "no presence before approval");
  });

  test("juliet approves: she sees from, romeo gets subscribed before his push to 'to', then her presence", async () => {
    send(j, bare(romeo), "subscribed");
    assert.equal(state(await pushed(j, bare(romeo))), "from");
    for (const c of [r1, r2]) {
      const first = await c.next((el) => isPresence(bare(juliet), "subscribed")(el) || isRosterPush(bare(juliet))(el));
      assert.equal(first.name, "presence", "the approval is delivered before the roster push");
      assert.equal(state(await pushed(c, bare(juliet))), "to");
      const p = await c.next(isPresence(`${bare(juliet)}/balcony`, undefined));
      assert.equal(p.getChildText("show"), "away", "her current presence, whole");
    }
    assert.equal(state((await rosterOf(r1)).get(bare(juliet))), "to");
    assert.equal(state((await rosterOf(j)).get(bare(romeo))), "from");
  });

  test("juliet's presence changes reach romeo; romeo's do not reach juliet yet", async () => {
    j.send(xml("presence", {}, xml("status", {}, "at the window")));
    for (const c of [r1, r2]) assert.equal((await c.next(isPresence(`${bare(juliet)}/balcony`, undefined))).getChildText("status"), "at the window");
    r1.send(xml("presence", {}, xml("status", {}, "below")));
    await r2.next(isPresence(`${bare(romeo)}/orchard`, undefined, "below")); // his own other resource sees it
    assert.ok(await j.nothing(isPresence(`${bare(romeo)}/orchard`, undefined)), "juliet is not subscribed to romeo");
  });

  test("juliet asks back and romeo approves: both", async () => {
    send(j, bare(romeo), "subscribe");
    assert.equal(state(await pushed(j, bare(romeo))), "from+ask");
    await r1.next(isPresence(bare(juliet), "subscribe"));
    await r2.next(isPresence(bare(juliet), "subscribe"));
    send(r2, bare(juliet), "subscribed");
    for (const c of [r1, r2]) assert.equal(state(await pushed(c, bare(juliet))), "both");
    await j.next(isPresence(bare(romeo), "subscribed"));
    assert.equal(state(await pushed(j, bare(romeo))), "both");
    // Both of romeo's resources are available, so juliet hears from both.
    await j.next(isPresence(`${bare(romeo)}/orchard`, undefined));
    await j.next(isPresence(`${bare(romeo)}/garden`, undefined));
    assert.equal(state((await rosterOf(r1)).get(bare(juliet))), "both");
    assert.equal(state((await rosterOf(j)).get(bare(romeo))), "both");
  });

  test("a second subscribe or subscribed changes nothing and is not delivered", async () => {
    send(r1, bare(juliet), "subscribe");
    send(r1, bare(juliet), "subscribed");
    await settle(r1);
    assert.ok(await j.nothing((el) => el.name === "presence" && el.attrs.type?.startsWith("subscribe") === true));
    assert.ok(await j.nothing(isRosterPush(bare(romeo)), 50));
    assert.equal(state((await rosterOf(j)).get(bare(romeo))), "both");
  });

  test("romeo unsubscribes: he is 'from', juliet gets the unsubscribe and is 'to', romeo sees her go", async () => {
    send(r1, bare(juliet), "unsubscribe");
    for (const c of [r1, r2]) assert.equal(state(await pushed(c, bare(juliet))), "from");
    const first = await j.next((el) => isPresence(bare(romeo), "unsubscribe")(el) || isRosterPush(bare(romeo))(el));
    assert.equal(first.name, "presence", "the unsubscribe is delivered before the push");
    assert.equal(state(await pushed(j, bare(romeo))), "to");
    for (const c of [r1, r2]) await c.next(isPresence(`${bare(juliet)}/balcony`, "unavailable"));
    j.send(xml("presence", {}, xml("status", {}, "alone")));
    await j.next(isPresence(j.jid!, undefined, "alone"));
    assert.ok(await r1.nothing(isPresence(`${bare(juliet)}/balcony`, undefined, "alone")), "no more of her presence");
  });

  test("romeo cancels juliet's subscription: she sees him go, gets unsubscribed, and both are none", async () => {
    send(r2, bare(juliet), "unsubscribed");
    for (const c of [r1, r2]) assert.equal(state(await pushed(c, bare(juliet))), "none");
    await j.next(isPresence(`${bare(romeo)}/orchard`, "unavailable"));
    await j.next(isPresence(`${bare(romeo)}/garden`, "unavailable"));
    await j.next(isPresence(bare(romeo), "unsubscribed"));
    assert.equal(state(await pushed(j, bare(romeo))), "none");
    r1.send(xml("presence", {}, xml("status", {}, "gone")));
    await r2.next(isPresence(r1.jid!, undefined, "gone"));
    assert.ok(await j.nothing(isPresence(`${bare(romeo)}/orchard`, undefined, "gone")));
    // The items stay: the subscriptions ended, the contacts did not leave the rosters.
    assert.equal(state((await rosterOf(r1)).get(bare(juliet))), "none");
    assert.equal(state((await rosterOf(j)).get(bare(romeo))), "none");
  });
});

describe("denying and withdrawing requests", () => {
  test("a denied request: romeo goes back to none and is told; juliet's roster stays without him", async () => {
    const { romeo, juliet, r, j } = await romeoAndJuliet();
    send(r, bare(juliet), "subscribe");
    assert.equal(state(await pushed(r, bare(juliet))), "none+ask");
    await j.next(isPresence(bare(romeo), "subscribe"));
    send(j, bare(romeo), "unsubscribed");
    await r.next(isPresence(bare(juliet), "unsubscribed"));
    assert.equal(state(await pushed(r, bare(juliet))), "none");
    await settle(j);
    assert.equal((await rosterOf(j)).has(bare(romeo)), false);
    // Answered: a new resource of juliet's is not asked again.
    const j2 = await online(juliet, "second");
    assert.ok(await j2.nothing(isPresence(bare(romeo), "subscribe")));
    await Promise.all([r.close(), j.close(), j2.close()]);
  });

  test("a withdrawn request (unsubscribe while pending) is forgotten by juliet's server", async () => {
    const romeo = await account("romeo");
    const juliet = await account("juliet");
    const r = await online(romeo);
    send(r, bare(juliet), "subscribe");
    await pushed(r, bare(juliet));
    send(r, bare(juliet), "unsubscribe");
    assert.equal(state(await pushed(r, bare(juliet))), "none");
    const j = await online(juliet);
    assert.ok(await j.nothing(isPresence(bare(romeo), "subscribe")), "nothing left to ask");
    await Promise.all([r.close(), j.close()]);
  });

  test("subscribed and unsubscribed with no request pending are ignored (Tables 8 and 9)", async () => {
    const romeo = await account("romeo");
    const juliet = await account("juliet");
    const r = await online(romeo);
    // As a remote server out of step with this one would send them.
    await t.server.router.route(xml("presence", { from: bare(juliet), to: bare(romeo), type: "subscribed" }), null);
    await t.server.router.route(xml("presence", { from: bare(juliet), to: bare(romeo), type: "unsubscribed" }), null);
    await t.server.router.route(xml("presence", { from: bare(juliet), to: bare(romeo), type: "unsubscribe" }), null);
    assert.ok(await r.nothing((el) => el.name === "presence" && el.attrs.from === bare(juliet)));
    assert.ok(await r.nothing(isRosterPush(bare(juliet)), 50));
    assert.equal((await rosterOf(r)).has(bare(juliet)), false);
    await r.close();
  });

  test("a request to a domain that cannot be reached comes back as an error, and the request stays pending", async () => {
    const romeo = await account("romeo");
    const r = await online(romeo);
    r.send(xml("presence", { to: "juliet@capulet.example", type: "subscribe", id: "far" }));
    assert.equal(state(await pushed(r, "juliet@capulet.example")), "none+ask");
    const error = await r.next((el) => el.name === "presence" && el.attrs.type === "error");
    assert.equal(error.attrs.from, "juliet@capulet.example");
    assert.equal(error.attrs.id, "far");
    assert.equal(error.getChild("error")?.getChild("remote-server-not-found", NS.stanzas)?.name, "remote-server-not-found");
    await r.close();
  });

  test("a request to oneself is dropped", async () => {
    const romeo = await account("romeo");
    const r = await online(romeo);
    send(r, bare(romeo), "subscribe");
    await settle(r);
    assert.equal((await rosterOf(r)).size, 0);
    assert.ok(await r.nothing((el) => el.name === "presence" && el.attrs.type === "subscribe"));
    await r.close();
  });
});

describe("pre-approval (RFC 6121 §3.4)", () => {
  test("the feature is advertised", async () => {
    const c = await t.login(await account("romeo"));
    assert.ok(c.features?.getChild("sub", NS.preApproval), "<sub xmlns='urn:xmpp:features:pre-approval'/>");
    await c.close();
  });

  test("juliet pre-approves romeo: nothing is sent to him; his later request is granted at once", async () => {
    const { romeo, juliet, r, j } = await romeoAndJuliet();
    send(j, bare(romeo), "subscribed");
    assert.equal(state(await pushed(j, bare(romeo))), "none+approved");
    assert.ok(await r.nothing((el) => el.name === "presence" && el.attrs.from === bare(juliet)), "a pre-approval is not routed");

    send(r, bare(juliet), "subscribe");
    assert.equal(state(await pushed(r, bare(juliet))), "none+ask");
    await r.next(isPresence(bare(juliet), "subscribed"));
    assert.equal(state(await pushed(r, bare(juliet))), "to");
    await r.next(isPresence(j.jid!, undefined));
    assert.equal(state(await pushed(j, bare(romeo))), "from", "the approval is used up");
    assert.ok(await j.nothing(isPresence(bare(romeo), "subscribe")), "juliet is not asked");
    await Promise.all([r.close(), j.close()]);
  });

  test("a pre-approval can be cancelled with unsubscribed; then the request is asked as usual", async () => {
    const { romeo, juliet, r, j } = await romeoAndJuliet();
    send(j, bare(romeo), "subscribed");
    assert.equal(state(await pushed(j, bare(romeo))), "none+approved");
    send(j, bare(romeo), "unsubscribed");
    assert.equal(state(await pushed(j, bare(romeo))), "none");
    assert.ok(await r.nothing((el) => el.name === "presence" && el.attrs.from === bare(juliet)), "neither is routed");
    send(r, bare(juliet), "subscribe");
    await j.next(isPresence(bare(romeo), "subscribe"));
    assert.ok(await r.nothing(isPresence(bare(juliet), "subscribed")));
    await Promise.all([r.close(), j.close()]);
  });
});

describe("requests to users who are offline (RFC 6121 §3.1.3)", () => {
  test("kept whole and delivered at each new available resource until answered", async () => {
    const romeo = await account("romeo");
    const juliet = await account("juliet");
    const r = await online(romeo);
    r.send(xml("presence", { to: bare(juliet), type: "subscribe", id: "ask1" }, xml("nick", { xmlns: NS.nick }, "Romeo")));
    r.send(xml("presence", { to: bare(juliet), type: "subscribe", id: "ask2" }));
    await settle(r);

    // Connected and interested, but not available: not yet.
    const j1 = await t.login(juliet, { resource: "one" });
    assert.equal((await rosterOf(j1)).has(bare(romeo)), false);
    assert.ok(await j1.nothing(isPresence(bare(romeo), "subscribe")));
    j1.send(xml("presence", {}));
    const request = await j1.next(isPresence(bare(romeo), "subscribe"));
    assert.equal(request.attrs.id, "ask1", "one request per contact: the first");
    assert.equal(request.getChild("nick", NS.nick)?.getText(), "Romeo", "with its extensions");
    assert.ok(await j1.nothing(isPresence(bare(romeo), "subscribe")), "delivered once");

    const j2 = await online(juliet, "two");
    await j2.next(isPresence(bare(romeo), "subscribe"));
    send(j2, bare(romeo), "subscribed");
    await r.next(isPresence(bare(juliet), "subscribed"));
    assert.equal(state((await rosterOf(r)).get(bare(juliet))), "to");

    const j3 = await online(juliet, "three");
    assert.ok(await j3.nothing(isPresence(bare(romeo), "subscribe")), "answered requests are not repeated");
    await Promise.all([r.close(), j1.close(), j2.close(), j3.close()]);
  });
});

describe("removing a contact (RFC 6121 §2.5.2)", () => {
  test("with a mutual subscription: the contact gets unsubscribe, unavailable and unsubscribed, and ends at none", async () => {
    const { romeo, juliet, r, j } = await romeoAndJuliet();
    send(r, bare(juliet), "subscribe");
    await j.next(isPresence(bare(romeo), "subscribe"));
    send(j, bare(romeo), "subscribed");
    send(j, bare(romeo), "subscribe");
    await r.next(isPresence(bare(juliet), "subscribe"));
    send(r, bare(juliet), "subscribed");
    await j.next(isPresence(bare(romeo), "subscribed"));
    await settle(r);
    assert.equal(state((await rosterOf(j)).get(bare(romeo))), "both");

    const removed = await r.iq(xml("iq", { type: "set" }, xml("query", { xmlns: NS.roster }, xml("item", { jid: bare(juliet), subscription: "remove" }))));
    assert.equal(removed.attrs.type, "result");
    await r.next((el) => isRosterPush(bare(juliet))(el) && pushedItem(el).attrs.subscription === "remove");
    await j.next(isPresence(bare(romeo), "unsubscribe"));
    await j.next(isPresence(r.jid!, "unavailable"));
    await j.next(isPresence(bare(romeo), "unsubscribed"));
    await r.next(isPresence(j.jid!, "unavailable"));
    assert.equal(state((await rosterOf(j)).get(bare(romeo))), "none");
    assert.equal((await rosterOf(r)).has(bare(juliet)), false);
    await Promise.all([r.close(), j.close()]);
  });
});
