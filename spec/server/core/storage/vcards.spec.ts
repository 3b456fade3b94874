// Specs for server/core/storage/vcards.ts: XEP-0054 v1.2 vCards kept as text, on SQLite and PostgreSQL.
import assert from "node:assert/strict";
import { test } from "node:test";
import { forEachDatabase, uniqueName } from "./both.ts";

const VCARD = "<vCard xmlns='vcard-temp'><FN>Juliet Capulet</FN><NICKNAME>Jules</NICKNAME></vCard>";

forEachDatabase("VCardStore", (db) => {
  test("a user without a vCard gets null, and one that was set comes back", async () => {
    const host = uniqueName("host");
    assert.equal(await db.storage.vcards.get(host, "juliet"), null);
    await db.storage.vcards.set(host, "juliet", VCARD);
    assert.equal((await db.storage.vcards.get(host, "juliet"))?.xml, VCARD);
  });

  test("setting again replaces the vCard and its timestamp", async () => {
    let clock = 1_000;
    const storage = await db.fresh({ now: () => clock });
    await storage.vcards.set("example.com", "juliet", VCARD);
    assert.deepEqual(await storage.vcards.get("example.com", "juliet"), { xml: VCARD, updatedAt: 1_000 });
    clock = 2_000;
    await storage.vcards.set("example.com", "juliet", "<vCard xmlns='vcard-temp'/>");
    assert.deepEqual(await storage.vcards.get("example.com", "juliet"), {
      xml: "<vCard xmlns='vcard-temp'/>",
      updatedAt: 2_000,
    });
  });

  test("a large vCard with a photo and text in many scripts comes back unchanged", async () => {
    const host = uniqueName("host");
    const photo = Buffer.alloc(3 * 1024 * 1024, 0xa5).toString("base64");
    const xml =
      "<vCard xmlns='vcard-temp'><FN>Джульетта 茱丽叶 ジュリエット 🌹</FN>" +
      `<DESC>${"&lt;&amp;&gt; \"quoted\" 'apos' \t\n".repeat(1000)}</DESC>` +
      `<PHOTO><TYPE>image/png</TYPE><BINVAL>${photo}</BINVAL></PHOTO></vCard>`;
    await db.storage.vcards.set(host, "juliet", xml);
    const stored = await db.storage.vcards.get(host, "juliet");
    assert.equal(stored?.xml.length, xml.length);
    assert.ok(stored?.xml === xml);
  });

  test("delete removes it and says whether there was one", async () => {
    const host = uniqueName("host");
    await db.storage.vcards.set(host, "juliet", VCARD);
    assert.equal(await db.storage.vcards.delete(host, "juliet"), true);
    assert.equal(await db.storage.vcards.get(host, "juliet"), null);
    assert.equal(await db.storage.vcards.delete(host, "juliet"), false);
  });

  test("hosts and users are kept apart", async () => {
    const [a, b] = [uniqueName("a"), uniqueName("b")];
    await db.storage.vcards.set(a, "juliet", "<vCard xmlns='vcard-temp'><FN>A</FN></vCard>");
    await db.storage.vcards.set(b, "juliet", "<vCard xmlns='vcard-temp'><FN>B</FN></vCard>");
    await db.storage.vcards.set(a, "romeo", "<vCard xmlns='vcard-temp'><FN>R</FN></vCard>");
    assert.equal((await db.storage.vcards.get(b, "juliet"))?.xml, "<vCard xmlns='vcard-temp'><FN>B</FN></vCard>");
    await db.storage.vcards.delete(a, "juliet");
    assert.equal((await db.storage.vcards.get(b, "juliet"))?.xml, "<vCard xmlns='vcard-temp'><FN>B</FN></vCard>");
    assert.equal((await db.storage.vcards.get(a, "romeo"))?.xml, "<vCard xmlns='vcard-temp'><FN>R</FN></vCard>");
  });
});
