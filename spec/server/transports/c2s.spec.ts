import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { startTestServer, type TestServer } from "../../support/server.ts";
import { alpnHandshake } from "../../support/tls.ts";
import { SaslFailure } from "../../../conformance/client/client.ts";
import { xml } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import { createScramClient } from "../../../protocol/sasl/index.ts";

let t: TestServer;
before(async () => {
  t = await startTestServer({ users: ["romeo", "juliet"] });
});
after(async () => {
  await t.stop();
});

/** Opens a raw TCP connection and collects everything the server writes. */
async function raw(): Promise<{ socket: net.Socket; text: () => string; closed: Promise<void> }> {
  const socket = net.connect({ host: "127.0.0.1", port: t.port });
  await new Promise<void>((r) => socket.once("connect", () => r()));
  let data = "";
  socket.on("data", (d) => (data += d.toString()));
  socket.on("error", () => {});
  const closed = new Promise<void>((r) => socket.once("close", () => r()));
  return { socket, text: () => data, closed };
}

const HEADER = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";

describe("stream negotiation", () => {
  test("Direct TLS (XEP-0368): ALPN xmpp-client is chosen when offered, a client without ALPN is served, one offering only other protocols is refused", async () => {
    const handshake = (protocols?: string[]) => alpnHandshake("127.0.0.1", t.directTlsPort, "localhost", protocols);
    assert.deepEqual(await handshake(["h2", "xmpp-client"]), { protocol: "xmpp-client" });
    assert.deepEqual(await handshake(["xmpp-client"]), { protocol: "xmpp-client" });
    assert.deepEqual(await handshake(), { protocol: false });
    const refused = await handshake(["h2"]);
    assert.ok("error" in refused && /NO_APPLICATION_PROTOCOL/i.test(refused.error), JSON.stringify(refused));
  });

  test("before TLS only STARTTLS is offered, and it is required", async () => {
    const c = await t.connect({ noTls: true });
    const starttls = c.features?.getChild("starttls", NS.tls);
    assert.ok(starttls?.getChild("required"), "starttls is required");
    assert.equal(c.features?.getChild("mechanisms", NS.sasl), undefined, "no SASL before TLS");
    assert.equal(c.header?.attrs.from, "localhost");
    assert.equal(c.header?.attrs.version, "1.0");
    assert.ok(c.header?.attrs.id && c.header.attrs.id.length >= 16, "a stream id with enough entropy");
    await c.close();
  });

  test("after STARTTLS the SASL mechanisms include -PLUS and PLAIN, with channel-binding types", async () => {
    const c = await t.connect();
    assert.ok(c.secure);
    const mechs = c.mechanisms();
    for (const m of ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"]) assert.ok(mechs.includes(m), m);
    const cb = c.features?.getChild("sasl-channel-binding", NS.saslChannelBinding);
    assert.ok(cb?.getChildren("channel-binding").some((b) => b.attrs.type === "tls-exporter"));
    await c.close();
  });

  for (const mechanism of ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"]) {
    test(`log in with ${mechanism} over STARTTLS and over Direct TLS`, async () => {
      for (const directTls of [false, true]) {
        const c = await t.login("romeo", { mechanism, directTls, resource: `r-${mechanism}-${directTls}` });
        assert.equal(c.jid, `romeo@localhost/r-${mechanism}-${directTls}`);
        const pong = await c.iq(xml("iq", { type: "get", to: "localhost" }, xml("ping", { xmlns: NS.ping })));
        assert.equal(pong.attrs.type, "result");
        assert.equal(pong.attrs.from, "localhost");
        await c.close();
      }
    });
  }

  test("a wrong password is not-authorized, and the right one still works afterwards", async () => {
    const c = await t.connect();
    await assert.rejects(c.login({ username: "romeo", password: "wrong" }), (e: unknown) => e instanceof SaslFailure && e.condition === "not-authorized");
    await assert.rejects(c.login({ username: "nobody", password: "wrong", mechanism: "PLAIN" }), (e: unknown) => e instanceof SaslFailure && e.condition === "not-authorized");
    const jid = await c.login({ username: "romeo", password: "pass-romeo" });
    assert.match(jid, /^romeo@localhost\//);
    await c.close();
  });

  test("repeated authentication failures close the stream with policy-violation", async () => {
    const c = await t.connect();
    for (let i = 0; i < 3; i++) {
      await assert.rejects(c.authenticate("PLAIN", "romeo", `bad${i}`), SaslFailure);
    }
    assert.equal((await c.waitClosed())?.condition, "policy-violation");
  });

  test("the server generates a resource when the client asks for none", async () => {
    const c = await t.connect();
    const jid = await c.login({ username: "juliet", password: "pass-juliet" });
    assert.match(jid, /^juliet@localhost\/.{4,}$/);
    await c.close();
  });

  test("a second login with the same resource replaces the first, which gets <conflict/>", async () => {
    const first = await t.login("romeo", { resource: "balcony" });
    const second = await t.login("romeo", { resource: "balcony" });
    assert.equal((await first.waitClosed())?.condition, "conflict");
    const pong = await second.iq(xml("iq", { type: "get" }, xml("ping", { xmlns: NS.ping })));
    assert.equal(pong.attrs.type, "result");
    await second.close();
  });

  test("the legacy session IQ is answered for old clients", async () => {
    const c = await t.login("juliet");
    const r = await c.iq(xml("iq", { type: "set" }, xml("session", { xmlns: NS.session })));
    assert.equal(r.attrs.type, "result");
    await c.close();
  });

  test("a stream to a domain this server does not host is host-unknown", async () => {
    const c = raw();
    const { socket, text, closed } = await c;
    socket.write(HEADER.replace("to='localhost'", "to='elsewhere.example'"));
    await closed;
    assert.match(text(), /<host-unknown xmlns=["']urn:ietf:params:xml:ns:xmpp-streams["']/);
  });

  test("a stream without version 1.0 is unsupported-version", async () => {
    const { socket, text, closed } = await raw();
    socket.write(HEADER.replace("to='localhost' version='1.0'", "to='localhost'"));
    await closed;
    assert.match(text(), /<unsupported-version /);
  });
});

/** slixmpp 1.8's sequence: -PLUS with tls-unique (absent under TLS 1.3), then SCRAM with "y". */
async function tlsUniqueThenY(s: TestServer): Promise<string> {
  const c = await s.connect();
  const fake = createScramClient("SHA-256", { username: "romeo", password: "pass-romeo", channelBinding: { type: "tls-unique", data: Buffer.alloc(12) } });
  c.send(xml("auth", { xmlns: NS.sasl, mechanism: "SCRAM-SHA-256-PLUS" }, fake.first().toString("base64")));
  const first = await c.next((el) => el.getNS() === NS.sasl);
  assert.equal(first.getName(), "failure");
  const y = createScramClient("SHA-256", { username: "romeo", password: "pass-romeo", channelBinding: { type: "tls-exporter", data: Buffer.alloc(32) }, serverSupportsPlus: false });
  c.send(xml("auth", { xmlns: NS.sasl, mechanism: "SCRAM-SHA-256" }, y.first().toString("base64")));
  const challenge = await c.next((el) => el.getNS() === NS.sasl);
  if (challenge.getName() !== "challenge") return challenge.getChildElements()[0].getName();
  c.send(xml("response", { xmlns: NS.sasl }, y.final(Buffer.from(challenge.getText(), "base64")).toString("base64")));
  const outcome = await c.next((el) => el.getNS() === NS.sasl);
  c.destroy();
  return outcome.getName() === "success" ? "success" : outcome.getChildElements()[0].getName();
}

describe("SCRAM downgrade protection (RFC 5802 §6)", () => {
  test('"y" without having tried -PLUS is refused as a stripped offer', async () => {
    const c = await t.connect();
    const y = createScramClient("SHA-256", { username: "romeo", password: "pass-romeo", channelBinding: { type: "tls-exporter", data: Buffer.alloc(32) }, serverSupportsPlus: false });
    c.send(xml("auth", { xmlns: NS.sasl, mechanism: "SCRAM-SHA-256" }, y.first().toString("base64")));
    const r = await c.next((el) => el.getNS() === NS.sasl);
    assert.equal(r.getName(), "failure");
    assert.ok(r.getChild("not-authorized"));
    c.destroy();
  });

  test('a client whose -PLUS attempt asked for a type we lack may fall back with "y"', async () => {
    assert.equal(await tlsUniqueThenY(t), "success");
  });

  test("strict_channel_binding refuses that fallback too", async () => {
    const s = await startTestServer({ users: ["romeo"], toml: "[c2s]\nstrict_channel_binding = true\n" });
    try {
      assert.equal(await tlsUniqueThenY(s), "not-authorized");
    } finally {
      await s.stop();
    }
  });
});

describe("hostile clients", () => {
  test("authentication before TLS is refused with encryption-required", async () => {
    const c = await t.connect({ noTls: true });
    await assert.rejects(c.authenticate("PLAIN", "romeo", "pass-romeo"), (e: unknown) => e instanceof SaslFailure && e.condition === "encryption-required");
    c.destroy();
  });

  test("a stanza before authentication is not-authorized", async () => {
    const c = await t.connect();
    c.send(xml("message", { to: "juliet@localhost" }, xml("body", {}, "hi")));
    assert.equal((await c.waitClosed())?.condition, "not-authorized");
  });

  for (const [what, input, condition] of [
    ["malformed XML", "<message><body></message>", "not-well-formed"],
    ["a comment", "<!-- hello -->", "restricted-xml"],
    ["an entity declaration", "<!DOCTYPE x [<!ENTITY a 'b'>]>", "restricted-xml"],
    ["an oversized stanza", `<message to='juliet@localhost'><body>${"x".repeat(300 * 1024)}</body></message>`, "policy-violation"],
    ["an unknown top-level element", "<foo xmlns='urn:example'/>", "unsupported-stanza-type"],
  ] as const) {
    test(`${what} ends the stream with <${condition}/> and others are unaffected`, async () => {
      const bystander = await t.login("juliet", { resource: `bystander-${condition}` });
      const c = await t.login("romeo", { resource: `hostile-${condition}` });
      c.write(input);
      assert.equal((await c.waitClosed())?.condition, condition);
      const pong = await bystander.iq(xml("iq", { type: "get", to: "localhost" }, xml("ping", { xmlns: NS.ping })));
      assert.equal(pong.attrs.type, "result");
      await bystander.close();
    });
  }

  test("a spoofed from is replaced by the sender's full JID", async () => {
    const juliet = await t.login("juliet", { resource: "spoof-target" });
    const romeo = await t.login("romeo", { resource: "spoofer" });
    romeo.send(xml("iq", { type: "get", to: "juliet@localhost/spoof-target", from: "admin@localhost/x", id: "spoof1" }, xml("query", { xmlns: "urn:example:x" })));
    const got = await juliet.next((el) => el.attrs.id === "spoof1");
    assert.equal(got.attrs.from, "romeo@localhost/spoofer");
    // The answer between two clients' full JIDs reaches the asker (RFC 6120 §8.2.3).
    juliet.send(xml("iq", { type: "result", to: got.attrs.from, id: "spoof1" }));
    const answer = await romeo.next((el) => el.attrs.id === "spoof1");
    assert.equal(answer.attrs.type, "result");
    assert.equal(answer.attrs.from, "juliet@localhost/spoof-target");
    await romeo.close();
    await juliet.close();
  });

  test("an IQ with an unknown payload gets service-unavailable", async () => {
    const c = await t.login("romeo");
    const r = await c.iq(xml("iq", { type: "get", to: "localhost" }, xml("query", { xmlns: "urn:example:unknown" })));
    assert.equal(r.attrs.type, "error");
    assert.ok(r.getChild("error")?.getChild("service-unavailable", NS.stanzas));
    await c.close();
  });

  test("a flood of stanzas is slowed down, not allowed to starve other clients", async () => {
    const bystander = await t.login("juliet", { resource: "flood-bystander" });
    const c = await t.login("romeo", { resource: "flooder" });
    const ping = "<iq type='get' to='localhost' id='f'><ping xmlns='urn:xmpp:ping'/></iq>";
    c.write(ping.repeat(5000));
    const pong = await bystander.iq(xml("iq", { type: "get", to: "localhost" }, xml("ping", { xmlns: NS.ping })));
    assert.equal(pong.attrs.type, "result");
    await bystander.close();
    c.destroy();
  });
});

test("a client that never logs in is disconnected with connection-timeout", async () => {
  const s = await startTestServer({ toml: "login_timeout_s = 1\n" });
  try {
    const { socket, text, closed } = await (async () => {
      const socket = net.connect({ host: "127.0.0.1", port: s.port });
      let data = "";
      socket.on("data", (d) => (data += d.toString()));
      const closed = new Promise<void>((r) => socket.once("close", () => r()));
      return { socket, text: () => data, closed };
    })();
    // A slow-loris: one byte at a time, never finishing the header.
    const header = HEADER.slice(0, 40);
    let i = 0;
    const drip = setInterval(() => {
      if (i < header.length && !socket.destroyed) socket.write(header[i++]);
    }, 100);
    await closed;
    clearInterval(drip);
    assert.match(text(), /<connection-timeout /);
  } finally {
    await s.stop();
  }
});

test("stopping the server sends <system-shutdown/> to every stream", async () => {
  const s = await startTestServer({ users: ["alice"] });
  const c = await s.login("alice");
  await s.stop();
  assert.equal((await c.waitClosed())?.condition, "system-shutdown");
});

