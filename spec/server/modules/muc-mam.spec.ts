// End-to-end spec for server/modules/muc/archive.ts: XEP-0313 (MAM 0.7.5) on a XEP-0045 room
// JID, with XEP-0359 stanza-ids by the room, XEP-0059 paging, and the discussion history of
// XEP-0045 §7.2.14 served from the same archive.
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
import { stanzaFromText } from "../../../server/core/storage/index.ts";
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
  t = await startTestServer({ users: ["romeo", "juliet", "mercutio", "tybalt"], modules: [roster, presence, message, disco, mam, muc] });
});
after(async () => {
  await t.stop();
});

const login = (user: string, resource = "r"): Promise<XmppClient> => available(t, user, resource);


const join = (c: XmppClient, room: string, nick: string, history?: Record<string, string>): Promise<Element[]> => joinRoom(c, room, nick, { history });

async function createRoom(owner: XmppClient, fields: Record<string, string> = {}): Promise<string> {
  const room = `mam${++counter}@${MUC}`;
  await join(owner, room, "Owner");
  const form = buildForm({ type: "submit", fields: Object.entries(fields).map(([k, v]) => ({ var: `muc#roomconfig_${k}`, values: [v] })) });
  const r = await owner.iq(xml("iq", { type: "set", to: room }, xml("query", { xmlns: NS.mucOwner }, form)));
  assert.equal(r.attrs.type, "result");
  await owner.nothing(fromRoom(room), 50);
  owner.inbox.splice(0);
  return room;
}

async function say(c: XmppClient, room: string, body: string, extra: Element[] = []): Promise<Element> {
  const id = `m-${++counter}`;
  c.send(xml("message", { to: room, type: "groupchat", id }, xml("body", {}, body), ...extra));
  return c.next((el) => el.name === "message" && el.attrs.id === id);
}

function stanzaIdBy(el: Element, by: string): string[] {
  return el.getChildren("stanza-id", NS.sid).filter((s) => s.attrs.by === by).map((s) => s.attrs.id!);
}

interface Answer {
  iq: Element;
  results: Element[];
}

/** A MAM query to `to`; the results (in order) and the IQ answer. */
async function query(c: XmppClient, to: string, opts: { with?: string; max?: number; after?: string; before?: string | true; start?: string } = {}): Promise<Answer> {
  const queryid = `q${++counter}`;
  const fields = [{ var: "FORM_TYPE", type: "hidden" as const, values: [NS.mam] }];
  if (opts.with) fields.push({ var: "with", values: [opts.with] } as never);
  if (opts.start) fields.push({ var: "start", values: [opts.start] } as never);
  const set = xml("set", { xmlns: NS.rsm });
  if (opts.max !== undefined) set.append(xml("max", {}, String(opts.max)));
  if (opts.after !== undefined) set.append(xml("after", {}, opts.after));
  if (opts.before !== undefined) set.append(xml("before", {}, opts.before === true ? undefined : opts.before));
  const iq = await c.iq(xml("iq", { type: "set", to }, xml("query", { xmlns: NS.mam, queryid }, buildForm({ type: "submit", fields }), set)));
  const results: Element[] = [];
  for (let i = c.inbox.length - 1; i >= 0; i--) {
    if (c.inbox[i].getChild("result", NS.mam)?.attrs.queryid === queryid) results.unshift(c.inbox.splice(i, 1)[0]);
  }
  return { iq, results };
}

function forwarded(result: Element): Element {
  return result.getChild("result", NS.mam)!.getChild("forwarded", NS.forward)!.getChild("message")!;
}

describe("archiving (XEP-0313 §3.2, XEP-0359)", () => {
  test("each groupchat message carries one stanza-id by the room, the same for every occupant, and is archived once; a spoofed one is removed", async () => {
    const romeo = await login("romeo");
    const juliet = await login("juliet");
    const room = await createRoom(romeo);
    await join(juliet, room, "Juliet");
    const spoof = xml("stanza-id", { xmlns: NS.sid, id: "forged", by: room });
    const id = `m-${++counter}`;
    juliet.send(xml("message", { to: room, type: "groupchat", id }, xml("body", {}, "hi"), spoof));
    const copies = await Promise.all([romeo, juliet].map((c) => c.next((el) => el.attrs.id === id)));
    const ids = copies.map((el) => stanzaIdBy(el, room));
    assert.equal(ids[0].length, 1, "exactly one stanza-id by the room");
    assert.notEqual(ids[0][0], "forged");
    assert.deepEqual(ids[1], ids[0], "every occupant sees the same id");
    // A chat state alone is not archived, and gets no id.
    const csId = `cs-${++counter}`;
    juliet.send(xml("message", { to: room, type: "groupchat", id: csId }, xml("composing", { xmlns: NS.chatStates })));
    assert.deepEqual(stanzaIdBy(await romeo.next((el) => el.attrs.id === csId), room), []);
    // XEP-0334: a message marked no-store is relayed but not archived.
    const nsId = `ns-${++counter}`;
    juliet.send(xml("message", { to: room, type: "groupchat", id: nsId }, xml("body", {}, "forget me"), xml("no-store", { xmlns: NS.hints })));
    assert.deepEqual(stanzaIdBy(await romeo.next((el) => el.attrs.id === nsId), room), []);
    await t.server.storage.writer.sync();
    assert.equal(await t.server.storage.archive.count(MUC, room.split("@")[0]), 1, "archived once for the whole room");
    // The disco#info of the room says it keeps an archive.
    const info = await romeo.iq(xml("iq", { type: "get", to: room }, xml("query", { xmlns: NS.discoInfo })));
    const features = info.getChild("query")!.getChildren("feature").map((f) => f.attrs.var);
    for (const f of [NS.mam, NS.sid]) assert.ok(features.includes(f), f);
    // The users' own archives do not take groupchat.
    const own = await query(juliet, juliet.jid!.split("/")[0]);
    assert.equal(own.results.filter((r) => forwarded(r).attrs.type === "groupchat").length, 0);
    await romeo.close();
    await juliet.close();
  });
});

describe("queries to the room (XEP-0313 §4)", () => {
  test("results come from the room, in order, with the stanza-ids the occupants saw; RSM pages forwards and back; 'with' names an occupant", async () => {
    const romeo = await login("romeo");
    const juliet = await login("juliet");
    const room = await createRoom(romeo);
    await join(juliet, room, "Juliet");
    const sent: Array<{ body: string; id: string }> = [];
    for (const [c, body] of [[romeo, "one"], [juliet, "two"], [romeo, "three"], [juliet, "four"], [romeo, "five"]] as const) {
      const got = await say(c, room, body);
      sent.push({ body, id: stanzaIdBy(got, room)[0] });
    }
    const all = await query(juliet, room);
    assert.equal(all.iq.attrs.type, "result");
    const fin = all.iq.getChild("fin", NS.mam)!;
    assert.equal(fin.attrs.complete, "true");
    assert.deepEqual(all.results.map((r) => forwarded(r).getChildText("body")), sent.map((s) => s.body));
    assert.deepEqual(all.results.map((r) => r.getChild("result", NS.mam)!.attrs.id), sent.map((s) => s.id));
    for (const r of all.results) {
      assert.equal(r.attrs.from, room, "results come from the room's bare JID");
      assert.ok(r.getChild("result", NS.mam)!.getChild("forwarded", NS.forward)!.getChild("delay", NS.delay));
    }
    assert.equal(forwarded(all.results[1]).attrs.from, `${room}/Juliet`);
    assert.equal(fin.getChild("set", NS.rsm)!.getChildText("count"), "5");

    const page1 = await query(juliet, room, { max: 2 });
    assert.deepEqual(page1.results.map((r) => forwarded(r).getChildText("body")), ["one", "two"]);
    assert.equal(page1.iq.getChild("fin", NS.mam)!.attrs.complete, undefined);
    const last1 = page1.iq.getChild("fin", NS.mam)!.getChild("set", NS.rsm)!.getChildText("last")!;
    const page2 = await query(juliet, room, { max: 2, after: last1 });
    assert.deepEqual(page2.results.map((r) => forwarded(r).getChildText("body")), ["three", "four"]);
    const lastPage = await query(juliet, room, { max: 2, before: true });
    assert.deepEqual(lastPage.results.map((r) => forwarded(r).getChildText("body")), ["four", "five"]);

    const romeos = await query(juliet, room, { with: `${room}/Owner` });
    assert.deepEqual(romeos.results.map((r) => forwarded(r).getChildText("body")), ["one", "three", "five"]);
    const someoneElse = await query(juliet, room, { with: "romeo@localhost" });
    assert.equal(someoneElse.results.length, 0, "the room's archive holds only its own messages");

    const unknown = await query(juliet, room, { after: "no-such-id" });
    assertError(unknown.iq, "item-not-found");

    const metadata = await juliet.iq(xml("iq", { type: "get", to: room }, xml("metadata", { xmlns: NS.mam })));
    const md = metadata.getChild("metadata", NS.mam)!;
    assert.equal(md.getChild("start")?.attrs.id, sent[0].id);
    assert.equal(md.getChild("end")?.attrs.id, sent[4].id);
    // The results the room sent juliet are answers, not conversation: her own archive has none.
    await t.server.storage.writer.sync();
    const own = await query(juliet, juliet.jid!.split("/")[0]);
    assert.deepEqual(own.results.filter((r) => forwarded(r).getChild("result", NS.mam)), [], "room results archived in the user's archive");
    await romeo.close();
    await juliet.close();
  });

  test("who may query: members of a members-only room (present or not), not outsiders or outcasts; occupants of a hidden room", async () => {
    const romeo = await login("romeo");
    const juliet = await login("juliet");
    const mercutio = await login("mercutio");
    const tybalt = await login("tybalt");
    const room = await createRoom(romeo, { membersonly: "1", whois: "anyone" });
    for (const [jid, affiliation] of [["juliet@localhost", "member"], ["tybalt@localhost", "outcast"]]) {
      const r = await romeo.iq(xml("iq", { type: "set", to: room }, xml("query", { xmlns: NS.mucAdmin }, xml("item", { jid, affiliation }))));
      assert.equal(r.attrs.type, "result");
    }
    await say(romeo, room, "members only");
    const member = await query(juliet, room);
    assert.equal(member.iq.attrs.type, "result", "a member who is not in the room reads the archive");
    assert.deepEqual(member.results.map((r) => forwarded(r).getChildText("body")), ["members only"]);
    assertError((await query(mercutio, room)).iq, "forbidden");
    assertError((await query(tybalt, room)).iq, "forbidden");

    const hidden = await createRoom(romeo, { publicroom: "0" });
    await say(romeo, hidden, "hidden");
    assertError((await query(mercutio, hidden)).iq, "forbidden");
    await join(mercutio, hidden, "Mercutio");
    assert.equal((await query(mercutio, hidden)).results.length, 1, "an occupant may");

    const open = await createRoom(romeo);
    await say(romeo, open, "public");
    assert.equal((await query(tybalt, open)).results.length, 1, "anyone may read a public, open room's archive");
    for (const c of [romeo, juliet, mercutio, tybalt]) await c.close();
  });

  test("a room configured without logging keeps no archive: no stanza-id, no feature, queries refused, no 170", async () => {
    const romeo = await login("romeo");
    const room = await createRoom(romeo, { enablelogging: "0" });
    const got = await say(romeo, room, "off the record");
    assert.deepEqual(stanzaIdBy(got, room), []);
    const info = await romeo.iq(xml("iq", { type: "get", to: room }, xml("query", { xmlns: NS.discoInfo })));
    assert.ok(!info.getChild("query")!.getChildren("feature").some((f) => f.attrs.var === NS.mam));
    assertError((await query(romeo, room)).iq, "feature-not-implemented");
    const juliet = await login("juliet");
    const seen = await join(juliet, room, "Juliet");
    const self = seen.find((el) => el.name === "presence" && el.attrs.from === `${room}/Juliet`)!;
    assert.ok(!statusCodes(self).includes(170));
    assert.equal(seen.filter((el) => el.getChildText("body") === "off the record").length, 1, "history still comes from memory");
    await romeo.close();
    await juliet.close();
  });
});

describe("history on join from the archive (XEP-0045 §7.2.14)", () => {
  test("maxstanzas, maxchars and seconds select the newest messages; history carries the room's stanza-id and a delay", async () => {
    const romeo = await login("romeo");
    const room = await createRoom(romeo);
    const ids: string[] = [];
    for (const body of ["a", "bb", "ccc"]) ids.push(stanzaIdBy(await say(romeo, room, body), room)[0]);
    const bodies = (seen: Element[]) => seen.filter((el) => el.name === "message" && el.getChild("body")).map((el) => el.getChildText("body"));
    const juliet = await login("juliet");
    const all = await join(juliet, room, "Juliet");
    assert.deepEqual(bodies(all), ["a", "bb", "ccc"]);
    const first = all.find((el) => el.getChildText("body") === "a")!;
    assert.deepEqual(stanzaIdBy(first, room), [ids[0]]);
    assert.equal(first.getChild("delay", NS.delay)?.attrs.from, room);
    await juliet.close();

    const mercutio = await login("mercutio");
    assert.deepEqual(bodies(await join(mercutio, room, "M1", { maxstanzas: "1" })), ["ccc"]);
    await mercutio.close();
    // Enough characters for the newest message only (as sent, with its addressing and ids).
    const size = Buffer.byteLength(String(all.find((el) => el.getChildText("body") === "ccc")!.toString?.() ?? "")) || 0;
    void size;
    const tybalt = await login("tybalt");
    assert.deepEqual(bodies(await join(tybalt, room, "T1", { maxchars: "0" })), []);
    await tybalt.close();
    const tybalt1 = await login("tybalt", "r1");
    // §7.2.14 counts the characters of each message as the room keeps it: room for the two newest only.
    const page = await t.server.storage.archive.query(MUC, room.split("@")[0], { limit: 10 });
    const sizes = page.messages.map((m) => serialize(stanzaFromText(m.xml)!).length);
    assert.deepEqual(bodies(await join(tybalt1, room, "T0", { maxchars: String(sizes[1] + sizes[2]) })), ["bb", "ccc"]);
    await tybalt1.close();
    const tybalt2 = await login("tybalt", "r2");
    assert.deepEqual(bodies(await join(tybalt2, room, "T2", { seconds: "3600" })), ["a", "bb", "ccc"]);
    await tybalt2.close();
    await romeo.close();
  });
});
