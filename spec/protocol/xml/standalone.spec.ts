import { test } from "node:test";
import assert from "node:assert/strict";
import { xml } from "../../../protocol/xml/element.ts";
import { parseStandalone, standaloneXml } from "../../../protocol/xml/standalone.ts";

test("an element keeps the prefixes its ancestors declared, and parses back on its own", () => {
  const iq = xml("iq", { xmlns: "jabber:client", "xmlns:foo": "urn:foo" }, xml("query", { xmlns: "urn:q" }, xml("foo:bar", { "foo:attr": "1" }, "text")));
  const query = iq.getChild("query")!;
  const text = standaloneXml(query, "jabber:client");
  const back = parseStandalone(text)!;
  assert.equal(back.getNS(), "urn:q");
  const bar = back.getChildElements()[0];
  assert.equal(bar.getNS(), "urn:foo");
  assert.equal(bar.attrs["foo:attr"], "1");
  assert.equal(iq.getChild("query")!.attrs["xmlns:foo"], undefined, "the original is not changed");
});

test("parseStandalone refuses anything but exactly one well-formed element", () => {
  for (const bad of ["", "<a/><b/>", "<a>", "<!-- c --><a/>", "text"]) assert.equal(parseStandalone(bad), null, bad);
  assert.equal(parseStandalone("<a/>")?.attrs.xmlns, "jabber:client");
});
