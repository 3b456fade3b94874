import { test } from "node:test";
import assert from "node:assert/strict";
import { xml, clone, Element } from "../../../protocol/xml/element.ts";

test("xml() builds nested elements that report their namespace", () => {
  const msg = xml("message", { xmlns: "jabber:client", to: "juliet@example.com" }, xml("body", {}, "hi"));
  assert.ok(msg instanceof Element);
  assert.equal(msg.getChild("body")?.getNS(), "jabber:client");
  assert.equal(msg.getChildText("body"), "hi");
});

test("clone is deep and detached", () => {
  const msg = xml("message", { to: "a@b" }, xml("body", {}, "hi"));
  const copy = clone(msg);
  copy.getChild("body")!.children[0] = "changed";
  copy.attrs.to = "c@d";
  assert.equal(msg.getChildText("body"), "hi");
  assert.equal(msg.attrs.to, "a@b");
  assert.equal(copy.parent, null);
  assert.equal(copy.getChild("body")!.parent, copy);
});
