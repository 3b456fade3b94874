// End-to-end specs for server/modules/csi: XEP-0352 Client State Indication 1.0.0, as an
// inactive client sees it: the stream feature, presence and chat states held and folded, what
// is urgent flushing the queue first, <active/> flushing it, and the bound on what is held.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startTestServer, type TestServer } from "../../support/server.ts";
import { accountsOn } from "../../support/accounts.ts";
import { isPresence } from "../../support/stanzas.ts";
import type { XmppClient } from "../../../conformance/client/client.ts";
import { xml, type Element } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import roster from "../../../server/modules/roster/index.ts";
import presence from "../../../server/modules/presence/index.ts";
import message from "../../../server/modules/message/index.ts";
import carbons from "../../../server/modules/carbons/index.ts";
import sm from "../../../server/modules/sm/index.ts";
import csi from "../../../server/modules/csi/index.ts";
import { parseJid } from "../../../protocol/jid.ts";

const MAX_HELD = 8;

let t: TestServer;
before(async () => {
  t = await startTestServer({
    modules: [roster, presence, message, carbons, sm, csi],
    toml: `[modules.csi]\nmax_held = ${MAX_HELD}\n[modules.sm]\nresume_timeout_s = 10\n`,
  });
});
after(async () => {
  await t.stop();
});

const { account, setSubscription, online, settle } = accountsOn(() => t);

/** Two fresh users subscribed to each other, both online; juliet's client then goes inactive. */
async function julietInactive(): Promise<{ romeo: XmppClient; juliet: XmppClient; julietUser: string }> {
  const romeoUser = await account("romeo");
  const julietUser = await account("juliet");
  await setSubscription(romeoUser, julietUser, "both");
  await setSubscription(julietUser, romeoUser, "both");
  const juliet = await online(julietUser, "phone");
  const romeo = await online(romeoUser, "garden");
  await juliet.next(isPresence(romeo.jid!, undefined));
  await setState(juliet, "inactive");
  return { romeo, juliet, julietUser };
}

/** Sends <active/> or <inactive/> and waits until the server has processed it. */
async function setState(c: XmppClient, state: "active" | "inactive"): Promise<void> {
  c.send(xml(state, { xmlns: NS.csi }));
  await settle(c);
}

function status(c: XmppClient, text: string): void {
  c.send(xml("presence", {}, xml("status", {}, text)));
}

let counter = 0;
function chat(from: XmppClient, to: string, ...content: Element[]): string {
  const id = `m${++counter}`;
  from.send(xml("message", { to, id, type: "chat" }, ...content));
  return id;
}
const body = (text: string) => xml("body", {}, text);
const chatState = (state: string) => xml(state, { xmlns: NS.chatStates });

/** Everything `c` receives, in order of arrival, up to and including the first that matches `last`. */
async function arrivals(c: XmppClient, last: (el: Element) => boolean): Promise<Element[]> {
  const seen: Element[] = [];
  for (let i = 0; i < 200; i++) {
    const el = await c.next();
    seen.push(el);
    if (last(el)) return seen;
  }
  throw new Error("too many stanzas before the expected one");
}

const withId = (id: string) => (el: Element) => el.attrs.id === id;

/** A short description of what came from `from`, to compare sequences. */
function describeFrom(from: string, seen: Element[]): string[] {
  return seen
    .filter((el) => el.attrs.from === from)
    .map((el) => {
      if (el.name === "presence") return `presence:${el.getChildText("status") ?? ""}`;
      const state = el.getChildElements().find((c) => c.getNS() === NS.chatStates);
      if (el.getChild("body")) return `message:${el.getChildText("body")}`;
      if (state) return `state:${state.name}`;
      if (el.getChild("received", NS.receipts)) return `receipt:${el.getChild("received", NS.receipts)!.attrs.id}`;
      return `${el.name}:${el.attrs.id ?? ""}`;
    });
}

test("the <csi/> stream feature is offered after authentication, not before (§4.1)", async () => {
  const anonymous = await t.connect();
  assert.equal(anonymous.features?.getChild("csi", NS.csi), undefined);
  anonymous.destroy();
  const c = await t.login(await account("romeo"));
  assert.ok(c.features?.getChild("csi", NS.csi), "offered in the features after SASL");
  await c.close();
});

describe("while inactive", () => {
  test("several presence updates from a contact arrive as the last one, after <active/>", async () => {
    const { romeo, juliet } = await julietInactive();
    for (const text of ["one", "two", "three"]) status(romeo, text);
    await settle(romeo);
    await setState(juliet, "active");
    // What <active/> released was written before the answer setState waited for: it is all in the inbox.
    assert.deepEqual(describeFrom(romeo.jid!, juliet.inbox), ["presence:three"]);
    await Promise.all([romeo.close(), juliet.close()]);
  });

  test("a message with a body flushes the held presence first, in order", async () => {
    const { romeo, juliet } = await julietInactive();
    status(romeo, "away");
    status(romeo, "back");
    const id = chat(romeo, juliet.jid!, body("hello"));
    const seen = await arrivals(juliet, withId(id));
    assert.deepEqual(describeFrom(romeo.jid!, seen), ["presence:back", "message:hello"]);
    await Promise.all([romeo.close(), juliet.close()]);
  });

  test("chat states are held and folded to the last one; a later presence moves behind them", async () => {
    const { romeo, juliet } = await julietInactive();
    status(romeo, "first");
    chat(romeo, juliet.jid!, chatState("composing"));
    chat(romeo, juliet.jid!, chatState("paused"));
    chat(romeo, juliet.jid!, chatState("composing"));
    status(romeo, "second");
    const id = chat(romeo, juliet.jid!, chatState("active"), body("are you there?"));
    const seen = await arrivals(juliet, withId(id));
    assert.deepEqual(describeFrom(romeo.jid!, seen), ["state:composing", "presence:second", "message:are you there?"]);
    await Promise.all([romeo.close(), juliet.close()]);
  });

  test("<active/> sends everything held in the order it came, receipts unfolded", async () => {
    const { romeo, juliet } = await julietInactive();
    const receipt = (id: string) => xml("received", { xmlns: NS.receipts, id });
    chat(romeo, juliet.jid!, receipt("a"));
    status(romeo, "busy");
    chat(romeo, juliet.jid!, receipt("b"));
    chat(romeo, juliet.jid!, chatState("gone"));
    await settle(romeo);
    await setState(juliet, "active");
    assert.deepEqual(describeFrom(romeo.jid!, juliet.inbox), ["receipt:a", "presence:busy", "receipt:b", "state:gone"]);
    await Promise.all([romeo.close(), juliet.close()]);
  });

  test("a subscription request is urgent", async () => {
    const { romeo, juliet, julietUser } = await julietInactive();
    status(romeo, "idle");
    const nurse = await online(await account("nurse"), "desk");
    nurse.send(xml("presence", { to: `${julietUser}@${t.domain}`, type: "subscribe", id: "sub1" }));
    const seen = await arrivals(juliet, (el) => el.name === "presence" && el.attrs.type === "subscribe");
    assert.deepEqual(describeFrom(romeo.jid!, seen), ["presence:idle"], "held presence went first");
    await Promise.all([romeo.close(), juliet.close(), nurse.close()]);
  });

  test(`the queue is bounded: the ${MAX_HELD}th held stanza sends them all`, async () => {
    const { romeo, juliet } = await julietInactive();
    const ids: string[] = [];
    for (let i = 1; i <= MAX_HELD; i++) ids.push(chat(romeo, juliet.jid!, xml("received", { xmlns: NS.receipts, id: `r${i}` })));
    const seen = await arrivals(juliet, withId(ids.at(-1)!));
    assert.deepEqual(describeFrom(romeo.jid!, seen), ids.map((_, i) => `receipt:r${i + 1}`));
    await Promise.all([romeo.close(), juliet.close()]);
  });
});

test("with carbons: a copy of a received message is urgent, a copy of a sent one waits its turn", async () => {
  const { romeo, juliet, julietUser } = await julietInactive();
  const desk = await online(julietUser, "desk", xml("priority", {}, "5"));
  for (const c of [juliet, desk]) await c.iq(xml("iq", { type: "set" }, xml("enable", { xmlns: NS.carbons })));
  status(romeo, "before");
  await settle(romeo);
  const fromDesk = chat(desk, romeo.jid!, body("sent from the desk"));
  await romeo.next(withId(fromDesk));
  status(romeo, "after");
  const toJuliet = chat(romeo, `${julietUser}@${t.domain}`, body("for juliet"));
  await desk.next(withId(toJuliet));
  const seen = await arrivals(juliet, (el) => el.getChild("received", NS.carbons) !== undefined);
  const order = seen
    .filter((el) => el.attrs.from === romeo.jid || el.getChild("sent", NS.carbons) || el.getChild("received", NS.carbons))
    .map((el) => (el.name === "presence" ? `presence:${el.getChildText("status")}` : el.getChild("sent", NS.carbons) ? "sent-copy" : "received-copy"));
  // Had the sent copy been urgent, "before" would have gone out ahead of it.
  assert.deepEqual(order, ["sent-copy", "presence:after", "received-copy"]);
  await Promise.all([romeo.close(), juliet.close(), desk.close()]);
});

test("with stream management: what was held survives a lost connection, and the resumed stream is active (§5.2)", async () => {
  const { romeo, juliet, julietUser } = await julietInactive();
  juliet.send(xml("enable", { xmlns: NS.sm, resume: "true" }));
  const enabled = await juliet.next((el) => el.getNS() === NS.sm && el.getName() === "enabled");
  const receipt = chat(romeo, juliet.jid!, xml("received", { xmlns: NS.receipts, id: "held" }));
  await settle(romeo);

  juliet.destroy();
  const session = () => t.server.sessions.get(parseJid(juliet.jid!));
  for (let i = 0; i < 100 && !session()?.hibernating; i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(session()?.hibernating, "the server noticed the lost connection");

  const again = await t.connect();
  await again.login({ username: julietUser, password: `pass-${julietUser}`, noBind: true });
  again.send(xml("resume", { xmlns: NS.sm, previd: enabled.attrs.id, h: "0" }));
  await again.next((el) => el.getNS() === NS.sm && el.getName() === "resumed");
  await again.next(withId(receipt));
  // Active again without saying so: a presence update is not held.
  status(romeo, "on the resumed stream");
  await again.next(isPresence(romeo.jid!, undefined, "on the resumed stream"));
  await Promise.all([romeo.close(), again.close()]);
});
