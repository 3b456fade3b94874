// Interop, XEP-0012 v2.0 (Last Activity) §4 with RFC 6121 §4.5 (unavailable presence): a slixmpp
// user logs out with a status; her subscribed @xmpp/client contact asks jabber:iq:last and learns
// how long ago and the status, while users not subscribed to her are refused with <forbidden/>.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { dirname } from "node:path";
import { startTestServer, type TestServer } from "../support/server.ts";
import { Slix, slixmppAvailable, writeCaFile } from "./support/slixmpp.ts";
import { Xjs, presenceFrom, xml } from "./support/xmppjs.ts";

const NS_LAST = "jabber:iq:last";
const ALICE = "alice@localhost";

let t: TestServer;
let caFile: string;
let alice: Slix;
let bob: Xjs;
let carol: Xjs;

before(async () => {
  t = await startTestServer({ users: ["alice", "bob", "carol", "frank"] });
  caFile = writeCaFile(t);
});
after(async () => {
  await bob?.stop();
  await carol?.stop();
  await alice?.stop();
  await t?.stop();
  if (caFile) rmSync(dirname(caFile), { recursive: true, force: true });
});

const lastQuery = () => xml("query", { xmlns: NS_LAST });

describe("last activity after a slixmpp user logs out", { skip: !slixmppAvailable && "no /usr/bin/python3 with slixmpp" }, () => {
  before(async () => {
    alice = await Slix.online(t, caFile, `${ALICE}/slix`);
    await alice.ok("roster_get");
    await alice.ok("presence", { status: "around" });
    bob = await Xjs.online(t, "bob");
    await bob.rosterGet();
    await bob.send(xml("presence"));
    // bob subscribes to alice, and she approves: her roster has bob as 'from'.
    await bob.send(xml("presence", { to: ALICE, type: "subscribe" }));
    await alice.waitFor((e) => e.event === "subscription_request" && e.frm === "bob@localhost", "bob's request");
    await alice.ok("authorize", { jid: "bob@localhost" });
    await bob.waitForPush(ALICE, (i) => i.subscription === "to", "bob's push: alice is 'to'");
    carol = await Xjs.online(t, "carol");
  });

  test("while she is online, her subscribed contact learns 0 seconds", async () => {
    const result = await bob.iq("get", ALICE, lastQuery());
    assert.equal(result.getChild("query", NS_LAST)?.attrs.seconds, "0");
  });

  test("she logs out with a status: bob sees her unavailable with it", async () => {
    const b = bob.mark();
    await alice.ok("logout", { status: "gone fishing" });
    const gone = await bob.waitForStanza(presenceFrom(ALICE, "unavailable"), "alice's unavailable presence", b);
    assert.equal(gone.attrs.from, `${ALICE}/slix`);
    assert.equal(gone.getChildText("status"), "gone fishing");
    await alice.stop();
  });

  test("bob (subscribed) asks her bare JID: seconds >= 0 and her status", async () => {
    const result = await bob.iq("get", ALICE, lastQuery());
    assert.equal(result.attrs.from, ALICE);
    const query = result.getChild("query", NS_LAST)!;
    const seconds = Number(query.attrs.seconds);
    assert.ok(Number.isInteger(seconds) && seconds >= 0, `seconds="${query.attrs.seconds}"`);
    assert.equal(query.getText(), "gone fishing");
  });

  test("carol (not subscribed, @xmpp/client) is refused with forbidden", async () => {
    await assert.rejects(carol.iq("get", ALICE, lastQuery()), (err: Error & { condition?: string; name?: string }) => {
      assert.equal(err.name, "StanzaError");
      assert.equal(err.condition, "forbidden");
      return true;
    });
  });

  test("frank (not subscribed, slixmpp) is refused with forbidden", async () => {
    const frank = await Slix.online(t, caFile, "frank@localhost/slix");
    try {
      const r = await frank.call("last", { jid: ALICE });
      assert.equal(r.ok, false);
      assert.equal(r.error?.condition, "forbidden");
    } finally {
      await frank.stop();
    }
  });
});
