// End-to-end specs for server/modules/carbons: XEP-0280 Message Carbons 1.0.1 (enabling and
// disabling, received and sent copies, private messages and the XEP-0334 <no-copy/> hint) as
// the clients of two users see them.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startTestServer, type TestServer } from "../../support/server.ts";
import { accountsOn } from "../../support/accounts.ts";
import type { XmppClient } from "../../../conformance/client/client.ts";
import { xml, type Element } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import { defineModule } from "../../../server/core/module.ts";
import roster from "../../../server/modules/roster/index.ts";
import presence from "../../../server/modules/presence/index.ts";
import message, { OFFLINE_EVENT, type OfflineMessageEvent } from "../../../server/modules/message/index.ts";
import disco from "../../../server/modules/disco/index.ts";
import carbons from "../../../server/modules/carbons/index.ts";

// Stands in for the archive (XEP-0313): stamps a XEP-0359 stanza-id on every message to a user,
// on the message/* hooks at the priority an archive uses, above delivery.
const archive = defineModule({
  name: "spec-archive",
  xeps: [],
  setup(m) {
    let n = 0;
    for (const target of ["bare", "full"]) {
      m.hook(`message/${target}`, (ev) => {
        ev.stanza.append(xml("stanza-id", { xmlns: NS.sid, id: `archived-${++n}`, by: ev.to.bare.toString() }));
      }, 0);
    }
  },
});

// Stands in for offline storage: keeps every message for accounts whose name starts "keeper".
const offline = defineModule({
  name: "spec-offline",
  xeps: [],
  setup(m) {
    m.hook<OfflineMessageEvent>(OFFLINE_EVENT, (ev) => ev.to.local.startsWith("keeper"));
  },
});

let t: TestServer;
before(async () => {
  t = await startTestServer({ modules: [roster, presence, message, carbons, disco, archive, offline] });
});
after(async () => {
  await t.stop();
});

const { account, bare, online } = accountsOn(() => t);

let counter = 0;
const nextId = () => `m${++counter}`;

/** Available with that priority (RFC 6121 §4.7.2.3) and, unless told otherwise, carbons enabled. */
async function device(user: string, resource: string, priority: number, withCarbons = true): Promise<XmppClient> {
  const c = await online(user, resource, xml("priority", {}, String(priority)));
  if (withCarbons) await setCarbons(c, "enable");
  return c;
}

async function setCarbons(c: XmppClient, action: "enable" | "disable"): Promise<Element> {
  const reply = await c.iq(xml("iq", { type: "set" }, xml(action, { xmlns: NS.carbons })));
  assert.equal(reply.attrs.type, "result", `${action} answered ${reply.attrs.type}`);
  return reply;
}

function send(from: XmppClient, to: string, attrs: { type?: string; body?: string | null } = {}, ...extra: Element[]): string {
  const id = nextId();
  const body = attrs.body === undefined ? "hello" : attrs.body;
  from.send(xml("message", { to, id, type: attrs.type ?? "chat" }, body === null ? null : xml("body", {}, body), ...extra));
  return id;
}

const original = (id: string) => (el: Element) => el.name === "message" && el.attrs.id === id;

/** The message a carbon copy of this direction forwards, if `el` is one. */
function forwardedIn(el: Element, direction: "sent" | "received"): Element | undefined {
  return el.getChild(direction, NS.carbons)?.getChild("forwarded", NS.forward)?.getChild("message", NS.client);
}

const copyOf = (direction: "sent" | "received", id: string) => (el: Element) =>
  el.name === "message" && forwardedIn(el, direction)?.attrs.id === id;

const anyCopyOf = (id: string) => (el: Element) => copyOf("sent", id)(el) || copyOf("received", id)(el);

/**
 * Proves `c` got no copy of `id`: a later message from `sender` to c's full JID arrives, and a
 * session gets what is sent to it in the order it was handled.
 */
async function assertNoCopy(sender: XmppClient, c: XmppClient, id: string): Promise<void> {
  const marker = send(sender, c.jid!, { body: "marker" });
  await c.next(original(marker));
  assert.equal(c.inbox.find(anyCopyOf(id)), undefined, `${c.jid} got a copy of ${id}`);
}

/** Proves `c` did not get the message `id` itself (nor a copy). */
async function assertNothing(sender: XmppClient, c: XmppClient, id: string): Promise<void> {
  await assertNoCopy(sender, c, id);
  assert.equal(c.inbox.find(original(id)), undefined, `${c.jid} got ${id}`);
}

async function closeAll(...clients: XmppClient[]): Promise<void> {
  await Promise.all(clients.map((c) => c.close()));
}

test("the server advertises carbons in its disco#info (XEP-0280 §3)", async () => {
  const c = await online(await account("romeo"), "desk");
  const info = await c.iq(xml("iq", { type: "get", to: t.domain }, xml("query", { xmlns: NS.discoInfo })));
  const features = info.getChild("query", NS.discoInfo)!.getChildren("feature").map((f) => f.attrs.var);
  assert.ok(features.includes(NS.carbons));
  await c.close();
});

describe("enabling and disabling (§4, §5, §10.1)", () => {
  test("enable and disable are answered with results, repeated ones too", async () => {
    const c = await online(await account("romeo"), "desk");
    for (const action of ["enable", "enable", "disable", "disable"] as const) {
      const reply = await setCarbons(c, action);
      assert.equal(reply.children.length, 0, "an empty result");
    }
    await c.close();
  });

  test("a disabled resource gets no more copies; another resource's choice is its own", async () => {
    const juliet = await account("juliet");
    const high = await device(juliet, "high", 5);
    const low = await device(juliet, "low", 1);
    const romeo = await online(await account("romeo"), "garden");
    const before = send(romeo, bare(juliet));
    await low.next(copyOf("received", before));

    await setCarbons(low, "disable");
    const afterDisable = send(romeo, bare(juliet));
    await high.next(original(afterDisable));
    await assertNoCopy(romeo, low, afterDisable);
    await closeAll(high, low, romeo);
  });
});

describe("received copies (§7)", () => {
  test("to the bare JID: the other enabled resources get a <received/> copy, the rest nothing more", async () => {
    const juliet = await account("juliet");
    const high = await device(juliet, "high", 5);
    const low = await device(juliet, "low", 1);
    const plain = await device(juliet, "plain", 0, false);
    const romeo = await online(await account("romeo"), "garden");
    const id = send(romeo, bare(juliet), { body: "What man art thou?" });

    const got = await high.next(original(id));
    assert.equal(forwardedIn(got, "received"), undefined, "the addressed resource gets the message itself");
    const copy = await low.next(copyOf("received", id));
    assert.equal(copy.attrs.from, bare(juliet), "a copy comes from the user's own bare JID");
    assert.equal(copy.attrs.to, low.jid);
    assert.equal(copy.attrs.type, "chat", "the copy keeps the message's type");
    const inner = forwardedIn(copy, "received")!;
    assert.equal(inner.attrs.from, romeo.jid);
    assert.equal(inner.attrs.to, bare(juliet));
    assert.equal(inner.getChildText("body"), "What man art thou?");

    await assertNoCopy(romeo, high, id);
    await assertNothing(romeo, plain, id);
    await closeAll(high, low, plain, romeo);
  });

  test("to a full JID: that resource gets the message, the other enabled ones a copy", async () => {
    const juliet = await account("juliet");
    const high = await device(juliet, "high", 5);
    const low = await device(juliet, "low", 1);
    const romeo = await online(await account("romeo"), "garden");
    const id = send(romeo, low.jid!);
    await low.next(original(id));
    await high.next(copyOf("received", id));
    await assertNoCopy(romeo, low, id);
    await closeAll(high, low, romeo);
  });

  test("the copy forwards the message as delivered, with the archive's stanza-id", async () => {
    const juliet = await account("juliet");
    const high = await device(juliet, "high", 5);
    const low = await device(juliet, "low", 1);
    const romeo = await online(await account("romeo"), "garden");
    const id = send(romeo, bare(juliet));
    const got = await high.next(original(id));
    const copy = await low.next(copyOf("received", id));
    const stamped = got.getChild("stanza-id", NS.sid);
    assert.ok(stamped, "the stand-in archive stamped the delivered message");
    assert.equal(forwardedIn(copy, "received")!.getChild("stanza-id", NS.sid)?.attrs.id, stamped.attrs.id);
    await closeAll(high, low, romeo);
  });

  test("a message kept by offline storage still reaches the enabled resources as copies", async () => {
    const keeper = await account("keeper");
    const hidden = await device(keeper, "hidden", -1);
    const romeo = await online(await account("romeo"), "garden");
    const id = send(romeo, bare(keeper));
    const copy = await hidden.next(copyOf("received", id));
    assert.equal(forwardedIn(copy, "received")!.getChildText("body"), "hello");
    await closeAll(hidden, romeo);
  });

  test("only instant messages are copied (§6.1): not groupchat, headline, nor a bodiless normal message", async () => {
    const juliet = await account("juliet");
    const high = await device(juliet, "high", 5);
    const low = await device(juliet, "low", 1);
    const romeo = await online(await account("romeo"), "garden");
    const skipped = [
      send(romeo, high.jid!, { type: "groupchat" }),
      send(romeo, high.jid!, { type: "headline" }),
      send(romeo, high.jid!, { type: "normal", body: null }, xml("x", { xmlns: "urn:example:not-im" })),
    ];
    const receipt = send(romeo, high.jid!, { type: "normal", body: null }, xml("received", { xmlns: NS.receipts, id: "earlier" }));
    const chatState = send(romeo, bare(juliet), { body: null }, xml("composing", { xmlns: NS.chatStates }));
    for (const id of [...skipped, receipt, chatState]) await high.next(original(id));
    await low.next(copyOf("received", receipt));
    await low.next(copyOf("received", chatState));
    for (const id of skipped) await assertNoCopy(romeo, low, id);
    await closeAll(high, low, romeo);
  });
});

describe("sent copies (§8)", () => {
  test("the sender's other enabled resources get a <sent/> copy; the sender and the disabled get none", async () => {
    const romeo = await account("romeo");
    const home = await device(romeo, "home", 0);
    const garden = await device(romeo, "garden", 0);
    const plain = await device(romeo, "plain", 0, false);
    const juliet = await online(await account("juliet"), "balcony");
    const id = send(home, juliet.jid!, { body: "Neither, fair saint" });
    await juliet.next(original(id));

    const copy = await garden.next(copyOf("sent", id));
    assert.equal(copy.attrs.from, bare(romeo));
    assert.equal(copy.attrs.to, garden.jid);
    const inner = forwardedIn(copy, "sent")!;
    assert.equal(inner.attrs.from, home.jid, "the forwarded message names the resource that sent it");
    assert.equal(inner.attrs.to, juliet.jid);
    assert.equal(inner.getChildText("body"), "Neither, fair saint");

    await assertNoCopy(juliet, home, id);
    await assertNoCopy(juliet, plain, id);
    await closeAll(home, garden, plain, juliet);
  });

  test("a resource that has not enabled carbons still has its messages copied to the others", async () => {
    const romeo = await account("romeo");
    const quiet = await device(romeo, "quiet", 0, false);
    const garden = await device(romeo, "garden", 0);
    const juliet = await online(await account("juliet"), "balcony");
    const id = send(quiet, juliet.jid!);
    await juliet.next(original(id));
    await garden.next(copyOf("sent", id));
    await closeAll(quiet, garden, juliet);
  });

  test("to the user's own account each resource gets it once: the original, or one <sent/> copy", async () => {
    const romeo = await account("romeo");
    const pocket = await device(romeo, "pocket", 0);
    const desk = await device(romeo, "desk", 5);
    const tablet = await device(romeo, "tablet", 1);
    const juliet = await online(await account("juliet"), "balcony");
    const id = send(pocket, bare(romeo), { body: "note to self" });
    await desk.next(original(id));
    await tablet.next(copyOf("sent", id));
    await assertNoCopy(juliet, desk, id);
    await assertNothing(juliet, pocket, id);
    await assertNoCopy(juliet, tablet, id);
    await closeAll(pocket, desk, tablet, juliet);
  });
});

describe("avoiding carbons for a single message (§9)", () => {
  test("<private/>, even without the <no-copy/> §9 pairs it with, stops copies on both sides and is removed before delivery", async () => {
    const romeo = await account("romeo");
    const juliet = await account("juliet");
    const home = await device(romeo, "home", 0);
    const garden = await device(romeo, "garden", 0);
    const high = await device(juliet, "high", 5);
    const low = await device(juliet, "low", 1);
    const id = send(home, bare(juliet), {}, xml("private", { xmlns: NS.carbons }));
    const got = await high.next(original(id));
    assert.equal(got.getChild("private", NS.carbons), undefined, "the receiving server removes <private/>");
    await assertNoCopy(high, low, id);
    await assertNoCopy(high, garden, id);
    await closeAll(home, garden, high, low);
  });

  test("the XEP-0334 <no-copy/> hint alone stops copies too", async () => {
    const romeo = await account("romeo");
    const juliet = await account("juliet");
    const home = await device(romeo, "home", 0);
    const garden = await device(romeo, "garden", 0);
    const high = await device(juliet, "high", 5);
    const low = await device(juliet, "low", 1);
    const id = send(home, bare(juliet), {}, xml("no-copy", { xmlns: NS.hints }));
    const got = await high.next(original(id));
    assert.ok(got.getChild("no-copy", NS.hints), "the hint is delivered as sent");
    await assertNoCopy(high, low, id);
    await assertNoCopy(high, garden, id);
    await closeAll(home, garden, high, low);
  });
});
