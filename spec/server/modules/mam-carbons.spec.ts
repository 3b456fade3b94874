// End-to-end specs for server/modules/mam with XEP-0280 carbons: XEP-0313 v0.7.5 §3.5 — a sent
// carbon carries the sender's archive id inside the forwarded message, a received carbon the
// recipient's, and the contact never sees the sender's; each id is the one the archive answers with.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { startTestServer, type TestServer } from "../../support/server.ts";
import { accountsOn } from "../../support/accounts.ts";
import { xml, type Element } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import type { XmppClient } from "../../../conformance/client/client.ts";
import roster from "../../../server/modules/roster/index.ts";
import presence from "../../../server/modules/presence/index.ts";
import message from "../../../server/modules/message/index.ts";
import carbons from "../../../server/modules/carbons/index.ts";
import mam from "../../../server/modules/mam/index.ts";

let t: TestServer;
before(async () => {
  t = await startTestServer({ modules: [roster, presence, message, carbons, mam] });
});
after(async () => {
  await t.stop();
});

const { account, bare, online } = accountsOn(() => t);

async function withCarbons(user: string, resource: string): Promise<XmppClient> {
  const c = await online(user, resource);
  const result = await c.iq(xml("iq", { type: "set" }, xml("enable", { xmlns: NS.carbons })));
  assert.equal(result.attrs.type, "result");
  return c;
}

const stanzaIdOf = (el: Element | undefined, by: string) => el?.getChildren("stanza-id", NS.sid).find((s) => s.attrs.by === by)?.attrs.id;
const carbon = (kind: "sent" | "received") => (el: Element) => el.name === "message" && el.getChild(kind, NS.carbons) !== undefined;
const forwardedIn = (el: Element, kind: "sent" | "received") => el.getChild(kind, NS.carbons)!.getChild("forwarded", NS.forward)!.getChild("message")!;

async function archiveIds(c: XmppClient): Promise<string[]> {
  const queryid = "ids";
  await c.iq(xml("iq", { type: "set" }, xml("query", { xmlns: NS.mam, queryid })));
  return c.inbox.filter((el) => el.getChild("result", NS.mam)?.attrs.queryid === queryid).map((el) => el.getChild("result", NS.mam)!.attrs.id!);
}

test("carbons carry the archive ids of the account they are copied to, and the contact gets none of the sender's", async () => {
  const romeo = await account("romeo");
  const juliet = await account("juliet");
  const phone = await withCarbons(romeo, "phone");
  const laptop = await withCarbons(romeo, "laptop");
  const j1 = await withCarbons(juliet, "balcony");
  const j2 = await withCarbons(juliet, "chamber");

  phone.send(xml("message", { to: `${bare(juliet)}/balcony`, type: "chat", id: "c1" }, xml("body", {}, "Good night")));
  const delivered = await j1.next((el) => el.attrs.id === "c1");
  const sentCopy = forwardedIn(await laptop.next(carbon("sent")), "sent");
  const receivedCopy = forwardedIn(await j2.next(carbon("received")), "received");

  const romeoId = stanzaIdOf(sentCopy, bare(romeo));
  const julietId = stanzaIdOf(delivered, bare(juliet));
  assert.ok(romeoId, "the sent carbon carries the sender's archive id");
  assert.ok(julietId);
  assert.equal(stanzaIdOf(delivered, bare(romeo)), undefined, "the contact does not get the sender's archive id");
  assert.equal(stanzaIdOf(receivedCopy, bare(juliet)), julietId, "the received carbon carries the recipient's archive id");
  assert.deepEqual(await archiveIds(laptop), [romeoId]);
  assert.deepEqual(await archiveIds(j2), [julietId]);
});
