// RFC 6120 §6.3.3 mechanism offer and §6.4 exchanges: every mechanism, client against server.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  createScramClient,
  createServerMechanism,
  deriveScramCredentials,
  externalClient,
  plainClient,
  serverMechanisms,
  verifyScramPassword,
} from "../../../protocol/sasl/index.ts";
import type { SaslServerContext, SaslServerSession, SaslStep, ScramCredentials, ScramHash } from "../../../protocol/sasl/index.ts";

describe("serverMechanisms", () => {
  test("over TLS with channel binding: -PLUS first, SHA-256 before SHA-1, PLAIN last", () => {
    assert.deepEqual(serverMechanisms({ tls: true, channelBindings: ["tls-exporter"], allowPlain: true, external: false }), [
      "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN",
    ]);
  });
  test("EXTERNAL leads when the peer's certificate proved an identity", () => {
    assert.deepEqual(serverMechanisms({ tls: true, channelBindings: ["tls-server-end-point"], allowPlain: false, external: true }), [
      "EXTERNAL", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1",
    ]);
  });
  test("without TLS: no -PLUS, no PLAIN, no EXTERNAL, whatever is asked", () => {
    assert.deepEqual(serverMechanisms({ tls: false, channelBindings: ["tls-exporter"], allowPlain: true, external: true }), [
      "SCRAM-SHA-256", "SCRAM-SHA-1",
    ]);
  });
  test("no -PLUS when the only binding types are unknown", () => {
    assert.deepEqual(serverMechanisms({ tls: true, channelBindings: ["tls-unique"], allowPlain: false, external: false }), [
      "SCRAM-SHA-256", "SCRAM-SHA-1",
    ]);
  });
});

const PASSWORD = "wherefore art thou";
const cache = new Map<ScramHash, ScramCredentials>();
const credentials = (hash: ScramHash) => {
  if (!cache.has(hash)) cache.set(hash, deriveScramCredentials(PASSWORD, hash));
  return cache.get(hash)!;
};

function context(channelBinding: SaslServerContext["channelBinding"]): SaslServerContext {
  return {
    channelBinding,
    offeredPlus: Object.keys(channelBinding).length > 0,
    getScramCredentials: async (username, hash) => (username === "romeo" ? credentials(hash) : null),
    verifyPlain: async (username, password) => username === "romeo" && verifyScramPassword(password, "SHA-256", credentials("SHA-256")),
    externalIdentities: ["romeo@montague.lit"],
  };
}

async function scramRoundTrip(server: SaslServerSession, hash: ScramHash, password: string, channelBinding?: { type: string; data: Buffer }) {
  const client = createScramClient(hash, { username: "romeo", password, ...(channelBinding ? { channelBinding } : {}) });
  assert.equal(client.mechanism, server.mechanism);
  const first = await server.step(client.first());
  assert.equal(first.kind, "challenge");
  const final: SaslStep = await server.step(client.final((first as { data: Buffer }).data));
  return { final, verified: final.kind === "success" && client.verify(final.data!) };
}

describe("client against server", () => {
  const exporter = Buffer.alloc(32, 0xa5);
  const endPoint = Buffer.alloc(32, 0x5a);
  const bindings = { "tls-exporter": exporter, "tls-server-end-point": endPoint };
  for (const hash of ["SHA-1", "SHA-256"] as ScramHash[]) {
    test(`SCRAM-${hash} without channel binding`, async () => {
      const server = createServerMechanism(`SCRAM-${hash}`, context({}))!;
      const { final, verified } = await scramRoundTrip(server, hash, PASSWORD);
      assert.equal(verified, true);
      assert.equal((final as { username: string }).username, "romeo");
    });
    for (const [type, data] of Object.entries(bindings)) {
      test(`SCRAM-${hash}-PLUS with ${type}`, async () => {
        const server = createServerMechanism(`SCRAM-${hash}-PLUS`, context(bindings))!;
        assert.equal((await scramRoundTrip(server, hash, PASSWORD, { type, data })).verified, true);
      });
    }
    test(`SCRAM-${hash} with the wrong password fails and the client sees no signature`, async () => {
      const server = createServerMechanism(`SCRAM-${hash}`, context({}))!;
      const { final, verified } = await scramRoundTrip(server, hash, "wrong");
      assert.deepEqual(final, { kind: "failure", condition: "not-authorized" });
      assert.equal(verified, false);
    });
  }
  test("PLAIN", async () => {
    const server = createServerMechanism("PLAIN", context({}))!;
    assert.deepEqual(await server.step(plainClient("romeo", PASSWORD)), { kind: "success", username: "romeo" });
  });
  test("EXTERNAL", async () => {
    const server = createServerMechanism("EXTERNAL", context({}))!;
    assert.deepEqual(await server.step(externalClient()), { kind: "success", username: "romeo@montague.lit" });
  });
});

describe("createServerMechanism", () => {
  test("unknown names and -PLUS without channel binding data give null", () => {
    assert.equal(createServerMechanism("DIGEST-MD5", context({})), null);
    assert.equal(createServerMechanism("scram-sha-1", context({})), null);
    assert.equal(createServerMechanism("toString", context({})), null);
    assert.equal(createServerMechanism("SCRAM-SHA-256-PLUS", context({})), null);
  });
  test("sessions report their mechanism name", () => {
    const ctx = context({ "tls-exporter": Buffer.alloc(32) });
    for (const name of ["SCRAM-SHA-1", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-256-PLUS", "PLAIN", "EXTERNAL"]) {
      assert.equal(createServerMechanism(name, ctx)?.mechanism, name);
    }
  });
});
