// End-to-end spec for server/modules/muc: XEP-0045 1.34 unique room names (§10.1.4), a room's
// occupants in its disco#items (§6.5), and XEP-0249 1.2 direct invitations passing through the
// server untouched (they are messages between users, nothing for the room to do).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { available, fromRoom, joinRoom } from "./muc-helpers.ts";
import { startTestServer, type TestServer } from "../../support/server.ts";
import { assertError } from "../../support/stanzas.ts";
import type { XmppClient } from "../../../conformance/client/client.ts";
import { xml, type Element } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import { buildForm } from "../../../protocol/forms.ts";
import { parseStanzaError } from "../../../protocol/errors.ts";
import { statusCodes } from "../../../protocol/muc.ts";
import { serialize } from "../../../protocol/xml/serialize.ts";
import roster from "../../../server/modules/roster/index.ts";
import presence from "../../../server/modules/presence/index.ts";
import message from "../../../server/modules/message/index.ts";
import disco from "../../../server/modules/disco/index.ts";
import muc from "../../../server/modules/muc/index.ts";

const MUC = "conference.localhost";
let t: TestServer;
let counter = 0;

before(async () => {
  t = await startTestServer({ users: ["romeo", "juliet", "mercutio", "tybalt"], modules: [roster, presence, message, disco, muc] });
});
after(async () => {
  await t.stop();
});

const login = (user: string, resource = "r"): Promise<XmppClient> => available(t, user, resource);


const join = (c: XmppClient, room: string, nick: string, password?: string): Promise<Element[]> => joinRoom(c, room, nick, { password });

async function createRoom(owner: XmppClient, fields: Record<string, string> = {}, name = `disco${++counter}`): Promise<string> {
  const room = `${name}@${MUC}`;
  await join(owner, room, "Owner");
  const form = buildForm({ type: "submit", fields: Object.entries(fields).map(([k, v]) => ({ var: `muc#roomconfig_${k}`, values: [v] })) });
  const r = await owner.iq(xml("iq", { type: "set", to: room }, xml("query", { xmlns: NS.mucOwner }, form)));
  assert.equal(r.attrs.type, "result");
  await owner.nothing(fromRoom(room), 50);
  owner.inbox.splice(0);
  return room;
}

async function items(c: XmppClient, room: string): Promise<string[]> {
  const r = await c.iq(xml("iq", { type: "get", to: room }, xml("query", { xmlns: NS.discoItems })));
  assert.equal(r.attrs.type, "result");
  return r.getChild("query", NS.discoItems)!.getChildren("item").map((i) => i.attrs.jid!).sort();
}

function unique(c: XmppClient, type = "get"): Promise<Element> {
  return c.iq(xml("iq", { type, to: MUC }, xml("unique", { xmlns: NS.mucUnique })));
}

describe("unique room names (§10.1.4)", () => {
  test("the service advertises muc#unique and gives a different, unused name each time; entering it creates a room (201)", async () => {
    const romeo = await login("romeo");
    const info = await romeo.iq(xml("iq", { type: "get", to: MUC }, xml("query", { xmlns: NS.discoInfo })));
    const features = info.getChild("query", NS.discoInfo)!.getChildren("feature").map((f) => f.attrs.var);
    assert.ok(features.includes(NS.mucUnique), "muc#unique is advertised");

    const names = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const r = await unique(romeo);
      assert.equal(r.attrs.type, "result");
      assert.equal(r.attrs.from, MUC);
      const name = r.getChild("unique", NS.mucUnique)!.getText();
      assert.match(name, /^[0-9a-f]{32}$/);
      names.add(name);
    }
    assert.equal(names.size, 5, "every answer is a new name");

    const [name] = names;
    romeo.send(xml("presence", { to: `${name}@${MUC}/Romeo` }, xml("x", { xmlns: NS.muc })));
    const self = await romeo.next((el) => el.name === "presence" && el.attrs.from === `${name}@${MUC}/Romeo`);
    assert.deepEqual(statusCodes(self).filter((c) => c === 110 || c === 201), [110, 201]);
    await romeo.close();
  });

  test("only a get is understood: a set of <unique/> is refused, and a room JID does not answer it", async () => {
    const romeo = await login("romeo");
    assertError(await unique(romeo, "set"), "service-unavailable");
    const room = await createRoom(romeo);
    assertError(await romeo.iq(xml("iq", { type: "get", to: room }, xml("unique", { xmlns: NS.mucUnique }))), "service-unavailable");
    await romeo.close();
  });
});

describe("occupants in a room's disco#items (§6.5)", () => {
  test("a public, open room lists its occupants to anyone, as room@service/nick without affiliation or role", async () => {
    const romeo = await login("romeo");
    const juliet = await login("juliet");
    const mercutio = await login("mercutio");
    const room = await createRoom(romeo, { publicroom: "1" });
    await join(juliet, room, "Juliet");
    const r = await mercutio.iq(xml("iq", { type: "get", to: room }, xml("query", { xmlns: NS.discoItems })));
    const listed = r.getChild("query", NS.discoItems)!.getChildren("item");
    assert.deepEqual(listed.map((i) => i.attrs.jid).sort(), [`${room}/Juliet`, `${room}/Owner`]);
    for (const item of listed) assert.deepEqual(Object.keys(item.attrs), ["jid"], serialize(item));
    // Leaving takes the occupant off the list.
    juliet.send(xml("presence", { to: `${room}/Juliet`, type: "unavailable" }));
    await juliet.next((el) => el.name === "presence" && el.attrs.type === "unavailable" && el.attrs.from === `${room}/Juliet`);
    assert.deepEqual(await items(mercutio, room), [`${room}/Owner`]);
    for (const c of [romeo, juliet, mercutio]) await c.close();
  });

  test("a hidden room lists nobody, not even to its occupants", async () => {
    const romeo = await login("romeo");
    const juliet = await login("juliet");
    const room = await createRoom(romeo, { publicroom: "0" });
    await join(juliet, room, "Juliet");
    assert.deepEqual(await items(juliet, room), []);
    assert.deepEqual(await items(romeo, room), []);
    for (const c of [romeo, juliet]) await c.close();
  });

  test("a members-only or password-protected public room lists its occupants to occupants only", async () => {
    const romeo = await login("romeo");
    const juliet = await login("juliet");
    const mercutio = await login("mercutio");
    const membersOnly = await createRoom(romeo, { publicroom: "1", membersonly: "1" });
    const admin = await romeo.iq(xml("iq", { type: "set", to: membersOnly }, xml("query", { xmlns: NS.mucAdmin }, xml("item", { affiliation: "member", jid: "juliet@localhost" }))));
    assert.equal(admin.attrs.type, "result");
    await join(juliet, membersOnly, "Juliet");
    assert.deepEqual(await items(mercutio, membersOnly), [], "an outsider sees nobody");
    assert.deepEqual(await items(juliet, membersOnly), [`${membersOnly}/Juliet`, `${membersOnly}/Owner`]);

    const secret = await createRoom(romeo, { publicroom: "1", passwordprotectedroom: "1", roomsecret: "s3cret" });
    await join(juliet, secret, "Juliet", "s3cret");
    assert.deepEqual(await items(mercutio, secret), []);
    assert.deepEqual(await items(juliet, secret), [`${secret}/Juliet`, `${secret}/Owner`]);
    for (const c of [romeo, juliet, mercutio]) await c.close();
  });

  test("an outcast sees nobody, and a node is item-not-found", async () => {
    const romeo = await login("romeo");
    const tybalt = await login("tybalt");
    const room = await createRoom(romeo, { publicroom: "1" });
    const ban = await romeo.iq(xml("iq", { type: "set", to: room }, xml("query", { xmlns: NS.mucAdmin }, xml("item", { affiliation: "outcast", jid: "tybalt@localhost" }))));
    assert.equal(ban.attrs.type, "result");
    assert.deepEqual(await items(tybalt, room), []);
    assertError(await romeo.iq(xml("iq", { type: "get", to: room }, xml("query", { xmlns: NS.discoItems, node: "x" }))), "item-not-found");
    for (const c of [romeo, tybalt]) await c.close();
  });
});

describe("direct invitations (XEP-0249)", () => {
  test("an invitation reaches the invitee as sent, attributes and all, and the room is not involved", async () => {
    const romeo = await login("romeo");
    const juliet = await login("juliet");
    const room = await createRoom(romeo, { passwordprotectedroom: "1", roomsecret: "pw" });
    await juliet.nothing(() => false, 50);
    juliet.inbox.splice(0);
    const attrs = { xmlns: NS.conferenceInvite, jid: room, password: "pw", reason: "come in", continue: "true", thread: "t-1" };
    romeo.send(xml("message", { to: "juliet@localhost", id: "inv-1" }, xml("x", attrs), xml("body", {}, `join ${room}`)));
    const got = await juliet.next((el) => el.name === "message" && el.attrs.id === "inv-1");
    assert.equal(got.attrs.from, "romeo@localhost/r");
    const x = got.getChild("x", NS.conferenceInvite)!;
    for (const [k, v] of Object.entries(attrs)) if (k !== "xmlns") assert.equal(x.attrs[k], v, k);
    assert.equal(got.getChildText("body"), `join ${room}`);
    // The room sent nothing about it to anyone.
    assert.ok(await romeo.nothing(fromRoom(room), 200));
    await join(juliet, room, "Juliet", x.attrs.password);
    for (const c of [romeo, juliet]) await c.close();
  });
});
