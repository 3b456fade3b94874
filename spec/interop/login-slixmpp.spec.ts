// Interop, RFC 6120 §5-§7 (STARTTLS, SASL, binding), XEP-0368 (Direct TLS), RFC 5802 §6 (SCRAM
// channel-binding flags): Debian's slixmpp 1.8 logs in to Parley with every mechanism it has.
//
// slixmpp prefers SCRAM-*-PLUS with tls-unique, which TLS 1.3 does not define, so Parley offers
// only tls-exporter / tls-server-end-point; slixmpp's -PLUS attempts fail and it falls back. Its
// fallback says "y" ("I could bind, I think you cannot"), which Parley accepts on a connection
// whose client already asked for a binding type Parley lacks (c2s.strict_channel_binding off).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { dirname } from "node:path";
import { startTestServer, type TestServer } from "../support/server.ts";
import { Slix, slixmppAvailable, writeCaFile, type SlixEvent, type SlixOptions } from "./support/slixmpp.ts";

let t: TestServer;
let caFile: string;
before(async () => {
  t = await startTestServer({ users: ["alice"] });
  caFile = writeCaFile(t);
});
after(async () => {
  await t?.stop();
  if (caFile) rmSync(dirname(caFile), { recursive: true, force: true });
});

const authEvents = (s: Slix) => s.seen((e) => e.event === "auth_success" || e.event === "failed_auth");

/** Logs in as alice, pings the server, logs out; returns what slixmpp reported. */
async function loginAndPing(opts: SlixOptions, resource: string): Promise<SlixEvent[]> {
  const s = Slix.start(t, caFile, `alice@localhost/${resource}`, opts);
  try {
    const started = await s.waitFor((e) => e.event === "session_start", "session_start");
    assert.equal(started.jid, `alice@localhost/${resource}`);
    await s.ok("ping", { jid: "localhost" });
    return authEvents(s);
  } finally {
    await s.stop();
  }
}

/** Starts a login that must fail; returns what slixmpp reported once it gave up. */
async function failedLogin(opts: SlixOptions): Promise<Slix> {
  const s = Slix.start(t, caFile, "alice@localhost/fail", opts);
  try {
    await s.waitFor((e) => e.event === "failed_all_auth" || e.event === "disconnected" || e.event === "session_start", "the end of authentication");
  } finally {
    await s.stop();
  }
  assert.equal(s.seen((e) => e.event === "session_start").length, 0, s.diagnostics);
  return s;
}

describe("slixmpp logs in to Parley", { skip: !slixmppAvailable && "no /usr/bin/python3 with slixmpp" }, () => {
  for (const [transport, directTls] of [["STARTTLS", false], ["Direct TLS", true]] as const) {
    describe(`over ${transport}`, () => {
      for (const mechanism of ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"]) {
        test(`with ${mechanism}`, async () => {
          // channelBinding off: a client that does not bind says so ("n"), see the header.
          const auth = await loginAndPing({ directTls, mechanisms: [mechanism], channelBinding: false }, `${mechanism}-${directTls}`);
          assert.deepEqual(auth, [{ event: "auth_success", mechanism }]);
        });
      }

      test("with its default choice: the -PLUS attempts fail and SCRAM-SHA-256 succeeds", async () => {
        const auth = await loginAndPing({ directTls }, `default-${directTls}`);
        assert.deepEqual(auth, [
          { event: "failed_auth", mechanism: "SCRAM-SHA-256-PLUS", condition: "not-authorized" },
          { event: "failed_auth", mechanism: "SCRAM-SHA-1-PLUS", condition: "not-authorized" },
          { event: "auth_success", mechanism: "SCRAM-SHA-256" },
        ]);
      });

      test("limited to SCRAM-SHA-1(-PLUS): falls back from -PLUS to SCRAM-SHA-1", async () => {
        const auth = await loginAndPing({ directTls, mechanisms: ["SCRAM-SHA-1-PLUS", "SCRAM-SHA-1"] }, `sha1-${directTls}`);
        assert.deepEqual(auth, [
          { event: "failed_auth", mechanism: "SCRAM-SHA-1-PLUS", condition: "not-authorized" },
          { event: "auth_success", mechanism: "SCRAM-SHA-1" },
        ]);
      });

      test("a wrong password is refused with not-authorized and no session starts", async () => {
        const s = await failedLogin({ directTls, mechanisms: ["SCRAM-SHA-256"], channelBinding: false, password: "wrong" });
        assert.deepEqual(authEvents(s), [{ event: "failed_auth", mechanism: "SCRAM-SHA-256", condition: "not-authorized" }]);
      });
    });
  }

  test("SCRAM-SHA-1 with slixmpp's 'y' flag and no -PLUS attempt first is refused as a downgrade (RFC 5802 §6)", async () => {
    const s = await failedLogin({ mechanisms: ["SCRAM-SHA-1"] });
    assert.deepEqual(authEvents(s), [{ event: "failed_auth", mechanism: "SCRAM-SHA-1", condition: "not-authorized" }]);
  });
});

describe("slixmpp against c2s.strict_channel_binding", { skip: !slixmppAvailable && "no /usr/bin/python3 with slixmpp" }, () => {
  let strict: TestServer;
  let strictCa: string;
  before(async () => {
    strict = await startTestServer({ users: ["alice"], toml: "[c2s]\nstrict_channel_binding = true\n" });
    strictCa = writeCaFile(strict);
  });
  after(async () => {
    await strict?.stop();
    if (strictCa) rmSync(dirname(strictCa), { recursive: true, force: true });
  });

  test("the fallback from -PLUS is refused, and a client that says 'n' still logs in", async () => {
    const refused = Slix.start(strict, strictCa, "alice@localhost/strict", {});
    await refused.waitFor((e) => e.event === "disconnected" || e.event === "session_start", "the end of authentication");
    await refused.stop();
    assert.equal(refused.seen((e) => e.event === "session_start").length, 0, refused.diagnostics);
    // Its third failure in a row on one stream also ends the stream (limits.auth_failures_before_close).
    assert.deepEqual(
      refused.seen((e) => e.event === "failed_auth" || e.event === "stream_error").map(({ text: _text, ...e }) => e),
      [
        { event: "failed_auth", mechanism: "SCRAM-SHA-256-PLUS", condition: "not-authorized" },
        { event: "failed_auth", mechanism: "SCRAM-SHA-1-PLUS", condition: "not-authorized" },
        { event: "failed_auth", mechanism: "SCRAM-SHA-256", condition: "not-authorized" },
        { event: "stream_error", condition: "policy-violation" },
      ],
    );

    const plain = await Slix.online(strict, strictCa, "alice@localhost/strict-n", { mechanisms: ["SCRAM-SHA-256"], channelBinding: false });
    await plain.ok("ping", { jid: "localhost" });
    await plain.stop();
  });
});
