// End-to-end specs for server/modules/mam: XEP-0313 v0.7.5 message archives as clients see them —
// XEP-0359 stanza-ids on what they receive, the same history and ids on every device, queries
// with filters and RSM paging both ways, #extended ids and metadata, what is and is not
// archived (XEP-0334 hints, chat states, receipts and markers), XEP-0441 preferences, and who
// may query.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startTestServer, type TestServer } from "../../support/server.ts";
import { accountsOn } from "../../support/accounts.ts";
import { assertError } from "../../support/stanzas.ts";
import { xml, type Element } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import { parseDelay } from "../../../protocol/delay.ts";
import { formatDateTime } from "../../../protocol/datetime.ts";
import type { XmppClient } from "../../../conformance/client/client.ts";
import roster from "../../../server/modules/roster/index.ts";
import presence from "../../../server/modules/presence/index.ts";
import message from "../../../server/modules/message/index.ts";
import offline from "../../../server/modules/offline/index.ts";
import disco from "../../../server/modules/disco/index.ts";
import mam from "../../../server/modules/mam/index.ts";

let t: TestServer;
before(async () => {
  t = await startTestServer({ modules: [roster, presence, message, offline, mam, disco] });
});
after(async () => {
  await t.stop();
});

const { account, bare, connected, online, settle, setSubscription } = accountsOn(() => t);

let counter = 0;
function chat(c: XmppClient, to: string, body: string | null, ...extra: Element[]): string {
  const id = `m${++counter}`;
  c.send(xml("message", { to, type: "chat", id }, body === null ? null : xml("body", {}, body), ...extra));
  return id;
}

const withId = (id: string) => (el: Element) => el.name === "message" && el.attrs.id === id;
const stanzaIdOf = (el: Element, by: string) => el.getChildren("stanza-id", NS.sid).find((s) => s.attrs.by === by)?.attrs.id;

interface Result {
  id: string;
  message: Element;
  stamp: Date | undefined;
}

interface Answer {
  results: Result[];
  fin: Element;
  iq: Element;
}

interface QueryOptions {
  with?: string;
  start?: Date;
  end?: Date;
  beforeId?: string;
  afterId?: string;
  ids?: string[];
  max?: number;
  after?: string;
  before?: string | true;
  index?: number;
  flip?: boolean;
  to?: string;
  fields?: Array<[string, string]>;
}

function queryElement(queryid: string, o: QueryOptions): Element {
  const fields: Array<[string, string]> = [["FORM_TYPE", NS.mam]];
  if (o.with) fields.push(["with", o.with]);
  if (o.start) fields.push(["start", formatDateTime(o.start)]);
  if (o.end) fields.push(["end", formatDateTime(o.end)]);
  if (o.beforeId) fields.push(["before-id", o.beforeId]);
  if (o.afterId) fields.push(["after-id", o.afterId]);
  for (const id of o.ids ?? []) fields.push(["ids", id]);
  fields.push(...(o.fields ?? []));
  const byVar = new Map<string, string[]>();
  for (const [name, value] of fields) byVar.set(name, [...(byVar.get(name) ?? []), value]);
  const form = xml(
    "x",
    { xmlns: NS.dataForms, type: "submit" },
    ...[...byVar].map(([name, values]) =>
      xml("field", { var: name, type: name === "FORM_TYPE" ? "hidden" : name === "ids" ? "list-multi" : undefined }, ...values.map((v) => xml("value", {}, v))),
    ),
  );
  const set = xml("set", { xmlns: NS.rsm });
  if (o.max !== undefined) set.append(xml("max", {}, String(o.max)));
  if (o.after !== undefined) set.append(xml("after", {}, o.after));
  if (o.before !== undefined) set.append(xml("before", {}, o.before === true ? null : o.before));
  if (o.index !== undefined) set.append(xml("index", {}, String(o.index)));
  return xml("query", { xmlns: NS.mam, queryid }, form, set.children.length ? set : null, o.flip ? xml("flip-page") : null);
}

/** Sends a query and gathers its results, which arrive before the IQ result (§4.2). */
async function query(c: XmppClient, o: QueryOptions = {}): Promise<Answer> {
  const queryid = `q${++counter}`;
  const iq = await c.iq(xml("iq", { type: "set", to: o.to }, queryElement(queryid, o)));
  const results: Result[] = [];
  for (let i = c.inbox.length - 1; i >= 0; i--) {
    const result = c.inbox[i]!.getChild("result", NS.mam);
    if (c.inbox[i]!.name !== "message" || result?.attrs.queryid !== queryid) continue;
    const forwarded = result.getChild("forwarded", NS.forward)!;
    results.unshift({ id: result.attrs.id!, message: forwarded.getChild("message")!, stamp: parseDelay(forwarded)?.stamp });
    c.inbox.splice(i, 1);
  }
  return { results, fin: iq.getChild("fin", NS.mam)!, iq };
}

async function ok(c: XmppClient, o: QueryOptions = {}): Promise<Answer> {
  const answer = await query(c, o);
  assert.equal(answer.iq.attrs.type, "result", JSON.stringify(answer.iq.toString()));
  return answer;
}

const bodies = (a: Answer) => a.results.map((r) => r.message.getChildText("body"));
const rsmOf = (a: Answer) => {
  const set = a.fin.getChild("set", NS.rsm)!;
  return { first: set.getChildText("first"), last: set.getChildText("last"), count: set.getChildText("count"), index: set.getChild("first")?.attrs.index };
};

/** Two accounts, each online, and a way to talk. */
async function pair(): Promise<{ romeo: string; juliet: string; r: XmppClient; j: XmppClient }> {
  const romeo = await account("romeo");
  const juliet = await account("juliet");
  return { romeo, juliet, r: await online(romeo), j: await online(juliet) };
}

describe("archiving as messages flow", () => {
  test("the recipient gets the message with its archive's stanza-id, a spoofed one removed; both archives hold it", async () => {
    const { romeo, juliet, r, j } = await pair();
    const id = chat(r, bare(juliet), "Wherefore art thou", xml("stanza-id", { xmlns: NS.sid, by: bare(juliet), id: "spoofed" }), xml("origin-id", { xmlns: NS.sid, id: "o-1" }));
    const got = await j.next(withId(id));
    const ids = got.getChildren("stanza-id", NS.sid);
    assert.equal(ids.length, 1, "one stanza-id, and it is the archive's");
    assert.equal(ids[0]!.attrs.by, bare(juliet));
    assert.notEqual(ids[0]!.attrs.id, "spoofed");
    assert.equal(stanzaIdOf(got, bare(romeo)), undefined, "nothing of the sender's archive reaches the contact");

    const mine = await ok(j);
    assert.equal(mine.results.length, 1);
    assert.equal(mine.results[0]!.id, ids[0]!.attrs.id);
    assert.equal(mine.results[0]!.message.getChildText("body"), "Wherefore art thou");
    assert.equal(mine.results[0]!.message.attrs.from, r.jid);
    assert.equal(mine.results[0]!.message.getNS(), NS.client);
    assert.ok(mine.results[0]!.stamp && Math.abs(mine.results[0]!.stamp.getTime() - Date.now()) < 60_000);
    assert.equal(mine.fin.attrs.complete, "true");
    assert.deepEqual(rsmOf(mine), { first: ids[0]!.attrs.id, last: ids[0]!.attrs.id, count: "1", index: "0" });

    const his = await ok(r);
    assert.deepEqual(bodies(his), ["Wherefore art thou"]);
    assert.notEqual(his.results[0]!.id, ids[0]!.attrs.id, "each archive has its own ids");
    assert.equal(his.results[0]!.message.getChild("origin-id", NS.sid)?.attrs.id, "o-1");
  });

  test("result messages go to the querying session only, from the account, with the queryid", async () => {
    const { juliet, r, j } = await pair();
    const j2 = await online(juliet, "second");
    chat(r, bare(juliet), "hello");
    await j.next((el) => el.getChildText("body") === "hello");
    const queryid = "only-me";
    const iq = await j.iq(xml("iq", { type: "set" }, xml("query", { xmlns: NS.mam, queryid })));
    assert.equal(iq.attrs.type, "result");
    const result = j.inbox.find((el) => el.getChild("result", NS.mam)?.attrs.queryid === queryid)!;
    assert.equal(result.attrs.to, j.jid);
    assert.equal(result.attrs.from, bare(juliet));
    assert.equal(await j2.nothing((el) => el.getChild("result", NS.mam) !== undefined, 150), true);
  });

  test("every device of an account ends with the same history and the same ids, including one that was offline", async () => {
    const romeo = await account("romeo");
    const juliet = await account("juliet");
    const r = await online(romeo);
    const phone = await online(juliet, "phone");
    const laptop = await online(juliet, "laptop");
    const sent = [chat(r, bare(juliet), "one"), chat(r, `${bare(juliet)}/phone`, "two"), chat(r, bare(juliet), "three")];
    const seen = await phone.next(withId(sent[0]!));
    await phone.next(withId(sent[1]!));
    await laptop.next(withId(sent[2]!));
    const tablet = await online(juliet, "tablet");
    const histories = await Promise.all([phone, laptop, tablet].map((c) => ok(c)));
    for (const h of histories) assert.deepEqual(bodies(h), ["one", "two", "three"]);
    const idLists = histories.map((h) => h.results.map((x) => x.id));
    assert.deepEqual(idLists[1], idLists[0]);
    assert.deepEqual(idLists[2], idLists[0]);
    assert.equal(idLists[0]![0], stanzaIdOf(seen, bare(juliet)));
  });

  test("a message stored offline keeps its stanza-id, the one the archive has", async () => {
    const romeo = await account("romeo");
    const juliet = await account("juliet");
    const r = await online(romeo);
    const id = chat(r, bare(juliet), "while you slept");
    await settle(r);
    const j = await connected(juliet);
    j.send(xml("presence"));
    const got = await j.next(withId(id));
    assert.ok(got.getChild("delay", NS.delay), "delivered from offline storage");
    const history = await ok(j);
    assert.equal(history.results.length, 1);
    assert.equal(stanzaIdOf(got, bare(juliet)), history.results[0]!.id);
  });

  test("a message to one's own account is archived once", async () => {
    const juliet = await account("juliet");
    const j = await online(juliet);
    const id = chat(j, bare(juliet), "note to self");
    const got = await j.next(withId(id));
    const history = await ok(j);
    assert.deepEqual(bodies(history), ["note to self"]);
    assert.equal(history.results[0]!.id, stanzaIdOf(got, bare(juliet)));
  });

  test("content is archived — bodies, receipts, markers, encrypted payloads; chat states, errors, headlines and hinted messages are not", async () => {
    const { juliet, r, j } = await pair();
    chat(r, bare(juliet), null, xml("composing", { xmlns: NS.chatStates }));
    const receipt = chat(r, bare(juliet), null, xml("received", { xmlns: NS.receipts, id: "x1" }));
    const marker = chat(r, bare(juliet), null, xml("displayed", { xmlns: NS.chatMarkers, id: "x1" }), xml("active", { xmlns: NS.chatStates }));
    const omemo = chat(r, bare(juliet), null, xml("encrypted", { xmlns: NS.omemoLegacy }, xml("payload", {}, "AAAA")), xml("store", { xmlns: NS.hints }));
    const noStore = chat(r, bare(juliet), "forget me", xml("no-store", { xmlns: NS.hints }));
    const noPermanent = chat(r, bare(juliet), "do not keep", xml("no-permanent-store", { xmlns: NS.hints }));
    const forced = chat(r, bare(juliet), null, xml("gone", { xmlns: NS.chatStates }), xml("store", { xmlns: NS.hints }));
    r.send(xml("message", { to: bare(juliet), type: "headline", id: "h1" }, xml("body", {}, "news")));
    r.send(xml("message", { to: bare(juliet), type: "groupchat", id: "g1" }, xml("body", {}, "room talk")));
    const last = chat(r, bare(juliet), "the end");
    const notArchived = await j.next(withId(noStore));
    assert.equal(stanzaIdOf(notArchived, bare(juliet)), undefined, "no id for what is not archived");
    await j.next(withId(noPermanent));
    await j.next(withId(last));
    const history = await ok(j);
    assert.deepEqual(history.results.map((x) => x.message.attrs.id), [receipt, marker, omemo, forced, last]);
  });
});

describe("queries", () => {
  let romeo: string;
  let juliet: string;
  let nurse: string;
  let j: XmppClient;
  const ids: string[] = [];
  let midpoint: Date;
  before(async () => {
    romeo = await account("romeo");
    juliet = await account("juliet");
    nurse = await account("nurse");
    const r = await online(romeo, "orchard");
    const n = await online(nurse);
    j = await online(juliet);
    // 12 messages: even ones from Romeo, odd ones from the Nurse; a pause in the middle.
    for (let i = 0; i < 12; i++) {
      if (i === 6) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        midpoint = new Date();
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const id = chat(i % 2 === 0 ? r : n, bare(juliet), `b${i}`);
      const got = await j.next(withId(id));
      ids.push(stanzaIdOf(got, bare(juliet))!);
    }
  });

  const texts = (from: number, to: number, step = 1) => {
    const out: string[] = [];
    for (let i = from; i < to; i += step) out.push(`b${i}`);
    return out;
  };

  test("pages forwards with RSM <after/>, and says when it is complete", async () => {
    const first = await ok(j, { max: 5 });
    assert.deepEqual(bodies(first), texts(0, 5));
    assert.equal(first.fin.attrs.complete, undefined);
    assert.deepEqual(rsmOf(first), { first: ids[0], last: ids[4], count: "12", index: "0" });
    const second = await ok(j, { max: 5, after: ids[4] });
    assert.deepEqual(bodies(second), texts(5, 10));
    const third = await ok(j, { max: 5, after: ids[9] });
    assert.deepEqual(bodies(third), texts(10, 12));
    assert.equal(third.fin.attrs.complete, "true");
  });

  test("pages backwards from the end with RSM <before/>, each page in chronological order", async () => {
    const last = await ok(j, { max: 5, before: true });
    assert.deepEqual(bodies(last), texts(7, 12));
    assert.equal(rsmOf(last).index, "7");
    assert.equal(last.fin.attrs.complete, undefined);
    const earlier = await ok(j, { max: 5, before: ids[7] });
    assert.deepEqual(bodies(earlier), texts(2, 7));
    const earliest = await ok(j, { max: 5, before: ids[2] });
    assert.deepEqual(bodies(earliest), texts(0, 2));
    assert.equal(earliest.fin.attrs.complete, "true");
  });

  test("filters by contact (bare or full JID) and by time, and pages within the filter", async () => {
    assert.deepEqual(bodies(await ok(j, { with: bare(romeo) })), texts(0, 12, 2));
    assert.deepEqual(bodies(await ok(j, { with: `${bare(romeo)}/orchard` })), texts(0, 12, 2));
    assert.deepEqual(bodies(await ok(j, { with: `${bare(romeo)}/elsewhere` })), []);
    const nursePage = await ok(j, { with: bare(nurse), max: 2, before: true });
    assert.deepEqual(bodies(nursePage), ["b9", "b11"]);
    assert.equal(rsmOf(nursePage).count, "6");
    assert.deepEqual(bodies(await ok(j, { start: midpoint })), texts(6, 12));
    assert.deepEqual(bodies(await ok(j, { end: midpoint })), texts(0, 6));
    assert.deepEqual(bodies(await ok(j, { start: midpoint, with: bare(romeo), max: 2 })), ["b6", "b8"]);
    const empty = await ok(j, { end: new Date(0) });
    assert.deepEqual(empty.results, []);
    assert.equal(empty.fin.attrs.complete, "true");
  });

  test("#extended: before-id and after-id bound the set, ids fetch exactly, flip-page reverses the page", async () => {
    assert.deepEqual(bodies(await ok(j, { afterId: ids[2], beforeId: ids[6] })), texts(3, 6));
    const fromEnd = await ok(j, { afterId: ids[2], beforeId: ids[9], max: 2, before: true });
    assert.deepEqual(bodies(fromEnd), ["b7", "b8"]);
    assert.equal(rsmOf(fromEnd).count, "6");
    assert.deepEqual(bodies(await ok(j, { ids: [ids[8]!, ids[1]!] })), ["b1", "b8"]);
    assert.deepEqual(bodies(await ok(j, { max: 3, flip: true })), ["b2", "b1", "b0"]);
    const flipped = await ok(j, { max: 3, flip: true });
    assert.deepEqual(rsmOf(flipped).first, ids[0]);
  });

  test("an id the archive does not hold is item-not-found, wherever it is named", async () => {
    for (const o of [{ after: "nope" }, { before: "nope" }, { afterId: "nope" }, { beforeId: "nope" }, { ids: [ids[0]!, "nope"] }] satisfies QueryOptions[]) {
      const answer = await query(j, o);
      assertError(answer.iq, "item-not-found");
    }
  });

  test("RSM max=0 gives the count alone; index jumps into the set", async () => {
    const countOnly = await ok(j, { max: 0 });
    assert.deepEqual(countOnly.results, []);
    assert.equal(rsmOf(countOnly).count, "12");
    const jumped = await ok(j, { max: 2, index: 10 });
    assert.deepEqual(bodies(jumped), ["b10", "b11"]);
    assert.equal(rsmOf(jumped).index, "10");
  });

  test("metadata names the first and last message", async () => {
    const answer = await j.iq(xml("iq", { type: "get" }, xml("metadata", { xmlns: NS.mam })));
    const md = answer.getChild("metadata", NS.mam)!;
    assert.equal(md.getChild("start")?.attrs.id, ids[0]);
    assert.equal(md.getChild("end")?.attrs.id, ids[11]);
    assert.ok(md.getChild("start")?.attrs.timestamp);
  });

  test("malformed queries are bad-request, unknown fields feature-not-implemented, other archives forbidden", async () => {
    assertError((await query(j, { fields: [["start", "last tuesday"]] })).iq, "bad-request");
    assertError((await query(j, { fields: [["with", "not@a@jid"]] })).iq, "bad-request");
    assertError((await query(j, { fields: [["{urn:xmpp:fulltext:0}fulltext", "love"]] })).iq, "feature-not-implemented");
    const badRsm = await j.iq(xml("iq", { type: "set" }, xml("query", { xmlns: NS.mam }, xml("set", { xmlns: NS.rsm }, xml("max", {}, "many")))));
    assertError(badRsm, "bad-request");
    assertError((await query(j, { to: bare(romeo) })).iq, "forbidden");
    const prefsOfOther = await j.iq(xml("iq", { type: "get", to: bare(romeo) }, xml("prefs", { xmlns: NS.mam })));
    assertError(prefsOfOther, "forbidden");
    // To one's own bare JID is the same as no 'to'.
    assert.deepEqual(bodies(await ok(j, { to: bare(juliet), max: 1 })), ["b0"]);
  });
});

test("the account advertises MAM and #extended, and offers the query form", async () => {
  const juliet = await account("juliet");
  const j = await online(juliet);
  const info = await j.iq(xml("iq", { type: "get", to: bare(juliet) }, xml("query", { xmlns: NS.discoInfo })));
  const features = info.getChild("query", NS.discoInfo)!.getChildren("feature").map((f) => f.attrs.var);
  assert.ok(features.includes(NS.mam) && features.includes(NS.mamExtended), features.join(" "));
  const form = await j.iq(xml("iq", { type: "get" }, xml("query", { xmlns: NS.mam })));
  const vars = form.getChild("query", NS.mam)!.getChild("x", NS.dataForms)!.getChildren("field").map((f) => f.attrs.var);
  assert.deepEqual(vars, ["FORM_TYPE", "with", "start", "end", "before-id", "after-id", "ids"]);
});

describe("preferences (XEP-0441)", () => {
  const prefs = (def: string, always: string[] = [], never: string[] = []) =>
    xml(
      "prefs",
      { xmlns: NS.mam, default: def },
      xml("always", {}, ...always.map((jid) => xml("jid", {}, jid))),
      xml("never", {}, ...never.map((jid) => xml("jid", {}, jid))),
    );

  test("default 'always' with empty lists until changed; a change is answered with what applies", async () => {
    const juliet = await account("juliet");
    const j = await online(juliet);
    const current = (await j.iq(xml("iq", { type: "get" }, xml("prefs", { xmlns: NS.mam })))).getChild("prefs", NS.mam)!;
    assert.equal(current.attrs.default, "always");
    assert.deepEqual(current.getChild("always")?.children, []);
    const set = await j.iq(xml("iq", { type: "set" }, prefs("roster", ["Romeo@localhost"], ["nurse@localhost"])));
    const applied = set.getChild("prefs", NS.mam)!;
    assert.equal(applied.attrs.default, "roster");
    assert.deepEqual(applied.getChild("always")!.getChildren("jid").map((x) => x.getText()), ["romeo@localhost"]);
    const again = (await j.iq(xml("iq", { type: "get" }, xml("prefs", { xmlns: NS.mam })))).getChild("prefs", NS.mam)!;
    assert.equal(again.attrs.default, "roster");
    assertError(await j.iq(xml("iq", { type: "set" }, prefs("sometimes"))), "bad-request");
  });

  test("never-listed contacts and, with default 'roster', strangers are not archived; contacts in the roster are", async () => {
    const romeo = await account("romeo");
    const nurse = await account("nurse");
    const stranger = await account("stranger");
    const juliet = await account("juliet");
    await setSubscription(juliet, nurse, "both");
    const j = await online(juliet);
    await j.iq(xml("iq", { type: "set" }, prefs("roster", [], [bare(romeo)])));
    const [r, n, s] = await Promise.all([online(romeo), online(nurse), online(stranger)]);
    const fromRomeo = chat(r, bare(juliet), "romeo");
    const fromNurse = chat(n, bare(juliet), "nurse");
    const fromStranger = chat(s, bare(juliet), "stranger");
    const romeoGot = await j.next(withId(fromRomeo));
    await j.next(withId(fromStranger));
    await j.next(withId(fromNurse));
    assert.equal(stanzaIdOf(romeoGot, bare(juliet)), undefined);
    assert.deepEqual(bodies(await ok(j)), ["nurse"]);
    // Romeo's own archive follows Romeo's preferences.
    assert.deepEqual(bodies(await ok(r)), ["romeo"]);
  });
});

test("past count_limit, the RSM count is left out rather than walking the whole archive", async () => {
  const small = await startTestServer({ modules: [roster, presence, message, mam], toml: "[modules.mam]\ncount_limit = 3\ndefault_page = 2\n" });
  try {
    const accounts = accountsOn(() => small);
    const romeo = await accounts.account("romeo");
    const juliet = await accounts.account("juliet");
    const r = await accounts.online(romeo);
    const j = await accounts.online(juliet);
    for (let i = 0; i < 4; i++) await j.next(withId(chat(r, accounts.bare(juliet), `c${i}`)));
    const all = await ok(j);
    assert.equal(all.results.length, 2, "default_page applies when the client gives no max");
    assert.equal(rsmOf(all).count, null);
    assert.equal(rsmOf(all).first !== null && rsmOf(all).last !== null, true);
    const some = await ok(j, { with: accounts.bare(romeo), afterId: all.results[1]!.id });
    assert.deepEqual(bodies(some), ["c2", "c3"]);
    assert.equal(rsmOf(some).count, "2", "few enough match the form to count");
    const few = await ok(j, { start: new Date(Date.now() + 60_000) });
    assert.equal(rsmOf(few).count, "0");
  } finally {
    await small.stop();
  }
});
