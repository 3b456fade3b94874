// Specs for protocol/mam.ts: XEP-0313 v0.7.5 queries, results, fin and metadata; XEP-0441
// preferences; XEP-0359 stanza-ids; XEP-0334 hints and what counts as content worth storing.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { xml, type Element } from "../../protocol/xml/element.ts";
import { NS } from "../../protocol/ns.ts";
import { StanzaError } from "../../protocol/errors.ts";
import { parseJid } from "../../protocol/jid.ts";
import { parseForm, formType } from "../../protocol/forms.ts";
import {
  addStanzaId,
  archivedByPrefs,
  buildPrefs,
  carriesContent,
  mamFin,
  mamMetadata,
  mamQueryForm,
  mamResultMessage,
  parseMamQuery,
  parsePrefs,
  stanzaIdBy,
  storageHints,
  stripStanzaIds,
  type MamPrefs,
} from "../../protocol/mam.ts";
import { reparse, parseXml } from "../support/xml.ts";

function query(fields: Record<string, string | string[]>, ...extra: Element[]): Element {
  const form = xml(
    "x",
    { xmlns: NS.dataForms, type: "submit" },
    xml("field", { var: "FORM_TYPE", type: "hidden" }, xml("value", {}, NS.mam)),
    ...Object.entries(fields).map(([name, value]) => xml("field", { var: name }, ...[value].flat().map((v) => xml("value", {}, v)))),
  );
  return xml("query", { xmlns: NS.mam, queryid: "f27" }, form, ...extra);
}

function assertCondition(fn: () => unknown, condition: string): void {
  assert.throws(fn, (e: unknown) => e instanceof StanzaError && e.condition === condition);
}

describe("parseMamQuery", () => {
  test("an empty query asks for everything", () => {
    assert.deepEqual(parseMamQuery(xml("query", { xmlns: NS.mam })), { rsm: null, flipPage: false });
  });

  test("reads the XEP's filters, the #extended fields, RSM and flip-page", () => {
    const q = parseMamQuery(
      query(
        { with: "juliet@capulet.lit", start: "2010-06-07T00:00:00Z", end: "2010-07-07T13:23:54Z", "after-id": "28482-98726-73623", "before-id": "09af3-cc343-b409f" },
        xml("set", { xmlns: NS.rsm }, xml("max", {}, "10"), xml("before")),
        xml("flip-page", { xmlns: NS.mam }),
      ),
    );
    assert.equal(q.queryId, "f27");
    assert.equal(q.with?.toString(), "juliet@capulet.lit");
    assert.equal(q.start?.toISOString(), "2010-06-07T00:00:00.000Z");
    assert.equal(q.end?.toISOString(), "2010-07-07T13:23:54.000Z");
    assert.equal(q.afterId, "28482-98726-73623");
    assert.equal(q.beforeId, "09af3-cc343-b409f");
    assert.deepEqual(q.rsm, { max: 10, before: true });
    assert.equal(q.flipPage, true);
    assert.deepEqual(parseMamQuery(query({ ids: ["a", "b", "a", " "] })).ids, ["a", "b"]);
  });

  test("a form without FORM_TYPE is read; one of another type is not", () => {
    const noType = xml("query", { xmlns: NS.mam }, xml("x", { xmlns: NS.dataForms, type: "submit" }, xml("field", { var: "with" }, xml("value", {}, "a@b"))));
    assert.equal(parseMamQuery(noType).with?.toString(), "a@b");
    const otherType = xml(
      "query",
      { xmlns: NS.mam },
      xml("x", { xmlns: NS.dataForms, type: "submit" }, xml("field", { var: "FORM_TYPE" }, xml("value", {}, "urn:xmpp:mam:1"))),
    );
    assertCondition(() => parseMamQuery(otherType), "bad-request");
  });

  test("refuses malformed filters with bad-request and unknown fields with feature-not-implemented", () => {
    assertCondition(() => parseMamQuery(query({ with: "@@" })), "bad-request");
    assertCondition(() => parseMamQuery(query({ start: "yesterday" })), "bad-request");
    assertCondition(() => parseMamQuery(query({ end: "2010-07-07" })), "bad-request");
    assertCondition(() => parseMamQuery(query({ with: ["a@b", "c@d"] })), "bad-request");
    assertCondition(() => parseMamQuery(query({ "{urn:xmpp:fulltext:0}fulltext": "love" })), "feature-not-implemented");
    assertCondition(() => parseMamQuery(query({}, xml("set", { xmlns: NS.rsm }, xml("max", {}, "-1")))), "bad-request");
    assertCondition(() => parseMamQuery(xml("query", { xmlns: NS.mam }, xml("x", { xmlns: NS.dataForms, type: "form" }))), "bad-request");
    assertCondition(() => parseMamQuery(xml("query", { xmlns: NS.mam, node: "urn:xmpp:mucsub:nodes:messages" })), "feature-not-implemented");
  });

  test("never throws anything but a StanzaError, whatever the form holds", () => {
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom("with", "start", "end", "before-id", "after-id", "ids", "x"), fc.array(fc.string(), { maxLength: 3 })), (fields) => {
        try {
          parseMamQuery(query(fields));
        } catch (e) {
          assert.ok(e instanceof StanzaError, String(e));
        }
      }),
    );
  });
});

test("the query form offers the mandatory and #extended fields, none of them required", () => {
  const x = reparse(mamQueryForm()).getChild("x", NS.dataForms)!;
  const form = parseForm(x);
  assert.equal(form.type, "form");
  assert.equal(formType(form), NS.mam);
  assert.deepEqual(
    form.fields.map((f) => [f.var, f.type]),
    [["FORM_TYPE", "hidden"], ["with", "jid-single"], ["start", "text-single"], ["end", "text-single"], ["before-id", "text-single"], ["after-id", "text-single"], ["ids", "list-multi"]],
  );
  assert.ok(form.fields.every((f) => !f.required));
  assert.ok(x.getChildByAttr("var", "ids")!.getChild("validate", "http://jabber.org/protocol/xdata-validate")?.getChild("open"));
  assert.deepEqual(parseForm(mamQueryForm(false).getChild("x", NS.dataForms)!).fields.map((f) => f.var), ["FORM_TYPE", "with", "start", "end"]);
});

test("a result forwards the archived message with its archive stamp and UID", () => {
  const archived = parseXml(`<message xmlns="jabber:client" from="romeo@montague.lit/orchard" to="juliet@capulet.lit/balcony" type="chat"><body>Call me but love</body></message>`);
  const el = reparse(
    mamResultMessage({ to: "juliet@capulet.lit/chamber", from: "juliet@capulet.lit", messageId: "aeb213", queryId: "f27", archiveId: "28482", stamp: new Date("2010-07-10T23:08:25Z"), message: archived }),
  );
  assert.equal(el.attrs.to, "juliet@capulet.lit/chamber");
  assert.equal(el.attrs.from, "juliet@capulet.lit");
  const result = el.getChild("result", NS.mam)!;
  assert.deepEqual([result.attrs.queryid, result.attrs.id], ["f27", "28482"]);
  const forwarded = result.getChild("forwarded", NS.forward)!;
  assert.equal(forwarded.getChild("delay", NS.delay)?.attrs.stamp, "2010-07-10T23:08:25Z");
  const inner = forwarded.getChild("message")!;
  assert.equal(inner.getNS(), NS.client);
  assert.equal(inner.getChildText("body"), "Call me but love");
});

test("fin says complete only when it is, with the page's first, last and count", () => {
  const done = reparse(mamFin(true, { first: "a", firstIndex: 0, last: "b", count: 2 }));
  assert.equal(done.attrs.complete, "true");
  const set = done.getChild("set", NS.rsm)!;
  assert.deepEqual([set.getChildText("first"), set.getChild("first")?.attrs.index, set.getChildText("last"), set.getChildText("count")], ["a", "0", "b", "2"]);
  assert.equal(reparse(mamFin(false, { count: 0 })).attrs.complete, undefined);
});

test("metadata names the first and last message, or nothing for an empty archive", () => {
  const md = reparse(mamMetadata({ start: { id: "a", stamp: new Date("2008-08-22T21:09:04Z") }, end: { id: "z", stamp: new Date("2020-04-20T14:34:21Z") } }));
  assert.deepEqual(md.getChild("start")?.attrs, { id: "a", timestamp: "2008-08-22T21:09:04Z" });
  assert.deepEqual(md.getChild("end")?.attrs, { id: "z", timestamp: "2020-04-20T14:34:21Z" });
  assert.equal(reparse(mamMetadata(null)).children.length, 0);
});

describe("preferences (XEP-0441)", () => {
  test("read and written back the same, JIDs normalised", () => {
    const prefs = parsePrefs(
      parseXml(`<prefs xmlns="urn:xmpp:mam:2" default="roster"><always><jid>Romeo@Montague.lit</jid></always><never><jid>montague@montague.lit</jid><jid>tybalt@capulet.lit/sword</jid></never></prefs>`),
    );
    assert.deepEqual(prefs, { default: "roster", always: ["romeo@montague.lit"], never: ["montague@montague.lit", "tybalt@capulet.lit/sword"] });
    assert.deepEqual(parsePrefs(reparse(buildPrefs(prefs))), prefs);
    const empty = reparse(buildPrefs({ default: "always", always: [], never: [] }));
    assert.ok(empty.getChild("always", NS.mam) && empty.getChild("never", NS.mam), "both lists are present, even empty");
  });

  test("a bad default or JID is bad-request; a JID in both lists is never archived", () => {
    assertCondition(() => parsePrefs(xml("prefs", { xmlns: NS.mam, default: "sometimes" })), "bad-request");
    assertCondition(() => parsePrefs(xml("prefs", { xmlns: NS.mam })), "bad-request");
    assertCondition(() => parsePrefs(xml("prefs", { xmlns: NS.mam, default: "always" }, xml("always", {}, xml("jid", {}, "@")))), "bad-request");
    const both = parsePrefs(xml("prefs", { xmlns: NS.mam, default: "always" }, xml("always", {}, xml("jid", {}, "a@b")), xml("never", {}, xml("jid", {}, "a@b"))));
    assert.deepEqual([both.always, both.never], [[], ["a@b"]]);
  });

  test("matching: lists before the default, bare entries match every resource, full ones only theirs", async () => {
    const prefs: MamPrefs = { default: "roster", always: ["romeo@montague.lit"], never: ["nurse@capulet.lit", "tybalt@capulet.lit/sword"] };
    const inRoster = (bare: string) => bare === "benvolio@montague.lit";
    const archived = (jid: string) => archivedByPrefs(prefs, parseJid(jid), inRoster);
    assert.equal(await archived("romeo@montague.lit/orchard"), true);
    assert.equal(await archived("nurse@capulet.lit/kitchen"), false);
    assert.equal(await archived("tybalt@capulet.lit/sword"), false);
    assert.equal(await archived("tybalt@capulet.lit/dagger"), false, "not listed, not in the roster");
    assert.equal(await archived("benvolio@montague.lit/street"), true);
    assert.equal(await archivedByPrefs({ ...prefs, default: "always" }, parseJid("x@y"), inRoster), true);
    assert.equal(await archivedByPrefs({ ...prefs, default: "never" }, parseJid("benvolio@montague.lit"), inRoster), false);
  });
});

test("stanza-ids: one by the archive is added; ones claiming to be by it are removed, others kept", () => {
  const stanza = xml(
    "message",
    {},
    xml("body", {}, "hi"),
    xml("stanza-id", { xmlns: NS.sid, id: "spoofed", by: "juliet@capulet.lit" }),
    xml("stanza-id", { xmlns: NS.sid, id: "theirs", by: "romeo@montague.lit" }),
  );
  stripStanzaIds(stanza, "juliet@capulet.lit");
  assert.equal(stanzaIdBy(stanza, "juliet@capulet.lit"), undefined);
  addStanzaId(stanza, "real", "juliet@capulet.lit");
  assert.equal(stanzaIdBy(reparse(stanza), "juliet@capulet.lit"), "real");
  assert.equal(stanzaIdBy(stanza, "romeo@montague.lit"), "theirs");
  assert.equal(stanza.getChildren("stanza-id", NS.sid).length, 2);
});

test("content worth storing: anything but chat states, hints, ids, thread, delay and encryption markers", () => {
  const msg = (...children: Element[]) => xml("message", { xmlns: NS.client, type: "chat" }, ...children);
  assert.equal(carriesContent(msg(xml("composing", { xmlns: NS.chatStates }), xml("no-store", { xmlns: NS.hints }), xml("thread", {}, "t"))), false);
  assert.equal(carriesContent(msg(xml("origin-id", { xmlns: NS.sid, id: "x" }), xml("active", { xmlns: NS.chatStates }))), false);
  assert.equal(carriesContent(msg()), false);
  for (const payload of [
    xml("body", {}, "hi"),
    xml("received", { xmlns: NS.receipts, id: "m1" }),
    xml("displayed", { xmlns: NS.chatMarkers, id: "m1" }),
    xml("encrypted", { xmlns: NS.omemoLegacy }),
    xml("reactions", { xmlns: NS.reactions, id: "m1" }),
  ]) {
    assert.equal(carriesContent(msg(xml("active", { xmlns: NS.chatStates }), payload)), true, payload.name);
  }
  assert.deepEqual(storageHints(msg(xml("no-permanent-store", { xmlns: NS.hints }))), { noStore: false, noPermanentStore: true, store: false });
  assert.deepEqual(storageHints(msg(xml("store", { xmlns: NS.hints }), xml("no-store", { xmlns: NS.hints }))), { noStore: true, noPermanentStore: false, store: true });
  // Only XEP-0334's namespace counts: a <no-store/> of another namespace is just a payload.
  assert.deepEqual(storageHints(msg(xml("no-store", { xmlns: "urn:example:other" }))), { noStore: false, noPermanentStore: false, store: false });
});
