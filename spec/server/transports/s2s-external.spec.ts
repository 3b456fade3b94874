// Federation authenticated by certificates: SASL EXTERNAL on s2s streams (RFC 6120 §6, XEP-0178
// v1.2) when both servers' certificates chain to a CA the other trusts (s2s.ca_file), Server
// Dialback (XEP-0220) piggybacked on such a stream for a further domain, and the
// secure_domains policy that refuses a peer whose certificate is not valid.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { xml } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import type { TestServer } from "../../support/server.ts";
import { assertError } from "../../support/stanzas.ts";
import { TestRoutes, inboundMethods, makeTestCa, startFederated } from "./s2s-support.ts";

describe("federation with certificates from a trusted CA", () => {
  const routes = new TestRoutes();
  const dir = mkdtempSync(join(tmpdir(), "parley-s2s-ca-"));
  let a: TestServer;
  let b: TestServer;
  let d: TestServer;
  before(async () => {
    const { caFile, ca, files } = makeTestCa(dir, ["a.localhost", "b.localhost"]);
    const tlsFor = (domain: string) => `[tls]\ncertificate = "${files[domain].certificate}"\nkey = "${files[domain].key}"`;
    a = await startFederated(routes, {
      domain: "a.localhost", address: "127.0.0.21", users: ["alice"], ca,
      // Without XEP-0288, so that each direction authenticates a stream of its own.
      s2s: `ca_file = "${caFile}"\nsecure_domains = ["d.localhost"]\nbidi = false`, toml: tlsFor("a.localhost"),
    });
    b = await startFederated(routes, { domain: "b.localhost", address: "127.0.0.22", users: ["bob"], ca, s2s: `ca_file = "${caFile}"\nbidi = false`, toml: tlsFor("b.localhost") });
    d = await startFederated(routes, { domain: "d.localhost", address: "127.0.0.23", users: ["dave"] });
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
    await d?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test("chat both ways over streams authenticated with SASL EXTERNAL", async () => {
    const alice = await a.login("alice", { resource: "r" });
    const bob = await b.login("bob", { resource: "r" });
    alice.send(xml("message", { to: "bob@b.localhost/r", type: "chat" }, xml("body", {}, "signed by our CA")));
    assert.equal((await bob.next((el) => el.getChildText("body") === "signed by our CA")).attrs.from, "alice@a.localhost/r");
    bob.send(xml("message", { to: "alice@a.localhost/r", type: "chat" }, xml("body", {}, "mine too")));
    assert.equal((await alice.next((el) => el.getChildText("body") === "mine too")).attrs.from, "bob@b.localhost/r");
    assert.deepEqual(inboundMethods(b, "a.localhost"), ["external"]);
    assert.deepEqual(inboundMethods(a, "b.localhost"), ["external"]);
  });

  test("a second domain of the same server is piggybacked on the stream with dialback", async () => {
    const alice = await a.login("alice", { resource: "muc" });
    const room = "ca-room@conference.b.localhost";
    alice.send(xml("presence", { to: `${room}/Alice` }, xml("x", { xmlns: NS.muc })));
    const self = await alice.next((el) => el.name === "presence" && el.attrs.from === `${room}/Alice`);
    assert.equal(self.attrs.type, undefined);
    assert.deepEqual(inboundMethods(a, "conference.b.localhost"), ["dialback"]);
    // The MUC's stanzas travelled on b.localhost's stream: one stream carries both domains.
    const onStream = inboundMethods(a, "b.localhost");
    assert.equal(onStream.length, 1);
  });

  test("secure_domains refuses a peer whose certificate is self-signed, both ways, with a bounce", async () => {
    const alice = await a.login("alice", { resource: "secure" });
    alice.send(xml("message", { to: "dave@d.localhost", type: "chat", id: "s1" }, xml("body", {}, "are you real?")));
    assertError(await alice.next((el) => el.attrs.id === "s1", 8000), "remote-server-not-found");
    const dave = await d.login("dave", { resource: "r" });
    dave.send(xml("message", { to: "alice@a.localhost", type: "chat", id: "s2" }, xml("body", {}, "I am")));
    assertError(await dave.next((el) => el.attrs.id === "s2", 8000), "remote-server-not-found");
    assert.deepEqual(inboundMethods(a, "d.localhost"), []);
  });

  test("a self-signed peer without a secure_domains rule falls back to dialback", async () => {
    const bob = await b.login("bob", { resource: "dialback" });
    const dave = await d.login("dave", { resource: "dialback" });
    bob.send(xml("message", { to: "dave@d.localhost/dialback", type: "chat" }, xml("body", {}, "hello d")));
    await dave.next((el) => el.getChildText("body") === "hello d");
    assert.deepEqual(inboundMethods(d, "b.localhost"), ["dialback"]);
  });
});
