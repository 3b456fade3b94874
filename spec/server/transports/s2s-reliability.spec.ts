// What happens on a server-to-server stream around its quiet times and its end: whitespace
// keepalives (RFC 6120 §4.6.1), the closing handshake (§4.4: the side that closes still
// processes what the other had sent), and stanzas caught by a stream that breaks — never
// silently lost: re-sent on a new stream when they never left, or bounced to the sender with
// remote-server-timeout (§8.3.3.17) when the peer may not have processed them.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { xml, type Element } from "../../../protocol/xml/element.ts";
import { parseStanzaError } from "../../../protocol/errors.ts";
import type { S2sTransport } from "../../../server/transports/s2s/index.ts";
import type { XmppClient } from "../../../conformance/client/client.ts";
import type { TestServer } from "../../support/server.ts";
import { RawPeer, TestRoutes, fakeAuthority, scriptedRemote, startFederated, type RemoteConnection } from "./s2s-support.ts";

const HOST = "127.0.0.70";
const REMOTES = "127.0.0.71";
const PEERS = "127.0.0.72";

function s2sOf(t: TestServer): S2sTransport {
  return t.server.transports.find((x): x is S2sTransport => x.name === "s2s")!;
}

async function until(what: string, cond: () => boolean, ms = 8000): Promise<void> {
  const deadline = Date.now() + ms;
  for (let i = 0; i < 2000 && !cond(); i++) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Ids of the bounces `client` got, by stanza error condition. */
async function bouncesOf(client: XmppClient, ids: string[], waitMs: number): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const deadline = Date.now() + waitMs;
  for (let i = 0; i < 1000 && Date.now() < deadline; i++) {
    const el = await client.next((e) => e.name === "message" && e.attrs.type === "error" && ids.includes(e.attrs.id ?? "") && !out.has(e.attrs.id ?? ""), Math.max(1, deadline - Date.now())).catch(() => null);
    if (!el) break;
    out.set(el.attrs.id!, parseStanzaError(el)?.condition ?? "");
  }
  return out;
}

const bodyIds = (stanzas: Element[]) => stanzas.filter((s) => s.name === "message").map((s) => s.attrs.id ?? "");

describe("s2s keepalives, closing and stanzas caught by a breaking stream", () => {
  const routes = new TestRoutes();
  let k: TestServer;
  const closers: Array<{ close(): void }> = [];
  before(async () => {
    const authority = await fakeAuthority(REMOTES, "valid");
    closers.push(authority);
    routes.add("peer.localhost", REMOTES, authority.port);
    k = await startFederated(routes, {
      domain: "k.localhost",
      address: HOST,
      users: ["carol"],
      s2s: ['insecure_domains = ["localhost"]', "keepalive_s = 1", "bidi = false"].join("\n"),
      adjust: (config) => ({ ...config, limits: { ...config.limits, c2sRateBytesPerSecond: 1 << 30, c2sBurstBytes: 1 << 30 } }),
    });
  });
  after(async () => {
    await k?.stop();
    for (const c of closers) c.close();
  });

  /** A remote domain served by a scripted stand-in. */
  async function remote(domain: string, script: Parameters<typeof scriptedRemote>[1] = {}) {
    const r = await scriptedRemote(REMOTES, script);
    closers.push(r);
    routes.add(domain, REMOTES, r.port);
    return r;
  }

  test("an outgoing stream that has nothing to say sends a single space after keepalive_s", async () => {
    const far = await remote("ka.localhost");
    const carol = await k.login("carol", { resource: "ka" });
    carol.send(xml("message", { to: "x@ka.localhost", type: "chat", id: "ka1" }, xml("body", {}, "then silence")));
    await until("the message", () => bodyIds(far.processed()).includes("ka1"));
    const c = far.connections[0];
    const tailAfter = () => c.received.slice(c.received.lastIndexOf("</message>") + "</message>".length);
    await until("a keepalive", () => tailAfter().length > 0, 4000);
    assert.match(tailAfter(), /^ +$/, "only spaces follow the last stanza");
    assert.equal(tailAfter()[0], " ");
    assert.equal(c.closed, false);
  });

  test("an idle incoming stream gets keepalives too, and the peer's own spaces are fine", async () => {
    const carol = await k.login("carol", { resource: "in" });
    const peer = await RawPeer.connect(HOST, k.s2sPorts[0], PEERS);
    peer.open("peer.localhost", "k.localhost");
    assert.ok(await peer.waitFor(/<\/stream:features>/));
    peer.write(`<db:result from='peer.localhost' to='k.localhost'>00aa</db:result>`);
    assert.ok(await peer.waitFor(/<db:result[^>]*type=["']valid["'][^>]*\/>/));
    assert.ok(await peer.waitFor(/type=["']valid["'][^>]*\/> /, 4000), "a space follows the last element");
    assert.match(peer.received.slice(peer.received.search(/type=["']valid["'][^>]*\/>/)), /^type=["']valid["'][^>]*\/> +$/);
    peer.write("  \n ");
    peer.write(`<message from='p@peer.localhost/x' to='carol@k.localhost/in' type='chat' id='sp'><body>after spaces</body></message>`);
    const got = await carol.next((el) => el.attrs.id === "sp");
    assert.equal(got.getChildText("body"), "after spaces");
    peer.destroy();
  });

  test("a peer that resets the connection mid-burst: every stanza is processed or bounced with remote-server-timeout", async () => {
    const far = await remote("rst.localhost", {
      onStanza: (c: RemoteConnection) => {
        if (c.index === 0 && c.stanzas.length === 3) {
          c.stopped = true;
          c.socket.resetAndDestroy();
        }
      },
    });
    const carol = await k.login("carol", { resource: "rst" });
    const ids = Array.from({ length: 10 }, (_, i) => `r${i}`);
    for (const id of ids) carol.send(xml("message", { to: "x@rst.localhost", type: "chat", id }, xml("body", {}, id)));
    const bounced = await bouncesOf(carol, ids, 6000);
    const processed = new Set(bodyIds(far.processed()));
    for (const id of ids) assert.ok(processed.has(id) || bounced.has(id), `${id} was neither processed nor bounced`);
    assert.ok(bounced.size > 0, "some were bounced");
    for (const condition of bounced.values()) assert.equal(condition, "remote-server-timeout");
    // The link recovers: a later stanza takes a new stream.
    carol.send(xml("message", { to: "x@rst.localhost", type: "chat", id: "r-after" }, xml("body", {}, "later")));
    await until("the later message", () => bodyIds(far.processed()).includes("r-after"));
    assert.ok(far.connections.length >= 2);
  });

  test("stanzas still held back when the peer resets go out again on a new stream, not bounced", async () => {
    const far = await remote("held.localhost", {
      onStanza: (c: RemoteConnection) => {
        // The first stanza arrives; then this connection stops reading, so the rest pile up.
        if (c.index === 0 && c.stanzas.length === 1) c.socket.pause();
      },
    });
    const carol = await k.login("carol", { resource: "held" });
    carol.send(xml("message", { to: "x@held.localhost", type: "chat", id: "h-first" }, xml("body", {}, "first")));
    await until("the first message", () => bodyIds(far.processed()).includes("h-first"));
    const big = "y".repeat(200_000);
    const ids = Array.from({ length: 40 }, (_, i) => `h${i}`);
    for (const id of ids) carol.send(xml("message", { to: "x@held.localhost", type: "chat", id }, xml("body", {}, big)));
    const link = s2sOf(k).links.get("held.localhost")!;
    await until("bytes held back by Node", () => (link.stream?.bufferedBytes ?? 0) > 0, 15000);
    await new Promise((r) => setTimeout(r, 300));
    far.connections[0].stopped = true;
    far.connections[0].socket.resetAndDestroy();
    const bounced = await bouncesOf(carol, ids, 8000);
    await until("a second connection's stanzas", () => far.connections.length >= 2 && bodyIds(far.connections[1].stanzas).length > 0, 10000);
    await until("every id accounted for", () => ids.every((id) => bounced.has(id) || bodyIds(far.processed()).includes(id)), 10000).catch((e: Error) => {
      const missing = ids.filter((id) => !bounced.has(id) && !bodyIds(far.processed()).includes(id));
      throw new Error(`${e.message}: missing ${missing.join(",")}; bounced ${[...bounced.keys()].join(",")}; conns ${far.connections.map((c) => bodyIds(c.stanzas).join("+")).join(" | ")}`);
    });
    const again = bodyIds(far.connections.slice(1).flatMap((c) => c.stanzas));
    assert.ok(again.length > 0, "some went out again on a new stream");
    for (const id of again) assert.ok(!bounced.has(id), `${id} was re-sent and must not also bounce`);
    for (const condition of bounced.values()) assert.equal(condition, "remote-server-timeout");
  });

  test("a peer that closes cleanly (§4.4) loses nothing: what follows its closing tag takes a new stream", async () => {
    const far = await remote("bye.localhost", {
      onStanza: (c: RemoteConnection) => {
        // Closes after the first stanza, but keeps processing until our closing tag (compliant).
        if (c.index === 0 && c.stanzas.length === 1) c.socket.write("</stream:stream>");
      },
      onClose: (c: RemoteConnection) => c.socket.end(),
    });
    const carol = await k.login("carol", { resource: "bye" });
    const ids = Array.from({ length: 8 }, (_, i) => `b${i}`);
    carol.send(xml("message", { to: "x@bye.localhost", type: "chat", id: ids[0] }, xml("body", {}, "one")));
    await until("the first connection's end", () => far.connections[0]?.closed === true);
    for (const id of ids.slice(1)) carol.send(xml("message", { to: "x@bye.localhost", type: "chat", id }, xml("body", {}, id)));
    await until("all processed", () => ids.every((id) => bodyIds(far.processed()).includes(id)));
    assert.ok(await carol.nothing((el) => el.attrs.type === "error", 500), "nothing bounced");
    assert.deepEqual(bodyIds(far.processed()).filter((id) => id.startsWith("b")), ids, "each once, in order");
    assert.ok(far.connections.length >= 2);
  });
});

describe("a Parley closing an idle incoming stream still processes what the peer had sent (RFC 6120 §4.4)", () => {
  const routes = new TestRoutes();
  let t: TestServer;
  let authority: { port: number; close(): void };
  before(async () => {
    authority = await fakeAuthority("127.0.0.74", "valid");
    routes.add("late.localhost", "127.0.0.74", authority.port);
    t = await startFederated(routes, {
      domain: "i.localhost",
      address: "127.0.0.73",
      users: ["ivy"],
      s2s: ['insecure_domains = ["late.localhost"]', "idle_timeout_s = 1", "keepalive_s = 0"].join("\n"),
    });
  });
  after(async () => {
    await t?.stop();
    authority?.close();
  });

  test("a stanza the peer wrote before it saw our closing tag is delivered", async () => {
    const ivy = await t.login("ivy", { resource: "r" });
    const peer = await RawPeer.connect("127.0.0.73", t.s2sPorts[0], "127.0.0.74", true);
    peer.open("late.localhost", "i.localhost");
    assert.ok(await peer.waitFor(/<\/stream:features>/));
    peer.write(`<db:result from='late.localhost' to='i.localhost'>00bb</db:result>`);
    assert.ok(await peer.waitFor(/type=["']valid["']/));
    // Idle: the server closes its stream (without an error) and waits for ours.
    const closing = await peer.waitFor(/<\/stream:stream>/, 5000);
    assert.ok(closing, "the server closed the idle stream");
    assert.doesNotMatch(peer.received, /<stream:error>/);
    // Crossing the closing tag: a stanza the peer had already sent, then its own closing tag.
    peer.write(`<message from='l@late.localhost/x' to='ivy@i.localhost/r' type='chat' id='late1'><body>crossed</body></message></stream:stream>`);
    peer.socket.end();
    const got = await ivy.next((el) => el.attrs.id === "late1", 3000);
    assert.equal(got.getChildText("body"), "crossed");
    peer.destroy();
  });
});
