// End-to-end spec for server/modules/muc: XEP-0045 1.34 nickname registration (§7.10) and
// reserved nicks (§7.12), IQs between occupants through the room, multi-session nicks, the
// OMEMO-ready room (members-only, non-anonymous, member list readable by members), and the
// error every role or affiliation gets for what it may not do (§7.2, §8, §9, §10).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { available, fromRoom, joinPresence as mucJoinPresence, joinRoom } from "./muc-helpers.ts";
import { startTestServer, type TestServer } from "../../support/server.ts";
import { assertError } from "../../support/stanzas.ts";
import type { XmppClient } from "../../../conformance/client/client.ts";
import { xml, type Element } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import { buildForm, parseForm, getField } from "../../../protocol/forms.ts";
import { parseStanzaError } from "../../../protocol/errors.ts";
import { statusCodes } from "../../../protocol/muc.ts";
import roster from "../../../server/modules/roster/index.ts";
import presence from "../../../server/modules/presence/index.ts";
import message from "../../../server/modules/message/index.ts";
import disco from "../../../server/modules/disco/index.ts";
import vcard from "../../../server/modules/vcard/index.ts";
import muc from "../../../server/modules/muc/index.ts";

const MUC = "conference.localhost";
let t: TestServer;
let counter = 0;

before(async () => {
  t = await startTestServer({ users: ["romeo", "juliet", "mercutio", "tybalt", "nurse"], modules: [roster, presence, message, disco, vcard, muc] });
});
after(async () => {
  await t.stop();
});

const login = (user: string, resource = "r"): Promise<XmppClient> => available(t, user, resource);

const presenceFrom = (from: string, type?: string) => (el: Element) => el.name === "presence" && el.attrs.from === from && el.attrs.type === type;

const joinPresence = (room: string, nick: string, password?: string): Element => mucJoinPresence(room, nick, { password });

const join = (c: XmppClient, room: string, nick: string, password?: string): Promise<Element[]> => joinRoom(c, room, nick, { password });

async function joinError(c: XmppClient, room: string, nick: string, password?: string): Promise<Element> {
  c.send(joinPresence(room, nick, password));
  return c.next((el) => el.name === "presence" && el.attrs.from === `${room}/${nick}` && el.attrs.type === "error");
}

function configForm(fields: Record<string, string | string[]>): Element {
  return buildForm({
    type: "submit",
    fields: Object.entries(fields).map(([k, v]) => (Array.isArray(v) ? { var: `muc#roomconfig_${k}`, type: "list-multi" as const, values: v } : { var: `muc#roomconfig_${k}`, values: [v] })),
  });
}

async function createRoom(owner: XmppClient, fields: Record<string, string | string[]> = {}, nick = "Owner"): Promise<string> {
  const room = `occ${++counter}@${MUC}`;
  await join(owner, room, nick);
  const r = await owner.iq(xml("iq", { type: "set", to: room }, xml("query", { xmlns: NS.mucOwner }, configForm(fields))));
  assert.equal(r.attrs.type, "result");
  await owner.nothing(fromRoom(room), 50);
  owner.inbox.splice(0);
  return room;
}

function admin(c: XmppClient, room: string, item: Record<string, string>): Promise<Element> {
  return c.iq(xml("iq", { type: "set", to: room }, xml("query", { xmlns: NS.mucAdmin }, xml("item", item))));
}

function adminList(c: XmppClient, room: string, item: Record<string, string>): Promise<Element> {
  return c.iq(xml("iq", { type: "get", to: room }, xml("query", { xmlns: NS.mucAdmin }, xml("item", item))));
}

function registerNick(c: XmppClient, room: string, nick: string): Promise<Element> {
  const form = buildForm({
    type: "submit",
    fields: [
      { var: "FORM_TYPE", type: "hidden", values: [NS.mucRegister] },
      { var: "muc#register_roomnick", values: [nick] },
    ],
  });
  return c.iq(xml("iq", { type: "set", to: room }, xml("query", { xmlns: NS.register }, form)));
}

describe("nickname registration (§7.10, §7.12)", () => {
  test("registering reserves the nick and makes the user a member; others get conflict; the nick is discoverable and can be released", async () => {
    const romeo = await login("romeo");
    const juliet = await login("juliet");
    const mercutio = await login("mercutio");
    const room = await createRoom(romeo);

    const form = await juliet.iq(xml("iq", { type: "get", to: room }, xml("query", { xmlns: NS.register })));
    const fields = parseForm(form.getChild("query", NS.register)!.getChild("x", NS.dataForms)!);
    assert.ok(getField(fields, "muc#register_roomnick"), "the form asks for a nick");

    assert.equal((await registerNick(juliet, room, "Jules")).attrs.type, "result");
    const members = await adminList(romeo, room, { affiliation: "member" });
    assert.deepEqual(members.getChild("query")!.getChildren("item").map((i) => [i.attrs.jid, i.attrs.nick]), [["juliet@localhost", "Jules"]]);
    const again = await juliet.iq(xml("iq", { type: "get", to: room }, xml("query", { xmlns: NS.register })));
    assert.ok(again.getChild("query", NS.register)!.getChild("registered"));
    assert.equal(again.getChild("query", NS.register)!.getChildText("username"), "Jules");

    // §7.12: the user finds its reserved nick; someone without one gets no identity.
    const node = (c: XmppClient) => c.iq(xml("iq", { type: "get", to: room }, xml("query", { xmlns: NS.discoInfo, node: "x-roomuser-item" })));
    assert.equal((await node(juliet)).getChild("query")!.getChild("identity")?.attrs.name, "Jules");
    assert.equal((await node(mercutio)).getChild("query")!.getChild("identity"), undefined);

    assertError(await joinError(mercutio, room, "Jules"), "conflict");
    assertError(await registerNick(mercutio, room, "Jules"), "conflict");
    await join(mercutio, room, "Mercutio");
    await join(juliet, room, "Juliet");
    assertError(await registerNick(juliet, room, "Mercutio"), "conflict", );
    // A nick change into someone's reserved nick is refused too.
    mercutio.send(xml("presence", { to: `${room}/Jules` }));
    assertError(await mercutio.next((el) => el.name === "presence" && el.attrs.type === "error"), "conflict");
    // The owner of the nick may use it.
    juliet.send(xml("presence", { to: `${room}/Jules` }));
    await juliet.next(presenceFrom(`${room}/Jules`));

    const removed = await juliet.iq(xml("iq", { type: "set", to: room }, xml("query", { xmlns: NS.register }, xml("remove"))));
    assert.equal(removed.attrs.type, "result");
    assert.equal((await node(juliet)).getChild("query")!.getChild("identity"), undefined);
    for (const c of [romeo, juliet, mercutio]) await c.close();
  });

  test("registration is refused to outcasts (forbidden) and, in a members-only room, to non-members (not-allowed)", async () => {
    const romeo = await login("romeo");
    const tybalt = await login("tybalt");
    const nurse = await login("nurse");
    const room = await createRoom(romeo);
    assert.equal((await admin(romeo, room, { jid: "tybalt@localhost", affiliation: "outcast" })).attrs.type, "result");
    assertError(await registerNick(tybalt, room, "Tybalt"), "forbidden");
    const closed = await createRoom(romeo, { membersonly: "1" });
    assertError(await registerNick(nurse, closed, "Nurse"), "not-allowed");
    assertError(await nurse.iq(xml("iq", { type: "get", to: closed }, xml("query", { xmlns: NS.register }))), "not-allowed");
    for (const c of [romeo, tybalt, nurse]) await c.close();
  });
});

describe("IQs between occupants and multi-session nicks", () => {
  test("an IQ to an occupant JID reaches the occupant's real JID from the asker's occupant JID; the answer comes back rewritten", async () => {
    const romeo = await login("romeo");
    const juliet = await login("juliet");
    const mercutio = await login("mercutio");
    const room = await createRoom(romeo, {}, "Romeo");
    await join(juliet, room, "Juliet");
    romeo.send(xml("iq", { type: "get", to: `${room}/Juliet`, id: "v1" }, xml("query", { xmlns: NS.version })));
    const request = await juliet.next((el) => el.name === "iq" && el.attrs.type === "get");
    assert.equal(request.attrs.from, `${room}/Romeo`, "the asker's real JID stays hidden");
    assert.equal(request.attrs.to, juliet.jid);
    assert.ok(request.getChild("query", NS.version));
    juliet.send(xml("iq", { type: "result", id: request.attrs.id, to: request.attrs.from }, xml("query", { xmlns: NS.version }, xml("name", {}, "Balcony"))));
    const answer = await romeo.next((el) => el.name === "iq" && el.attrs.id === "v1");
    assert.equal(answer.attrs.type, "result");
    assert.equal(answer.attrs.from, `${room}/Juliet`);
    assert.equal(answer.getChild("query", NS.version)!.getChildText("name"), "Balcony");

    // Errors come back the same way; unknown nicks and non-occupants are refused by the room.
    romeo.send(xml("iq", { type: "get", to: `${room}/Juliet`, id: "v2" }, xml("query", { xmlns: NS.version })));
    const second = await juliet.next((el) => el.name === "iq" && el.attrs.type === "get");
    juliet.send(xml("iq", { type: "error", id: second.attrs.id, to: second.attrs.from }, xml("error", { type: "cancel" }, xml("service-unavailable", { xmlns: NS.stanzas }))));
    assertError(await romeo.next((el) => el.attrs.id === "v2"), "service-unavailable");
    assertError(await romeo.iq(xml("iq", { type: "get", to: `${room}/Nobody` }, xml("query", { xmlns: NS.version }))), "item-not-found");
    // A vCard request goes to the occupant's account (its bare JID), which the server answers.
    const card = await juliet.iq(xml("iq", { type: "set" }, xml("vCard", { xmlns: NS.vcard }, xml("NICKNAME", {}, "Juliet C."))));
    assert.equal(card.attrs.type, "result");
    const fetched = await romeo.iq(xml("iq", { type: "get", to: `${room}/Juliet` }, xml("vCard", { xmlns: NS.vcard })));
    assert.equal(fetched.attrs.from, `${room}/Juliet`);
    assert.equal(fetched.getChild("vCard", NS.vcard)?.getChildText("NICKNAME"), "Juliet C.");
    assert.ok(await juliet.nothing((el) => el.name === "iq" && el.attrs.type === "get", 100), "the client was not asked");
    assertError(await mercutio.iq(xml("iq", { type: "get", to: `${room}/Juliet` }, xml("query", { xmlns: NS.version }))), "not-acceptable");
    for (const c of [romeo, juliet, mercutio]) await c.close();
  });

  test("two resources of one account share one nick: both get presence and messages, self-ping works for both, leaving one keeps the occupant", async () => {
    const romeo = await login("romeo");
    const phone = await login("juliet", "phone");
    const laptop = await login("juliet", "laptop");
    const room = await createRoom(romeo, {}, "Romeo");
    await join(phone, room, "Juliet");
    await romeo.next(presenceFrom(`${room}/Juliet`));
    const second = await join(laptop, room, "Juliet");
    const self = second.find((el) => el.name === "presence" && el.attrs.from === `${room}/Juliet`)!;
    assert.ok(statusCodes(self).includes(110), "the second session gets its self-presence");
    assert.ok(second.some((el) => el.attrs.from === `${room}/Romeo`), "and the room's occupants");
    assert.ok(await romeo.nothing(presenceFrom(`${room}/Juliet`), 100), "others see no new occupant");

    romeo.send(xml("message", { to: room, type: "groupchat", id: "both" }, xml("body", {}, "to both")));
    for (const c of [phone, laptop]) assert.equal((await c.next((el) => el.attrs.id === "both")).attrs.to, c.jid);
    romeo.send(xml("message", { to: `${room}/Juliet`, type: "chat", id: "pm-both" }, xml("body", {}, "psst")));
    for (const c of [phone, laptop]) await c.next((el) => el.attrs.id === "pm-both");
    for (const c of [phone, laptop]) {
      const pong = await c.iq(xml("iq", { type: "get", to: `${room}/Juliet` }, xml("ping", { xmlns: NS.ping })));
      assert.equal(pong.attrs.type, "result");
    }

    laptop.send(xml("presence", { to: `${room}/Juliet`, type: "unavailable" }));
    const gone = await laptop.next(presenceFrom(`${room}/Juliet`, "unavailable"));
    assert.ok(statusCodes(gone).includes(110));
    assert.ok(await romeo.nothing(presenceFrom(`${room}/Juliet`, "unavailable"), 150), "the occupant stays for everyone else");
    assert.equal((await phone.iq(xml("iq", { type: "get", to: `${room}/Juliet` }, xml("ping", { xmlns: NS.ping })))).attrs.type, "result");
    assertError(await laptop.iq(xml("iq", { type: "get", to: `${room}/Juliet` }, xml("ping", { xmlns: NS.ping }))), "not-acceptable");
    // A session that goes away without leaving (RFC 6121 §4.6: its directed presence ends) is
    // removed like one that left; the last one takes the occupant with it.
    const tablet = await login("juliet", "tablet");
    await join(tablet, room, "Juliet");
    tablet.destroy();
    assert.ok(await romeo.nothing(presenceFrom(`${room}/Juliet`, "unavailable"), 200), "the occupant stays while the phone is there");
    phone.destroy();
    await romeo.next(presenceFrom(`${room}/Juliet`, "unavailable"));
    // Another account cannot take a nick in use, even with the same resource name.
    const mercutio = await login("mercutio", "phone");
    await join(mercutio, room, "Mercutio");
    assertError(await joinError(await login("nurse"), room, "Mercutio"), "conflict");
    for (const c of [romeo, phone, laptop, mercutio]) await c.close();
  });
});

describe("voice requests (§7.13)", () => {
  test("a visitor's request reaches every moderator as a form; approving it gives voice; participants cannot approve", async () => {
    const romeo = await login("romeo");
    const juliet = await login("juliet");
    const mercutio = await login("mercutio");
    const room = await createRoom(romeo, { moderatedroom: "1" }, "Romeo");
    await join(juliet, room, "Juliet");
    await join(mercutio, room, "Mercutio");
    assert.equal((await admin(romeo, room, { nick: "Mercutio", role: "participant" })).attrs.type, "result");
    const request = (fields: Array<[string, string]>) =>
      buildForm({ type: "submit", fields: [{ var: "FORM_TYPE", type: "hidden", values: [NS.mucRequest] }, ...fields.map(([v, value]) => ({ var: v, values: [value] }))] });
    juliet.send(xml("message", { to: room, id: "vr" }, request([["muc#role", "participant"]])));
    const asked = await romeo.next((el) => el.name === "message" && el.attrs.from === room && !!el.getChild("x", NS.dataForms));
    const form = parseForm(asked.getChild("x", NS.dataForms)!);
    assert.equal(getField(form, "muc#roomnick")?.values[0], "Juliet");
    assert.equal(getField(form, "muc#jid")?.values[0], "juliet@localhost");
    assert.ok(await mercutio.nothing((el) => el.name === "message" && !!el.getChild("x", NS.dataForms), 100), "only moderators are asked");
    // A participant cannot approve.
    mercutio.send(xml("message", { to: room, id: "vr-no" }, request([["muc#roomnick", "Juliet"], ["muc#request_allow", "true"]])));
    assertError(await mercutio.next((el) => el.attrs.id === "vr-no"), "forbidden");
    romeo.send(xml("message", { to: room, id: "vr-yes" }, request([["muc#role", "participant"], ["muc#roomnick", "Juliet"], ["muc#request_allow", "true"]])));
    const voiced = await juliet.next((el) => el.name === "presence" && el.attrs.from === `${room}/Juliet` && el.getChild("x", NS.mucUser)?.getChild("item")?.attrs.role === "participant");
    assert.ok(statusCodes(voiced).includes(110));
    juliet.send(xml("message", { to: room, type: "groupchat", id: "now-i-speak" }, xml("body", {}, "thanks")));
    assert.equal((await mercutio.next((el) => el.attrs.id === "now-i-speak")).getChildText("body"), "thanks");
    for (const c of [romeo, juliet, mercutio]) await c.close();
  });
});

describe("the OMEMO-ready room (members-only, non-anonymous, member list open to members)", () => {
  test("every member, in the room or not, reads the member, admin and owner lists with real JIDs; real JIDs are shown to all", async () => {
    const romeo = await login("romeo");
    const juliet = await login("juliet");
    const nurse = await login("nurse");
    const mercutio = await login("mercutio");
    const room = await createRoom(romeo, { membersonly: "1", whois: "anyone", persistentroom: "1", publicroom: "0" }, "Romeo");
    for (const [jid, affiliation] of [["juliet@localhost", "member"], ["nurse@localhost", "member"], ["tybalt@localhost", "admin"]]) {
      assert.equal((await admin(romeo, room, { jid, affiliation })).attrs.type, "result");
    }
    // The nurse is a member who never joined: OMEMO clients fetch the lists before joining.
    for (const [list, expected] of [["member", ["juliet@localhost", "nurse@localhost"]], ["admin", ["tybalt@localhost"]], ["owner", ["romeo@localhost"]]] as const) {
      const r = await adminList(nurse, room, { affiliation: list });
      assert.equal(r.attrs.type, "result", list);
      assert.deepEqual(r.getChild("query")!.getChildren("item").map((i) => i.attrs.jid).sort(), [...expected]);
    }
    const seen = await join(juliet, room, "Juliet");
    assert.equal(seen.find((el) => el.attrs.from === `${room}/Romeo`)!.getChild("x", NS.mucUser)!.getChild("item")!.attrs.jid, romeo.jid);
    assert.ok(statusCodes(seen.find((el) => el.attrs.from === `${room}/Juliet`)!).includes(100));
    // Outsiders learn nothing and cannot enter.
    assertError(await adminList(mercutio, room, { affiliation: "member" }), "forbidden");
    assertError(await joinError(mercutio, room, "Mercutio"), "registration-required");
    // An encrypted message is relayed as is to every member.
    const encrypted = xml("encrypted", { xmlns: "eu.siacs.conversations.axolotl" }, xml("header", { sid: "1" }), xml("payload", {}, "AAAA"));
    romeo.send(xml("message", { to: room, type: "groupchat", id: "omemo-1" }, encrypted, xml("store", { xmlns: NS.hints })));
    const got = await juliet.next((el) => el.attrs.id === "omemo-1");
    assert.equal(got.getChild("encrypted", "eu.siacs.conversations.axolotl")!.getChildText("payload"), "AAAA");
    for (const c of [romeo, juliet, nurse, mercutio]) await c.close();
  });
});

describe("what a role or affiliation may not do", () => {
  test("entering: banned forbidden, members-only registration-required, wrong password not-authorized, full service-unavailable, taken nick conflict", async () => {
    const romeo = await login("romeo");
    const juliet = await login("juliet");
    const tybalt = await login("tybalt");
    const mercutio = await login("mercutio");
    const nurse = await login("nurse");
    const banned = await createRoom(romeo);
    await admin(romeo, banned, { jid: "tybalt@localhost", affiliation: "outcast" });
    assertError(await joinError(tybalt, banned, "Tybalt"), "forbidden");
    const members = await createRoom(romeo, { membersonly: "1" });
    assertError(await joinError(juliet, members, "Juliet"), "registration-required");
    const secret = await createRoom(romeo, { passwordprotectedroom: "1", roomsecret: "nightingale" });
    assertError(await joinError(juliet, secret, "Juliet"), "not-authorized");
    assertError(await joinError(juliet, secret, "Juliet", "lark"), "not-authorized");
    await join(juliet, secret, "Juliet", "nightingale");
    const full = await createRoom(romeo, { maxusers: "5" });
    for (const [c, nick] of [[juliet, "J"], [mercutio, "M"], [nurse, "N"], [await login("nurse", "r2"), "N2"]] as const) await join(c, full, nick);
    assertError(await joinError(tybalt, full, "Tybalt"), "service-unavailable");
    assertError(await joinError(await login("tybalt", "r2"), full, "J"), "conflict");
    for (const c of [romeo, juliet, tybalt, mercutio, nurse]) await c.close();
  });

  test("administering: participants, members and admins get forbidden or not-allowed for what is above them", async () => {
    const romeo = await login("romeo");
    const juliet = await login("juliet");
    const mercutio = await login("mercutio");
    const nurse = await login("nurse");
    const room = await createRoom(romeo, {}, "Romeo");
    await admin(romeo, room, { jid: "nurse@localhost", affiliation: "admin" });
    await admin(romeo, room, { jid: "mercutio@localhost", affiliation: "member" });
    await join(juliet, room, "Juliet");
    await join(mercutio, room, "Mercutio");
    await join(nurse, room, "Nurse");
    const owner = (c: XmppClient, payload: Element) => c.iq(xml("iq", { type: "set", to: room }, xml("query", { xmlns: NS.mucOwner }, payload)));
    const cases: Array<[string, Promise<Element>, string]> = [
      // A participant (no affiliation): no kicking, no voice, no bans, no configuration, no destroy, no lists.
      ["participant kicks", admin(juliet, room, { nick: "Mercutio", role: "none" }), "forbidden"],
      ["participant bans", admin(juliet, room, { jid: "mercutio@localhost", affiliation: "outcast" }), "forbidden"],
      ["participant makes a member", admin(juliet, room, { jid: "tybalt@localhost", affiliation: "member" }), "forbidden"],
      ["participant reads the config", juliet.iq(xml("iq", { type: "get", to: room }, xml("query", { xmlns: NS.mucOwner }))), "forbidden"],
      ["participant configures", owner(juliet, configForm({ roomname: "Mine" })), "forbidden"],
      ["participant destroys", owner(juliet, xml("destroy")), "forbidden"],
      ["participant reads the outcast list", adminList(juliet, room, { affiliation: "outcast" }), "forbidden"],
      ["participant reads the moderator list", adminList(juliet, room, { role: "moderator" }), "forbidden"],
      // A member is no better at moderation.
      ["member revokes voice", admin(mercutio, room, { nick: "Juliet", role: "visitor" }), "forbidden"],
      ["member grants moderator", admin(mercutio, room, { nick: "Juliet", role: "moderator" }), "forbidden"],
      // An admin cannot touch owners or make admins, nor kick the owner, nor configure.
      ["admin demotes the owner", admin(nurse, room, { jid: "romeo@localhost", affiliation: "member" }), "not-allowed"],
      ["admin makes an admin", admin(nurse, room, { jid: "juliet@localhost", affiliation: "admin" }), "not-allowed"],
      ["admin kicks the owner", admin(nurse, room, { nick: "Romeo", role: "none" }), "not-allowed"],
      ["admin configures", owner(nurse, configForm({ roomname: "Ours" })), "forbidden"],
      // The last owner cannot give up ownership.
      ["last owner steps down", admin(romeo, room, { jid: "romeo@localhost", affiliation: "admin" }), "conflict"],
    ];
    for (const [what, reply, condition] of cases) {
      const r = await reply;
      assert.equal(r.attrs.type, "error", what);
      assert.equal(parseStanzaError(r)?.condition, condition, what);
    }
    // Visitors in a moderated room may not speak, change the subject, or (when PMs are for participants) send PMs.
    const moderated = await createRoom(romeo, { moderatedroom: "1", allowpm: "participants" }, "Romeo");
    const tybalt = await login("tybalt");
    await join(tybalt, moderated, "Tybalt");
    tybalt.send(xml("message", { to: moderated, type: "groupchat", id: "v-say" }, xml("body", {}, "hello")));
    assertError(await tybalt.next((el) => el.attrs.id === "v-say"), "forbidden");
    tybalt.send(xml("message", { to: moderated, type: "groupchat", id: "v-subj" }, xml("subject", {}, "mine")));
    assertError(await tybalt.next((el) => el.attrs.id === "v-subj"), "forbidden");
    tybalt.send(xml("message", { to: `${moderated}/Romeo`, type: "chat", id: "v-pm" }, xml("body", {}, "psst")));
    assertError(await tybalt.next((el) => el.attrs.id === "v-pm"), "forbidden");
    // Members-only rooms: only admins invite unless the room allows it.
    const closed = await createRoom(romeo, { membersonly: "1" }, "Romeo");
    await admin(romeo, closed, { jid: "mercutio@localhost", affiliation: "member" });
    await join(mercutio, closed, "Mercutio");
    mercutio.send(xml("message", { to: closed, id: "inv" }, xml("x", { xmlns: NS.mucUser }, xml("invite", { to: "tybalt@localhost" }))));
    assertError(await mercutio.next((el) => el.attrs.id === "inv"), "forbidden");
    for (const c of [romeo, juliet, mercutio, nurse, tybalt]) await c.close();
  });
});
