// End-to-end specs for server/modules/last: XEP-0012 2.0 last activity of the server (uptime)
// and of accounts (time since logout, read from storage), with who may ask.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startTestServer, type TestServer } from "../../support/server.ts";
import { accountsOn } from "../../support/accounts.ts";
import { availability } from "../../support/availability.ts";
import { assertError } from "../../support/stanzas.ts";
import type { XmppClient } from "../../../conformance/client/client.ts";
import { xml, type Element } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import last from "../../../server/modules/last/index.ts";

// session.presence belongs to the presence module, which this spec does not depend on, so a
// stand-in keeps it. The logout time itself is written by that module, so here it is set in
// storage directly.

let t: TestServer;
let startedBefore: number;
before(async () => {
  startedBefore = Date.now();
  t = await startTestServer({ users: ["romeo", "juliet", "nurse", "tybalt", "mercutio"], modules: [availability, last] });
});
after(async () => {
  await t.stop();
});

const nowSeconds = () => Math.floor(Date.now() / 1000);

function askLast(c: XmppClient, to: string | undefined): Promise<Element> {
  return c.iq(xml("iq", { type: "get", to }, xml("query", { xmlns: NS.last })));
}

function secondsOf(r: Element): number {
  assert.equal(r.attrs.type, "result");
  const seconds = r.getChild("query", NS.last)!.attrs.seconds;
  assert.match(seconds, /^\d+$/);
  return Number(seconds);
}

const { setSubscription } = accountsOn(() => t);

/** Sends presence and waits until the server has taken it (an IQ after it is answered). */
async function sendPresence(c: XmppClient, presence: Element): Promise<void> {
  c.send(presence);
  await askLast(c, "localhost");
}

test("to the server: its uptime in seconds (§5)", async () => {
  const c = await t.login("romeo");
  const seconds = secondsOf(await askLast(c, "localhost"));
  assert.ok(seconds <= Math.ceil((Date.now() - startedBefore) / 1000), `${seconds} s is no longer than the server has run`);
  await c.close();
});

describe("to an account (§4)", () => {
  test("a contact not subscribed to the account's presence is forbidden", async () => {
    const romeo = await t.login("romeo");
    await t.server.storage.lastActivity.set(t.domain, "juliet", { logoutSeconds: nowSeconds() - 100, status: "Heading Home" });
    assertError(await askLast(romeo, "juliet@localhost"), "forbidden");
    await setSubscription("juliet", "romeo", "to");
    assertError(await askLast(romeo, "juliet@localhost"), "forbidden");
    await romeo.close();
  });

  test("a subscribed contact gets the seconds since logout and the status left with", async () => {
    const romeo = await t.login("romeo");
    await t.server.storage.lastActivity.set(t.domain, "juliet", { logoutSeconds: nowSeconds() - 100, status: "Heading Home" });
    for (const subscription of ["from", "both"] as const) {
      await setSubscription("juliet", "romeo", subscription);
      const r = await askLast(romeo, "juliet@localhost");
      const seconds = secondsOf(r);
      assert.ok(seconds >= 100 && seconds < 160, `${seconds}`);
      assert.equal(r.getChild("query", NS.last)!.getText(), "Heading Home");
      assert.equal(r.attrs.from, "juliet@localhost");
    }
    await romeo.close();
  });

  test("a logout still waiting in the group-commit writer is already in the answer", async () => {
    const romeo = await t.login("romeo");
    await setSubscription("mercutio", "romeo", "from");
    // As the presence module records a logout: through the writer, not awaited.
    void t.server.storage.writer.write({ kind: "last-activity", host: t.domain, username: "mercutio", activity: { logoutSeconds: nowSeconds() - 50, status: "A plague" } });
    const r = await askLast(romeo, "mercutio@localhost");
    const seconds = secondsOf(r);
    assert.ok(seconds >= 50 && seconds < 110, `${seconds}`);
    assert.equal(r.getChild("query", NS.last)!.getText(), "A plague");
    await romeo.close();
  });

  test("0 seconds while the account has an available resource", async () => {
    await setSubscription("juliet", "romeo", "from");
    await t.server.storage.lastActivity.set(t.domain, "juliet", { logoutSeconds: nowSeconds() - 100, status: "" });
    const juliet = await t.login("juliet", { resource: "balcony" });
    const romeo = await t.login("romeo");
    assert.ok(secondsOf(await askLast(romeo, "juliet@localhost")) > 0, "bound without presence is not available");
    await sendPresence(juliet, xml("presence"));
    assert.equal(secondsOf(await askLast(romeo, "juliet@localhost")), 0);
    await juliet.close();
    await romeo.close();
  });

  test("an account never seen offline is item-not-found; no account is service-unavailable", async () => {
    await setSubscription("nurse", "romeo", "both");
    const romeo = await t.login("romeo");
    assertError(await askLast(romeo, "nurse@localhost"), "item-not-found");
    assertError(await askLast(romeo, "ghost@localhost"), "service-unavailable");
    await romeo.close();
  });

  test("the account itself may always ask, by its bare JID or with no 'to'", async () => {
    const tybalt = await t.login("tybalt");
    assertError(await askLast(tybalt, "tybalt@localhost"), "item-not-found");
    await sendPresence(tybalt, xml("presence"));
    assert.equal(secondsOf(await askLast(tybalt, undefined)), 0);
    await tybalt.close();
  });
});
