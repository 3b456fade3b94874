// RFC 4422 §3 robustness: whatever bytes a peer sends, every server mechanism answers with a
// SaslStep (never a throw), and never blames the server (temporary-auth-failure) for bad input.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { createScramClient, createServerMechanism, deriveScramCredentials, saslprep, SaslprepError } from "../../../protocol/sasl/index.ts";
import type { SaslServerContext, SaslStep, ScramHash } from "../../../protocol/sasl/index.ts";

const CONDITIONS = new Set([
  "aborted", "account-disabled", "credentials-expired", "encryption-required", "incorrect-encoding", "invalid-authzid",
  "invalid-mechanism", "malformed-request", "mechanism-too-weak", "not-authorized",
]);
const MECHANISMS = ["SCRAM-SHA-1", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-256-PLUS", "PLAIN", "EXTERNAL"];
const stored = { "SHA-1": deriveScramCredentials("pencil", "SHA-1"), "SHA-256": deriveScramCredentials("pencil", "SHA-256") };

const context = (): SaslServerContext => ({
  channelBinding: { "tls-exporter": Buffer.alloc(32, 1), "tls-server-end-point": Buffer.alloc(32, 2) },
  offeredPlus: true,
  getScramCredentials: async (username, hash) => (username === "user" ? stored[hash] : null),
  verifyPlain: async (username, password) => username === "user" && password === "pencil",
  externalIdentities: ["user@example.com"],
});

function assertWellFormed(step: SaslStep): void {
  if (step.kind === "challenge") assert.ok(Buffer.isBuffer(step.data));
  else if (step.kind === "success") assert.equal(typeof step.username, "string");
  else assert.ok(CONDITIONS.has(step.condition), `unexpected condition ${step.condition}`);
}

// Bytes biased towards the characters SCRAM and PLAIN care about, so that parsing gets deep.
const interesting = fc.oneof(
  fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
  fc.array(fc.constantFrom("n", "y", "p=", "tls-exporter", ",", "=", "a=", "n=", "r=", "c=", "p=", "=2C", "=3D", "m=", "\0", "biws", "user", "\u00AD", "\u0627", "\uFFFF", "x"), { maxLength: 30 })
    .map((parts) => Buffer.from(parts.join(""), "utf8")),
);

describe("random input never throws", () => {
  for (const mechanism of MECHANISMS) {
    test(`${mechanism}: any sequence of up to three messages`, async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(fc.option(interesting, { nil: null }), { minLength: 1, maxLength: 3 }), async (messages) => {
          const server = createServerMechanism(mechanism, context())!;
          for (const message of messages) assertWellFormed(await server.step(message));
        }),
        { numRuns: 300 },
      );
    });
  }

  for (const hash of ["SHA-1", "SHA-256"] as ScramHash[]) {
    test(`SCRAM-${hash}: a valid client-first followed by random bytes`, async () => {
      await fc.assert(
        fc.asyncProperty(interesting, async (final) => {
          const server = createServerMechanism(`SCRAM-${hash}`, context())!;
          const client = createScramClient(hash, { username: "user", password: "pencil" });
          const first = await server.step(client.first());
          assert.equal(first.kind, "challenge");
          const answer = await server.step(final);
          assertWellFormed(answer);
          assert.notEqual(answer.kind, "success");
        }),
        { numRuns: 300 },
      );
    });
  }
});

describe("SASLprep on random strings", () => {
  test("either returns a string that SASLprep leaves unchanged, or throws SaslprepError", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 20 }), fc.boolean(), (input, allowUnassigned) => {
        let output: string;
        try {
          output = saslprep(input, { allowUnassigned });
        } catch (error) {
          assert.ok(error instanceof SaslprepError);
          return;
        }
        assert.equal(saslprep(output, { allowUnassigned }), output);
      }),
      { numRuns: 2000 },
    );
  });
});
