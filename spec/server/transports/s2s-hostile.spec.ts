// Hostile and broken peers on server-to-server streams (RFC 6120 §4.9 stream errors, §13.9
// denial of service; XEP-0220 §2.4 dialback errors and timeouts), and what users see when a
// remote server cannot be reached (RFC 6120 §8.3.3.16-17: remote-server-not-found/-timeout).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { xml } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import { parseStanzaError } from "../../../protocol/errors.ts";
import type { TestServer } from "../../support/server.ts";
import { assertError } from "../../support/stanzas.ts";
import { RawPeer, TestRoutes, fakeAuthority, startFederated } from "./s2s-support.ts";

describe("a Parley server facing hostile peers", () => {
  const routes = new TestRoutes();
  let c: TestServer;
  const authorities: Array<{ port: number; close(): void }> = [];
  let port = 0;
  before(async () => {
    const evil = await fakeAuthority("127.0.0.14", "valid");
    const liar = await fakeAuthority("127.0.0.14", "invalid");
    const silent = await fakeAuthority("127.0.0.14", "silent");
    authorities.push(evil, liar, silent);
    routes.add("evil.localhost", "127.0.0.14", evil.port);
    routes.add("liar.localhost", "127.0.0.14", liar.port);
    routes.add("silent.localhost", "127.0.0.14", silent.port);
    c = await startFederated(routes, {
      domain: "c.localhost",
      address: "127.0.0.13",
      users: ["carol", "dave"],
      s2s: [
        'insecure_domains = ["evil.localhost", "liar.localhost", "silent.localhost"]',
        'deny = ["denied.localhost"]',
        "max_streams_per_ip = 4",
        "max_queue = 3",
        "auth_timeout_s = 2",
      ].join("\n"),
      adjust: (config) => ({ ...config, limits: { ...config.limits, maxStanzaSize: 10000 } }),
    });
    port = c.s2sPorts[0];
  });
  after(async () => {
    await c?.stop();
    for (const a of authorities) a.close();
  });

  async function authenticatedPeer(domain: string, source = "127.0.0.14"): Promise<RawPeer> {
    const peer = await RawPeer.connect("127.0.0.13", port, source);
    peer.open(domain, "c.localhost");
    assert.ok(await peer.waitFor(/<\/stream:features>/), "features are offered");
    peer.write(`<db:result from='${domain}' to='c.localhost'>0123abcd</db:result>`);
    return peer;
  }

  test("a peer whose key the authoritative server confirms may send from its own domain only", async () => {
    const carol = await c.login("carol", { resource: "r" });
    const peer = await authenticatedPeer("evil.localhost");
    assert.ok(await peer.waitFor(/<db:result[^>]*type=["']valid["']/), "dialback succeeded");
    peer.write(`<message from='eve@evil.localhost/x' to='carol@c.localhost/r' type='chat'><body>hi carol</body></message>`);
    const got = await carol.next((el) => el.name === "message" && el.getChildText("body") === "hi carol");
    assert.equal(got.attrs.from, "eve@evil.localhost/x");
    // RFC 6120 §4.9.3.9: a domain not authenticated on this stream.
    peer.write(`<message from='mallory@a.localhost/x' to='carol@c.localhost/r' type='chat'><body>spoofed</body></message>`);
    assert.ok(await peer.waitFor(/<invalid-from xmlns=["']urn:ietf:params:xml:ns:xmpp-streams["']/), "invalid-from");
    assert.ok(await carol.nothing((el) => el.getChildText("body") === "spoofed", 300));
    peer.destroy();
  });

  test("dialback authorises a (from, to) pair: verified towards c.localhost is not verified towards conference.c.localhost", async () => {
    const peer = await authenticatedPeer("evil.localhost");
    assert.ok(await peer.waitFor(/<db:result[^>]*type=["']valid["']/), "evil.localhost -> c.localhost is verified");
    // XEP-0220 §2.6: another target domain on the same stream needs its own db:result.
    peer.write(`<presence from='eve@evil.localhost/x' to='pair@conference.c.localhost/eve'><x xmlns='${NS.muc}'/></presence>`);
    const refused = await peer.waitFor(/<invalid-from xmlns=["']urn:ietf:params:xml:ns:xmpp-streams["']\/>(<text[^>]*>[^<]*<\/text>)?/);
    assert.ok(refused, "invalid-from");
    assert.match(refused[0], /conference\.c\.localhost/);
    peer.destroy();
    // With its own dialback for that pair, the same stanza passes and the stream stays up.
    const carol = await c.login("carol", { resource: "pair" });
    const second = await authenticatedPeer("evil.localhost");
    assert.ok(await second.waitFor(/<db:result[^>]*type=["']valid["']/));
    second.write(`<db:result from='evil.localhost' to='conference.c.localhost'>4567ef</db:result>`);
    assert.ok(await second.waitFor(/<db:result from=["']conference\.c\.localhost["'][^>]*type=["']valid["']/), "the second pair is verified");
    second.write(`<presence from='eve@evil.localhost/x' to='pair@conference.c.localhost/eve'><x xmlns='${NS.muc}'/></presence>`);
    second.write(`<message from='eve@evil.localhost/x' to='carol@c.localhost/pair' type='chat'><body>after the room</body></message>`);
    await carol.next((el) => el.name === "message" && el.getChildText("body") === "after the room");
    assert.doesNotMatch(second.received, /<stream:error>/);
    second.destroy();
  });

  test("a stanza before any authentication is <invalid-from/>", async () => {
    const peer = await RawPeer.connect("127.0.0.13", port, "127.0.0.14");
    peer.open("evil.localhost", "c.localhost");
    await peer.waitFor(/<\/stream:features>/);
    peer.write(`<message from='eve@evil.localhost' to='carol@c.localhost' type='chat'><body>too early</body></message>`);
    assert.ok(await peer.waitFor(/<invalid-from /));
    peer.destroy();
  });

  test("a key the authoritative server rejects is answered type='invalid', then the stream is closed (XEP-0220 §2.2.1)", async () => {
    const peer = await authenticatedPeer("liar.localhost");
    assert.ok(await peer.waitFor(/<db:result[^>]*type=["']invalid["']\/?>[\s\S]*<\/stream:stream>/), "invalid, then the end of the stream");
    peer.destroy();
  });

  test("an authoritative server that never answers makes the dialback fail with remote-server-timeout", async () => {
    const peer = await authenticatedPeer("silent.localhost");
    const answer = await peer.waitFor(/<db:result[^>]*type=["']error["'][\s\S]*?<\/db:result>/, 8000);
    assert.ok(answer, "an error answer");
    assert.match(answer[0], /remote-server-timeout/);
    peer.destroy();
  });

  test("a peer that never authenticates is disconnected with connection-timeout", async () => {
    const peer = await RawPeer.connect("127.0.0.13", port, "127.0.0.14");
    peer.open("evil.localhost", "c.localhost");
    assert.ok(await peer.waitFor(/<connection-timeout /, 8000));
    peer.destroy();
  });

  test("garbage is <not-well-formed/>, and an oversized stanza is <policy-violation/>", async () => {
    const garbage = await RawPeer.connect("127.0.0.13", port, "127.0.0.14");
    garbage.open("evil.localhost", "c.localhost");
    await garbage.waitFor(/<\/stream:features>/);
    garbage.write("<message><<&&</message>");
    assert.ok(await garbage.waitFor(/<not-well-formed /));
    garbage.destroy();
    const big = await authenticatedPeer("evil.localhost");
    await big.waitFor(/type=["']valid["']/);
    big.write(`<message from='eve@evil.localhost' to='carol@c.localhost' type='chat'><body>${"x".repeat(20000)}</body></message>`);
    assert.ok(await big.waitFor(/<policy-violation /));
    big.destroy();
  });

  test("without STARTTLS a domain that is not exempt gets <policy-violation/>", async () => {
    const peer = await RawPeer.connect("127.0.0.13", port, "127.0.0.14");
    peer.open("plain.localhost", "c.localhost");
    const features = await peer.waitFor(/<stream:features>[\s\S]*?<\/stream:features>/);
    assert.match(features![0], /<starttls xmlns=["']urn:ietf:params:xml:ns:xmpp-tls["']><required\/><\/starttls>/);
    peer.write(`<db:result from='plain.localhost' to='c.localhost'>abcd</db:result>`);
    assert.ok(await peer.waitFor(/<policy-violation /));
    peer.destroy();
  });

  test("a denied domain is refused both ways", async () => {
    const peer = await RawPeer.connect("127.0.0.13", port, "127.0.0.14");
    peer.open("denied.localhost", "c.localhost");
    assert.ok(await peer.waitFor(/<policy-violation /));
    peer.destroy();
    const carol = await c.login("carol", { resource: "deny" });
    carol.send(xml("message", { to: "x@denied.localhost", type: "chat", id: "d1" }, xml("body", {}, "no")));
    assertError(await carol.next((el) => el.attrs.id === "d1"), "remote-server-not-found");
  });

  test("a stream to an unknown host is <host-unknown/>", async () => {
    const peer = await RawPeer.connect("127.0.0.13", port, "127.0.0.14");
    peer.open("evil.localhost", "elsewhere.localhost");
    assert.ok(await peer.waitFor(/<host-unknown /));
    peer.destroy();
  });

  test("a flood of streams from one address hits the per-IP limit while local users carry on", async () => {
    const peers: RawPeer[] = [];
    for (let i = 0; i < 4; i++) {
      const p = await RawPeer.connect("127.0.0.13", port, "127.0.0.15");
      p.open("evil.localhost", "c.localhost");
      await p.waitFor(/<\/stream:features>/);
      peers.push(p);
    }
    const refused: RawPeer[] = [];
    for (let i = 0; i < 50; i++) refused.push(await RawPeer.connect("127.0.0.13", port, "127.0.0.15"));
    for (const p of refused) assert.ok(await p.waitFor(/<policy-violation /), "refused");
    // Another address is not affected, and neither are local users.
    const other = await RawPeer.connect("127.0.0.13", port, "127.0.0.16");
    other.open("evil.localhost", "c.localhost");
    assert.ok(await other.waitFor(/<\/stream:features>/));
    const carol = await c.login("carol", { resource: "busy" });
    const dave = await c.login("dave", { resource: "busy" });
    carol.send(xml("message", { to: "dave@c.localhost/busy", type: "chat" }, xml("body", {}, "still here")));
    await dave.next((el) => el.getChildText("body") === "still here");
    for (const p of [...peers, ...refused, other]) p.destroy();
  });

  test("stanzas for a server that never answers wait in a bounded queue, then bounce with remote-server-timeout", async () => {
    const carol = await c.login("carol", { resource: "q" });
    for (let i = 1; i <= 5; i++) carol.send(xml("message", { to: "x@silent.localhost", type: "chat", id: `q${i}` }, xml("body", {}, `m${i}`)));
    const bounced = [];
    for (let i = 0; i < 5; i++) bounced.push(await carol.next((el) => el.name === "message" && el.attrs.type === "error", 8000));
    for (const b of bounced) assertError(b, "remote-server-timeout");
    // The queue holds three (max_queue); the rest bounce at once, so they come back first.
    assert.deepEqual(bounced.map((b) => b.attrs.id), ["q4", "q5", "q1", "q2", "q3"]);
    // An error is never answered with an error: nothing comes back for a bounced error.
    carol.send(xml("message", { to: "x@silent.localhost", type: "error", id: "e1" }, xml("error", { type: "cancel" }, xml("item-not-found", { xmlns: NS.stanzas }))));
    assert.ok(await carol.nothing((el) => el.attrs.id === "e1", 3000));
    assert.equal(parseStanzaError(bounced[0])?.condition, "remote-server-timeout");
  });
});
