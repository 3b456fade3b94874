// End-to-end specs for server/modules/presence: RFC 6121 §4 (initial presence, probes, broadcast,
// unavailable presence, directed presence, priority) seen from clients over real sockets.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startTestServer, type TestServer } from "../../support/server.ts";
import { accountsOn } from "../../support/accounts.ts";
import { isPresence } from "../../support/stanzas.ts";
import { waitFor } from "../../support/wait.ts";
import { xml, type Element } from "../../../protocol/xml/element.ts";
import { parseJid } from "../../../protocol/jid.ts";
import { parseDelay } from "../../../protocol/delay.ts";
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

const { account, bare, setSubscription, connected, online, settle } = accountsOn(() => t);

async function friends(a: string, b: string): Promise<void> {
  await setSubscription(a, b, "both");
  await setSubscription(b, a, "both");
}

/** Fresh romeo and juliet, each subscribed to the other, and juliet available on her balcony. */
async function friendsWithJulietOnline(): Promise<{ romeo: string; juliet: string; j: XmppClient }> {
  const romeo = await account("romeo");
  const juliet = await account("juliet");
  await friends(romeo, juliet);
  return { romeo, juliet, j: await online(juliet, "balcony") };
}

function status(text: string): Element {
  return xml("status", {}, text);
}

describe("initial presence (RFC 6121 §4.2, §4.3)", () => {
  test("the newcomer learns who is online, contacts and its other resources learn of it", async () => {
    const romeo = await account("romeo");
    const juliet = await account("juliet");
    await friends(romeo, juliet);
    const j = await connected(juliet, "balcony");
    j.send(xml("presence", { id: "p1" }, xml("show", {}, "dnd"), status("busy")));
    await j.next(isPresence(j.jid!, undefined));
    const garden = await online(romeo, "garden", status("in the garden"));
    await j.next(isPresence(garden.jid!, undefined, "in the garden"));

    const orchard = await connected(romeo, "orchard");
    orchard.send(xml("presence", {}, status("in the orchard")));
    const echo = await orchard.next(isPresence(orchard.jid!, undefined));
    assert.equal(echo.getChildText("status"), "in the orchard", "the sender gets its own presence back");
    const fromJuliet = await orchard.next(isPresence(j.jid!, undefined));
    assert.equal(fromJuliet.attrs.id, "p1", "the probe is answered with her last presence, id kept");
    assert.equal(fromJuliet.getChildText("show"), "dnd");
    assert.equal(fromJuliet.getChildText("status"), "busy");
    await orchard.next(isPresence(garden.jid!, undefined, "in the garden"));

    const seen = await j.next(isPresence(orchard.jid!, undefined));
    assert.equal(seen.getChildText("status"), "in the orchard");
    assert.equal(seen.attrs.to, bare(juliet), "delivered to her bare JID as broadcast");
    await garden.next(isPresence(orchard.jid!, undefined, "in the orchard"));
    await Promise.all([j.close(), garden.close(), orchard.close()]);
  });

  test("a contact who is offline answers the probe with unavailable from the bare JID, stamped with the logout", async () => {
    const { romeo, juliet, j } = await friendsWithJulietOnline();
    j.send(xml("presence", { type: "unavailable" }, status("to the nunnery")));
    await settle(j);
    await j.close();
    const last = await waitFor(async () => (await t.server.storage.lastActivity.get(t.domain, juliet)) ?? undefined, 5_000);
    assert.equal(last.status, "to the nunnery", "the unavailable status is kept as last activity");

    const r = await connected(romeo, "orchard");
    r.send(xml("presence", {}));
    const answer = await r.next(isPresence(bare(juliet), "unavailable"));
    const delay = parseDelay(answer);
    assert.ok(delay, "with a delay");
    assert.equal(Math.floor(delay.stamp.getTime() / 1000), last.logoutSeconds);
    await r.close();
  });

  test("a later presence is a plain update: no new probes", async () => {
    const { romeo, j } = await friendsWithJulietOnline();
    const r = await connected(romeo, "orchard");
    r.send(xml("presence", {}));
    await r.next(isPresence(j.jid!, undefined));
    r.send(xml("presence", {}, xml("show", {}, "away")));
    await j.next((el) => isPresence(r.jid!, undefined)(el) && el.getChildText("show") === "away");
    assert.ok(await r.nothing(isPresence(j.jid!, undefined)), "juliet's presence is not sent again");
    await Promise.all([j.close(), r.close()]);
  });
});

describe("broadcast goes to subscribers only (RFC 6121 §4.4)", () => {
  test("contacts with 'from' or 'both' hear it; 'to', 'none' and strangers do not", async () => {
    const romeo = await account("romeo");
    const [both, from, to, none, stranger] = [await account("both"), await account("from"), await account("to"), await account("none"), await account("stranger")];
    await setSubscription(romeo, both, "both");
    await setSubscription(romeo, from, "from");
    await setSubscription(romeo, to, "to");
    await setSubscription(romeo, none, "none");
    const listeners = await Promise.all([both, from, to, none, stranger].map((u) => online(u, "home")));
    const r = await online(romeo, "orchard", status("hello"));
    const [b, f, tt, n, s] = listeners;
    await b.next(isPresence(r.jid!, undefined, "hello"));
    await f.next(isPresence(r.jid!, undefined, "hello"));
    for (const c of [tt, n, s]) assert.ok(await c.nothing(isPresence(r.jid!, undefined), 150), `${c.jid} must not see romeo`);
    await Promise.all([r, ...listeners].map((c) => c.close()));
  });

  test("a probe from someone who is not subscribed gets nothing", async () => {
    const romeo = await account("romeo");
    const tybalt = await account("tybalt");
    await online(romeo, "orchard", status("secret"));
    const ty = await online(tybalt, "street");
    ty.send(xml("presence", { to: bare(romeo), type: "probe" }));
    await settle(ty);
    assert.ok(await ty.nothing((el) => el.name === "presence" && el.attrs.from?.startsWith(bare(romeo)) === true));
    await ty.close();
  });
});

describe("unavailable presence (RFC 6121 §4.5)", () => {
  test("an explicit unavailable reaches contacts and own resources whole; available again is initial again", async () => {
    const { romeo, j } = await friendsWithJulietOnline();
    const r2 = await online(romeo, "garden");
    const r = await online(romeo, "orchard");
    r.send(xml("presence", { type: "unavailable" }, status("sleeping")));
    await r.next(isPresence(r.jid!, "unavailable", "sleeping"));
    await j.next(isPresence(r.jid!, "unavailable", "sleeping"));
    await r2.next(isPresence(r.jid!, "unavailable", "sleeping"));
    assert.equal(t.server.sessions.get(parseJid(r.jid!))?.presence, null);

    r.send(xml("presence", {}));
    await r.next(isPresence(j.jid!, undefined));
    await r.next(isPresence(r2.jid!, undefined));
    await Promise.all([j.close(), r.close(), r2.close()]);
  });

  test("a client that disconnects without a word goes unavailable for it", async () => {
    const { romeo, j } = await friendsWithJulietOnline();
    const r2 = await online(romeo, "garden");
    const r = await online(romeo, "orchard");
    r.destroy();
    await j.next(isPresence(r.jid!, "unavailable"));
    await r2.next(isPresence(r.jid!, "unavailable"));
    // Remembered once the storage writer commits it (a few milliseconds after the broadcast).
    await waitFor(async () => (await t.server.storage.lastActivity.get(t.domain, romeo)) ?? undefined, 5_000);
    await Promise.all([j.close(), r2.close()]);
  });

  test("a session replaced by a new login of the same resource: its unavailable comes before the new presence", async () => {
    const { romeo, j } = await friendsWithJulietOnline();
    const old = await online(romeo, "orchard", status("old"));
    await j.next(isPresence(old.jid!, undefined, "old"));
    const fresh = await connected(romeo, "orchard");
    assert.equal((await old.waitClosed())?.condition, "conflict");
    fresh.send(xml("presence", {}, status("new")));
    await fresh.next(isPresence(fresh.jid!, undefined, "new"));
    const next = await j.next((el) => el.name === "presence" && el.attrs.from === fresh.jid);
    assert.equal(next.attrs.type, "unavailable", "first the old session goes");
    await j.next(isPresence(fresh.jid!, undefined, "new"));
    assert.ok(await j.nothing((el) => el.name === "presence" && el.attrs.from === fresh.jid), "and the new one stays");
    await Promise.all([j.close(), fresh.close()]);
  });

  test("a resource that never sent presence leaves without a broadcast", async () => {
    const { romeo, j } = await friendsWithJulietOnline();
    const r = await connected(romeo, "orchard");
    await r.close();
    assert.ok(await j.nothing((el) => el.name === "presence" && el.attrs.from === r.jid));
    await j.close();
  });
});

describe("directed presence (RFC 6121 §4.6)", () => {
  test("presence to a full JID reaches that resource only, and its unavailable follows at logout", async () => {
    const romeo = await account("romeo");
    const tybalt = await account("tybalt");
    const street = await online(tybalt, "street");
    const home = await online(tybalt, "home");
    const r = await online(romeo, "orchard");
    r.send(xml("presence", { to: street.jid! }, status("a word")));
    await street.next(isPresence(r.jid!, undefined, "a word"));
    assert.ok(await home.nothing(isPresence(r.jid!, undefined), 150), "not to the other resource");

    // §4.6.6: tybalt may ask about that resource, and learns only that it is there.
    street.send(xml("presence", { to: r.jid!, type: "probe", id: "pr1" }));
    const mere = await street.next(isPresence(r.jid!, undefined));
    assert.equal(mere.getChildText("status"), null, "no details");

    await r.close();
    await street.next(isPresence(r.jid!, "unavailable"));
    assert.ok(await home.nothing(isPresence(r.jid!, "unavailable"), 150));
    await Promise.all([street.close(), home.close()]);
  });

  test("presence to a bare JID reaches every available resource; one sent before initial presence still gets its unavailable", async () => {
    const romeo = await account("romeo");
    const nurse = await account("nurse");
    const n1 = await online(nurse, "one");
    const n2 = await online(nurse, "two");
    const r = await connected(romeo, "orchard"); // connected, never available
    r.send(xml("presence", { to: bare(nurse) }));
    await n1.next(isPresence(r.jid!, undefined));
    await n2.next(isPresence(r.jid!, undefined));
    r.destroy();
    await n1.next(isPresence(r.jid!, "unavailable"));
    await n2.next(isPresence(r.jid!, "unavailable"));
    await Promise.all([n1.close(), n2.close()]);
  });

  test("directed unavailable ends it: nothing more is sent at logout", async () => {
    const romeo = await account("romeo");
    const tybalt = await account("tybalt");
    const ty = await online(tybalt, "street");
    const r = await online(romeo, "orchard");
    r.send(xml("presence", { to: ty.jid! }));
    await ty.next(isPresence(r.jid!, undefined));
    r.send(xml("presence", { to: ty.jid!, type: "unavailable" }));
    await ty.next(isPresence(r.jid!, "unavailable"));
    await r.close();
    assert.ok(await ty.nothing(isPresence(r.jid!, "unavailable")), "no second unavailable");
    await ty.close();
  });

  test("a subscriber who also got directed presence hears the unavailable once", async () => {
    const { romeo, juliet, j } = await friendsWithJulietOnline();
    const r = await online(romeo, "orchard");
    await j.next(isPresence(r.jid!, undefined));
    r.send(xml("presence", { to: bare(juliet) }, status("just for you")));
    await j.next(isPresence(r.jid!, undefined, "just for you"));
    await r.close();
    await j.next(isPresence(r.jid!, "unavailable"));
    assert.ok(await j.nothing(isPresence(r.jid!, "unavailable")));
    await j.close();
  });
});

describe("priority (RFC 6121 §4.7.2.3)", () => {
  test("kept on the session, 0 when absent, out-of-range values corrected in what is echoed", async () => {
    const romeo = await account("romeo");
    const r = await connected(romeo, "orchard");
    const session = () => t.server.sessions.get(parseJid(r.jid!))!;
    assert.equal(session().priority, 0);
    r.send(xml("presence", {}, xml("priority", {}, "5")));
    await r.next(isPresence(r.jid!, undefined));
    assert.equal(session().priority, 5);
    r.send(xml("presence", {}, xml("priority", {}, "300")));
    const echo = await r.next(isPresence(r.jid!, undefined));
    assert.equal(echo.getChildText("priority"), "127");
    assert.equal(session().priority, 127);
    r.send(xml("presence", {}, xml("priority", {}, "-200")));
    await r.next(isPresence(r.jid!, undefined));
    assert.equal(session().priority, -128);
    r.send(xml("presence", {}));
    await r.next(isPresence(r.jid!, undefined));
    assert.equal(session().priority, 0);
    assert.ok(session().presence, "the last available presence is kept on the session");
    await r.close();
  });
});
