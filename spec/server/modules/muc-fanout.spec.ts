// End-to-end spec for server/modules/muc: XEP-0045 §7.4 broadcast to a room of 200 occupants.
// Every occupant gets the message exactly once, from room/nick, and the room archives it once. How long the fan-out took and
// the longest event-loop stall during it are reported as diagnostics (not asserted: timings
// depend on the machine).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { startTestServer, type TestServer } from "../../support/server.ts";
import type { XmppClient } from "../../../conformance/client/client.ts";
import { xml } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import roster from "../../../server/modules/roster/index.ts";
import presence from "../../../server/modules/presence/index.ts";
import message from "../../../server/modules/message/index.ts";
import disco from "../../../server/modules/disco/index.ts";
import muc from "../../../server/modules/muc/index.ts";

const OCCUPANTS = 200;
const ROOM = "crowd@conference.localhost";
let t: TestServer;

before(async () => {
  t = await startTestServer({ users: ["host", "guest"], modules: [roster, presence, message, disco, muc] });
});
after(async () => {
  await t.stop();
});

test(`a message to a room of ${OCCUPANTS} occupants reaches each of them once`, { timeout: 60_000 }, async (ctx) => {
  const clients: XmppClient[] = [];
  const owner = await t.login("host", { resource: "owner" });
  clients.push(owner);
  owner.send(xml("presence", { to: `${ROOM}/owner` }, xml("x", { xmlns: NS.muc })));
  await owner.next((el) => el.name === "message" && el.attrs.from?.startsWith(ROOM) === true && !!el.getChild("subject"));
  await owner.iq(xml("iq", { type: "set", to: ROOM }, xml("query", { xmlns: NS.mucOwner }, xml("x", { xmlns: NS.dataForms, type: "submit" }))));
  for (let i = 1; i < OCCUPANTS; i++) {
    const c = await t.login("guest", { resource: `g${i}` });
    c.send(xml("presence", { to: `${ROOM}/guest${i}` }, xml("x", { xmlns: NS.muc, }, xml("history", { maxstanzas: "0" }))));
    await c.next((el) => el.name === "message" && !!el.getChild("subject"), 20_000);
    clients.push(c);
  }
  for (const c of clients) c.inbox.splice(0);

  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const started = performance.now();
  owner.send(xml("message", { to: ROOM, type: "groupchat", id: "fanout" }, xml("body", {}, "hello crowd")));
  const received = await Promise.all(clients.map((c) => c.next((el) => el.attrs.id === "fanout", 20_000)));
  const elapsed = performance.now() - started;
  delay.disable();
  for (const el of received) assert.equal(el.attrs.from, `${ROOM}/owner`);
  for (const c of clients) assert.ok(await c.nothing((el) => el.attrs.id === "fanout", 1), "no duplicate");
  // Archived once for the room, and every occupant got the same stanza-id (XEP-0313 on the room).
  await t.server.storage.writer.sync();
  assert.equal(await t.server.storage.archive.count("conference.localhost", "crowd"), 1);
  const ids = new Set(received.map((el) => el.getChild("stanza-id", NS.sid)?.attrs.id));
  assert.equal(ids.size, 1);
  assert.ok(!ids.has(undefined));
  ctx.diagnostic(`fan-out to ${OCCUPANTS}: ${elapsed.toFixed(1)} ms until the last client had it; longest event-loop stall ${(delay.max / 1e6).toFixed(1)} ms`);
  for (const c of clients) c.destroy();
});
