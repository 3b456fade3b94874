// End-to-end spec for server/modules/muc: presence broadcast by role
// (muc#roomconfig_presencebroadcast, XEP-0045 §15.5.3): the presence of an occupant whose role
// is not listed reaches that occupant alone, through joins, updates, nick changes, role changes,
// configuration changes, kicks and leaving.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { available, fromRoom, joinRoom } from "./muc-helpers.ts";
import { startTestServer, type TestServer } from "../../support/server.ts";
import { assertError } from "../../support/stanzas.ts";
import type { XmppClient } from "../../../conformance/client/client.ts";
import { xml, type Element } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import { buildForm, getField, parseForm } from "../../../protocol/forms.ts";
import { parseStanzaError } from "../../../protocol/errors.ts";
import { statusCodes } from "../../../protocol/muc.ts";
import roster from "../../../server/modules/roster/index.ts";
import presence from "../../../server/modules/presence/index.ts";
import message from "../../../server/modules/message/index.ts";
import disco from "../../../server/modules/disco/index.ts";
import muc from "../../../server/modules/muc/index.ts";

const MUC = "conference.localhost";
let t: TestServer;
let counter = 0;

before(async () => {
  t = await startTestServer({ users: ["romeo", "juliet", "mercutio"], modules: [roster, presence, message, disco, muc] });
});
after(async () => {
  await t.stop();
});

const login = (user: string): Promise<XmppClient> => available(t, user);

const presenceFrom = (from: string) => (el: Element) => el.name === "presence" && el.attrs.from === from;

const join = (c: XmppClient, room: string, nick: string): Promise<Element[]> => joinRoom(c, room, nick);

function configure(owner: XmppClient, room: string, broadcast: string[], extra: Record<string, string> = {}): Promise<Element> {
  const form = buildForm({
    type: "submit",
    fields: [
      { var: "muc#roomconfig_presencebroadcast", type: "list-multi", values: broadcast },
      ...Object.entries(extra).map(([k, v]) => ({ var: `muc#roomconfig_${k}`, values: [v] })),
    ],
  });
  return owner.iq(xml("iq", { type: "set", to: room }, xml("query", { xmlns: NS.mucOwner }, form)));
}

async function createRoom(owner: XmppClient, broadcast: string[], extra: Record<string, string> = {}): Promise<string> {
  const room = `pb${++counter}@${MUC}`;
  await join(owner, room, "Owner");
  assert.equal((await configure(owner, room, broadcast, extra)).attrs.type, "result");
  await owner.nothing(fromRoom(room), 50);
  owner.inbox.splice(0);
  return room;
}

function setRole(c: XmppClient, room: string, nick: string, role: string): Promise<Element> {
  return c.iq(xml("iq", { type: "set", to: room }, xml("query", { xmlns: NS.mucAdmin }, xml("item", { nick, role }))));
}

describe("presence broadcast by role (muc#roomconfig_presencebroadcast)", () => {
  test("the configuration form offers the field, every role by default, and keeps what the owner submits", async () => {
    const romeo = await login("romeo");
    const room = `pb${++counter}@${MUC}`;
    await join(romeo, room, "Owner");
    const get = () => romeo.iq(xml("iq", { type: "get", to: room }, xml("query", { xmlns: NS.mucOwner })));
    const field = async () => getField(parseForm((await get()).getChild("query", NS.mucOwner)!.getChild("x", NS.dataForms)!), "muc#roomconfig_presencebroadcast");
    const before = await field();
    assert.equal(before?.type, "list-multi");
    assert.deepEqual([...before!.values].sort(), ["moderator", "participant", "visitor"]);
    assert.equal((await configure(romeo, room, ["moderator", "visitor"])).attrs.type, "result");
    assert.deepEqual([...(await field())!.values].sort(), ["moderator", "visitor"]);
    assertError(await configure(romeo, room, ["moderator", "owner"]), "not-acceptable");
    assert.deepEqual([...(await field())!.values].sort(), ["moderator", "visitor"], "a refused form changes nothing");
    await romeo.close();
  });

  test("an unlisted participant enters silently, sees the others, and its updates, nick change and exit reach only itself", async () => {
    const romeo = await login("romeo");
    const juliet = await login("juliet");
    const room = await createRoom(romeo, ["moderator"]);

    const seen = await join(juliet, room, "Juliet");
    assert.ok(seen.some((el) => el.name === "presence" && el.attrs.from === `${room}/Owner`), "the hidden occupant sees the moderator");
    const self = seen.find((el) => el.name === "presence" && el.attrs.from === `${room}/Juliet`)!;
    assert.ok(statusCodes(self).includes(110));
    assert.equal(self.getChild("x", NS.mucUser)!.getChild("item")!.attrs.role, "participant");
    assert.ok(await romeo.nothing(presenceFrom(`${room}/Juliet`), 200), "the owner is not told");

    juliet.send(xml("presence", { to: `${room}/Juliet` }, xml("show", {}, "away")));
    assert.equal((await juliet.next(presenceFrom(`${room}/Juliet`))).getChildText("show"), "away");
    juliet.send(xml("presence", { to: `${room}/Jules` }));
    await juliet.next((el) => el.name === "presence" && el.attrs.from === `${room}/Juliet` && el.attrs.type === "unavailable" && statusCodes(el).includes(303));
    await juliet.next(presenceFrom(`${room}/Jules`));
    juliet.send(xml("presence", { to: `${room}/Jules`, type: "unavailable" }));
    const gone = await juliet.next(presenceFrom(`${room}/Jules`));
    assert.equal(gone.attrs.type, "unavailable");
    assert.ok(statusCodes(gone).includes(110));
    assert.ok(await romeo.nothing(fromRoom(room), 200), "the owner heard nothing of it all");
    for (const c of [romeo, juliet]) await c.close();
  });

  test("a role change into a listed role announces the occupant; out of it, the others see it leave while it stays", async () => {
    const romeo = await login("romeo");
    const juliet = await login("juliet");
    const mercutio = await login("mercutio");
    const room = await createRoom(romeo, ["moderator"]);
    await join(mercutio, room, "Mercutio");
    await join(juliet, room, "Juliet");
    assert.ok(await romeo.nothing(presenceFrom(`${room}/Juliet`), 100));

    assert.equal((await setRole(romeo, room, "Juliet", "moderator")).attrs.type, "result");
    const shown = await romeo.next(presenceFrom(`${room}/Juliet`));
    assert.equal(shown.attrs.type, undefined);
    assert.equal(shown.getChild("x", NS.mucUser)!.getChild("item")!.attrs.role, "moderator");
    // Mercutio, a hidden participant himself, now sees Juliet too.
    assert.equal((await mercutio.next(presenceFrom(`${room}/Juliet`))).attrs.type, undefined);
    await juliet.next(presenceFrom(`${room}/Juliet`));

    assert.equal((await setRole(romeo, room, "Juliet", "participant")).attrs.type, "result");
    const left = await romeo.next(presenceFrom(`${room}/Juliet`));
    assert.equal(left.attrs.type, "unavailable");
    assert.equal(left.getChild("x", NS.mucUser)!.getChild("item")!.attrs.role, "none");
    const own = await juliet.next(presenceFrom(`${room}/Juliet`));
    assert.equal(own.attrs.type, undefined, "Juliet is still in the room");
    assert.equal(own.getChild("x", NS.mucUser)!.getChild("item")!.attrs.role, "participant");

    // A kick of a hidden occupant is news to it alone.
    assert.equal((await setRole(romeo, room, "Juliet", "none")).attrs.type, "result");
    const kicked = await juliet.next(presenceFrom(`${room}/Juliet`));
    assert.equal(kicked.attrs.type, "unavailable");
    assert.ok(statusCodes(kicked).includes(307));
    assert.ok(await romeo.nothing(presenceFrom(`${room}/Juliet`), 200));
    for (const c of [romeo, juliet, mercutio]) await c.close();
  });

  test("changing the setting announces occupants now listed, and takes away those no longer listed", async () => {
    const romeo = await login("romeo");
    const juliet = await login("juliet");
    const room = await createRoom(romeo, ["moderator"], { publicroom: "1" });
    await join(juliet, room, "Juliet");
    const items = async (c: XmppClient) =>
      (await c.iq(xml("iq", { type: "get", to: room }, xml("query", { xmlns: NS.discoItems }))))
        .getChild("query", NS.discoItems)!
        .getChildren("item")
        .map((i) => i.attrs.jid)
        .sort();
    assert.deepEqual(await items(romeo), [`${room}/Owner`], "disco#items does not give the hidden occupant away");
    assert.deepEqual(await items(juliet), [`${room}/Juliet`, `${room}/Owner`], "but shows it to itself");

    assert.equal((await configure(romeo, room, ["moderator", "participant"])).attrs.type, "result");
    assert.equal((await romeo.next(presenceFrom(`${room}/Juliet`))).attrs.type, undefined);
    assert.deepEqual(await items(romeo), [`${room}/Juliet`, `${room}/Owner`]);

    assert.equal((await configure(romeo, room, ["moderator"])).attrs.type, "result");
    assert.equal((await romeo.next(presenceFrom(`${room}/Juliet`))).attrs.type, "unavailable");
    // Juliet gets the configuration-change notices, never her own presence over it.
    await juliet.next((el) => el.name === "message" && statusCodes(el).includes(104));
    assert.ok(await juliet.nothing(presenceFrom(`${room}/Juliet`), 200));

    // She still speaks, and everyone hears her.
    juliet.send(xml("message", { to: room, type: "groupchat", id: "hidden-1" }, xml("body", {}, "still here")));
    assert.equal((await romeo.next((el) => el.name === "message" && el.attrs.id === "hidden-1")).attrs.from, `${room}/Juliet`);
    for (const c of [romeo, juliet]) await c.close();
  });
});
