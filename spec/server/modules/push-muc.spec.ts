// XEP-0357 push for groupchat (server/modules/push with server/modules/muc): a message in a
// members-only room wakes its members who are away from the room, a mention wakes the person
// named in any room, as `[modules.push] muc` says ("none", "mentions", "members-only" — the
// default — or "all"), and never for chat states, no-store messages or subject changes; an
// encrypted room message wakes without a body. The app server is a recording component.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { xml, type Element } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import { parseJid } from "../../../protocol/jid.ts";
import { buildForm } from "../../../protocol/forms.ts";
import { parseStanzaError } from "../../../protocol/errors.ts";
import { INCLUDE_BODY_FIELD, buildEnable, parsePublish, publishOptionsForm, type ReceivedPublish } from "../../../protocol/push.ts";
import { defineModule, iqResult } from "../../../server/core/module.ts";
import { startTestServer, type TestServer } from "../../support/server.ts";
import { accountsOn, type Accounts } from "../../support/accounts.ts";
import { uniqueName } from "../core/storage/both.ts";
import roster from "../../../server/modules/roster/index.ts";
import presence from "../../../server/modules/presence/index.ts";
import message from "../../../server/modules/message/index.ts";
import offline from "../../../server/modules/offline/index.ts";
import csi from "../../../server/modules/csi/index.ts";
import sm from "../../../server/modules/sm/index.ts";
import disco from "../../../server/modules/disco/index.ts";
import muc from "../../../server/modules/muc/index.ts";
import push, { mentions } from "../../../server/modules/push/index.ts";
import type { XmppClient } from "../../../conformance/client/client.ts";
import { waitFor } from "../../support/wait.ts";

const APPS = "apps.localhost";
const MUC = "conference.localhost";

const received: ReceivedPublish[] = [];
const recorder = defineModule({
  name: "app-server-recorder",
  xeps: [],
  setup(m) {
    m.addComponent(APPS, (ev) => {
      const { stanza } = ev;
      if (stanza.name !== "iq" || stanza.attrs.type !== "set") return;
      received.push(parsePublish(stanza.getChild("pubsub", NS.pubsub)!));
      void m.send(iqResult(stanza));
    });
  },
});

const MODULES = [roster, presence, message, offline, csi, sm, disco, muc, push, recorder];
const serverFor = (mode?: string) =>
  startTestServer({ modules: MODULES, toml: `[modules.push]\ncoalesce_ms = 250\n${mode ? `muc = "${mode}"\n` : ""}[modules.sm]\nresume_timeout_s = 10\n` });

const publishesFor = (node: string) => received.filter((r) => r.node === node);


const nthPublish = (node: string, n: number) => waitFor(() => publishesFor(node)[n - 1]);
/** Long enough for a coalescing window to close and a publish to be answered. */
const quiet = () => new Promise((r) => setTimeout(r, 800));

/** Room and push helpers bound to one server. */
function helpers(server: () => TestServer, accounts: Accounts) {
  let rooms = 0;
  const isFromRoom = (room: string) => (el: Element) => (el.attrs.from ?? "").split("/")[0] === room;

  async function enable(c: XmppClient, node: string, options: Record<string, string> = {}): Promise<void> {
    const r = await c.iq(xml("iq", { type: "set" }, buildEnable({ jid: parseJid(APPS), node, publishOptions: publishOptionsForm(options) })));
    assert.equal(r.attrs.type, "result");
  }

  async function join(c: XmppClient, room: string, nick: string): Promise<void> {
    c.send(xml("presence", { to: `${room}/${nick}` }, xml("x", { xmlns: NS.muc })));
    for (let i = 0; i < 200; i++) {
      const el = await c.next(isFromRoom(room));
      if (el.attrs.type === "error") throw new Error(`join failed: ${parseStanzaError(el)?.condition}`);
      if (el.name === "message" && el.getChild("subject") && !el.getChild("body")) return;
    }
    throw new Error("no subject");
  }

  return {
    enable,
    join,
    /** A phone of `user` that enabled push on `node`, then left (not connected at all). */
    async phoneThatLeft(user: string, node: string, options: Record<string, string> = {}): Promise<void> {
      const phone = await server().login(user, { resource: "phone" });
      await enable(phone, node, options);
      const jid = parseJid(phone.jid!);
      await phone.close();
      await waitFor(() => (server().server.sessions.get(jid) ? undefined : true));
    },
    /** A room owned by `owner` (joined as `nick`), configured, with `members` as members. */
    async room(owner: XmppClient, nick: string, opts: { membersOnly: boolean; members?: string[] }): Promise<string> {
      const room = `${uniqueName("room").toLowerCase()}${++rooms}@${MUC}`;
      await join(owner, room, nick);
      const fields = [{ var: "FORM_TYPE", values: [NS.mucRoomConfig] }, { var: "muc#roomconfig_membersonly", values: [opts.membersOnly ? "1" : "0"] }];
      const configured = await owner.iq(xml("iq", { type: "set", to: room }, xml("query", { xmlns: NS.mucOwner }, buildForm({ type: "submit", fields }))));
      assert.equal(configured.attrs.type, "result");
      for (const member of opts.members ?? []) {
        const r = await owner.iq(xml("iq", { type: "set", to: room }, xml("query", { xmlns: NS.mucAdmin }, xml("item", { jid: accounts.bare(member), affiliation: "member" }))));
        assert.equal(r.attrs.type, "result");
      }
      return room;
    },
    /** Sends a groupchat message and waits for the room's echo of it. */
    async say(c: XmppClient, room: string, body: string | null, ...extra: Element[]): Promise<void> {
      const id = uniqueName("m");
      c.send(xml("message", { to: room, type: "groupchat", id }, body === null ? null : xml("body", {}, body), ...extra));
      await c.next((el) => el.name === "message" && el.attrs.id === id);
    },
  };
}

describe("mentions", () => {
  test("a nick counts as a word, in any case, not inside another word", () => {
    assert.ok(mentions("Montague: the feast!", "montague"));
    assert.ok(mentions("hi @Montague", "Montague"));
    assert.ok(mentions("was it you, Mercutio?", "mercutio"));
    assert.ok(!mentions("the Montagues are here", "Montague"));
    assert.ok(!mentions("xromeo", "romeo"));
    assert.ok(!mentions("anything", " "));
  });
});

describe('with the default (muc = "members-only")', () => {
  let t: TestServer;
  const accounts = accountsOn(() => t);
  const h = helpers(() => t, accounts);
  before(async () => {
    t = await serverFor();
  });
  after(async () => {
    await t.stop();
  });

  test("a members-only room's message wakes a member who is not in it, with room/nick as the sender", async () => {
    const romeo = await accounts.account("romeo");
    const juliet = await t.login(await accounts.account("juliet"));
    const node = uniqueName("node");
    await h.phoneThatLeft(romeo, node);
    const room = await h.room(juliet, "Juliet", { membersOnly: true, members: [romeo] });
    await h.say(juliet, room, "supper at nine");
    await h.say(juliet, room, "bring the lute");
    const p = await nthPublish(node, 1);
    await quiet();
    assert.equal(publishesFor(node).length, 1, "one push for the burst");
    assert.equal(p.summary.messageCount, 2);
    assert.equal(p.summary.lastMessageSender, `${room}/Juliet`);
    assert.equal(p.summary.priority, "high");
    await juliet.close();
  });

  test("a room open to all does not wake a member unless the message names them", async () => {
    const romeo = await accounts.account("romeo");
    const juliet = await t.login(await accounts.account("juliet"));
    const node = uniqueName("node");
    await h.phoneThatLeft(romeo, node);
    const room = await h.room(juliet, "Juliet", { membersOnly: false, members: [romeo] });
    await h.say(juliet, room, "idle talk");
    await quiet();
    assert.equal(publishesFor(node).length, 0);
    // Away from the room, a member is named by the localpart (no nick registered).
    await h.say(juliet, room, `${romeo}, where are you?`);
    const p = await nthPublish(node, 1);
    assert.equal(p.summary.messageCount, 1);
    await juliet.close();
  });

  test("a member with an active session in the room is not woken; once that session is inactive (XEP-0352), the phone is", async () => {
    const romeo = await accounts.account("romeo");
    const juliet = await t.login(await accounts.account("juliet"));
    const node = uniqueName("node");
    await h.phoneThatLeft(romeo, node);
    const room = await h.room(juliet, "Juliet", { membersOnly: true, members: [romeo] });
    const tablet = await accounts.online(romeo, "tablet");
    await h.join(tablet, room, "Montague");
    await h.say(juliet, room, "you are here, then");
    await tablet.next((el) => el.getChildText("body") === "you are here, then");
    await quiet();
    assert.equal(publishesFor(node).length, 0);
    tablet.send(xml("inactive", { xmlns: NS.csi }));
    await accounts.settle(tablet);
    await h.say(juliet, room, "in your pocket now?");
    const p = await nthPublish(node, 1);
    assert.equal(p.summary.messageCount, 1);
    await tablet.close();
    await juliet.close();
  });

  test("a hibernated occupant is woken once when its nick is named, or a XEP-0372 reference points at it; other talk does not wake it", async () => {
    const romeo = await accounts.account("romeo");
    const juliet = await t.login(await accounts.account("juliet"));
    const node = uniqueName("node");
    const room = await h.room(juliet, "Juliet", { membersOnly: false });
    const phone = await accounts.online(romeo, "phone");
    await h.enable(phone, node);
    await h.join(phone, room, "Montague");
    phone.send(xml("enable", { xmlns: NS.sm, resume: "true" }));
    await phone.next((el) => el.name === "enabled" && el.getNS() === NS.sm);
    // The connection dies without a closing stream: the session hibernates, still in the room.
    phone.destroy();
    await new Promise((r) => setTimeout(r, 200));
    await h.say(juliet, room, "just chatter");
    await quiet();
    assert.equal(publishesFor(node).length, 0, "not named, in a room open to all");
    // Named by nick and by localpart: were the hibernated queue to count local rooms' messages
    // too (by the localpart), this one would count twice.
    await h.say(juliet, room, `Montague (${romeo}), wake up`);
    const p = await nthPublish(node, 1);
    await quiet();
    assert.equal(publishesFor(node).length, 1, "counted once, not once per path");
    assert.equal(p.summary.messageCount, 1);
    assert.equal(p.summary.lastMessageSender, `${room}/Juliet`);
    await h.say(juliet, room, "look at this", xml("reference", { xmlns: "urn:xmpp:reference:0", type: "mention", uri: `xmpp:${room}/Montague`, begin: "0", end: "4" }));
    const second = await nthPublish(node, 2);
    assert.equal(second.summary.messageCount, 2);
    await juliet.close();
  });

  test("chat states, no-store messages and subject changes wake nobody; an encrypted message wakes without a body", async () => {
    const romeo = await accounts.account("romeo");
    const juliet = await t.login(await accounts.account("juliet"));
    const node = uniqueName("node");
    await h.phoneThatLeft(romeo, node, { [INCLUDE_BODY_FIELD]: "1" });
    const room = await h.room(juliet, "Juliet", { membersOnly: true, members: [romeo] });
    await h.say(juliet, room, null, xml("composing", { xmlns: NS.chatStates }));
    await h.say(juliet, room, "off the record", xml("no-store", { xmlns: NS.hints }));
    await h.say(juliet, room, null, xml("subject", {}, "Verona by night"));
    await quiet();
    assert.equal(publishesFor(node).length, 0);
    const omemo = xml("encrypted", { xmlns: NS.omemo }, xml("header", { sid: "7" }), xml("payload", {}, "c2VjcmV0"));
    await h.say(juliet, room, "I sent you an OMEMO encrypted message but your client doesn't seem to support that.", omemo);
    const p = await nthPublish(node, 1);
    assert.equal(p.summary.lastMessageBody, undefined);
    assert.equal(p.summary.lastMessageEncrypted, true);
    await quiet();
    await h.say(juliet, room, "in clear");
    const clear = await nthPublish(node, 2);
    assert.equal(clear.summary.lastMessageBody, "in clear", "the registration asked for bodies");
    await juliet.close();
  });

  test("the sender's own away device is not woken by its own message", async () => {
    const juliet = await accounts.account("juliet");
    const node = uniqueName("node");
    await h.phoneThatLeft(juliet, node);
    const desk = await accounts.online(juliet, "desk");
    const room = await h.room(desk, "Juliet", { membersOnly: true });
    // The desk says it is inactive and still speaks: nobody else in the room, nobody to wake.
    desk.send(xml("inactive", { xmlns: NS.csi }));
    await accounts.settle(desk);
    desk.send(xml("message", { to: room, type: "groupchat" }, xml("body", {}, "Juliet, a note to myself")));
    await quiet();
    assert.equal(publishesFor(node).length, 0);
    await desk.close();
  });
});

// What each mode does with: a plain message in a members-only room, a plain message in an open
// room, and a message naming the member in an open room (the member is away from both rooms).
const MODES: Array<[string, [boolean, boolean, boolean]]> = [
  ["none", [false, false, false]],
  ["mentions", [false, false, true]],
  ["all", [true, true, true]],
];
for (const [mode, expected] of MODES) {
  describe(`muc = "${mode}"`, () => {
    let t: TestServer;
    const accounts = accountsOn(() => t);
    const h = helpers(() => t, accounts);
    before(async () => {
      t = await serverFor(mode);
    });
    after(async () => {
      await t.stop();
    });

    test(`members-only room, open room, named: ${expected.map((e) => (e ? "push" : "none")).join(", ")}`, async () => {
      const juliet = await t.login(await accounts.account("juliet"));
      const cases = [
        { membersOnly: true, body: () => "plain talk" },
        { membersOnly: false, body: () => "plain talk" },
        { membersOnly: false, body: (romeo: string) => `${romeo}: come down` },
      ];
      const got: boolean[] = [];
      for (const c of cases) {
        const romeo = await accounts.account("romeo");
        const node = uniqueName("node");
        await h.phoneThatLeft(romeo, node);
        const room = await h.room(juliet, "Juliet", { membersOnly: c.membersOnly, members: [romeo] });
        await h.say(juliet, room, c.body(romeo));
        await quiet();
        got.push(publishesFor(node).length === 1);
      }
      assert.deepEqual(got, expected);
      await juliet.close();
    });
  });
}
