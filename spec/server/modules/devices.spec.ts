// Three devices of one account, end to end with the built-in modules: XEP-0280 Message Carbons
// 1.0.1, XEP-0198 Stream Management 1.6.1 (resumption), XEP-0313 MAM 0.7.5 with XEP-0359 0.7
// stanza-ids, XEP-0184 Delivery Receipts 1.4.0 and XEP-0333 Chat Markers 0.4. The promise under
// test: whichever device a user looks at (always online, back from a dropped connection, or
// logged in later), the history is the same, with the same ids, and nothing arrives twice.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { xml, type Element } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import { startTestServer, type TestServer } from "../../support/server.ts";
import type { XmppClient } from "../../../conformance/client/client.ts";

let t: TestServer;
before(async () => {
  t = await startTestServer({ users: ["alice", "bob"] });
});
after(async () => {
  await t.stop();
});

const STANZAS = new Set(["message", "presence", "iq"]);
const isSm = (name: string) => (el: Element) => el.getNS() === NS.sm && el.getName() === name;
const withBody = (body: string) => (el: Element) => el.name === "message" && el.getChildText("body") === body;

function stanzaIdBy(message: Element, by: string): string | undefined {
  return message.getChildren("stanza-id", NS.sid).find((s) => s.attrs.by === by)?.attrs.id;
}

interface ArchivedMessage {
  archiveId: string;
  id: string | undefined;
  from: string | undefined;
  to: string | undefined;
  /** Body, or the kind of receipt/marker and the id it refers to. */
  content: string;
  /** The stanza-id by the archive's owner inside the archived copy, when it carries one. */
  innerStanzaId: string | undefined;
}

function contentOf(message: Element): string {
  const body = message.getChildText("body");
  if (body !== null) return `body:${body}`;
  const receipt = message.getChild("received", NS.receipts);
  if (receipt) return `received:${receipt.attrs.id}`;
  const displayed = message.getChild("displayed", NS.chatMarkers);
  if (displayed) return `displayed:${displayed.attrs.id}`;
  return "other";
}

/** The account's whole archive, oldest first, as one of its devices sees it. */
async function history(c: XmppClient, owner: string, queryid: string): Promise<ArchivedMessage[]> {
  const result = await c.iq(xml("iq", { type: "set", id: `mam-${queryid}` }, xml("query", { xmlns: NS.mam, queryid })));
  assert.equal(result.attrs.type, "result", `MAM query answered ${result.toString()}`);
  assert.equal(result.getChild("fin", NS.mam)?.attrs.complete, "true", "a small archive fits in one page");
  // Results come before the IQ result on the same stream (XEP-0313 §4.2), so they are all queued.
  const results = c.inbox.filter((el) => el.name === "message" && el.getChild("result", NS.mam)?.attrs.queryid === queryid);
  for (const r of results) c.inbox.splice(c.inbox.indexOf(r), 1);
  return results.map((m) => {
    const r = m.getChild("result", NS.mam)!;
    const inner = r.getChild("forwarded", NS.forward)!.getChild("message")!;
    return {
      archiveId: r.attrs.id!,
      id: inner.attrs.id,
      from: inner.attrs.from,
      to: inner.attrs.to,
      content: contentOf(inner),
      innerStanzaId: stanzaIdBy(inner, owner),
    };
  });
}

async function online(user: string, resource: string): Promise<XmppClient> {
  const c = await t.login(user, { resource });
  c.send(xml("presence"));
  await c.next((el) => el.name === "presence" && el.attrs.from === c.jid);
  return c;
}

describe("three devices of one account", () => {
  test("online, resumed and late devices end with the same archive, ids and order; receipts and markers round-trip and are archived", async () => {
    const alice = await online("alice", "desk");
    const phone = await online("bob", "phone");
    const carbons = await phone.iq(xml("iq", { type: "set" }, xml("enable", { xmlns: NS.carbons })));
    assert.equal(carbons.attrs.type, "result");

    // The tablet counts every stanza it takes in, as XEP-0198 §4 asks of a client, to resume with the right h.
    const tablet = await online("bob", "tablet");
    // What came before <enabled/> is outside the count: a round trip, then forget it.
    await tablet.iq(xml("iq", { type: "get", to: "localhost" }, xml("ping", { xmlns: NS.ping })));
    tablet.inbox.splice(0);
    tablet.send(xml("enable", { xmlns: NS.sm, resume: "true" }));
    const enabled = await tablet.next(isSm("enabled"));
    assert.equal(enabled.attrs.resume, "true");
    const previd = enabled.attrs.id!;
    let tabletHandled = 0;
    const tabletBodies: string[] = [];
    const tabletTake = async (match: (el: Element) => boolean): Promise<Element> => {
      const el = await tablet.next(match);
      if (STANZAS.has(el.name)) tabletHandled++;
      return el;
    };

    // 1. Both online devices get the first message, with the same stanza-id by bob.
    alice.send(
      xml("message", { to: "bob@localhost", type: "chat", id: "m1" }, xml("body", {}, "one"), xml("request", { xmlns: NS.receipts }), xml("markable", { xmlns: NS.chatMarkers })),
    );
    const onPhone1 = await phone.next(withBody("one"));
    const onTablet1 = await tabletTake(withBody("one"));
    tabletBodies.push("one");
    const sid1 = stanzaIdBy(onPhone1, "bob@localhost");
    assert.ok(sid1, "the recipient's server stamps a stanza-id by the recipient");
    assert.equal(stanzaIdBy(onTablet1, "bob@localhost"), sid1);
    assert.equal(onPhone1.getChild("request", NS.receipts) !== undefined, true, "the receipt request passes through");
    assert.equal(onPhone1.getChild("markable", NS.chatMarkers) !== undefined, true, "the markable hint passes through");

    // 2. The phone answers with a receipt and a displayed marker; alice gets both unchanged.
    phone.send(xml("message", { to: "alice@localhost/desk", id: "r1" }, xml("received", { xmlns: NS.receipts, id: "m1" })));
    phone.send(xml("message", { to: "alice@localhost/desk", type: "chat", id: "d1" }, xml("displayed", { xmlns: NS.chatMarkers, id: "m1" })));
    const receipt = await alice.next((el) => el.name === "message" && el.attrs.id === "r1");
    const marker = await alice.next((el) => el.name === "message" && el.attrs.id === "d1");
    assert.equal(receipt.attrs.from, "bob@localhost/phone");
    assert.equal(receipt.getChild("received", NS.receipts)?.attrs.id, "m1");
    assert.equal(marker.getChild("displayed", NS.chatMarkers)?.attrs.id, "m1");
    assert.equal(stanzaIdBy(receipt, "bob@localhost"), undefined, "the sender's archive id does not leave its server");

    // 3. The tablet's TCP connection dies without a word, after it has taken what is queued.
    for (const el of tablet.inbox.splice(0)) if (STANZAS.has(el.name)) tabletHandled++;
    tablet.destroy();
    await new Promise((r) => setTimeout(r, 100));

    // 4. Alice writes twice while the tablet is away; the phone gets both at once.
    for (const [id, body] of [["m2", "two"], ["m3", "three"]]) {
      alice.send(xml("message", { to: "bob@localhost", type: "chat", id }, xml("body", {}, body)));
    }
    const onPhone2 = await phone.next(withBody("two"));
    const onPhone3 = await phone.next(withBody("three"));
    assert.ok(await alice.nothing((el) => el.attrs.type === "error", 200), "the hibernating tablet still counts: no bounce");

    // 5. The tablet resumes and gets what it missed, once, with the ids the phone saw.
    const resumed = await t.connect();
    await resumed.login({ username: "bob", password: "pass-bob", noBind: true });
    resumed.send(xml("resume", { xmlns: NS.sm, previd, h: String(tabletHandled) }));
    const ok = await resumed.next((el) => el.getNS() === NS.sm && (el.getName() === "resumed" || el.getName() === "failed"));
    assert.equal(ok.getName(), "resumed", ok.toString());
    const onTablet2 = await resumed.next(withBody("two"));
    const onTablet3 = await resumed.next(withBody("three"));
    tabletBodies.push("two", "three");
    assert.equal(stanzaIdBy(onTablet2, "bob@localhost"), stanzaIdBy(onPhone2, "bob@localhost"));
    assert.equal(stanzaIdBy(onTablet3, "bob@localhost"), stanzaIdBy(onPhone3, "bob@localhost"));
    // A round trip on the resumed stream: anything sent again would have come before its answer.
    await resumed.iq(xml("iq", { type: "get", to: "localhost" }, xml("ping", { xmlns: NS.ping })));
    const again = resumed.inbox.filter((el) => el.name === "message" && el.getChildText("body") !== null);
    assert.deepEqual(again.map((m) => m.getChildText("body")), [], "nothing the tablet already had comes twice");

    // 6. The laptop logs in later; a fourth message reaches all three devices.
    const laptop = await online("bob", "laptop");
    alice.send(xml("message", { to: "bob@localhost", type: "chat", id: "m4" }, xml("body", {}, "four")));
    const sid4 = stanzaIdBy(await phone.next(withBody("four")), "bob@localhost");
    assert.equal(stanzaIdBy(await resumed.next(withBody("four")), "bob@localhost"), sid4);
    assert.equal(stanzaIdBy(await laptop.next(withBody("four")), "bob@localhost"), sid4);
    tabletBodies.push("four");
    assert.deepEqual(tabletBodies, ["one", "two", "three", "four"]);

    // 7. Every device reads the same history: same messages, same ids, same order.
    const onPhone = await history(phone, "bob@localhost", "phone");
    const onTablet = await history(resumed, "bob@localhost", "tablet");
    const onLaptop = await history(laptop, "bob@localhost", "laptop");
    assert.deepEqual(onTablet, onPhone);
    assert.deepEqual(onLaptop, onPhone);
    assert.deepEqual(
      onPhone.map((m) => m.content),
      ["body:one", "received:m1", "displayed:m1", "body:two", "body:three", "body:four"],
    );
    const incoming = onPhone.filter((m) => m.content.startsWith("body:"));
    assert.deepEqual(
      incoming.map((m) => m.archiveId),
      [sid1, stanzaIdBy(onPhone2, "bob@localhost"), stanzaIdBy(onPhone3, "bob@localhost"), sid4],
      "the live stanza-ids are the archive's ids",
    );
    for (const m of incoming) assert.equal(m.innerStanzaId, m.archiveId, "the archived copy carries its own stanza-id");
    assert.equal(new Set(onPhone.map((m) => m.archiveId)).size, onPhone.length, "ids are unique");

    // 8. Alice's own archive has the receipt and the marker she received, under her ids.
    const onDesk = await history(alice, "alice@localhost", "desk");
    const fromBob = onDesk.filter((m) => m.from === "bob@localhost/phone");
    assert.deepEqual(fromBob.map((m) => m.content), ["received:m1", "displayed:m1"]);
    assert.equal(fromBob[0].archiveId, stanzaIdBy(receipt, "alice@localhost"));
    assert.equal(fromBob[1].archiveId, stanzaIdBy(marker, "alice@localhost"));

    for (const [name, c] of [["phone", phone], ["tablet", resumed], ["laptop", laptop]] as const) {
      const extra = c.inbox.filter((el) => el.name === "message" && el.getChildText("body") !== null);
      assert.deepEqual(extra.map((m) => m.getChildText("body")), [], `${name} got no message twice`);
    }
    for (const c of [alice, phone, resumed, laptop]) await c.close();
  });
});
