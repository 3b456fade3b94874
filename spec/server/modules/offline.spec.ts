// End-to-end specs for server/modules/offline: XEP-0160 v1.0.1 offline storage as clients see
// it — order and XEP-0203 delay stamps, which session gets the messages, what is not stored
// (XEP-0085 chat states, XEP-0334 hints), the quota, and no message lost or doubled while the
// recipient is logging in.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { startTestServer, type TestServer } from "../../support/server.ts";
import { accountsOn } from "../../support/accounts.ts";
import { assertError, isPresence } from "../../support/stanzas.ts";
import { xml, type Element } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import { parseDelay } from "../../../protocol/delay.ts";
import type { XmppClient } from "../../../conformance/client/client.ts";
import roster from "../../../server/modules/roster/index.ts";
import presence from "../../../server/modules/presence/index.ts";
import message from "../../../server/modules/message/index.ts";
import offline from "../../../server/modules/offline/index.ts";
import disco from "../../../server/modules/disco/index.ts";
import { defineModule } from "../../../server/core/module.ts";
import type { StanzaEvent } from "../../../server/core/router.ts";

/**
 * Stands in for a presence module that is slow to record a session as available (a large
 * roster, a slow database): it holds an account's presence between offline delivery and the
 * presence module until released.
 */
const slowPresence = (() => {
  const held = new Map<string, Promise<void>>();
  const module = defineModule({
    name: "spec-slow-presence",
    xeps: [],
    setup(m) {
      m.hook<StanzaEvent>("presence/self", async (ev) => {
        await held.get(ev.from.bare.toString());
        return false;
      }, 5);
    },
  });
  return {
    module,
    hold(account: string): () => void {
      let release!: () => void;
      held.set(account, new Promise<void>((resolve) => (release = resolve)));
      return () => {
        held.delete(account);
        release();
      };
    },
  };
})();

let t: TestServer;
before(async () => {
  t = await startTestServer({ modules: [roster, presence, message, offline, disco, slowPresence.module] });
});
after(async () => {
  await t.stop();
});

const { account, bare, connected, online, settle } = accountsOn(() => t);

let counter = 0;
function chat(c: XmppClient, to: string, body: string | null, ...extra: Element[]): string {
  const id = `m${++counter}`;
  c.send(xml("message", { to, type: "chat", id }, body === null ? null : xml("body", {}, body), ...extra));
  return id;
}

const isMessage = (el: Element) => el.name === "message";
const withBody = (el: Element) => el.name === "message" && el.getChild("body") !== undefined;

async function stored(user: string): Promise<number> {
  await t.server.storage.writer.sync();
  return t.server.storage.offline.count(t.domain, user);
}

test("messages to an offline account arrive at its next login in order, stamped by the server, and only once", async () => {
  const romeo = await account("romeo");
  const juliet = await account("juliet");
  const r = await online(romeo);
  const before = Date.now();
  const ids = [chat(r, bare(juliet), "one"), chat(r, bare(juliet), "two"), chat(r, `${bare(juliet)}/gone`, "three")];
  await settle(r);
  assert.equal(await stored(juliet), 3);
  assert.equal(await r.nothing((el) => el.attrs.type === "error", 100), true, "the sender got no error");

  const j = await connected(juliet, "balcony");
  j.send(xml("presence", {}, xml("priority", {}, "1")));
  const got = [await j.next(withBody), await j.next(withBody), await j.next(withBody)];
  assert.deepEqual(got.map((m) => m.attrs.id), ids);
  assert.deepEqual(got.map((m) => m.getChildText("body")), ["one", "two", "three"]);
  for (const m of got) {
    const delay = parseDelay(m);
    assert.equal(delay?.from, t.domain);
    assert.ok(delay!.stamp.getTime() >= before - 1000 && delay!.stamp.getTime() <= Date.now(), "stamped when stored");
    assert.equal(m.getChildren("delay", NS.delay).length, 1);
  }
  assert.equal(await stored(juliet), 0, "delivered messages are deleted");
  await j.close();

  const again = await online(juliet, "chamber");
  assert.equal(await again.nothing(withBody, 200), true, "nothing is delivered twice");
});

test("they go to the session that sends non-negative presence, not to one with negative priority", async () => {
  const romeo = await account("romeo");
  const juliet = await account("juliet");
  const r = await online(romeo);
  const id = chat(r, bare(juliet), "for whoever comes");
  await settle(r);

  const shy = await connected(juliet, "shy");
  shy.send(xml("presence", {}, xml("priority", {}, "-1")));
  await shy.next(isPresence(shy.jid!, undefined));
  const bound = await connected(juliet, "bound-only");
  const eager = await connected(juliet, "eager");
  eager.send(xml("presence", {}, xml("priority", {}, "0")));
  assert.equal((await eager.next(withBody)).attrs.id, id);
  assert.equal(await shy.nothing(withBody, 100), true);
  assert.equal(await bound.nothing(withBody, 50), true);

  // A session that becomes reachable later finds nothing left.
  shy.send(xml("presence", {}, xml("priority", {}, "3")));
  assert.equal(await shy.nothing(withBody, 150), true);
});

test("a session whose priority turns non-negative gets what waited", async () => {
  const romeo = await account("romeo");
  const juliet = await account("juliet");
  const j = await connected(juliet, "phone");
  j.send(xml("presence", {}, xml("priority", {}, "-5")));
  await j.next(isPresence(j.jid!, undefined));
  const r = await online(romeo);
  const id = chat(r, bare(juliet), "wake up");
  await settle(r);
  assert.equal(await stored(juliet), 1);
  j.send(xml("presence", {}, xml("priority", {}, "2")));
  assert.equal((await j.next(withBody)).attrs.id, id);
});

test("chat states alone and <no-store/> are dropped without an error; <no-permanent-store/> and <store/> wait", async () => {
  const romeo = await account("romeo");
  const juliet = await account("juliet");
  const r = await online(romeo);
  chat(r, bare(juliet), null, xml("composing", { xmlns: NS.chatStates }));
  chat(r, bare(juliet), "secret", xml("no-store", { xmlns: NS.hints }));
  const temporary = chat(r, bare(juliet), "keep for now", xml("no-permanent-store", { xmlns: NS.hints }));
  const marker = chat(r, bare(juliet), null, xml("displayed", { xmlns: NS.chatMarkers, id: "x1" }));
  const forced = chat(r, bare(juliet), null, xml("paused", { xmlns: NS.chatStates }), xml("store", { xmlns: NS.hints }));
  await settle(r);
  assert.equal(await r.nothing((el) => el.attrs.type === "error", 100), true);

  const j = await online(juliet);
  const got = [await j.next(isMessage), await j.next(isMessage), await j.next(isMessage)];
  assert.deepEqual(got.map((m) => m.attrs.id), [temporary, marker, forced]);
  assert.equal(await j.nothing(isMessage, 100), true);
});

test("a full queue sends service-unavailable back, and keeps what it held", async () => {
  const small = await startTestServer({ modules: [roster, presence, message, offline], toml: "[modules.offline]\nmax_messages = 3\n" });
  try {
    const accounts = accountsOn(() => small);
    const romeo = await accounts.account("romeo");
    const juliet = await accounts.account("juliet");
    const r = await accounts.online(romeo);
    const ids = Array.from({ length: 4 }, (_, i) => chat(r, accounts.bare(juliet), `n${i}`));
    const bounced = await r.next((el) => el.attrs.type === "error");
    assert.equal(bounced.attrs.id, ids[3]);
    assert.equal(bounced.attrs.from, accounts.bare(juliet));
    assertError(bounced, "service-unavailable");
    assert.equal(bounced.getChildText("body"), "n3", "the bounce carries the message back");

    const j = await accounts.online(juliet);
    const got: string[] = [];
    for (let i = 0; i < 3; i++) got.push((await j.next(withBody)).attrs.id!);
    assert.deepEqual(got, ids.slice(0, 3));
  } finally {
    await small.stop();
  }
});

test("while the recipient logs in, every message arrives exactly once and in order", async () => {
  const romeo = await account("romeo");
  const juliet = await account("juliet");
  const r = await online(romeo);
  const sent: string[] = [];
  for (let i = 0; i < 250; i++) sent.push(chat(r, bare(juliet), `stored ${i}`));
  await settle(r);
  assert.equal(await stored(juliet), 250);

  const j = await connected(juliet, "arriving");
  const release = slowPresence.hold(bare(juliet));
  j.send(xml("presence"));
  // While stored messages are being delivered...
  for (let i = 0; i < 30; i++) sent.push(chat(r, bare(juliet), `during ${i}`));
  const got: string[] = [];
  for (let i = 0; i < 250; i++) got.push((await j.next(withBody)).attrs.id!);
  // ...and after, while the presence module has not yet recorded the session as available...
  for (let i = 0; i < 10; i++) sent.push(chat(r, bare(juliet), `between ${i}`));
  await settle(r);
  release();
  await j.next(isPresence(j.jid!, undefined));
  // ...and once it has.
  for (let i = 0; i < 10; i++) sent.push(chat(r, bare(juliet), `after ${i}`));
  while (got.length < sent.length) got.push((await j.next(withBody)).attrs.id!);
  assert.deepEqual(got, sent);
  await settle(r);
  assert.equal(await j.nothing(withBody, 150), true);
  assert.equal(await stored(juliet), 0);
  assert.equal(r.inbox.filter((el) => el.attrs.type === "error").length, 0);
});

test("the server says it stores messages for offline accounts", async () => {
  const juliet = await account("juliet");
  const j = await online(juliet);
  const info = await j.iq(xml("iq", { type: "get", to: t.domain }, xml("query", { xmlns: NS.discoInfo })));
  const features = info.getChild("query", NS.discoInfo)!.getChildren("feature").map((f) => f.attrs.var);
  assert.ok(features.includes("msgoffline"), features.join(" "));
});
