// XEP-0357 across federation: a user of pa.localhost enables push with the app server of
// another server (push.pb.localhost, Parley's own app server there), as Conversations and Monal
// users do with their vendors' app servers. Her server publishes the notification over s2s
// (127.0.0.81-82, static routes, no DNS), the remote app server maps the node to the device
// token and delivers through the fake APNs; when APNs says the token is gone, the app server
// answers the next publish with an error and her server drops the registration.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { xml } from "../../../protocol/xml/element.ts";
import { parseJid } from "../../../protocol/jid.ts";
import { INCLUDE_BODY_FIELD, buildEnable, publishOptionsForm } from "../../../protocol/push.ts";
import type { TestServer } from "../../support/server.ts";
import { accountsOn } from "../../support/accounts.ts";
import { startFakePushServices, type FakeApns, type FakeFcm, type FakeWebPush, appServerToml } from "../../support/fake-push.ts";
import { TestRoutes, startFederated } from "../transports/s2s-support.ts";
import { APPSERVER_NS } from "../../../server/modules/push-appserver/index.ts";
import { RegistrationStore } from "../../../server/modules/push/index.ts";
import type { PushTables } from "../../../server/modules/push/tables.ts";
import type { Kysely } from "kysely";
import { waitFor } from "../../support/wait.ts";

const A = "pa.localhost";
const B = "pb.localhost";
const APP = `push.${B}`;

const routes = new TestRoutes();
let a: TestServer;
let b: TestServer;
let apns: FakeApns;
let fcm: FakeFcm;
let web: FakeWebPush;
let dir: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "parley-push-s2s-"));
  ({ apns, fcm, web } = await startFakePushServices());
  a = await startFederated(routes, { domain: A, address: "127.0.0.81", toml: "\n[modules.push]\ncoalesce_ms = 300\n" });
  b = await startFederated(routes, { domain: B, address: "127.0.0.82", toml: `\n${appServerToml(dir, { apns, fcm, web }, { register_remote: true })}` });
});
after(async () => {
  await a?.stop();
  await b?.stop();
  await Promise.all([apns?.stop(), fcm?.stop(), web?.stop()]);
  rmSync(dir, { recursive: true, force: true });
});
const onA = accountsOn(() => a);


/** Registers a phone of `user` (on A) with the app server on B, enables push, and leaves. */
async function remoteDeviceThatLeft(user: string, token: string): Promise<string> {
  const phone = await a.login(user, { resource: "phone" });
  const answer = await phone.iq(xml("iq", { type: "set", to: APP }, xml("register", { xmlns: APPSERVER_NS, type: "apns", token })));
  assert.equal(answer.attrs.type, "result", `registration across s2s: ${answer.toString()}`);
  const { node, secret, jid } = answer.getChild("registered", APPSERVER_NS)!.attrs;
  assert.equal(jid, APP);
  const enabled = await phone.iq(
    xml("iq", { type: "set" }, buildEnable({ jid: parseJid(APP), node: node!, publishOptions: publishOptionsForm({ secret: secret!, [INCLUDE_BODY_FIELD]: "1" }) })),
  );
  assert.equal(enabled.attrs.type, "result");
  const phoneJid = parseJid(phone.jid!);
  await phone.close();
  await waitFor(() => (a.server.sessions.get(phoneJid) ? undefined : true));
  return node!;
}

describe("push through a remote app server (XEP-0357 over s2s)", () => {
  test("a message to the offline user becomes one APNs push from the other server's app server", async () => {
    const user = await onA.account("romeo");
    const sender = await a.login(await onA.account("juliet"));
    const token = randomBytes(32).toString("hex");
    await remoteDeviceThatLeft(user, token);
    sender.send(xml("message", { to: onA.bare(user), type: "chat" }, xml("body", {}, "over the wall")));
    sender.send(xml("message", { to: onA.bare(user), type: "chat" }, xml("body", {}, "and back")));
    const req = await waitFor(() => apns.requests.find((r) => r.token === token));
    await new Promise((r) => setTimeout(r, 800));
    assert.equal(apns.requests.filter((r) => r.token === token).length, 1, "one push for the burst");
    assert.equal(req.headers["apns-push-type"], "alert");
    assert.deepEqual(req.payload.aps.alert, { title: sender.jid, body: "and back" });
    assert.equal((req.payload.xmpp as Record<string, string>)["message-count"], "2");
    assert.deepEqual(apns.refusals, []);
    await sender.close();
  });

  test("a token APNs reports gone: the app server refuses the next publish and the user's server forgets the registration", async () => {
    const user = await onA.account("mercutio");
    const sender = await a.login(await onA.account("tybalt"));
    const token = randomBytes(32).toString("hex");
    const node = await remoteDeviceThatLeft(user, token);
    apns.unregistered.add(token);
    sender.send(xml("message", { to: onA.bare(user), type: "chat" }, xml("body", {}, "first")));
    // The app server on B removes the device once APNs has answered 410.
    const devices = b.server.storage.db.withTables<PushTables>() as unknown as Kysely<PushTables>;
    await waitFor(async () => ((await devices.selectFrom("push_devices").select("node").where("node", "=", node).executeTakeFirst()) ? undefined : true));
    // The next publish is answered with item-not-found over s2s, and A drops the registration
    // (XEP-0357 §7). A fresh store each time: a store caches what it read.
    await new Promise((r) => setTimeout(r, 800));
    sender.send(xml("message", { to: onA.bare(user), type: "chat" }, xml("body", {}, "second")));
    const account = parseJid(onA.bare(user));
    await waitFor(async () => ((await new RegistrationStore(a.server.storage).list(account)).some((r) => r.node === node) ? undefined : true), 15_000);
    assert.equal(apns.requests.filter((r) => r.token === token).length, 0, "the dead token was never pushed to successfully");
    await sender.close();
  });
});
