// protocol/push.ts: the XEP-0357 codecs (enable, disable, the §7 publish with the summary form
// and publish-options), read back the way a peer would read them off the wire.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { xml } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import { StanzaError } from "../../../protocol/errors.ts";
import { parseJid } from "../../../protocol/jid.ts";
import { serialize } from "../../../protocol/xml/serialize.ts";
import { parseStandalone } from "../../../protocol/xml/standalone.ts";
import {
  PUSH_PRIORITY_NS,
  buildDisable,
  buildEnable,
  buildPublish,
  isEncryptedMessage,
  optionValues,
  parseDisable,
  parseEnable,
  parsePublish,
  publishOptionsForm,
  type PushSummary,
} from "../../../protocol/push.ts";

/** Through bytes and back, as the peer sees it. */
const wire = (el: ReturnType<typeof xml>) => parseStandalone(serialize(el))!;

describe("enable and disable", () => {
  test("XEP-0357 example 6 (enable with publish-options) reads as written", () => {
    const el = wire(
      xml(
        "enable",
        { xmlns: NS.push, jid: "push-5.client.example", node: "yxs32uqsflafdk3iuqo" },
        xml(
          "x",
          { xmlns: NS.dataForms, type: "submit" },
          xml("field", { var: "FORM_TYPE" }, xml("value", {}, NS.pubsubPublishOptions)),
          xml("field", { var: "secret" }, xml("value", {}, "eruio234vzxc2kla-91")),
        ),
      ),
    );
    const e = parseEnable(el);
    assert.equal(e.jid.toString(), "push-5.client.example");
    assert.equal(e.node, "yxs32uqsflafdk3iuqo");
    assert.deepEqual(optionValues(e.publishOptions), { secret: "eruio234vzxc2kla-91" });
  });

  test("enable without jid or node, or with another FORM_TYPE, is a bad request", () => {
    assert.throws(() => parseEnable(xml("enable", { xmlns: NS.push, node: "n" })), (e: unknown) => e instanceof StanzaError && e.condition === "bad-request");
    assert.throws(() => parseEnable(xml("enable", { xmlns: NS.push, jid: "push.example" })), (e: unknown) => e instanceof StanzaError && e.condition === "bad-request");
    const wrongForm = xml("enable", { xmlns: NS.push, jid: "p.example", node: "n" }, xml("x", { xmlns: NS.dataForms, type: "submit" }, xml("field", { var: "FORM_TYPE" }, xml("value", {}, "urn:other"))));
    assert.throws(() => parseEnable(wrongForm), (e: unknown) => e instanceof StanzaError && e.condition === "bad-request");
  });

  test("disable with and without a node", () => {
    assert.deepEqual(parseDisable(wire(buildDisable({ jid: parseJid("push.example"), node: "n1" }))).node, "n1");
    assert.equal(parseDisable(wire(buildDisable({ jid: parseJid("push.example") }))).node, undefined);
  });

  test("enable round-trips for any node and options", () => {
    const text = fc.string({ minLength: 1, maxLength: 40 }).filter((s) => !/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/.test(s) && !/[\ud800-\udfff]/.test(s));
    fc.assert(
      fc.property(text, fc.dictionary(fc.stringMatching(/^[a-z][a-z0-9#_-]{0,15}$/), text, { maxKeys: 4 }), (node, options) => {
        const back = parseEnable(wire(buildEnable({ jid: parseJid("push.example"), node, publishOptions: publishOptionsForm(options) })));
        assert.equal(back.node, node);
        assert.deepEqual(optionValues(back.publishOptions), { ...options });
      }),
    );
  });
});

describe("the publish (§7)", () => {
  test("summary, priority hint and publish-options survive the trip to the app server", () => {
    const summary: PushSummary = { messageCount: 3, lastMessageSender: "juliet@capulet.example/balcony", lastMessageBody: "Wherefore art thou, Romeo?", priority: "high" };
    const encrypted: PushSummary = { messageCount: 1, lastMessageEncrypted: true, priority: "high" };
    assert.deepEqual(parsePublish(wire(buildPublish("n", encrypted))).summary, encrypted);
    const el = wire(buildPublish("yxs32uqsflafdk3iuqo", summary, publishOptionsForm({ secret: "eruio234vzxc2kla-91" })));
    const p = parsePublish(el);
    assert.equal(p.node, "yxs32uqsflafdk3iuqo");
    assert.deepEqual(p.summary, summary);
    assert.deepEqual(p.options, { secret: "eruio234vzxc2kla-91" });
    const notification = el.getChild("publish")!.getChild("item")!.getChild("notification", NS.push)!;
    assert.equal(notification.getChildText("priority", PUSH_PRIORITY_NS), "high");
    const form = notification.getChild("x", NS.dataForms)!;
    assert.equal(form.getChildren("field").find((f) => f.attrs.var === "FORM_TYPE")?.getChildText("value"), NS.pushSummary);
  });

  test("a publish from another server with only the XEP's fields is read, and junk counts are ignored", () => {
    const el = wire(
      xml(
        "pubsub",
        { xmlns: NS.pubsub },
        xml(
          "publish",
          { node: "n" },
          xml(
            "item",
            {},
            xml(
              "notification",
              { xmlns: NS.push },
              xml(
                "x",
                { xmlns: NS.dataForms, type: "submit" },
                xml("field", { var: "FORM_TYPE" }, xml("value", {}, NS.pushSummary)),
                xml("field", { var: "message-count" }, xml("value", {}, "lots")),
                xml("field", { var: "last-message-sender" }, xml("value", {}, "a@b.example")),
              ),
            ),
          ),
        ),
      ),
    );
    assert.deepEqual(parsePublish(el), { node: "n", summary: { lastMessageSender: "a@b.example" }, options: {} });
  });

  test("a pubsub without a publish node is a bad request", () => {
    assert.throws(() => parsePublish(xml("pubsub", { xmlns: NS.pubsub }, xml("publish", {}))), (e: unknown) => e instanceof StanzaError && e.condition === "bad-request");
  });
});

describe("isEncryptedMessage", () => {
  test("OMEMO (both namespaces) and OpenPGP for XMPP count; a body alone does not", () => {
    assert.ok(isEncryptedMessage(xml("message", {}, xml("encrypted", { xmlns: NS.omemo }))));
    assert.ok(isEncryptedMessage(xml("message", {}, xml("encrypted", { xmlns: NS.omemoLegacy }))));
    assert.ok(isEncryptedMessage(xml("message", {}, xml("openpgp", { xmlns: "urn:xmpp:openpgp:0" }, "BASE64"))));
    assert.ok(!isEncryptedMessage(xml("message", {}, xml("body", {}, "plain"))));
  });
});
