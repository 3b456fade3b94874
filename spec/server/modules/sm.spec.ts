// XEP-0198 Stream Management, end to end: acks, resumption after a dropped TCP connection with
// no loss and no duplicates, and unacknowledged messages handed to offline storage.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { xml, type Element } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import { startTestServer, type TestServer } from "../../support/server.ts";
import { defineModule } from "../../../server/core/module.ts";
import { OFFLINE_EVENT, type OfflineMessageEvent } from "../../../server/modules/message/index.ts";
import roster from "../../../server/modules/roster/index.ts";
import presence from "../../../server/modules/presence/index.ts";
import message from "../../../server/modules/message/index.ts";
import sm from "../../../server/modules/sm/index.ts";
import type { XmppClient } from "../../../conformance/client/client.ts";

/** Stands in for offline storage: records what reaches message/offline. */
const stored: Array<{ to: string; body: string | null }> = [];
const offlineRecorder = defineModule({
  name: "offline-recorder",
  xeps: [],
  setup(m) {
    m.hook<OfflineMessageEvent>(OFFLINE_EVENT, ({ stanza, to }) => {
      stored.push({ to: to.toString(), body: stanza.getChildText("body") });
      return true;
    });
  },
});

let t: TestServer;
before(async () => {
  t = await startTestServer({
    users: ["romeo", "juliet", "nurse"],
    modules: [roster, presence, message, sm, offlineRecorder],
    toml: "[modules.sm]\nresume_timeout_s = 2\nrequest_every = 3\n",
  });
});
after(async () => {
  await t.stop();
});

const isSm = (name: string) => (el: Element) => el.getNS() === NS.sm && el.getName() === name;
const isBody = (body: string) => (el: Element) => el.name === "message" && el.getChildText("body") === body;

async function enable(c: XmppClient, resume = true): Promise<Element> {
  c.send(xml("enable", { xmlns: NS.sm, resume: resume ? "true" : undefined }));
  return c.next(isSm("enabled"));
}

function chat(from: XmppClient, to: string, body: string): void {
  from.send(xml("message", { to, type: "chat" }, xml("body", {}, body)));
}

describe("acknowledgements", () => {
  test("the feature is offered and <r/> is answered with the count of handled stanzas", async () => {
    const c = await t.connect();
    await c.login({ username: "romeo", password: "pass-romeo", noBind: true });
    assert.ok(c.features?.getChild("sm", NS.sm), "sm:3 in the post-auth features");
    await c.bind("ack");
    const enabled = await enable(c, false);
    assert.equal(enabled.attrs.resume, undefined);
    for (let i = 0; i < 4; i++) await c.iq(xml("iq", { type: "get", to: "localhost" }, xml("ping", { xmlns: NS.ping })));
    c.send(xml("r", { xmlns: NS.sm }));
    const a = await c.next(isSm("a"));
    assert.equal(a.attrs.h, "4");
    // The server asks for acks itself once a few stanzas are outstanding.
    const r = await c.next(isSm("r"));
    assert.ok(r);
    c.send(xml("a", { xmlns: NS.sm, h: "4" }));
    await c.close();
  });

  test("acknowledging more than was sent is a stream error", async () => {
    const c = await t.login("romeo", { resource: "liar" });
    await enable(c, false);
    c.send(xml("a", { xmlns: NS.sm, h: "99" }));
    assert.equal((await c.waitClosed())?.condition, "undefined-condition");
  });
});

describe("resumption (XEP-0198 §5)", () => {
  test("after a dropped connection the session resumes: nothing lost, nothing twice, nobody saw it go", async () => {
    const juliet = await t.login("juliet", { resource: "phone" });
    const romeo = await t.login("romeo", { resource: "phone" });
    const enabled = await enable(romeo);
    assert.equal(enabled.attrs.resume, "true");
    const previd = enabled.attrs.id!;
    chat(juliet, "romeo@localhost/phone", "one");
    chat(juliet, "romeo@localhost/phone", "two");
    await romeo.next(isBody("one"));
    await romeo.next(isBody("two"));
    // Romeo acknowledges the first only, then his TCP connection dies without a word.
    romeo.send(xml("a", { xmlns: NS.sm, h: "1" }));
    await new Promise((r) => setTimeout(r, 100));
    romeo.destroy();
    await new Promise((r) => setTimeout(r, 100));
    chat(juliet, "romeo@localhost/phone", "three");
    // The hibernating session still counts as there: no error comes back to Juliet.
    assert.ok(await juliet.nothing((el) => el.attrs.type === "error", 300));

    const again = await t.connect();
    await again.login({ username: "romeo", password: "pass-romeo", noBind: true });
    again.send(xml("resume", { xmlns: NS.sm, previd, h: "1" }));
    const resumed = await again.next(isSm("resumed"));
    assert.equal(resumed.attrs.previd, previd);
    const two = await again.next(isBody("two"));
    const three = await again.next(isBody("three"));
    assert.equal(two.attrs.from, "juliet@localhost/phone");
    assert.equal(three.attrs.to, "romeo@localhost/phone");
    assert.ok(await again.nothing(isBody("one"), 300), "the acknowledged message is not sent again");
    // The resumed stream is the same session: messages to the full JID keep arriving.
    chat(juliet, "romeo@localhost/phone", "four");
    await again.next(isBody("four"));
    await again.close();
    await juliet.close();
  });

  test("an unknown previd fails with item-not-found and the stream can still bind", async () => {
    const c = await t.connect();
    await c.login({ username: "romeo", password: "pass-romeo", noBind: true });
    c.send(xml("resume", { xmlns: NS.sm, previd: "nonsense", h: "0" }));
    const f = await c.next(isSm("failed"));
    assert.ok(f.getChild("item-not-found", NS.stanzas));
    assert.match(await c.bind("after-failed"), /^romeo@localhost\/after-failed$/);
    await c.close();
  });

  test("another account cannot resume someone else's session", async () => {
    const romeo = await t.login("romeo", { resource: "stolen" });
    const previd = (await enable(romeo)).attrs.id!;
    romeo.destroy();
    const nurse = await t.connect();
    await nurse.login({ username: "nurse", password: "pass-nurse", noBind: true });
    nurse.send(xml("resume", { xmlns: NS.sm, previd, h: "0" }));
    assert.ok((await nurse.next(isSm("failed"))).getChild("item-not-found", NS.stanzas));
    await nurse.close();
  });

  test("a session nobody resumes in time hands its unacknowledged messages to offline storage", async () => {
    stored.length = 0;
    const nurse = await t.login("nurse", { resource: "desk" });
    const romeo = await t.login("romeo", { resource: "laptop" });
    await enable(romeo);
    chat(nurse, "romeo@localhost/laptop", "unacked-1");
    await romeo.next(isBody("unacked-1"));
    romeo.destroy();
    await new Promise((r) => setTimeout(r, 100));
    chat(nurse, "romeo@localhost/laptop", "unacked-2");
    // resume_timeout_s = 2: then the session ends and both messages go to offline storage, once each.
    await new Promise((r) => setTimeout(r, 2600));
    assert.deepEqual(stored, [
      { to: "romeo@localhost", body: "unacked-1" },
      { to: "romeo@localhost", body: "unacked-2" },
    ]);
    await nurse.close();
  });
});
