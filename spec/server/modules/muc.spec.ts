// End-to-end specs for server/modules/muc: XEP-0045 Multi-User Chat 1.34 (joining, creating,
// speaking, nick changes, private messages, roles, affiliations, configuration, destruction),
// XEP-0421 occupant ids and XEP-0410 self-pings, as real clients see them.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { available, fromRoom, joinPresence, joinRoom } from "./muc-helpers.ts";
import { startTestServer, type TestServer } from "../../support/server.ts";
import { assertError } from "../../support/stanzas.ts";
import type { XmppClient } from "../../../conformance/client/client.ts";
import { xml, type Element } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import { buildForm, parseForm, getValue } from "../../../protocol/forms.ts";
import { parseStanzaError } from "../../../protocol/errors.ts";
import { statusCodes } from "../../../protocol/muc.ts";
import roster from "../../../server/modules/roster/index.ts";
import presence from "../../../server/modules/presence/index.ts";
import message from "../../../server/modules/message/index.ts";
import disco from "../../../server/modules/disco/index.ts";
import muc from "../../../server/modules/muc/index.ts";

const MUC = "conference.localhost";
let t: TestServer;
let roomCounter = 0;

before(async () => {
  t = await startTestServer({ users: ["romeo", "juliet", "mercutio", "tybalt", "nurse"], modules: [roster, presence, message, disco, muc] });
});
after(async () => {
  await t.stop();
});

function newRoom(): string {
  return `room${++roomCounter}@${MUC}`;
}

function item(el: Element): Element | undefined {
  return el.getChild("x", NS.mucUser)?.getChild("item");
}

const isFromRoom = fromRoom;

const login = (user: string, resource = "r"): Promise<XmppClient> => available(t, user, resource);


/** Joins and returns every stanza from the room up to and including the subject, in order. */
const join = joinRoom;

async function joinError(c: XmppClient, room: string, nick: string, opts: Parameters<typeof joinPresence>[2] = {}): Promise<Element> {
  c.send(joinPresence(room, nick, opts));
  return c.next((el) => el.name === "presence" && el.attrs.from === `${room}/${nick}` && el.attrs.type === "error");
}

function submit(fields: Record<string, string | string[]>): Element {
  return buildForm({
    type: "submit",
    fields: [
      { var: "FORM_TYPE", values: [NS.mucRoomConfig] },
      // Clients echo the form's field types; a multi-valued field needs its type to parse.
      ...Object.entries(fields).map(([name, v]) => (Array.isArray(v) ? { var: `muc#roomconfig_${name}`, type: "list-multi" as const, values: v } : { var: `muc#roomconfig_${name}`, values: [v] })),
    ],
  });
}

async function configure(c: XmppClient, room: string, fields: Record<string, string | string[]>): Promise<Element> {
  return c.iq(xml("iq", { type: "set", to: room }, xml("query", { xmlns: NS.mucOwner }, submit(fields))));
}

/** Creates a room owned by `owner` (joined as `nick`) with the given configuration. */
async function createRoom(owner: XmppClient, nick: string, fields: Record<string, string | string[]> = {}): Promise<string> {
  const room = newRoom();
  await join(owner, room, nick);
  const r = await configure(owner, room, fields);
  assert.equal(r.attrs.type, "result");
  await owner.nothing(isFromRoom(room), 50);
  owner.inbox.splice(0);
  return room;
}

async function admin(c: XmppClient, room: string, items: Record<string, string>[]): Promise<Element> {
  return c.iq(xml("iq", { type: "set", to: room }, xml("query", { xmlns: NS.mucAdmin }, ...items.map((i) => xml("item", i)))));
}

function presenceFrom(from: string, type?: string) {
  return (el: Element) => el.name === "presence" && el.attrs.from === from && el.attrs.type === type;
}

describe("creating and joining (§7.2, §10.1)", () => {
  test("the first occupant creates a locked room as its owner, and an empty form unlocks it", async () => {
    const romeo = await login("romeo");
    const juliet = await login("juliet");
    const room = newRoom();
    const seen = await join(romeo, room, "Romeo");
    const self = seen.find((el) => el.name === "presence")!;
    // 170: rooms are logged (archived for history and MAM) unless configured otherwise.
    assert.deepEqual(statusCodes(self).sort(), [110, 170, 201]);
    assert.equal(item(self)?.attrs.affiliation, "owner");
    assert.equal(item(self)?.attrs.role, "moderator");
    assert.ok(self.getChild("occupant-id", NS.occupantId)?.attrs.id);
    assert.equal(seen.at(-1)!.getChildText("subject"), "", "an empty subject is still sent");

    // §10.1.1: nobody else enters until the owner has configured it.
    assertError(await joinError(juliet, room, "Juliet"), "item-not-found");

    const accepted = await romeo.iq(xml("iq", { type: "set", to: room }, xml("query", { xmlns: NS.mucOwner }, xml("x", { xmlns: NS.dataForms, type: "submit" }))));
    assert.equal(accepted.attrs.type, "result");
    const joined = await join(juliet, room, "Juliet");
    assert.equal(joined[0].attrs.from, `${room}/Romeo`);
    assert.equal(item(joined[0])?.attrs.affiliation, "owner");
    assert.equal(item(joined[0])?.attrs.jid, undefined, "a semi-anonymous room hides real JIDs from participants");
    const julietSelf = joined[1];
    assert.equal(julietSelf.attrs.from, `${room}/Juliet`);
    assert.deepEqual(statusCodes(julietSelf), [110, 170]);
    assert.equal(item(julietSelf)?.attrs.role, "participant");
    const arrival = await romeo.next(presenceFrom(`${room}/Juliet`));
    assert.equal(item(arrival)?.attrs.jid, `${juliet.jid}`, "moderators see real JIDs");
    await romeo.close();
    await juliet.close();
  });

  test("order on join: occupants, self-presence, history (with delay, limited), subject last", async () => {
    const romeo = await login("romeo");
    const room = await createRoom(romeo, "Romeo");
    romeo.send(xml("message", { to: room, type: "groupchat" }, xml("subject", {}, "Verona")));
    await romeo.next((el) => el.name === "message" && el.getChildText("subject") === "Verona");
    for (const n of [1, 2, 3]) {
      romeo.send(xml("message", { to: room, type: "groupchat", id: `h${n}` }, xml("body", {}, `line ${n}`)));
      await romeo.next((el) => el.attrs.id === `h${n}`);
    }
    const juliet = await login("juliet");
    const seen = await join(juliet, room, "Juliet", { history: { maxstanzas: "2" }, id: "join-1" });
    assert.deepEqual(seen.map((el) => `${el.name} ${el.attrs.from}`), [
      `presence ${room}/Romeo`,
      `presence ${room}/Juliet`,
      `message ${room}/Romeo`,
      `message ${room}/Romeo`,
      `message ${room}/Romeo`,
    ]);
    assert.equal(seen[1].attrs.id, "join-1", "the self-presence reflects the join's id");
    assert.deepEqual(seen.slice(2, 4).map((el) => el.getChildText("body")), ["line 2", "line 3"]);
    assert.equal(seen[2].getChild("delay", NS.delay)?.attrs.from, room);
    assert.equal(seen[4].getChildText("subject"), "Verona");

    const mercutio = await login("mercutio");
    const none = await join(mercutio, room, "Mercutio", { history: { maxchars: "0" } });
    assert.equal(none.filter((el) => el.getChild("body")).length, 0, "maxchars=0 sends no history");
    const tybalt = await login("tybalt");
    const future = new Date(Date.now() + 60_000).toISOString().replace(/\.\d+Z$/, "Z");
    const since = await join(tybalt, room, "Tybalt", { history: { since: future } });
    assert.equal(since.filter((el) => el.getChild("body")).length, 0, "nothing is newer than 'since'");
    for (const c of [romeo, juliet, mercutio, tybalt]) await c.close();
  });

  test("a nick in use is a conflict, and a join without a nick is jid-malformed", async () => {
    const romeo = await login("romeo");
    const juliet = await login("juliet");
    const room = await createRoom(romeo, "Romeo");
    assertError(await joinError(juliet, room, "Romeo"), "conflict");
    juliet.send(xml("presence", { to: room }, xml("x", { xmlns: NS.muc })));
    const err = await juliet.next((el) => el.name === "presence" && el.attrs.type === "error" && el.attrs.from === room);
    assertError(err, "jid-malformed");
    await romeo.close();
    await juliet.close();
  });
});

describe("speaking, private messages, nick changes, leaving (§7.4-§7.6, §7.14)", () => {
  test("a groupchat message reaches every occupant from room/nick with an occupant-id; a PM goes to one", async () => {
    const romeo = await login("romeo");
    const juliet = await login("juliet");
    const room = await createRoom(romeo, "Romeo");
    await join(juliet, room, "Juliet");
    await romeo.next(presenceFrom(`${room}/Juliet`));
    juliet.send(xml("message", { to: room, type: "groupchat", id: "g1" }, xml("body", {}, "hello all"), xml("occupant-id", { xmlns: NS.occupantId, id: "forged" })));
    for (const c of [romeo, juliet]) {
      const got = await c.next((el) => el.attrs.id === "g1");
      assert.equal(got.attrs.from, `${room}/Juliet`);
      assert.equal(got.attrs.type, "groupchat");
      const ids = got.getChildren("occupant-id", NS.occupantId);
      assert.equal(ids.length, 1);
      assert.notEqual(ids[0].attrs.id, "forged", "a sender cannot forge its occupant-id");
    }
    romeo.send(xml("message", { to: `${room}/Juliet`, type: "chat", id: "pm1" }, xml("body", {}, "psst")));
    const pm = await juliet.next((el) => el.attrs.id === "pm1");
    assert.equal(pm.attrs.from, `${room}/Romeo`);
    assert.equal(pm.attrs.to, juliet.jid);
    assert.ok(pm.getChild("x", NS.mucUser));
    assert.ok(await romeo.nothing((el) => el.attrs.id === "pm1", 100));
    romeo.send(xml("message", { to: `${room}/Nobody`, type: "chat", id: "pm2" }, xml("body", {}, "?")));
    assertError(await romeo.next((el) => el.attrs.id === "pm2"), "item-not-found");
    const mercutio = await login("mercutio");
    mercutio.send(xml("message", { to: room, type: "groupchat", id: "g2" }, xml("body", {}, "from outside")));
    assertError(await mercutio.next((el) => el.attrs.id === "g2"), "not-acceptable");
    for (const c of [romeo, juliet, mercutio]) await c.close();
  });

  test("a nick change is 303 from the old nick then presence from the new one; leaving is unavailable with 110", async () => {
    const romeo = await login("romeo");
    const juliet = await login("juliet");
    const room = await createRoom(romeo, "Romeo");
    await join(juliet, room, "Juliet");
    await romeo.next(presenceFrom(`${room}/Juliet`));
    juliet.send(xml("presence", { to: `${room}/Jules` }));
    const gone = await romeo.next(presenceFrom(`${room}/Juliet`, "unavailable"));
    assert.deepEqual(statusCodes(gone), [303]);
    assert.equal(item(gone)?.attrs.nick, "Jules");
    await romeo.next(presenceFrom(`${room}/Jules`));
    const selfGone = await juliet.next(presenceFrom(`${room}/Juliet`, "unavailable"));
    assert.deepEqual(statusCodes(selfGone), [110, 303]);
    assert.deepEqual(statusCodes(await juliet.next(presenceFrom(`${room}/Jules`))), [110]);
    assertError(await (async () => {
      juliet.send(xml("presence", { to: `${room}/Romeo` }));
      return juliet.next((el) => el.attrs.type === "error" && el.attrs.from === `${room}/Romeo`);
    })(), "conflict");

    juliet.send(xml("presence", { to: `${room}/Jules`, type: "unavailable" }, xml("status", {}, "bye")));
    const left = await romeo.next(presenceFrom(`${room}/Jules`, "unavailable"));
    assert.equal(left.getChildText("status"), "bye");
    assert.equal(item(left)?.attrs.role, "none");
    assert.deepEqual(statusCodes(await juliet.next(presenceFrom(`${room}/Jules`, "unavailable"))), [110]);
    // A client that disconnects leaves too (its server sends unavailable to where it sent presence).
    const mercutio = await login("mercutio");
    await join(mercutio, room, "Mercutio");
    await romeo.next(presenceFrom(`${room}/Mercutio`));
    mercutio.destroy();
    await romeo.next(presenceFrom(`${room}/Mercutio`, "unavailable"));
    await romeo.close();
    await juliet.close();
  });

  test("subject: participants may not change it unless the room allows; moderators may", async () => {
    const romeo = await login("romeo");
    const juliet = await login("juliet");
    const room = await createRoom(romeo, "Romeo", { changesubject: "0" });
    await join(juliet, room, "Juliet");
    juliet.send(xml("message", { to: room, type: "groupchat", id: "s1" }, xml("subject", {}, "mine")));
    assertError(await juliet.next((el) => el.attrs.id === "s1"), "forbidden");
    assert.equal((await configure(romeo, room, { changesubject: "1" })).attrs.type, "result");
    juliet.send(xml("message", { to: room, type: "groupchat", id: "s2" }, xml("subject", {}, "ours")));
    const seen = await romeo.next((el) => el.attrs.id === "s2");
    assert.equal(seen.getChildText("subject"), "ours");
    assert.equal(seen.attrs.from, `${room}/Juliet`);
    await romeo.close();
    await juliet.close();
  });

  test("self-ping (XEP-0410): answered for an occupant, not-acceptable for anyone else", async () => {
    const romeo = await login("romeo");
    const juliet = await login("juliet");
    const room = await createRoom(romeo, "Romeo");
    const ok = await romeo.iq(xml("iq", { type: "get", to: `${room}/Romeo` }, xml("ping", { xmlns: NS.ping })));
    assert.equal(ok.attrs.type, "result");
    assert.equal(ok.attrs.from, `${room}/Romeo`);
    const ghost = await juliet.iq(xml("iq", { type: "get", to: `${room}/Romeo` }, xml("ping", { xmlns: NS.ping })));
    assertError(ghost, "not-acceptable");
    await romeo.close();
    await juliet.close();
  });
});

describe("entry rules (§7.2.5-§7.2.9)", () => {
  test("members-only: registration-required; password: not-authorized; full: service-unavailable; banned: forbidden", async () => {
    const romeo = await login("romeo");
    const juliet = await login("juliet");
    const mercutio = await login("mercutio");
    const membersOnly = await createRoom(romeo, "Romeo", { membersonly: "1" });
    assertError(await joinError(juliet, membersOnly, "Juliet"), "registration-required");

    const locked = await createRoom(romeo, "Romeo", { passwordprotectedroom: "1", roomsecret: "balcony" });
    assertError(await joinError(juliet, locked, "Juliet"), "not-authorized");
    assertError(await joinError(juliet, locked, "Juliet", { password: "wrong" }), "not-authorized");
    await join(juliet, locked, "Juliet", { password: "balcony" });

    // Capacity 5 with the owner inside: four more fit, the sixth does not.
    const tiny = await createRoom(romeo, "Romeo", { maxusers: "5" });
    const extra: XmppClient[] = [];
    for (const [i, user] of ["juliet", "mercutio", "tybalt", "nurse"].entries()) {
      const c = await login(user, `full${i}`);
      extra.push(c);
      await join(c, tiny, `guest${i}`);
    }
    const sixth = await login("juliet", "sixth");
    assertError(await joinError(sixth, tiny, "sixth"), "service-unavailable");

    const open = await createRoom(romeo, "Romeo");
    assert.equal((await admin(romeo, open, [{ jid: "mercutio@localhost", affiliation: "outcast" }])).attrs.type, "result");
    assertError(await joinError(mercutio, open, "Mercutio"), "forbidden");
    for (const c of [romeo, juliet, mercutio, sixth, ...extra]) await c.close();
  });

  test("moderated: visitors may not speak (forbidden) until given voice", async () => {
    const romeo = await login("romeo");
    const juliet = await login("juliet");
    const room = await createRoom(romeo, "Romeo", { moderatedroom: "1" });
    const seen = await join(juliet, room, "Juliet");
    assert.equal(item(seen.find((el) => el.attrs.from === `${room}/Juliet`)!)?.attrs.role, "visitor");
    juliet.send(xml("message", { to: room, type: "groupchat", id: "v1" }, xml("body", {}, "hear me")));
    assertError(await juliet.next((el) => el.attrs.id === "v1"), "forbidden");
    // A visitor cannot grant voice.
    assertError(await admin(juliet, room, [{ nick: "Juliet", role: "participant" }]), "forbidden");
    assert.equal((await admin(romeo, room, [{ nick: "Juliet", role: "participant" }])).attrs.type, "result");
    const voiced = await juliet.next((el) => el.name === "presence" && el.attrs.from === `${room}/Juliet` && item(el)?.attrs.role === "participant");
    assert.deepEqual(statusCodes(voiced), [110]);
    juliet.send(xml("message", { to: room, type: "groupchat", id: "v2" }, xml("body", {}, "now?")));
    assert.equal((await romeo.next((el) => el.attrs.id === "v2")).attrs.from, `${room}/Juliet`);
    await romeo.close();
    await juliet.close();
  });
});

describe("roles and affiliations (§8, §9, §10)", () => {
  test("kick is 307, ban is 301; participants may not kick; owners cannot be kicked", async () => {
    const romeo = await login("romeo");
    const juliet = await login("juliet");
    const mercutio = await login("mercutio");
    const room = await createRoom(romeo, "Romeo");
    await join(juliet, room, "Juliet");
    await join(mercutio, room, "Mercutio");
    assertError(await admin(juliet, room, [{ nick: "Mercutio", role: "none" }]), "forbidden");
    assertError(await admin(romeo, room, [{ nick: "Romeo", role: "none" }]), "not-allowed");

    const kicked = admin(romeo, room, [{ nick: "Mercutio", role: "none" }]);
    assert.equal((await kicked).attrs.type, "result");
    const selfKick = await mercutio.next(presenceFrom(`${room}/Mercutio`, "unavailable"));
    assert.deepEqual(statusCodes(selfKick), [110, 307]);
    assert.equal(item(selfKick)?.getChild("actor")?.attrs.nick, "Romeo");
    assert.deepEqual(statusCodes(await juliet.next(presenceFrom(`${room}/Mercutio`, "unavailable"))), [307]);

    assert.equal((await admin(romeo, room, [{ jid: "juliet@localhost", affiliation: "outcast" }])).attrs.type, "result");
    const banned = await juliet.next(presenceFrom(`${room}/Juliet`, "unavailable"));
    assert.deepEqual(statusCodes(banned), [110, 301]);
    assert.equal(item(banned)?.attrs.affiliation, "outcast");
    const outcasts = await romeo.iq(xml("iq", { type: "get", to: room }, xml("query", { xmlns: NS.mucAdmin }, xml("item", { affiliation: "outcast" }))));
    assert.deepEqual(outcasts.getChild("query")!.getChildren("item").map((i) => i.attrs.jid), ["juliet@localhost"]);
    for (const c of [romeo, juliet, mercutio]) await c.close();
  });

  test("members-only: losing membership removes with 321; becoming members-only removes non-members with 322", async () => {
    const romeo = await login("romeo");
    const juliet = await login("juliet");
    const mercutio = await login("mercutio");
    const room = await createRoom(romeo, "Romeo");
    assert.equal((await admin(romeo, room, [{ jid: "juliet@localhost", affiliation: "member" }])).attrs.type, "result");
    await join(juliet, room, "Juliet");
    await join(mercutio, room, "Mercutio");
    assert.equal((await configure(romeo, room, { membersonly: "1" })).attrs.type, "result");
    const config = await juliet.next((el) => el.name === "message" && el.attrs.from === room);
    assert.ok(statusCodes(config).includes(104));
    assert.deepEqual(statusCodes(await mercutio.next(presenceFrom(`${room}/Mercutio`, "unavailable"))), [110, 322]);
    assert.deepEqual(statusCodes(await juliet.next(presenceFrom(`${room}/Mercutio`, "unavailable"))), [322]);

    assert.equal((await admin(romeo, room, [{ jid: "juliet@localhost", affiliation: "none" }])).attrs.type, "result");
    assert.deepEqual(statusCodes(await juliet.next(presenceFrom(`${room}/Juliet`, "unavailable"))), [110, 321]);
    for (const c of [romeo, juliet, mercutio]) await c.close();
  });

  test("admins may not touch owners; the last owner cannot leave ownership (conflict)", async () => {
    const romeo = await login("romeo");
    const juliet = await login("juliet");
    const room = await createRoom(romeo, "Romeo");
    assert.equal((await admin(romeo, room, [{ jid: "juliet@localhost", affiliation: "admin" }])).attrs.type, "result");
    assertError(await admin(juliet, room, [{ jid: "romeo@localhost", affiliation: "member" }]), "not-allowed");
    assertError(await admin(juliet, room, [{ jid: "mercutio@localhost", affiliation: "owner" }]), "not-allowed");
    assert.equal((await admin(juliet, room, [{ jid: "mercutio@localhost", affiliation: "member" }])).attrs.type, "result");
    assertError(await admin(romeo, room, [{ jid: "romeo@localhost", affiliation: "admin" }]), "conflict");
    const admins = await juliet.iq(xml("iq", { type: "get", to: room }, xml("query", { xmlns: NS.mucAdmin }, xml("item", { affiliation: "admin" }))));
    assert.deepEqual(admins.getChild("query")!.getChildren("item").map((i) => i.attrs.jid), ["juliet@localhost"]);
    // Owner-only IQs.
    assertError(await juliet.iq(xml("iq", { type: "get", to: room }, xml("query", { xmlns: NS.mucOwner }))), "forbidden");
    await romeo.close();
    await juliet.close();
  });

  test("an affiliation change of an occupant is broadcast with its new role", async () => {
    const romeo = await login("romeo");
    const juliet = await login("juliet");
    const room = await createRoom(romeo, "Romeo");
    await join(juliet, room, "Juliet");
    const granted = await romeo.iq(xml("iq", { type: "set", to: room }, xml("query", { xmlns: NS.mucAdmin }, xml("item", { jid: "juliet@localhost", affiliation: "admin" }, xml("reason", {}, "trusted")))));
    assert.equal(granted.attrs.type, "result");
    const seen = await romeo.next((el) => el.name === "presence" && el.attrs.from === `${room}/Juliet` && item(el)?.attrs.affiliation === "admin");
    assert.equal(item(seen)?.attrs.role, "moderator");
    assert.equal(item(seen)?.getChildText("reason"), "trusted");
    await romeo.close();
    await juliet.close();
  });
});

describe("configuration (§10.2) and the OMEMO-ready room", () => {
  test("the owner reads the muc#roomconfig form with the current values", async () => {
    const romeo = await login("romeo");
    const room = await createRoom(romeo, "Romeo", { roomname: "Balcony", whois: "anyone" });
    const r = await romeo.iq(xml("iq", { type: "get", to: room }, xml("query", { xmlns: NS.mucOwner })));
    const form = parseForm(r.getChild("query", NS.mucOwner)!.getChild("x", NS.dataForms)!);
    assert.equal(getValue(form, "FORM_TYPE"), NS.mucRoomConfig);
    assert.equal(getValue(form, "muc#roomconfig_roomname"), "Balcony");
    assert.equal(getValue(form, "muc#roomconfig_whois"), "anyone");
    const bad = await configure(romeo, room, { whois: "everybody" });
    assertError(bad, "not-acceptable");
    await romeo.close();
  });

  test("non-anonymous + members-only + member list readable by members: what OMEMO clients need", async () => {
    const romeo = await login("romeo");
    const juliet = await login("juliet");
    const mercutio = await login("mercutio");
    const room = await createRoom(romeo, "Romeo", {
      whois: "anyone",
      membersonly: "1",
      persistentroom: "1",
      publicroom: "0",
      getmemberlist: ["moderator", "participant"],
    });
    assert.equal((await admin(romeo, room, [{ jid: "juliet@localhost", affiliation: "member" }])).attrs.type, "result");
    const seen = await join(juliet, room, "Juliet");
    const self = seen.find((el) => el.attrs.from === `${room}/Juliet`)!;
    assert.deepEqual(statusCodes(self), [100, 110, 170]);
    assert.equal(item(seen[0])?.attrs.jid, romeo.jid, "everyone sees real JIDs");
    // The member reads every list a client needs to find the devices to encrypt to.
    for (const [affiliation, expected] of [["member", "juliet@localhost"], ["owner", "romeo@localhost"]] as const) {
      const list = await juliet.iq(xml("iq", { type: "get", to: room }, xml("query", { xmlns: NS.mucAdmin }, xml("item", { affiliation }))));
      assert.equal(list.attrs.type, "result");
      assert.deepEqual(list.getChild("query")!.getChildren("item").map((i) => i.attrs.jid), [expected]);
    }
    // Outsiders neither enter nor read the list; members do not read the outcast list.
    assertError(await joinError(mercutio, room, "Mercutio"), "registration-required");
    assertError(await mercutio.iq(xml("iq", { type: "get", to: room }, xml("query", { xmlns: NS.mucAdmin }, xml("item", { affiliation: "member" })))), "forbidden");
    assertError(await juliet.iq(xml("iq", { type: "get", to: room }, xml("query", { xmlns: NS.mucAdmin }, xml("item", { affiliation: "outcast" })))), "forbidden");
    // Room info says so.
    const info = await mercutio.iq(xml("iq", { type: "get", to: room }, xml("query", { xmlns: NS.discoInfo })));
    const features = info.getChild("query")!.getChildren("feature").map((f) => f.attrs.var);
    for (const f of ["muc_nonanonymous", "muc_membersonly", "muc_persistent", "muc_hidden", "muc_unsecured", "muc_unmoderated", NS.occupantId]) assert.ok(features.includes(f), f);
    for (const c of [romeo, juliet, mercutio]) await c.close();
  });

  test("destroying a room removes everyone with the alternate venue", async () => {
    const romeo = await login("romeo");
    const juliet = await login("juliet");
    const room = await createRoom(romeo, "Romeo");
    await join(juliet, room, "Juliet");
    assertError(await juliet.iq(xml("iq", { type: "set", to: room }, xml("query", { xmlns: NS.mucOwner }, xml("destroy")))), "forbidden");
    const r = await romeo.iq(xml("iq", { type: "set", to: room }, xml("query", { xmlns: NS.mucOwner }, xml("destroy", { jid: `elsewhere@${MUC}` }, xml("reason", {}, "moving")))));
    assert.equal(r.attrs.type, "result");
    const out = await juliet.next(presenceFrom(`${room}/Juliet`, "unavailable"));
    const destroy = out.getChild("x", NS.mucUser)!.getChild("destroy")!;
    assert.equal(destroy.attrs.jid, `elsewhere@${MUC}`);
    assert.equal(destroy.getChildText("reason"), "moving");
    const gone = await juliet.iq(xml("iq", { type: "get", to: room }, xml("query", { xmlns: NS.discoInfo })));
    assertError(gone, "item-not-found");
    await romeo.close();
    await juliet.close();
  });
});

describe("discovery (§6) and invitations (§7.8)", () => {
  test("the service is among the server's items, is conference/text, and lists public rooms only", async () => {
    const romeo = await login("romeo");
    const items = await romeo.iq(xml("iq", { type: "get", to: "localhost" }, xml("query", { xmlns: NS.discoItems })));
    assert.ok(items.getChild("query")!.getChildren("item").some((i) => i.attrs.jid === MUC));
    const info = await romeo.iq(xml("iq", { type: "get", to: MUC }, xml("query", { xmlns: NS.discoInfo })));
    const q = info.getChild("query")!;
    assert.equal(q.getChild("identity")?.attrs.category, "conference");
    assert.equal(q.getChild("identity")?.attrs.type, "text");
    assert.ok(q.getChildren("feature").some((f) => f.attrs.var === NS.muc));
    const visible = await createRoom(romeo, "Romeo", { roomname: "Town square" });
    const hidden = await createRoom(romeo, "Romeo", { publicroom: "0" });
    const rooms = await romeo.iq(xml("iq", { type: "get", to: MUC }, xml("query", { xmlns: NS.discoItems })));
    const listed = rooms.getChild("query")!.getChildren("item");
    assert.equal(listed.find((i) => i.attrs.jid === visible)?.attrs.name, "Town square");
    assert.ok(!listed.some((i) => i.attrs.jid === hidden));
    const roomInfo = await romeo.iq(xml("iq", { type: "get", to: visible }, xml("query", { xmlns: NS.discoInfo })));
    const form = parseForm(roomInfo.getChild("query")!.getChild("x", NS.dataForms)!);
    assert.equal(getValue(form, "FORM_TYPE"), NS.mucRoomInfo);
    assert.equal(getValue(form, "muc#roominfo_occupants"), "1");
    await romeo.close();
  });

  test("a mediated invitation reaches the invitee from the room; a decline reaches the inviter", async () => {
    const romeo = await login("romeo");
    const juliet = await login("juliet");
    const room = await createRoom(romeo, "Romeo", { membersonly: "1" });
    romeo.send(xml("message", { to: room, id: "inv1" }, xml("x", { xmlns: NS.mucUser }, xml("invite", { to: "juliet@localhost" }, xml("reason", {}, "come")))));
    const invite = await juliet.next((el) => el.attrs.id === "inv1");
    assert.equal(invite.attrs.from, room);
    assert.equal(invite.getChild("x", NS.mucUser)?.getChild("invite")?.attrs.from, "romeo@localhost");
    // In a members-only room the invitation makes the invitee a member, so she can enter.
    await join(juliet, room, "Juliet");
    juliet.send(xml("presence", { to: `${room}/Juliet`, type: "unavailable" }));
    juliet.send(xml("message", { to: room, id: "dec1" }, xml("x", { xmlns: NS.mucUser }, xml("decline", { to: "romeo@localhost" }, xml("reason", {}, "later")))));
    const decline = await romeo.next((el) => el.attrs.id === "dec1");
    assert.equal(decline.getChild("x", NS.mucUser)?.getChild("decline")?.attrs.from, "juliet@localhost");
    await romeo.close();
    await juliet.close();
  });

  test("a direct invitation (XEP-0249) is an ordinary message between users", async () => {
    const romeo = await login("romeo");
    const juliet = await login("juliet");
    const room = await createRoom(romeo, "Romeo");
    romeo.send(xml("message", { to: juliet.jid!, id: "di1" }, xml("x", { xmlns: NS.conferenceInvite, jid: room, reason: "join us" })));
    const got = await juliet.next((el) => el.attrs.id === "di1");
    assert.equal(got.getChild("x", NS.conferenceInvite)?.attrs.jid, room);
    await romeo.close();
    await juliet.close();
  });
});
