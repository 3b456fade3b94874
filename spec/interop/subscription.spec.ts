// Interop, RFC 6121 §2 (roster), §3 (subscriptions), §4 (presence): the whole subscription dance
// between a slixmpp user (alice, Debian's python3-slixmpp) and an @xmpp/client user (bob), each
// step asserted as each library reports it. The steps build on each other and run in order.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { dirname } from "node:path";
import { startTestServer, type TestServer } from "../support/server.ts";
import { Slix, slixmppAvailable, writeCaFile, type SlixEvent } from "./support/slixmpp.ts";
import { Xjs, presenceFrom, xml } from "./support/xmppjs.ts";

const ALICE = "alice@localhost";
const BOB = "bob@localhost";

let t: TestServer;
let caFile: string;
let alice: Slix;
let bob: Xjs;

before(async () => {
  t = await startTestServer({ users: ["alice", "bob"] });
  caFile = writeCaFile(t);
});
after(async () => {
  await bob?.stop();
  await alice?.stop();
  await t?.stop();
  if (caFile) rmSync(dirname(caFile), { recursive: true, force: true });
});

/** A roster push to slixmpp about `jid` (slixmpp's event, with the item as pushed). */
const slixPush = (jid: string, subscription: string, ask = "") => (e: SlixEvent) => {
  if (e.event !== "roster_update" || e.push !== true) return false;
  const item = (e.items as Record<string, { subscription: string; ask: string }>)[jid];
  return item !== undefined && item.subscription === subscription && item.ask === ask;
};

const slixPresence = (from: string, type: string) => (e: SlixEvent) => e.event === "presence" && e.frm === from && e.type === type;

describe("the subscription dance between slixmpp and @xmpp/client", { skip: !slixmppAvailable && "no /usr/bin/python3 with slixmpp" }, () => {
  test("both log in, fetch their (empty) rosters and send initial presence", async () => {
    alice = await Slix.online(t, caFile, `${ALICE}/slix`);
    bob = await Xjs.online(t, "bob", { resource: "xmppjs" });
    const aliceRoster = await alice.ok("roster_get");
    assert.deepEqual(aliceRoster.roster, {});
    assert.deepEqual(await bob.rosterGet(), []);
    await alice.ok("presence", { status: "alice here" });
    await bob.send(xml("presence", {}, xml("status", {}, "bob here")));
    // Each sees its own presence come back (RFC 6121 §4.2.2: to all of the user's available resources).
    await bob.waitForStanza(presenceFrom(BOB), "bob's own presence");
    await alice.waitFor(slixPresence(`${ALICE}/slix`, "available"), "alice's own presence");
  });

  test("bob adds alice and asks to subscribe: his pushes show ask=subscribe, slixmpp gets the request", async () => {
    const a = alice.mark();
    const b = bob.mark();
    await bob.rosterSet(ALICE, { name: "Alice" });
    const added = await bob.waitForPush(ALICE, (i) => i.subscription === "none" && i.ask === undefined, "the push of the new item", b);
    assert.equal(added.name, "Alice");

    await bob.send(xml("presence", { to: ALICE, type: "subscribe" }));
    await bob.waitForPush(ALICE, (i) => i.subscription === "none" && i.ask === "subscribe", "the push with ask=subscribe", b);

    const request = await alice.waitFor(slixPresence(BOB, "subscribe"), "bob's subscription request", a);
    assert.equal(request.to, ALICE);
    await alice.waitFor((e) => e.event === "subscription_request" && e.frm === BOB, "slixmpp's roster_subscription_request", a);
    // A request alone puts nothing in alice's roster (RFC 6121 §3.1.3). A push would have been
    // sent right after the request; a ping round trip lets it arrive first.
    await alice.ok("ping", { jid: "localhost" });
    assert.equal(alice.seen((e) => e.event === "roster_update", a).length, 0);
  });

  test("alice approves: her roster says from, bob's says to, and bob receives her presence", async () => {
    const a = alice.mark();
    const b = bob.mark();
    await alice.ok("authorize", { jid: BOB });
    await alice.waitFor(slixPush(BOB, "from"), "alice's push: bob is 'from'", a);

    const subscribed = await bob.waitForStanza(presenceFrom(ALICE, "subscribed"), "alice's subscribed", b);
    assert.equal(subscribed.attrs.from, ALICE);
    await bob.waitForPush(ALICE, (i) => i.subscription === "to" && i.ask === undefined, "bob's push: alice is 'to'", b);
    const available = await bob.waitForStanza(presenceFrom(ALICE), "alice's presence", b);
    assert.equal(available.attrs.from, `${ALICE}/slix`);
    assert.equal(available.getChildText("status"), "alice here");
    // alice is not subscribed to bob yet: she has not seen his presence.
    assert.equal(alice.seen(slixPresence(`${BOB}/xmppjs`, "available")).length, 0);
  });

  test("alice subscribes back and bob approves: both rosters say both, in each library's view", async () => {
    const a = alice.mark();
    const b = bob.mark();
    await alice.ok("subscribe", { jid: BOB });
    await alice.waitFor(slixPush(BOB, "from", "subscribe"), "alice's push: from + ask=subscribe", a);
    const request = await bob.waitForStanza(presenceFrom(ALICE, "subscribe"), "alice's request", b);
    assert.equal(request.attrs.from, ALICE);

    await bob.send(xml("presence", { to: ALICE, type: "subscribed" }));
    await bob.waitForPush(ALICE, (i) => i.subscription === "both", "bob's push: both", b);
    await alice.waitFor(slixPresence(BOB, "subscribed"), "bob's subscribed", a);
    await alice.waitFor(slixPush(BOB, "both"), "alice's push: both", a);
    const bobPresence = await alice.waitFor(slixPresence(`${BOB}/xmppjs`, "available"), "bob's presence", a);
    assert.equal(bobPresence.status, "bob here");
    await alice.waitFor((e) => e.event === "got_online" && e.frm === `${BOB}/xmppjs`, "slixmpp's got_online for bob", a);

    assert.deepEqual(await bob.rosterGet(), [{ jid: ALICE, subscription: "both", ask: undefined, name: "Alice" }]);
    const fetched = await alice.ok("roster_get");
    assert.deepEqual(fetched.roster, { [BOB]: { subscription: "both", pending_out: false, name: "" } });
  });

  test("presence changes travel both ways", async () => {
    const a = alice.mark();
    const b = bob.mark();
    await alice.ok("presence", { show: "away", status: "lunch" });
    const away = await bob.waitForStanza((el) => presenceFrom(ALICE)(el) && el.getChildText("show") === "away", "alice away", b);
    assert.equal(away.attrs.from, `${ALICE}/slix`);
    assert.equal(away.getChildText("status"), "lunch");

    await bob.send(xml("presence", {}, xml("show", {}, "dnd"), xml("status", {}, "busy")));
    const dnd = await alice.waitFor((e) => e.event === "presence" && e.frm === `${BOB}/xmppjs` && e.show === "dnd", "bob dnd", a);
    assert.equal(dnd.status, "busy");
  });

  test("bob logs out: alice sees him unavailable; he logs in again and presence flows again (probes)", async () => {
    const a = alice.mark();
    await bob.stop();
    await alice.waitFor(slixPresence(`${BOB}/xmppjs`, "unavailable"), "bob unavailable", a);
    await alice.waitFor((e) => e.event === "got_offline" && e.frm === `${BOB}/xmppjs`, "slixmpp's got_offline for bob", a);

    bob = await Xjs.online(t, "bob", { resource: "xmppjs2" });
    const b = bob.mark();
    await bob.rosterGet();
    await bob.send(xml("presence"));
    // RFC 6121 §4.3.2: the probe for alice is answered with her last presence.
    const probed = await bob.waitForStanza(presenceFrom(ALICE), "alice's presence after the probe", b);
    assert.equal(probed.attrs.from, `${ALICE}/slix`);
    assert.equal(probed.getChildText("show"), "away");
    await alice.waitFor(slixPresence(`${BOB}/xmppjs2`, "available"), "bob's new resource", a);
  });

  test("bob removes alice: she gets unsubscribe, unavailable and unsubscribed, and both states follow", async () => {
    const a = alice.mark();
    const b = bob.mark();
    await bob.rosterSet(ALICE, { subscription: "remove" });
    await bob.waitForPush(ALICE, (i) => i.subscription === "remove", "bob's push: remove", b);
    assert.deepEqual(await bob.rosterGet(), []);

    await alice.waitFor(slixPresence(BOB, "unsubscribe"), "bob's unsubscribe", a);
    await alice.waitFor(slixPresence(`${BOB}/xmppjs2`, "unavailable"), "bob's resource unavailable", a);
    await alice.waitFor(slixPresence(BOB, "unsubscribed"), "bob's unsubscribed", a);
    await alice.waitFor(slixPush(BOB, "to"), "alice's push: to (bob no longer subscribed to her)", a);
    await alice.waitFor(slixPush(BOB, "none"), "alice's push: none", a);
    // RFC 6121 §3.3.3: alice's resources are announced unavailable to the former subscriber.
    const gone = await bob.waitForStanza(presenceFrom(ALICE, "unavailable"), "alice unavailable for bob", b);
    assert.equal(gone.attrs.from, `${ALICE}/slix`);

    const fetched = await alice.ok("roster_get");
    assert.deepEqual(fetched.roster, { [BOB]: { subscription: "none", pending_out: false, name: "" } });
  });

  test("alice removes bob with slixmpp's del_roster_item: her roster is empty and bob hears nothing", async () => {
    const a = alice.mark();
    const b = bob.mark();
    await alice.ok("roster_remove", { jid: BOB });
    await alice.waitFor(slixPush(BOB, "remove"), "alice's push: remove", a);
    const fetched = await alice.ok("roster_get");
    assert.deepEqual(fetched.roster, {});
    // Nothing was subscribed either way, so nothing is sent to bob (RFC 6121 §2.5.2). A ping
    // round trip gives anything that was routed time to arrive first.
    await bob.iq("get", "localhost", xml("ping", { xmlns: "urn:xmpp:ping" }));
    assert.deepEqual(bob.seen((el) => el.is("presence"), b).map(String), []);
  });
});
