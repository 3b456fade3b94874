// XEP-0054 vcard-temp 1.2, end to end: publishing and reading vCards as clients see it.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { startTestServer, type TestServer } from "../../support/server.ts";
import type { XmppClient } from "../../../conformance/client/client.ts";
import { xml, type Element } from "../../../protocol/xml/element.ts";
import { serialize } from "../../../protocol/xml/serialize.ts";
import { NS } from "../../../protocol/ns.ts";
import { parseStanzaError } from "../../../protocol/errors.ts";
import vcard from "../../../server/modules/vcard/index.ts";
import disco from "../../../server/modules/disco/index.ts";
import { vcardFromText, vcardToText } from "../../../server/modules/vcard/stored.ts";

let t: TestServer;
let romeo: XmppClient;
let juliet: XmppClient;
before(async () => {
  t = await startTestServer({ users: ["romeo", "juliet", "tybalt"], modules: [vcard, disco] });
  romeo = await t.login("romeo");
  juliet = await t.login("juliet");
});
after(() => t.stop());

const getVCard = (c: XmppClient, to?: string) => c.iq(xml("iq", { type: "get", to }, xml("vCard", { xmlns: NS.vcard })));
const setVCard = (c: XmppClient, card: Element, to?: string) => c.iq(xml("iq", { type: "set", to }, card));
const card = (name: string, ...extra: Element[]) => xml("vCard", { xmlns: NS.vcard }, xml("FN", {}, name), ...extra);

function vcardIn(reply: Element): Element {
  assert.equal(reply.attrs.type, "result", serialize(reply));
  const v = reply.getChild("vCard", NS.vcard);
  assert.ok(v, "the result carries a <vCard/>");
  return v;
}

describe("vcard-temp", () => {
  test("without a published vCard, the own and a contact's vCard are empty <vCard/> results", async () => {
    assert.equal(vcardIn(await getVCard(romeo)).children.length, 0);
    assert.equal(vcardIn(await getVCard(juliet, "tybalt@localhost")).children.length, 0);
  });

  test("a published vCard comes back to its owner and to others at the bare JID", async () => {
    const published = card("Juliet Capulet", xml("NICKNAME", {}, "Jules"), xml("EMAIL", {}, xml("INTERNET", {}), xml("USERID", {}, "juliet@capulet.lit")));
    assert.equal((await setVCard(juliet, published)).attrs.type, "result");
    for (const [who, to] of [[juliet, undefined], [juliet, "juliet@localhost"], [romeo, "juliet@localhost"]] as const) {
      const got = vcardIn(await getVCard(who, to));
      assert.equal(got.getChildText("FN"), "Juliet Capulet");
      assert.equal(got.getChildText("NICKNAME"), "Jules");
      assert.equal(got.getChild("EMAIL")?.getChildText("USERID"), "juliet@capulet.lit");
    }
  });

  test("publishing again replaces the vCard, and publishing at the own bare JID works too", async () => {
    assert.equal((await setVCard(romeo, card("Romeo"))).attrs.type, "result");
    assert.equal((await setVCard(romeo, card("Romeo Montague"), "romeo@localhost")).attrs.type, "result");
    const got = vcardIn(await getVCard(juliet, "romeo@localhost"));
    assert.equal(got.getChildText("FN"), "Romeo Montague");
    assert.equal(got.getChildren("FN").length, 1);
  });

  test("a large vCard (a 150 kB photo) is stored and returned whole", async () => {
    const photo = Buffer.alloc(110_000, 7).toString("base64");
    const big = card("Tybalt", xml("PHOTO", {}, xml("TYPE", {}, "image/png"), xml("BINVAL", {}, photo)));
    const tybalt = await t.login("tybalt");
    assert.equal((await setVCard(tybalt, big)).attrs.type, "result");
    const got = vcardIn(await getVCard(romeo, "tybalt@localhost"));
    assert.equal(got.getChild("PHOTO")?.getChildText("BINVAL"), photo);
    await tybalt.close();
  });

  test("publishing on someone else's JID is forbidden and changes nothing", async () => {
    const r = await setVCard(romeo, card("Not Juliet"), "juliet@localhost");
    assert.equal(parseStanzaError(r)?.condition, "forbidden");
    assert.equal(vcardIn(await getVCard(romeo, "juliet@localhost")).getChildText("FN"), "Juliet Capulet");
  });

  test("asking for the vCard of an account that does not exist is service-unavailable", async () => {
    assert.equal(parseStanzaError(await getVCard(romeo, "nobody@localhost"))?.condition, "service-unavailable");
  });

  test("vcard-temp is advertised in disco#info of the server and of the own account", async () => {
    for (const to of ["localhost", "romeo@localhost"]) {
      const info = await romeo.iq(xml("iq", { type: "get", to }, xml("query", { xmlns: NS.discoInfo })));
      assert.equal(info.attrs.type, "result", serialize(info));
      const features = info.getChild("query", NS.discoInfo)!.getChildren("feature").map((f) => f.attrs.var);
      assert.ok(features.includes(NS.vcard), `${to}: ${features.join(" ")}`);
    }
  });
});

describe("stored vCard text", () => {
  test("prefixes declared on the IQ or the stream stay declared in the stored text", () => {
    const iq = xml("iq", { xmlns: NS.client, "xmlns:x": "urn:example:x", type: "set" });
    const v = xml("vCard", { xmlns: NS.vcard }, xml("x:extra", {}, "kept"));
    iq.append(v);
    const back = vcardFromText(vcardToText(v));
    assert.ok(back);
    assert.equal(back.getChild("extra", "urn:example:x")?.getText(), "kept");
  });

  test("text that is not a vCard is refused", () => {
    assert.equal(vcardFromText("<vCard xmlns='other'/>"), null);
    assert.equal(vcardFromText("<vCard xmlns='vcard-temp'><FN>"), null);
    assert.equal(vcardFromText("not xml"), null);
  });

  test("property: whatever text and attributes a vCard holds survive storage unchanged", () => {
    const text = fc.string({ unit: "grapheme", maxLength: 40 }).filter((s) => !/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ud800-\udfff\ufffe\uffff]/.test(s));
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom("FN", "NICKNAME", "DESC", "URL"), text, text), { maxLength: 6 }), (fields) => {
        const v = xml("vCard", { xmlns: NS.vcard }, ...fields.map(([name, value, attr]) => xml(name, { "x-attr": attr }, value)));
        const back = vcardFromText(vcardToText(v));
        assert.ok(back);
        assert.equal(serialize(back), serialize(v));
      }),
    );
  });
});
