// XEP-0357 Push Notifications, the user's server side, end to end: a phone enables push with an
// app server (here a recording component on apps.localhost), goes away, and what arrives for it
// becomes publishes to the app server — one per burst, with the summary, the priority hint and
// a body only when the registration allows it and the message was not encrypted.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { xml, type Element } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import { StanzaError, errorReply } from "../../../protocol/errors.ts";
import { parseJid } from "../../../protocol/jid.ts";
import { INCLUDE_BODY_FIELD, buildDisable, buildEnable, parsePublish, publishOptionsForm, type ReceivedPublish } from "../../../protocol/push.ts";
import { defineModule, iqResult } from "../../../server/core/module.ts";
import { startTestServer, type TestServer } from "../../support/server.ts";
import { accountsOn } from "../../support/accounts.ts";
import { forEachDatabase, uniqueName } from "../core/storage/both.ts";
import roster from "../../../server/modules/roster/index.ts";
import presence from "../../../server/modules/presence/index.ts";
import message from "../../../server/modules/message/index.ts";
import offline from "../../../server/modules/offline/index.ts";
import csi from "../../../server/modules/csi/index.ts";
import sm from "../../../server/modules/sm/index.ts";
import disco from "../../../server/modules/disco/index.ts";
import push, { INCLUDE_SENDER_FIELD, RegistrationStore, messageTrigger } from "../../../server/modules/push/index.ts";
import type { XmppClient } from "../../../conformance/client/client.ts";
import { waitFor } from "../../support/wait.ts";

const APPS = "apps.localhost";

interface Received extends ReceivedPublish {
  from: string;
  raw: Element;
}

/** An app server that records publishes; nodes in `gone` are answered item-not-found. */
const received: Received[] = [];
const gone = new Set<string>();
const recorder = defineModule({
  name: "app-server-recorder",
  xeps: [],
  setup(m) {
    m.addComponent(APPS, (ev) => {
      const { stanza } = ev;
      if (stanza.name !== "iq" || stanza.attrs.type !== "set") return;
      const p = parsePublish(stanza.getChild("pubsub", NS.pubsub)!);
      received.push({ ...p, from: stanza.attrs.from!, raw: stanza });
      const answer = gone.has(p.node) ? errorReply(stanza, new StanzaError("item-not-found")) : iqResult(stanza);
      if (answer) void m.send(answer);
    });
  },
});

let t: TestServer;
const accounts = accountsOn(() => t);
before(async () => {
  t = await startTestServer({
    modules: [roster, presence, message, offline, csi, sm, disco, push, recorder],
    toml: "[modules.push]\ncoalesce_ms = 400\n[modules.sm]\nresume_timeout_s = 5\n",
  });
});
after(async () => {
  await t.stop();
});

function publishesFor(node: string): Received[] {
  return received.filter((r) => r.node === node);
}


/** Waits for the `n`th publish to `node` (1-based). */
const nthPublish = (node: string, n: number) => waitFor(() => publishesFor(node)[n - 1]);

/** Long enough for a coalescing window to close and a publish to be answered. */
const quiet = () => new Promise((r) => setTimeout(r, 1000));

async function enable(c: XmppClient, node: string, options?: Record<string, string>): Promise<Element> {
  return c.iq(xml("iq", { type: "set" }, buildEnable({ jid: parseJid(APPS), node, publishOptions: options ? publishOptionsForm(options) : undefined })));
}

/** A phone that enabled push, then left (a polite close: it is not connected at all). */
async function phoneThatLeft(user: string, node: string, options?: Record<string, string>): Promise<void> {
  const phone = await t.login(user, { resource: "phone" });
  assert.equal((await enable(phone, node, options)).attrs.type, "result");
  const jid = parseJid(phone.jid!);
  await phone.close();
  // Gone from the server's point of view, not only the client's.
  await waitFor(() => (t.server.sessions.get(jid) ? undefined : true));
}

function chat(from: XmppClient, to: string, body: string | null, ...extra: Element[]): void {
  from.send(xml("message", { to, type: "chat" }, body === null ? null : xml("body", {}, body), ...extra));
}

describe("enable and disable (XEP-0357 §5, §6)", () => {
  test("the account advertises urn:xmpp:push:0", async () => {
    const user = await accounts.account("romeo");
    const c = await t.login(user);
    const info = await c.iq(xml("iq", { type: "get", to: accounts.bare(user) }, xml("query", { xmlns: NS.discoInfo })));
    assert.ok(info.getChild("query", NS.discoInfo)!.getChildren("feature").some((f) => f.attrs.var === NS.push));
    await c.close();
  });

  test("enable without a node is a bad request", async () => {
    const user = await accounts.account("romeo");
    const c = await t.login(user);
    const reply = await c.iq(xml("iq", { type: "set" }, xml("enable", { xmlns: NS.push, jid: APPS })));
    assert.equal(reply.attrs.type, "error");
    assert.ok(reply.getChild("error")?.getChild("bad-request", NS.stanzas));
    await c.close();
  });

  test("after disable, nothing is published for that node", async () => {
    const user = await accounts.account("romeo");
    const juliet = await t.login(await accounts.account("juliet"));
    const node = uniqueName("node");
    const phone = await t.login(user, { resource: "phone" });
    await enable(phone, node);
    const off = await phone.iq(xml("iq", { type: "set" }, buildDisable({ jid: parseJid(APPS), node })));
    assert.equal(off.attrs.type, "result");
    await phone.close();
    chat(juliet, accounts.bare(user), "anyone there?");
    await quiet();
    assert.equal(publishesFor(node).length, 0);
    await juliet.close();
  });
});

describe("what is published", () => {
  test("an offline user gets one push per burst, with the count, the sender, a high priority and the publish-options", async () => {
    const user = await accounts.account("romeo");
    const sender = await accounts.account("juliet");
    const juliet = await t.login(sender, { resource: "balcony" });
    const node = uniqueName("node");
    await phoneThatLeft(user, node, { secret: "s3cret" });
    for (const body of ["one", "two", "three"]) chat(juliet, accounts.bare(user), body);
    const first = await nthPublish(node, 1);
    await quiet();
    assert.equal(publishesFor(node).length, 1, "the burst made one publish");
    assert.equal(first.summary.messageCount, 3);
    assert.equal(first.summary.lastMessageSender, `${accounts.bare(sender)}/balcony`);
    assert.equal(first.summary.priority, "high");
    assert.equal(first.summary.lastMessageBody, undefined, "no body unless the registration asks for it");
    assert.equal(first.from, accounts.bare(user));
    assert.deepEqual(first.options, { secret: "s3cret" });
    assert.equal(first.raw.getChild("pubsub", NS.pubsub)!.getChild("publish")!.getChild("item")!.getChild("notification", NS.push)!.getChildText("priority", "tigase:push:priority:0"), "high");

    // A later message is a new burst; the count goes on until the phone comes back.
    chat(juliet, accounts.bare(user), "four");
    const second = await nthPublish(node, 2);
    assert.equal(second.summary.messageCount, 4);
    // The phone connects (it has seen everything) and leaves again: counting starts over.
    const back = await t.login(user, { resource: "phone" });
    const backJid = parseJid(back.jid!);
    await back.close();
    await waitFor(() => (t.server.sessions.get(backJid) ? undefined : true));
    await quiet();
    chat(juliet, accounts.bare(user), "five");
    const third = await nthPublish(node, 3);
    assert.equal(third.summary.messageCount, 1, "the count starts over after the device was back");
    await juliet.close();
  });

  test("the body is sent only when the registration asks for it, and Parley's own field is not forwarded", async () => {
    const user = await accounts.account("romeo");
    const juliet = await t.login(await accounts.account("juliet"));
    const node = uniqueName("node");
    await phoneThatLeft(user, node, { secret: "x", [INCLUDE_BODY_FIELD]: "1" });
    chat(juliet, accounts.bare(user), "Wherefore art thou?");
    const p = await nthPublish(node, 1);
    assert.equal(p.summary.lastMessageBody, "Wherefore art thou?");
    assert.deepEqual(p.options, { secret: "x" });
    await juliet.close();
  });

  test("a registration that opts out of the sender gets no last-message-sender; neither Parley field is forwarded", async () => {
    const user = await accounts.account("romeo");
    const juliet = await t.login(await accounts.account("juliet"));
    const quietNode = uniqueName("node");
    const plainNode = uniqueName("node");
    await phoneThatLeft(user, quietNode, { secret: "q", [INCLUDE_SENDER_FIELD]: "0", [INCLUDE_BODY_FIELD]: "1" });
    const other = await accounts.account("romeo");
    await phoneThatLeft(other, plainNode, { secret: "p", [INCLUDE_SENDER_FIELD]: "1" });
    chat(juliet, accounts.bare(user), "from whom?");
    chat(juliet, accounts.bare(other), "from whom?");
    const q = await nthPublish(quietNode, 1);
    assert.equal(q.summary.lastMessageSender, undefined);
    assert.equal(q.summary.lastMessageBody, "from whom?", "the body opt-in is independent of the sender opt-out");
    assert.deepEqual(q.options, { secret: "q" });
    const p = await nthPublish(plainNode, 1);
    assert.equal(p.summary.lastMessageSender, juliet.jid);
    assert.deepEqual(p.options, { secret: "p" });
    await juliet.close();
  });

  test("an encrypted message gets a push without a body, even when bodies are allowed", async () => {
    const user = await accounts.account("romeo");
    const juliet = await t.login(await accounts.account("juliet"));
    const node = uniqueName("node");
    await phoneThatLeft(user, node, { [INCLUDE_BODY_FIELD]: "1" });
    const omemo = xml("encrypted", { xmlns: NS.omemo }, xml("header", { sid: "1" }), xml("payload", {}, "c2VjcmV0"));
    chat(juliet, accounts.bare(user), "I sent you an OMEMO encrypted message but your client doesn't seem to support that.", omemo);
    const p = await nthPublish(node, 1);
    assert.equal(p.summary.lastMessageBody, undefined);
    assert.equal(p.summary.lastMessageEncrypted, true, "the hint that replaces the body");
    assert.equal(p.summary.messageCount, 1);
    assert.equal(p.summary.priority, "high");
    await juliet.close();
  });

  test("chat states, receipts and no-store messages wake nobody", async () => {
    const user = await accounts.account("romeo");
    const juliet = await t.login(await accounts.account("juliet"));
    const node = uniqueName("node");
    await phoneThatLeft(user, node);
    chat(juliet, accounts.bare(user), null, xml("composing", { xmlns: NS.chatStates }));
    chat(juliet, accounts.bare(user), null, xml("received", { xmlns: NS.receipts, id: "m1" }));
    chat(juliet, accounts.bare(user), "ephemeral", xml("no-store", { xmlns: NS.hints }));
    await quiet();
    assert.equal(publishesFor(node).length, 0);
    await juliet.close();
  });

  test("a subscription request is a silent (low priority) push with the pending count", async () => {
    const user = await accounts.account("romeo");
    const juliet = await t.login(await accounts.account("juliet"));
    const node = uniqueName("node");
    await phoneThatLeft(user, node);
    juliet.send(xml("presence", { to: accounts.bare(user), type: "subscribe" }));
    const p = await nthPublish(node, 1);
    assert.equal(p.summary.priority, "low");
    assert.equal(p.summary.pendingSubscriptionCount, 1);
    assert.equal(p.summary.messageCount, 0);
    await juliet.close();
  });
});

describe("which devices", () => {
  test("a connected, active device gets no push; once it says it is inactive (XEP-0352) it does", async () => {
    const user = await accounts.account("romeo");
    const juliet = await t.login(await accounts.account("juliet"));
    const node = uniqueName("node");
    const phone = await accounts.online(user, "phone");
    await enable(phone, node);
    chat(juliet, accounts.bare(user), "are you there?");
    await phone.next((el) => el.name === "message" && el.getChildText("body") === "are you there?");
    await quiet();
    assert.equal(publishesFor(node).length, 0);

    phone.send(xml("inactive", { xmlns: NS.csi }));
    await accounts.settle(phone);
    chat(juliet, accounts.bare(user), "pocket?");
    const p = await nthPublish(node, 1);
    assert.equal(p.summary.messageCount, 1);
    await phone.close();
    await juliet.close();
  });

  test("a hibernated stream management session gets a push for what is queued for it", async () => {
    const user = await accounts.account("romeo");
    const juliet = await t.login(await accounts.account("juliet"));
    const node = uniqueName("node");
    const phone = await accounts.online(user, "phone");
    await enable(phone, node);
    phone.send(xml("enable", { xmlns: NS.sm, resume: "true" }));
    await phone.next((el) => el.name === "enabled" && el.getNS() === NS.sm);
    // The connection dies without a closing stream: the session hibernates (XEP-0198 §5).
    phone.destroy();
    await new Promise((r) => setTimeout(r, 150));
    chat(juliet, `${accounts.bare(user)}/phone`, "wake up");
    const p = await nthPublish(node, 1);
    assert.equal(p.summary.messageCount, 1);
    assert.equal(p.summary.priority, "high");
    await quiet();
    assert.equal(publishesFor(node).length, 1, "counted once, not once per path");
    await juliet.close();
  });

  test("each device has its own registration; the one still connected is spared", async () => {
    const user = await accounts.account("romeo");
    const juliet = await t.login(await accounts.account("juliet"));
    const away = uniqueName("away");
    const here = uniqueName("here");
    await phoneThatLeft(user, away);
    const tablet = await accounts.online(user, "tablet");
    await enable(tablet, here);
    chat(juliet, accounts.bare(user), "hello both");
    await nthPublish(away, 1);
    await quiet();
    assert.equal(publishesFor(here).length, 0);
    await tablet.close();
    await juliet.close();
  });
});

describe("an app server that says the registration is gone", () => {
  test("item-not-found removes the registration: no more publishes to it", async () => {
    const user = await accounts.account("romeo");
    const juliet = await t.login(await accounts.account("juliet"));
    const node = uniqueName("node");
    gone.add(node);
    await phoneThatLeft(user, node);
    chat(juliet, accounts.bare(user), "first");
    await nthPublish(node, 1);
    await quiet();
    chat(juliet, accounts.bare(user), "second");
    await quiet();
    assert.equal(publishesFor(node).length, 1);
    const store = new RegistrationStore(t.server.storage);
    assert.deepEqual(await store.list(parseJid(accounts.bare(user))), []);
    await juliet.close();
  });
});

describe("messageTrigger", () => {
  const msg = (attrs: Record<string, string>, ...children: Element[]) => xml("message", { from: "j@x/y", ...attrs }, ...children);
  test("groupchat counts only as a mention when mentions are on", () => {
    const m = msg({ type: "groupchat" }, xml("body", {}, "romeo, look"));
    assert.equal(messageTrigger(m), null);
    assert.equal(messageTrigger(m, { groupchatMention: "romeo" })?.kind, "message");
    assert.equal(messageTrigger(m, { groupchatMention: "benvolio" }), null);
  });
  test("a received carbon counts as the message it carries; headline and error never", () => {
    const inner = xml("message", { from: "j@x/y", type: "chat" }, xml("body", {}, "hi"));
    const carbon = msg({ type: "chat" }, xml("received", { xmlns: NS.carbons }, xml("forwarded", { xmlns: NS.forward }, inner)));
    assert.equal(messageTrigger(carbon)?.body, "hi");
    assert.equal(messageTrigger(msg({ type: "headline" }, xml("body", {}, "news"))), null);
    assert.equal(messageTrigger(msg({ type: "error" }, xml("body", {}, "x"))), null);
  });
});

forEachDatabase("push registrations", (db) => {
  test("several per account, replaced on re-enable, removed per node or per service, kept across stores", async () => {
    const host = `${uniqueName("h")}.test`;
    const account = parseJid(`romeo@${host}`);
    const a = new RegistrationStore(db.storage);
    await a.put(account, { service: "push.example", node: "n1", resource: "phone", publishOptions: publishOptionsForm({ secret: "1" }) });
    await a.put(account, { service: "push.example", node: "n2", resource: "tablet" });
    await a.put(account, { service: "other.example", node: "n3", resource: "web" });
    await a.put(account, { service: "push.example", node: "n1", resource: "phone2" });
    // A new store reads what was written: nothing lives only in memory.
    const b = new RegistrationStore(db.storage);
    const all = await b.list(account);
    assert.deepEqual(all.map((r) => [r.service, r.node, r.resource]).sort(), [["other.example", "n3", "web"], ["push.example", "n1", "phone2"], ["push.example", "n2", "tablet"]]);
    assert.equal(await b.remove(account, "push.example", "n2"), 1);
    assert.equal(await b.remove(account, "push.example"), 1);
    assert.deepEqual((await b.list(account)).map((r) => r.node), ["n3"]);
  });

  test("beyond the limit per account, enabling one more drops the oldest", async () => {
    const account = parseJid(`juliet@${uniqueName("h")}.test`);
    const store = new RegistrationStore(db.storage, 2);
    for (const node of ["old", "mid", "new"]) {
      await store.put(account, { service: "push.example", node, resource: node });
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.deepEqual((await store.list(account)).map((r) => r.node).sort(), ["mid", "new"]);
  });
});
