// End-to-end spec for server/modules/muc/archive.ts: senders' real JIDs on a room archive's
// messages (XEP-0313 0.7.5 on a XEP-0045 room): a muc#user <item jid/> for those who may see
// real JIDs (moderators of a semi-anonymous room, everyone in a non-anonymous one), nothing for
// the others, never a sender's forgery, and never in the discussion history sent on join.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { available, fromRoom, joinRoom } from "./muc-helpers.ts";
import { startTestServer, type TestServer } from "../../support/server.ts";
import type { XmppClient } from "../../../conformance/client/client.ts";
import { xml, type Element } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import { buildForm } from "../../../protocol/forms.ts";
import { parseStanzaError } from "../../../protocol/errors.ts";
import { serialize } from "../../../protocol/xml/serialize.ts";
import { stanzaFromText } from "../../../server/core/storage/index.ts";
import { REAL_JID_NS, forReader } from "../../../server/modules/muc/archive.ts";
import roster from "../../../server/modules/roster/index.ts";
import presence from "../../../server/modules/presence/index.ts";
import message from "../../../server/modules/message/index.ts";
import disco from "../../../server/modules/disco/index.ts";
import mam from "../../../server/modules/mam/index.ts";
import muc from "../../../server/modules/muc/index.ts";

const MUC = "conference.localhost";
let t: TestServer;
let counter = 0;

before(async () => {
  t = await startTestServer({ users: ["romeo", "juliet", "mercutio"], modules: [roster, presence, message, disco, mam, muc] });
});
after(async () => {
  await t.stop();
});

const login = (user: string, resource = "r"): Promise<XmppClient> => available(t, user, resource);


const join = (c: XmppClient, room: string, nick: string, history?: Record<string, string>): Promise<Element[]> => joinRoom(c, room, nick, { history });

async function configure(owner: XmppClient, room: string, fields: Record<string, string>): Promise<void> {
  const form = buildForm({ type: "submit", fields: Object.entries(fields).map(([k, v]) => ({ var: `muc#roomconfig_${k}`, values: [v] })) });
  const r = await owner.iq(xml("iq", { type: "set", to: room }, xml("query", { xmlns: NS.mucOwner }, form)));
  assert.equal(r.attrs.type, "result");
}

async function createRoom(owner: XmppClient, fields: Record<string, string> = {}): Promise<string> {
  const room = `jids${++counter}@${MUC}`;
  await join(owner, room, "Owner");
  await configure(owner, room, { enablelogging: "1", ...fields });
  await owner.nothing(fromRoom(room), 50);
  owner.inbox.splice(0);
  return room;
}

async function say(c: XmppClient, room: string, body: string, extra: Element[] = []): Promise<string> {
  const id = `m-${++counter}`;
  c.send(xml("message", { to: room, type: "groupchat", id }, xml("body", {}, body), ...extra));
  await c.next((el) => el.name === "message" && el.attrs.id === id);
  return id;
}

/** The forwarded messages of a whole-archive query, oldest first. */
async function archived(c: XmppClient, room: string): Promise<Element[]> {
  const queryid = `q${++counter}`;
  const iq = await c.iq(xml("iq", { type: "set", to: room }, xml("query", { xmlns: NS.mam, queryid })));
  assert.equal(iq.attrs.type, "result", serialize(iq));
  const out: Element[] = [];
  for (let i = c.inbox.length - 1; i >= 0; i--) {
    const result = c.inbox[i].getChild("result", NS.mam);
    if (result?.attrs.queryid === queryid) {
      c.inbox.splice(i, 1);
      out.unshift(result.getChild("forwarded", NS.forward)!.getChild("message")!);
    }
  }
  return out;
}

/** The real JIDs a forwarded message reveals (muc#user items), and whether Parley's record leaked. */
function revealed(message: Element): string[] {
  assert.equal(message.getChild("real-jid", REAL_JID_NS), undefined, "the storage record never leaves the server");
  return message.getChildren("x", NS.mucUser).flatMap((x) => x.getChildren("item").map((i) => i.attrs.jid ?? ""));
}

describe("real JIDs in a room's archive", () => {
  test("in a semi-anonymous room, moderators (in the room or not) see the sender's full JID; participants, the sender included, see none", async () => {
    const romeo = await login("romeo");
    const juliet = await login("juliet", "balcony");
    const mercutio = await login("mercutio");
    const room = await createRoom(romeo);
    await join(juliet, room, "Juliet");
    await join(mercutio, room, "Mercutio");
    await say(juliet, room, "semi");

    const [forOwner] = await archived(romeo, room);
    assert.equal(forOwner.getChildText("body"), "semi");
    assert.deepEqual(revealed(forOwner), ["juliet@localhost/balcony"]);
    for (const c of [juliet, mercutio]) {
      const [m] = await archived(c, room);
      assert.equal(m.getChildText("body"), "semi");
      assert.deepEqual(revealed(m), [], "no real JID for a participant");
    }

    // The owner out of the room is still its moderator by affiliation.
    romeo.send(xml("presence", { to: `${room}/Owner`, type: "unavailable" }));
    await romeo.next((el) => el.name === "presence" && el.attrs.from === `${room}/Owner` && el.attrs.type === "unavailable");
    assert.deepEqual(revealed((await archived(romeo, room))[0]), ["juliet@localhost/balcony"]);
    // A participant made moderator sees it from then on.
    await join(romeo, room, "Owner");
    const r = await romeo.iq(xml("iq", { type: "set", to: room }, xml("query", { xmlns: NS.mucAdmin }, xml("item", { nick: "Mercutio", role: "moderator" }))));
    assert.equal(r.attrs.type, "result");
    assert.deepEqual(revealed((await archived(mercutio, room))[0]), ["juliet@localhost/balcony"]);
    for (const c of [romeo, juliet, mercutio]) await c.close();
  });

  test("in a non-anonymous room everyone sees them, also on messages from before the room became non-anonymous", async () => {
    const romeo = await login("romeo");
    const juliet = await login("juliet");
    const mercutio = await login("mercutio");
    const room = await createRoom(romeo);
    await join(juliet, room, "Juliet");
    await say(juliet, room, "before");
    await join(mercutio, room, "Mercutio");
    assert.deepEqual(revealed((await archived(mercutio, room))[0]), []);
    await configure(romeo, room, { whois: "anyone" });
    await say(romeo, room, "after");
    const messages = await archived(mercutio, room);
    assert.deepEqual(messages.map((m) => [m.getChildText("body"), revealed(m)]), [
      ["before", ["juliet@localhost/r"]],
      ["after", ["romeo@localhost/r"]],
    ]);
    for (const c of [romeo, juliet, mercutio]) await c.close();
  });

  test("a sender cannot forge one: its muc#user payload and any record of ours are dropped from the message and the archive", async () => {
    const romeo = await login("romeo");
    const juliet = await login("juliet");
    const room = await createRoom(romeo);
    await join(juliet, room, "Juliet");
    const forged = [xml("x", { xmlns: NS.mucUser }, xml("item", { jid: "romeo@localhost/evil" })), xml("real-jid", { xmlns: REAL_JID_NS, jid: "romeo@localhost/evil" })];
    const id = `forge-${++counter}`;
    juliet.send(xml("message", { to: room, type: "groupchat", id }, xml("body", {}, "trust me"), ...forged));
    const live = await romeo.next((el) => el.name === "message" && el.attrs.id === id);
    assert.equal(live.getChild("x", NS.mucUser), undefined);
    assert.equal(live.getChild("real-jid", REAL_JID_NS), undefined);
    const [m] = await archived(romeo, room);
    assert.deepEqual(revealed(m), ["juliet@localhost/r"]);
    for (const c of [romeo, juliet]) await c.close();
  });

  test("discussion history on join carries no real JID, even in a non-anonymous room", async () => {
    const romeo = await login("romeo");
    const juliet = await login("juliet");
    const room = await createRoom(romeo, { whois: "anyone" });
    await say(romeo, room, "history");
    const seen = await join(juliet, room, "Juliet");
    const history = seen.find((el) => el.name === "message" && el.getChildText("body") === "history");
    assert.ok(history, "the history came");
    assert.deepEqual(revealed(history), []);
    for (const c of [romeo, juliet]) await c.close();
  });
});

describe("forReader", () => {
  const stored = (extra: string) => stanzaFromText(`<message xmlns="jabber:client" type="groupchat" from="r@c/n"><body>b</body>${extra}</message>`)!;

  test("turns the record into a muc#user item for those who may see it, and removes it for the others", () => {
    const record = `<real-jid xmlns="${REAL_JID_NS}" jid="a@b/c"/>`;
    assert.equal(serialize(forReader(stored(record), true)), `<message xmlns="jabber:client" type="groupchat" from="r@c/n"><body>b</body><x xmlns="${NS.mucUser}"><item jid="a@b/c"/></x></message>`);
    assert.equal(serialize(forReader(stored(record), false)), `<message xmlns="jabber:client" type="groupchat" from="r@c/n"><body>b</body></message>`);
  });

  test("drops a muc#user payload archived before the record existed, and gives nothing where no record is", () => {
    const old = `<x xmlns="${NS.mucUser}"><item jid="forged@b/c"/></x>`;
    assert.equal(forReader(stored(old), true).getChild("x", NS.mucUser), undefined);
    assert.equal(forReader(stored(""), true).getChild("x", NS.mucUser), undefined);
  });
});
