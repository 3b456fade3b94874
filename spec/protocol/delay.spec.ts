// Specs for protocol/delay.ts: XEP-0203 delayed delivery.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { xml } from "../../protocol/xml/element.ts";
import { NS } from "../../protocol/ns.ts";
import { addDelay, delayElement, parseDelay } from "../../protocol/delay.ts";

const stamp = new Date(Date.UTC(2002, 8, 10, 23, 8, 25));

const message = () =>
  xml("message", { xmlns: NS.client, from: "romeo@montague.lit/orchard", to: "juliet@capulet.lit", type: "chat" }, xml("body", {}, "O blessed, blessed night!"));

describe("delayElement", () => {
  test("matches XEP-0203's example: namespace, from, UTC stamp, reason as text", () => {
    assert.equal(
      delayElement(stamp, "capulet.lit", "Offline Storage").toString(),
      '<delay xmlns="urn:xmpp:delay" from="capulet.lit" stamp="2002-09-10T23:08:25Z">Offline Storage</delay>',
    );
    assert.equal(delayElement(stamp).toString(), '<delay xmlns="urn:xmpp:delay" stamp="2002-09-10T23:08:25Z"/>');
  });
});

describe("addDelay", () => {
  test("adds one delay and returns the same stanza", () => {
    const msg = message();
    assert.equal(addDelay(msg, stamp, "capulet.lit"), msg);
    const delays = msg.getChildren("delay", NS.delay);
    assert.equal(delays.length, 1);
    assert.equal(delays[0].attrs.from, "capulet.lit");
  });

  test("does not add a second delay from the same entity; the first stamp stays", () => {
    const msg = message();
    addDelay(msg, stamp, "capulet.lit");
    addDelay(msg, new Date(stamp.getTime() + 60_000), "capulet.lit");
    const delays = msg.getChildren("delay", NS.delay);
    assert.equal(delays.length, 1);
    assert.equal(delays[0].attrs.stamp, "2002-09-10T23:08:25Z");
  });

  test("keeps delays from different entities side by side", () => {
    const msg = message();
    addDelay(msg, stamp, "room@muc.capulet.lit");
    addDelay(msg, new Date(stamp.getTime() + 1000), "capulet.lit");
    assert.equal(msg.getChildren("delay", NS.delay).length, 2);
  });

  test("a legacy jabber:x:delay does not count as our delay", () => {
    const msg = message();
    msg.append(xml("x", { xmlns: "jabber:x:delay", from: "capulet.lit", stamp: "20020910T23:08:25" }));
    msg.append(xml("delay", { xmlns: "urn:example:other", from: "capulet.lit" }));
    addDelay(msg, stamp, "capulet.lit");
    assert.equal(msg.getChildren("delay", NS.delay).length, 1);
  });
});

describe("parseDelay", () => {
  test("round-trips stamp, from and reason", () => {
    const msg = message();
    addDelay(msg, stamp, "capulet.lit", "Offline Storage");
    assert.deepEqual(parseDelay(msg), { stamp, from: "capulet.lit", reason: "Offline Storage" });
  });

  test("returns null without a (valid) delay", () => {
    assert.equal(parseDelay(message()), null);
    const bad = message();
    bad.append(xml("delay", { xmlns: NS.delay, stamp: "yesterday" }));
    bad.append(xml("delay", { xmlns: NS.delay }));
    assert.equal(parseDelay(bad), null);
  });

  test("picks the earliest stamp when several entities delayed the stanza", () => {
    const msg = message();
    msg.append(xml("delay", { xmlns: NS.delay, from: "capulet.lit", stamp: "2002-09-10T23:10:00Z" }));
    msg.append(xml("delay", { xmlns: NS.delay, from: "room@muc.capulet.lit", stamp: "2002-09-10T23:08:25Z" }));
    msg.append(xml("delay", { xmlns: NS.delay, from: "liar.lit", stamp: "not a date" }));
    assert.deepEqual(parseDelay(msg), { stamp, from: "room@muc.capulet.lit" });
  });

  test("accepts stamps with an offset and fractional seconds from other servers", () => {
    const msg = message();
    msg.append(xml("delay", { xmlns: NS.delay, stamp: "2002-09-10T18:08:25.250-05:00" }));
    assert.equal(parseDelay(msg)?.stamp.getTime(), stamp.getTime() + 250);
  });

  test("property: addDelay then parseDelay gives back the stamp (to the millisecond) and from", () => {
    fc.assert(
      fc.property(
        fc.date({ min: new Date(Date.UTC(1970, 0, 1)), max: new Date(Date.UTC(9999, 11, 31)), noInvalidDate: true }),
        fc.option(fc.domain(), { nil: undefined }),
        (when, from) => {
          const parsed = parseDelay(addDelay(message(), when, from));
          assert.equal(parsed?.stamp.getTime(), when.getTime());
          assert.equal(parsed?.from, from);
        },
      ),
    );
  });
});
