// End-to-end specs for server/modules/message: RFC 6121 §8.5 delivery of messages to local
// accounts, and RFC 6120 §10.3.1 (no 'to'), as a client sees them.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startTestServer, type TestServer } from "../../support/server.ts";
import { availability } from "../../support/availability.ts";
import type { XmppClient } from "../../../conformance/client/client.ts";
import { xml, type Element } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import { parseStanzaError } from "../../../protocol/errors.ts";
import { defineModule } from "../../../server/core/module.ts";
import ping from "../../../server/modules/ping/index.ts";
import message, { OFFLINE_EVENT, type OfflineMessageEvent } from "../../../server/modules/message/index.ts";

// Stands in for offline storage: sees every offline event, keeps messages for "storage-user".
const offered: OfflineMessageEvent[] = [];
const offlineStore = defineModule({
  name: "spec-offline",
  xeps: [],
  setup(m) {
    m.hook<OfflineMessageEvent>(OFFLINE_EVENT, (ev) => {
      offered.push(ev);
      return ev.to.local === "storage-user";
    });
  },
});

let t: TestServer;
before(async () => {
  // session.presence and priority belong to the presence module, which this spec does not
  // depend on: availability stands in for it.
  t = await startTestServer({
    users: ["romeo", "juliet", "nurse", "benvolio", "mercutio", "tybalt", "storage-user"],
    modules: [availability, offlineStore, ping, message],
  });
});
after(async () => {
  await t.stop();
});

let counter = 0;
const nextId = () => `m${++counter}`;

/** Waits until the server has processed everything `c` sent so far. */
async function settled(c: XmppClient): Promise<void> {
  const pong = await c.iq(xml("iq", { type: "get", to: t.domain }, xml("ping", { xmlns: NS.ping })));
  assert.equal(pong.attrs.type, "result");
}

/** Logs in; `priority` null means no initial presence (bound, but not available). */
async function online(user: string, resource: string, priority: number | null = 0): Promise<XmppClient> {
  const c = await t.login(user, { resource });
  if (priority !== null) {
    c.send(xml("presence", {}, xml("priority", {}, String(priority))));
    await settled(c);
  }
  return c;
}

function send(from: XmppClient, to: string | undefined, type: string | undefined, body = "hello"): string {
  const id = nextId();
  from.send(xml("message", { to, type, id }, xml("body", {}, body)));
  return id;
}

const withId = (id: string) => (el: Element) => el.name === "message" && el.attrs.id === id;

/**
 * Proves `receiver` did not get message `id`: a later message from the same sender to the
 * receiver's full JID arrives, and delivery to one session keeps the order stanzas were sent in.
 */
async function assertNotDelivered(sender: XmppClient, receiver: XmppClient, id: string): Promise<void> {
  const marker = send(sender, receiver.jid!, "chat", "marker");
  await receiver.next(withId(marker));
  assert.equal(receiver.inbox.find(withId(id)), undefined, `message ${id} reached ${receiver.jid}`);
}

/** Proves the sender got no error for `id`: the server answered a later ping first. */
async function assertNoError(sender: XmppClient, id: string): Promise<void> {
  await settled(sender);
  assert.equal(sender.inbox.find(withId(id)), undefined, `an answer to ${id} came back`);
}

/** Proves message `id` was dropped: `receiver` did not get it and the sender got no error. */
async function assertDropped(sender: XmppClient, receiver: XmppClient, id: string): Promise<void> {
  await assertNotDelivered(sender, receiver, id);
  await assertNoError(sender, id);
}

/**
 * Sends a message of `type` to `to` and expects it back as a service-unavailable error from
 * that same address (RFC 6121 §8.5); the reply carries the message's id.
 */
async function bounced(sender: XmppClient, to: string, type: string | undefined): Promise<Element> {
  const reply = await sender.next(withId(send(sender, to, type)));
  assert.equal(reply.attrs.type, "error");
  assert.equal(parseStanzaError(reply)?.condition, "service-unavailable");
  assert.equal(reply.attrs.from, to, "the error comes from the address the message was sent to");
  return reply;
}

async function closeAll(...clients: XmppClient[]): Promise<void> {
  await Promise.all(clients.map((c) => c.close()));
}

describe("to a bare JID with available resources (RFC 6121 §8.5.2.1.1)", () => {
  test("chat goes to the highest priority resource only, untouched", async () => {
    const high = await online("juliet", "high", 5);
    const low = await online("juliet", "low", 1);
    const romeo = await online("romeo", "r1");
    const id = send(romeo, "juliet@localhost", "chat");
    const got = await high.next(withId(id));
    assert.equal(got.attrs.to, "juliet@localhost");
    assert.equal(got.attrs.from, "romeo@localhost/r1");
    assert.equal(got.getChildText("body"), "hello");
    await assertDropped(romeo, low, id);
    await closeAll(high, low, romeo);
  });

  test("normal and untyped messages go to every resource that shares the top priority", async () => {
    const a = await online("juliet", "a", 3);
    const b = await online("juliet", "b", 3);
    const c = await online("juliet", "c", 0);
    const romeo = await online("romeo", "r2");
    for (const type of ["normal", undefined]) {
      const id = send(romeo, "juliet@localhost", type);
      await a.next(withId(id));
      await b.next(withId(id));
      await assertNotDelivered(romeo, c, id);
    }
    await closeAll(a, b, c, romeo);
  });

  test("a resource with negative priority never gets bare-JID messages, nor does one without presence", async () => {
    const negative = await online("juliet", "negative", -1);
    const silent = await online("juliet", "silent", null);
    const shown = await online("juliet", "shown", 0);
    const romeo = await online("romeo", "r3");
    const id = send(romeo, "juliet@localhost", "chat");
    await shown.next(withId(id));
    await assertNotDelivered(romeo, negative, id);
    await assertNotDelivered(romeo, silent, id);
    await closeAll(negative, silent, shown, romeo);
  });

  test("headline goes to every non-negative resource, whatever its priority", async () => {
    const high = await online("nurse", "high", 7);
    const low = await online("nurse", "low", 0);
    const negative = await online("nurse", "negative", -5);
    const romeo = await online("romeo", "r4");
    const id = send(romeo, "nurse@localhost", "headline");
    await high.next(withId(id));
    await low.next(withId(id));
    await assertNotDelivered(romeo, negative, id);
    await closeAll(high, low, negative, romeo);
  });

  test("groupchat to a bare JID is service-unavailable even when the account is online", async () => {
    const juliet = await online("juliet", "gc", 0);
    const romeo = await online("romeo", "r5");
    const reply = await bounced(romeo, "juliet@localhost", "groupchat");
    assert.equal(reply.getChildText("body"), "hello", "the bounced body lets the sender see what failed");
    await assertNotDelivered(romeo, juliet, reply.attrs.id);
    await closeAll(juliet, romeo);
  });

  test("an error message to a bare JID is dropped", async () => {
    const juliet = await online("juliet", "err", 0);
    const romeo = await online("romeo", "r6");
    await assertDropped(romeo, juliet, send(romeo, "juliet@localhost", "error"));
    await closeAll(juliet, romeo);
  });
});

describe("to a bare JID with no resource to take it (RFC 6121 §8.5.2.2.1)", () => {
  test("chat and normal bounce with service-unavailable when nothing stores them", async () => {
    const romeo = await online("romeo", "r7");
    for (const type of ["chat", "normal", undefined]) {
      const reply = await bounced(romeo, "benvolio@localhost", type);
      assert.equal(reply.attrs.to, "romeo@localhost/r7");
    }
    await romeo.close();
  });

  test("resources that are only negative or without presence count as none", async () => {
    const negative = await online("benvolio", "neg", -1);
    const silent = await online("benvolio", "silent", null);
    const romeo = await online("romeo", "r8");
    const id = (await bounced(romeo, "benvolio@localhost", "chat")).attrs.id;
    await assertNotDelivered(romeo, negative, id);
    await assertNotDelivered(romeo, silent, id);
    await closeAll(negative, silent, romeo);
  });

  test("message/offline gets the message first, and a message it keeps is not bounced", async () => {
    const romeo = await online("romeo", "r9");
    const id = send(romeo, "storage-user@localhost", "chat", "keep this");
    await assertNoError(romeo, id);
    const kept = offered.find((ev) => ev.stanza.attrs.id === id);
    assert.ok(kept, "the offline event saw the message");
    assert.equal(kept.to.toString(), "storage-user@localhost");
    assert.equal(kept.stanza.getChildText("body"), "keep this");
    await romeo.close();
  });

  test("headline and error are dropped silently; groupchat bounces", async () => {
    const romeo = await online("romeo", "r10");
    const headline = send(romeo, "benvolio@localhost", "headline");
    const error = send(romeo, "benvolio@localhost", "error");
    await assertNoError(romeo, headline);
    await assertNoError(romeo, error);
    const groupchat = (await bounced(romeo, "benvolio@localhost", "groupchat")).attrs.id;
    for (const id of [headline, error, groupchat]) assert.equal(offered.find((ev) => ev.stanza.attrs.id === id), undefined, "only normal and chat are offered for storage");
    await romeo.close();
  });
});

describe("to a full JID (RFC 6121 §8.5.3)", () => {
  test("a bound resource gets every type addressed to it, even before it sends presence", async () => {
    const silent = await online("mercutio", "silent", null);
    const romeo = await online("romeo", "r11");
    for (const type of ["chat", "normal", "headline", "groupchat", "error"]) {
      const id = send(romeo, "mercutio@localhost/silent", type);
      const got = await silent.next(withId(id));
      assert.equal(got.attrs.to, "mercutio@localhost/silent");
    }
    await closeAll(silent, romeo);
  });

  test("chat to a resource that is gone goes to the account's bare-JID resources", async () => {
    const phone = await online("mercutio", "phone", 2);
    const romeo = await online("romeo", "r12");
    const id = send(romeo, "mercutio@localhost/laptop", "chat");
    const got = await phone.next(withId(id));
    assert.equal(got.attrs.to, "mercutio@localhost/laptop", "the address is kept as sent");
    await closeAll(phone, romeo);
  });

  test("chat to a gone resource of an account with nobody online bounces", async () => {
    const romeo = await online("romeo", "r13");
    await bounced(romeo, "tybalt@localhost/laptop", "chat");
    await romeo.close();
  });

  test("normal and groupchat to a gone resource bounce; headline and error are dropped", async () => {
    const phone = await online("tybalt", "phone", 0);
    const romeo = await online("romeo", "r14");
    for (const type of ["normal", "groupchat"]) {
      const reply = await bounced(romeo, "tybalt@localhost/laptop", type);
      await assertNotDelivered(romeo, phone, reply.attrs.id);
    }
    for (const type of ["headline", "error"]) await assertDropped(romeo, phone, send(romeo, "tybalt@localhost/laptop", type));
    await closeAll(phone, romeo);
  });
});

describe("addresses without an account behind them", () => {
  test("no such account (RFC 6121 §8.5.1): service-unavailable, bare or full; headline dropped", async () => {
    const romeo = await online("romeo", "r15");
    const offeredBefore = offered.length;
    for (const to of ["ghost@localhost", "ghost@localhost/res"]) {
      for (const type of ["chat", "normal", "groupchat"]) await bounced(romeo, to, type);
      await assertNoError(romeo, send(romeo, to, "headline"));
    }
    assert.equal(offered.length, offeredBefore, "nothing is stored for an account that does not exist");
    await romeo.close();
  });

  test("the server itself reads no messages: chat and normal bounce, headline is dropped", async () => {
    const romeo = await online("romeo", "r16");
    for (const type of ["chat", "normal"]) await bounced(romeo, "localhost", type);
    await assertNoError(romeo, send(romeo, "localhost", "headline"));
    await romeo.close();
  });
});

test("a message with no 'to' goes to the sender's own account (RFC 6120 §10.3.1)", async () => {
  const desk = await online("nurse", "desk", 4);
  const pocket = await online("nurse", "pocket", 1);
  const id = send(pocket, undefined, "chat", "note to self");
  const got = await desk.next(withId(id));
  assert.equal(got.attrs.from, "nurse@localhost/pocket");
  assert.equal(got.getChildText("body"), "note to self");
  await closeAll(desk, pocket);
});
