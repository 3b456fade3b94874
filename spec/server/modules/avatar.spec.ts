// End-to-end specs for server/modules/avatar: XEP-0084 1.1.4 avatars on PEP converted to and from
// the XEP-0054 vCard PHOTO (XEP-0398 1.0.0), and the XEP-0153 photo hash in presence.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { startTestServer, type TestServer } from "../../support/server.ts";
import { accountsOn } from "../../support/accounts.ts";
import { isPresence } from "../../support/stanzas.ts";
import { xml, type Element } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import type { XmppClient } from "../../../conformance/client/client.ts";
import roster from "../../../server/modules/roster/index.ts";
import presence from "../../../server/modules/presence/index.ts";
import message from "../../../server/modules/message/index.ts";
import disco from "../../../server/modules/disco/index.ts";
import vcard from "../../../server/modules/vcard/index.ts";
import pep from "../../../server/modules/pep/index.ts";
import avatar from "../../../server/modules/avatar/index.ts";
import { eventItem, fetchItems, isEvent, onlineWithCaps, publish } from "./pep-helpers.ts";

let t: TestServer;
before(async () => {
  t = await startTestServer({ modules: [roster, presence, message, disco, vcard, pep, avatar] });
});
after(async () => {
  await t.stop();
});

const accounts = accountsOn(() => t);
const { account, bare, connected, setSubscription } = accounts;

function image(text: string): { bytes: Buffer; id: string; base64: string } {
  const bytes = Buffer.from(`\x89PNG fake image ${text}`, "latin1");
  return { bytes, id: createHash("sha1").update(bytes).digest("hex"), base64: bytes.toString("base64") };
}

async function vcardOf(c: XmppClient, owner: string): Promise<Element> {
  const reply = await c.iq(xml("iq", { type: "get", to: owner }, xml("vCard", { xmlns: NS.vcard })));
  return reply.getChild("vCard", NS.vcard)!;
}

/** The vCard once `ready` holds (the conversion runs after the publish result), bounded. */
async function vcardWhen(c: XmppClient, owner: string, ready: (card: Element) => boolean): Promise<Element> {
  let card = await vcardOf(c, owner);
  for (let i = 0; i < 100 && !ready(card); i++) {
    await new Promise((res) => setTimeout(res, 20));
    card = await vcardOf(c, owner);
  }
  return card;
}

async function publishAvatar(c: XmppClient, img: { bytes: Buffer; id: string; base64: string }): Promise<void> {
  assert.equal((await publish(c, NS.avatarData, xml("data", { xmlns: NS.avatarData }, img.base64), { id: img.id })).attrs.type, "result");
  const info = xml("info", { id: img.id, bytes: String(img.bytes.length), type: "image/png", width: "64", height: "64" });
  assert.equal((await publish(c, NS.avatarMetadata, xml("metadata", { xmlns: NS.avatarMetadata }, info), { id: img.id })).attrs.type, "result");
}

function photoHash(p: Element): string | null | undefined {
  const x = p.getChild("x", NS.vcardUpdate);
  if (!x) return undefined;
  const photo = x.getChild("photo");
  return photo ? photo.getText() : null;
}

async function friends(): Promise<{ romeo: string; juliet: string }> {
  const romeo = await account("romeo");
  const juliet = await account("juliet");
  await setSubscription(romeo, juliet, "both");
  await setSubscription(juliet, romeo, "both");
  return { romeo, juliet };
}

describe("XEP-0398: avatars on PEP and in the vCard are one", () => {
  test("the account advertises the conversion", async () => {
    const c = await connected(await account("romeo"));
    const info = await c.iq(xml("iq", { type: "get", to: c.jid!.split("/")[0] }, xml("query", { xmlns: NS.discoInfo })));
    assert.ok(info.getChild("query", NS.discoInfo)!.getChildren("feature").some((f) => f.attrs.var === "urn:xmpp:pep-vcard-conversion:0"));
  });

  test("a PEP avatar becomes the vCard PHOTO (other fields kept) and the presence photo hash", async () => {
    const { romeo, juliet } = await friends();
    const j = await connected(juliet);
    await j.iq(xml("iq", { type: "set" }, xml("vCard", { xmlns: NS.vcard }, xml("FN", {}, "Juliet Capulet"))));
    const img = image("juliet");
    await publishAvatar(j, img);

    const r = await connected(romeo);
    const card = await vcardWhen(r, bare(juliet), (c) => c.getChild("PHOTO") !== undefined);
    assert.equal(card.getChildText("FN"), "Juliet Capulet");
    assert.equal(card.getChild("PHOTO")?.getChildText("TYPE"), "image/png");
    assert.equal(Buffer.from(card.getChild("PHOTO")!.getChildText("BINVAL")!, "base64").toString("latin1"), img.bytes.toString("latin1"));

    // Romeo is available; Juliet's next presence carries the hash, whatever her client put there.
    r.send(xml("presence"));
    await r.next(isPresence(r.jid!, undefined));
    j.send(xml("presence", {}, xml("x", { xmlns: NS.vcardUpdate }, xml("photo", {}, "stale"))));
    const seen = await r.next(isPresence(j.jid!, undefined));
    assert.equal(photoHash(seen), img.id);
  });

  test("a vCard PHOTO becomes the XEP-0084 data and metadata, notified to +notify contacts", async () => {
    const { romeo, juliet } = await friends();
    const r = await onlineWithCaps(accounts, romeo, "a", [NS.avatarMetadata]);
    const j = await connected(juliet);
    const img = image("vcard");
    await j.iq(xml("iq", { type: "set" }, xml("vCard", { xmlns: NS.vcard }, xml("PHOTO", {}, xml("TYPE", {}, "image/jpeg"), xml("BINVAL", {}, img.base64.replace(/(.{8})/g, "$1\n"))))));
    const event = await r.next(isEvent(bare(juliet), NS.avatarMetadata));
    const info = eventItem(event)!.getChild("metadata", NS.avatarMetadata)!.getChild("info")!;
    assert.equal(info.attrs.id, img.id);
    assert.equal(info.attrs.type, "image/jpeg");
    assert.equal(info.attrs.bytes, String(img.bytes.length));
    const data = await fetchItems(r, bare(juliet), NS.avatarData);
    assert.equal(data.at(-1)!.attrs.id, img.id);
    assert.equal(data.at(-1)!.getChildText("data"), img.base64);
    // Setting the same vCard again publishes nothing new.
    await j.iq(xml("iq", { type: "set" }, xml("vCard", { xmlns: NS.vcard }, xml("PHOTO", {}, xml("TYPE", {}, "image/jpeg"), xml("BINVAL", {}, img.base64)))));
    assert.ok(await r.nothing(isEvent(bare(juliet), NS.avatarMetadata)));
  });

  test("disabling the PEP avatar removes the vCard PHOTO and empties the presence photo", async () => {
    const { romeo, juliet } = await friends();
    const j = await connected(juliet);
    await publishAvatar(j, image("gone"));
    await publish(j, NS.avatarMetadata, xml("metadata", { xmlns: NS.avatarMetadata }), { id: "none" });
    const r = await connected(romeo);
    r.send(xml("presence"));
    await r.next(isPresence(r.jid!, undefined));
    // The conversion runs after the publish result: wait for the vCard to follow.
    const card = await vcardWhen(r, bare(juliet), (c) => c.getChild("PHOTO") === undefined);
    assert.equal(card.getChild("PHOTO"), undefined);
    j.send(xml("presence"));
    const seen = await r.next(isPresence(j.jid!, undefined));
    assert.equal(photoHash(seen), "");
  });

  test("an account that never had an avatar keeps its client's presence as sent", async () => {
    const { romeo, juliet } = await friends();
    const r = await connected(romeo);
    r.send(xml("presence"));
    await r.next(isPresence(r.jid!, undefined));
    const j = await connected(juliet);
    j.send(xml("presence", {}, xml("status", {}, "plain")));
    const seen = await r.next(isPresence(j.jid!, undefined));
    assert.equal(photoHash(seen), undefined);
  });
});
