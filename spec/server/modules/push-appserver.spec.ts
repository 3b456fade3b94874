// Parley's push app server (push.localhost) end to end, against local fake APNs, FCM and Web
// Push services (spec/support/fake-push.ts) that check signatures, headers and payloads as the
// real services document them: a device registers, its phone enables XEP-0357 push with the
// node and secret it got, goes away, and messages become pushes through the right service.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import type { Kysely } from "kysely";
import { xml, type Element } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import { parseJid } from "../../../protocol/jid.ts";
import { INCLUDE_BODY_FIELD, buildEnable, buildPublish, publishOptionsForm } from "../../../protocol/push.ts";
import { parseStanzaError } from "../../../protocol/errors.ts";
import { startTestServer, type TestServer } from "../../support/server.ts";
import { accountsOn } from "../../support/accounts.ts";
import { startFakePushServices, type FakeApns, type FakeFcm, type FakeWebPush, appServerToml as sharedAppServerToml, deleteRedisKeys } from "../../support/fake-push.ts";
import roster from "../../../server/modules/roster/index.ts";
import presence from "../../../server/modules/presence/index.ts";
import message from "../../../server/modules/message/index.ts";
import offline from "../../../server/modules/offline/index.ts";
import push, { INCLUDE_SENDER_FIELD, RegistrationStore } from "../../../server/modules/push/index.ts";
import pushAppserver, { APPSERVER_NS, appServers } from "../../../server/modules/push-appserver/index.ts";
import type { PushTables } from "../../../server/modules/push/tables.ts";
import type { XmppClient } from "../../../conformance/client/client.ts";
import { waitFor } from "../../support/wait.ts";

const REDIS_URL = process.env.PARLEY_TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
const APP = "push.localhost";

let apns: FakeApns;
let fcm: FakeFcm;
let web: FakeWebPush;
let dir: string;

function appServerToml(push: Record<string, string | boolean> = {}, appserver: Record<string, string> = {}): string {
  const pushLines = Object.entries(push).map(([k, v]) => `${k} = ${typeof v === "string" ? JSON.stringify(v) : String(v)}\n`).join("");
  return `[modules.push]\ncoalesce_ms = 300\n${pushLines}${sharedAppServerToml(dir, { apns, fcm, web }, appserver)}`;
}

const MODULES = [roster, presence, message, offline, push, pushAppserver];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "parley-push-"));
  ({ apns, fcm, web } = await startFakePushServices());
});
after(async () => {
  // Unset when before() failed (startFakePushServices has then stopped any that started):
  // let that failure be the one reported, not a TypeError here.
  await Promise.all([apns?.stop(), fcm?.stop(), web?.stop()]);
  rmSync(dir, { recursive: true, force: true });
});


const quiet = () => new Promise((r) => setTimeout(r, 800));
const hexToken = () => randomBytes(32).toString("hex");

/** Registers a device with the app server, enables push for it, and leaves. Returns the node. */
async function deviceThatLeft(t: TestServer, user: string, kind: string, token: string, options: Record<string, string> = {}): Promise<string> {
  const phone = await t.login(user, { resource: "phone" });
  const answer = await phone.iq(xml("iq", { type: "set", to: APP }, xml("register", { xmlns: APPSERVER_NS, type: kind, token })));
  assert.equal(answer.attrs.type, "result", `registration: ${answer.toString()}`);
  const registered = answer.getChild("registered", APPSERVER_NS)!;
  const { node, secret, jid } = registered.attrs;
  assert.equal(jid, APP);
  const enabled = await phone.iq(
    xml("iq", { type: "set" }, buildEnable({ jid: parseJid(APP), node: node!, publishOptions: publishOptionsForm({ secret: secret!, ...options }) })),
  );
  assert.equal(enabled.attrs.type, "result");
  const phoneJid = parseJid(phone.jid!);
  await phone.close();
  // Gone from the server's point of view, not only the client's.
  await waitFor(() => (t.server.sessions.get(phoneJid) ? undefined : true));
  return node!;
}

function chat(from: XmppClient, to: string, body: string, ...extra: Element[]): void {
  from.send(xml("message", { to, type: "chat" }, xml("body", {}, body), ...extra));
}

describe("with the SQL outbox", () => {
  let t: TestServer;
  const accounts = accountsOn(() => t);
  before(async () => {
    t = await startTestServer({ modules: MODULES, toml: appServerToml() });
  });
  after(async () => {
    await t.stop();
  });

  test("APNs: one visible alert per burst, token-authenticated, with topic, push type and priority", async () => {
    const user = await accounts.account("romeo");
    const juliet = await t.login(await accounts.account("juliet"));
    const token = hexToken();
    await deviceThatLeft(t, user, "apns", token, { [INCLUDE_BODY_FIELD]: "1" });
    chat(juliet, accounts.bare(user), "one");
    chat(juliet, accounts.bare(user), "two");
    const req = await waitFor(() => apns.requests.find((r) => r.token === token));
    await quiet();
    assert.equal(apns.requests.filter((r) => r.token === token).length, 1, "coalesced into one push");
    assert.equal(req.headers["apns-topic"], apns.topic);
    assert.equal(req.headers["apns-push-type"], "alert");
    assert.equal(req.headers["apns-priority"], "10");
    assert.deepEqual(req.payload.aps.alert, { title: juliet.jid, body: "two" });
    assert.equal((req.payload.xmpp as Record<string, string>)["message-count"], "2");
    assert.deepEqual(apns.refusals, []);
    await juliet.close();
  });

  test("APNs: a subscription request is a silent background push (priority 5, content-available)", async () => {
    const user = await accounts.account("romeo");
    const juliet = await t.login(await accounts.account("juliet"));
    const token = hexToken();
    await deviceThatLeft(t, user, "apns", token);
    juliet.send(xml("presence", { to: accounts.bare(user), type: "subscribe" }));
    const req = await waitFor(() => apns.requests.find((r) => r.token === token));
    assert.equal(req.headers["apns-push-type"], "background");
    assert.equal(req.headers["apns-priority"], "5");
    assert.deepEqual(req.payload.aps, { "content-available": 1 });
    assert.deepEqual(apns.refusals, []);
    await juliet.close();
  });

  test("APNs: an encrypted message's push carries no body, even when bodies are allowed", async () => {
    const user = await accounts.account("romeo");
    const juliet = await t.login(await accounts.account("juliet"));
    const token = hexToken();
    await deviceThatLeft(t, user, "apns", token, { [INCLUDE_BODY_FIELD]: "1" });
    chat(juliet, accounts.bare(user), "This message is OMEMO encrypted", xml("encrypted", { xmlns: NS.omemo }, xml("payload", {}, "AAAA")));
    const req = await waitFor(() => apns.requests.find((r) => r.token === token));
    assert.equal(req.headers["apns-push-type"], "alert");
    assert.ok(!JSON.stringify(req.payload).includes("OMEMO encrypted"), "the fallback body does not leave the server");
    assert.equal((req.payload.xmpp as Record<string, string>)["last-message-body"], undefined);
    assert.equal((req.payload.xmpp as Record<string, string>)["last-message-encrypted"], "1");
    assert.deepEqual(req.payload.aps.alert, { title: juliet.jid, body: "New encrypted message" });
    await juliet.close();
  });

  test("FCM HTTP v1: an OAuth token from the service account, then a high-priority data message", async () => {
    const user = await accounts.account("romeo");
    const juliet = await t.login(await accounts.account("juliet"));
    const token = `fcm-${randomBytes(12).toString("hex")}`;
    await deviceThatLeft(t, user, "fcm", token);
    chat(juliet, accounts.bare(user), "hello android");
    const req = await waitFor(() => fcm.requests.find((r) => r.token === token));
    assert.equal(req.message.android?.priority, "HIGH");
    assert.equal(req.message.data?.["message-count"], "1");
    assert.equal(req.message.data?.["last-message-sender"], juliet.jid);
    assert.equal(req.message.data?.["last-message-body"], undefined);
    assert.ok(fcm.tokenRequests >= 1);
    assert.deepEqual(fcm.refusals, []);
    await juliet.close();
  });

  test("Web Push: VAPID-signed, aes128gcm-encrypted, urgency high", async () => {
    const user = await accounts.account("romeo");
    const juliet = await t.login(await accounts.account("juliet"));
    const subscription = web.subscribe();
    await deviceThatLeft(t, user, "web", JSON.stringify(subscription), { [INCLUDE_BODY_FIELD]: "1" });
    chat(juliet, accounts.bare(user), "hello browser");
    const id = subscription.endpoint.split("/").pop();
    const req = await waitFor(() => web.requests.find((r) => r.id === id));
    assert.equal(req.headers.urgency, "high");
    assert.equal(req.payload["last-message-body"], "hello browser");
    assert.equal(req.payload["message-count"], "1");
    assert.deepEqual(web.refusals, []);
    await juliet.close();
  });

  test("a registration that opts out of the sender (include-sender = 0) gets pushes without it on APNs and FCM; the body opt-in still holds", async () => {
    const user = await accounts.account("romeo");
    const juliet = await t.login(await accounts.account("juliet"));
    const apnsToken = hexToken();
    const fcmToken = `fcm-${randomBytes(12).toString("hex")}`;
    await deviceThatLeft(t, user, "apns", apnsToken, { [INCLUDE_SENDER_FIELD]: "0", [INCLUDE_BODY_FIELD]: "1" });
    const user2 = await accounts.account("romeo");
    await deviceThatLeft(t, user2, "fcm", fcmToken, { [INCLUDE_SENDER_FIELD]: "0" });
    chat(juliet, accounts.bare(user), "who sent this?");
    chat(juliet, accounts.bare(user2), "and this?");
    const a = await waitFor(() => apns.requests.find((r) => r.token === apnsToken));
    assert.deepEqual(a.payload.aps.alert, { title: "New message", body: "who sent this?" }, "no name on the lock screen");
    assert.equal((a.payload.xmpp as Record<string, string>)["last-message-sender"], undefined);
    assert.ok(!JSON.stringify(a.payload).includes(juliet.jid!.split("/")[0]!), "the sender's JID is nowhere in the push");
    const f = await waitFor(() => fcm.requests.find((r) => r.token === fcmToken));
    assert.equal(f.message.data?.["last-message-sender"], undefined);
    assert.equal(f.message.data?.["last-message-body"], undefined, "no body without the opt-in");
    assert.equal(f.message.data?.["message-count"], "1");
    assert.deepEqual([...apns.refusals, ...fcm.refusals], []);
    await juliet.close();
  });

  test("a token APNs calls Unregistered (410) is removed, and so is the registration: it is not used again", async () => {
    const user = await accounts.account("romeo");
    const juliet = await t.login(await accounts.account("juliet"));
    const token = hexToken();
    const node = await deviceThatLeft(t, user, "apns", token);
    apns.unregistered.add(token);
    chat(juliet, accounts.bare(user), "first");
    const db = t.server.storage.db.withTables<PushTables>() as unknown as Kysely<PushTables>;
    // The app server removes the device once APNs has answered 410.
    await waitFor(async () => ((await db.selectFrom("push_devices").select("node").where("node", "=", node).executeTakeFirst()) ? undefined : true));
    apns.unregistered.delete(token);
    // The next publish is refused with item-not-found, and the user's server drops the registration.
    await quiet();
    chat(juliet, accounts.bare(user), "second");
    // A fresh store each time: a store caches what it read.
    await waitFor(async () => ((await new RegistrationStore(t.server.storage).list(parseJid(accounts.bare(user)))).length === 0 ? true : undefined));
    chat(juliet, accounts.bare(user), "third");
    await quiet();
    assert.equal(apns.requests.filter((r) => r.token === token).length, 0, "the dead token was never pushed to successfully again");
    await juliet.close();
  });

  test("FCM UNREGISTERED and Web Push 410 remove their devices too", async () => {
    const user = await accounts.account("romeo");
    const juliet = await t.login(await accounts.account("juliet"));
    const fcmToken = `fcm-${randomBytes(12).toString("hex")}`;
    fcm.unregistered.add(fcmToken);
    const fcmNode = await deviceThatLeft(t, user, "fcm", fcmToken);
    const user2 = await accounts.account("romeo");
    const subscription = web.subscribe();
    web.gone.add(subscription.endpoint.split("/").pop()!);
    const webNode = await deviceThatLeft(t, user2, "web", JSON.stringify(subscription));
    chat(juliet, accounts.bare(user), "hello");
    chat(juliet, accounts.bare(user2), "hello");
    const db = t.server.storage.db.withTables<PushTables>() as unknown as Kysely<PushTables>;
    const exists = async (node: string) => (await db.selectFrom("push_devices").select("node").where("node", "=", node).executeTakeFirst()) !== undefined;
    await waitFor(async () => (!(await exists(fcmNode)) && !(await exists(webNode)) ? true : undefined));
    assert.deepEqual(fcm.refusals, []);
    assert.deepEqual(web.refusals, []);
    await juliet.close();
  });

  test("a delivery the service keeps refusing (503) is retried with backoff, then dead-lettered", async () => {
    const user = await accounts.account("romeo");
    const juliet = await t.login(await accounts.account("juliet"));
    const token = hexToken();
    apns.failing.add(token);
    const node = await deviceThatLeft(t, user, "apns", token);
    chat(juliet, accounts.bare(user), "are you there?");
    const queue = appServers.get(APP)!.queue;
    const dead = await waitFor(async () => (await queue.deadLetters()).find((d) => d.payload.node === node));
    assert.equal(dead.attempts, 4, "max_attempts = 4");
    assert.match(dead.error, /503/);
    assert.equal(apns.requests.filter((r) => r.token === token).length, 0);
    apns.failing.delete(token);
    await juliet.close();
  });

  test("a device can be unregistered by its owner only", async () => {
    const user = await accounts.account("romeo");
    const node = await deviceThatLeft(t, user, "apns", hexToken());
    const other = await t.login(await accounts.account("mallory"));
    const refused = await other.iq(xml("iq", { type: "set", to: APP }, xml("unregister", { xmlns: APPSERVER_NS, node })));
    assert.equal(parseStanzaError(refused)?.condition, "item-not-found");
    const owner = await t.login(user);
    assert.equal((await owner.iq(xml("iq", { type: "set", to: APP }, xml("unregister", { xmlns: APPSERVER_NS, node })))).attrs.type, "result");
    const after = await other.iq(xml("iq", { type: "set", to: APP }, buildPublish(node, { messageCount: 1 })));
    assert.equal(parseStanzaError(after)?.condition, "item-not-found");
    await other.close();
    await owner.close();
  });

  test("a publish with the wrong secret is refused with not-authorized; an unknown node with item-not-found", async () => {
    const user = await accounts.account("romeo");
    const token = hexToken();
    const node = await deviceThatLeft(t, user, "apns", token);
    const other = await t.login(await accounts.account("mallory"));
    const wrong = await other.iq(xml("iq", { type: "set", to: APP }, buildPublish(node, { messageCount: 1 }, publishOptionsForm({ secret: "guess" }))));
    assert.equal(parseStanzaError(wrong)?.condition, "not-authorized");
    const unknown = await other.iq(xml("iq", { type: "set", to: APP }, buildPublish("nope", { messageCount: 1 })));
    assert.equal(parseStanzaError(unknown)?.condition, "item-not-found");
    await other.close();
  });

  test("a registration of an unknown type or without a token is a bad request", async () => {
    const c = await t.login(await accounts.account("romeo"));
    const bad = await c.iq(xml("iq", { type: "set", to: APP }, xml("register", { xmlns: APPSERVER_NS, type: "pager", token: "x" })));
    assert.equal(parseStanzaError(bad)?.condition, "bad-request");
    const none = await c.iq(xml("iq", { type: "set", to: APP }, xml("register", { xmlns: APPSERVER_NS, type: "apns" })));
    assert.equal(parseStanzaError(none)?.condition, "bad-request");
    await c.close();
  });
});

describe("with include_sender = false and allow_body = false", () => {
  let t: TestServer;
  const accounts = accountsOn(() => t);
  before(async () => {
    t = await startTestServer({ modules: MODULES, toml: appServerToml({ include_sender: false, allow_body: false }) });
  });
  after(async () => {
    await t.stop();
  });

  test("no registration gets the sender or the body, whatever its publish-options ask", async () => {
    const user = await accounts.account("romeo");
    const juliet = await t.login(await accounts.account("juliet"));
    const apnsToken = hexToken();
    await deviceThatLeft(t, user, "apns", apnsToken, { [INCLUDE_SENDER_FIELD]: "1", [INCLUDE_BODY_FIELD]: "1" });
    const subscription = web.subscribe();
    const user2 = await accounts.account("romeo");
    await deviceThatLeft(t, user2, "web", JSON.stringify(subscription), { [INCLUDE_BODY_FIELD]: "1" });
    chat(juliet, accounts.bare(user), "private matters");
    chat(juliet, accounts.bare(user2), "private matters");
    const a = await waitFor(() => apns.requests.find((r) => r.token === apnsToken));
    assert.deepEqual(a.payload.aps.alert, { title: "New message", body: "New message" });
    assert.equal((a.payload.xmpp as Record<string, string>)["message-count"], "1");
    const id = subscription.endpoint.split("/").pop();
    const w = await waitFor(() => web.requests.find((r) => r.id === id));
    assert.equal(w.payload["last-message-sender"], undefined);
    assert.equal(w.payload["last-message-body"], undefined);
    assert.equal(w.payload["message-count"], "1");
    assert.equal(w.headers.urgency, "high", "still a visible alert");
    assert.deepEqual([...apns.refusals, ...web.refusals], []);
    await juliet.close();
  });
});

describe("with BullMQ on Redis ([redis] url)", () => {
  let t: TestServer;
  const accounts = accountsOn(() => t);
  const prefix = `parley-test-${randomBytes(5).toString("hex")}`;
  before(async () => {
    t = await startTestServer({ modules: MODULES, toml: `[redis]\nurl = "${REDIS_URL}"\n${appServerToml({}, { redis_prefix: prefix })}` });
  });
  after(async () => {
    await t.stop();
    await deleteRedisKeys(REDIS_URL, prefix);
  });

  test("deliveries go through the Redis queue to APNs", async () => {
    const user = await accounts.account("romeo");
    const juliet = await t.login(await accounts.account("juliet"));
    const token = hexToken();
    await deviceThatLeft(t, user, "apns", token);
    chat(juliet, accounts.bare(user), "via redis");
    const req = await waitFor(() => apns.requests.find((r) => r.token === token));
    assert.equal(req.headers["apns-push-type"], "alert");
    const redis = new Redis(REDIS_URL);
    const keys = await redis.keys(`${prefix}:*`);
    redis.disconnect();
    assert.ok(keys.length > 0, "the queue lives in Redis under the configured prefix");
    await juliet.close();
  });
});
