// Interop, RFC 6120 §7.7.2.2 (a resource bound twice): Parley lets the new session win and ends
// the old one with the <conflict/> stream error. Observed through @xmpp/client's "error" and
// status events, and through slixmpp's stream_error event.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { dirname } from "node:path";
import { startTestServer, type TestServer } from "../support/server.ts";
import { Slix, slixmppAvailable, writeCaFile } from "./support/slixmpp.ts";
import { Xjs, xml } from "./support/xmppjs.ts";

let t: TestServer;
let caFile: string;
before(async () => {
  t = await startTestServer({ users: ["dave", "erin"] });
  caFile = writeCaFile(t);
});
after(async () => {
  await t?.stop();
  if (caFile) rmSync(dirname(caFile), { recursive: true, force: true });
});

const ping = xml("ping", { xmlns: "urn:xmpp:ping" });

describe("a second session with the same resource", () => {
  test("@xmpp/client: the first session is closed with <conflict/>, the second works", async () => {
    const first = await Xjs.online(t, "dave", { resource: "phone" });
    const second = Xjs.create(t, "dave", { resource: "phone" });
    try {
      assert.equal(await second.start(), "dave@localhost/phone");
      const error = await first.waitFor(() => first.errors.find((e) => e.condition === "conflict"), "the conflict stream error");
      assert.equal(error.name, "StreamError");
      await first.waitFor(() => (first.client.status === "disconnect" || first.client.status === "offline" ? true : undefined), "the first stream to end");

      const pong = await second.iq("get", "localhost", ping);
      assert.equal(pong.attrs.type, "result");
      // Messages to the full JID reach the session that holds it now.
      await second.send(xml("message", { to: "dave@localhost/phone", type: "chat" }, xml("body", {}, "to myself")));
      await second.waitForStanza((el) => el.is("message") && el.getChildText("body") === "to myself", "the message to the resource");
      assert.equal(first.seen((el) => el.is("message")).length, 0);
    } finally {
      await first.stop();
      await second.stop();
    }
  });

  test("slixmpp replaced by @xmpp/client: slixmpp reports the conflict stream error and disconnects", { skip: !slixmppAvailable && "no slixmpp" }, async () => {
    const slix = await Slix.online(t, caFile, "erin@localhost/laptop");
    const x = Xjs.create(t, "erin", { resource: "laptop" });
    try {
      assert.equal(await x.start(), "erin@localhost/laptop");
      await slix.waitFor((e) => e.event === "stream_error" && e.condition === "conflict", "the conflict stream error");
      await slix.waitFor((e) => e.event === "disconnected", "the disconnection");
      const pong = await x.iq("get", "localhost", ping);
      assert.equal(pong.attrs.type, "result");
    } finally {
      await slix.stop();
      await x.stop();
    }
  });
});
