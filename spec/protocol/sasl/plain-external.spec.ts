// RFC 4616 (PLAIN) and RFC 4422 Appendix A / XEP-0178 (EXTERNAL), server side, with the client helpers.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  createServerMechanism,
  deriveScramCredentials,
  externalClient,
  plainClient,
  unknownUserCredentials,
  verifyScramPassword,
} from "../../../protocol/sasl/index.ts";
import type { SaslServerContext, SaslStep } from "../../../protocol/sasl/index.ts";

const stored = { juliet: deriveScramCredentials("r0m30", "SHA-256"), IX: deriveScramCredentials("nine", "SHA-256") };

function context(overrides: Partial<SaslServerContext> = {}): SaslServerContext & { checked: [string, string][] } {
  const checked: [string, string][] = [];
  return {
    channelBinding: {},
    offeredPlus: false,
    getScramCredentials: async () => null,
    // The shape the brief recommends: same PBKDF2 work for unknown users.
    async verifyPlain(username, password) {
      checked.push([username, password]);
      const known = Object.hasOwn(stored, username) ? stored[username as keyof typeof stored] : undefined;
      const credentials = known ?? unknownUserCredentials(username, "SHA-256");
      return verifyScramPassword(password, "SHA-256", credentials) && known !== undefined;
    },
    checked,
    ...overrides,
  };
}

const conditionOf = (step: SaslStep) => (step.kind === "failure" ? step.condition : step.kind);

async function plain(data: Buffer | null, ctx = context()): Promise<SaslStep> {
  return createServerMechanism("PLAIN", ctx)!.step(data);
}

describe("PLAIN", () => {
  test("the right password succeeds, with no additional data", async () => {
    assert.deepEqual(await plain(plainClient("juliet", "r0m30")), { kind: "success", username: "juliet" });
  });
  test("an authzid is passed on for the caller to judge", async () => {
    assert.deepEqual(await plain(plainClient("juliet", "r0m30", "juliet@capulet.lit")), {
      kind: "success", username: "juliet", authzid: "juliet@capulet.lit",
    });
  });
  test("a wrong password and an unknown user are both not-authorized", async () => {
    assert.deepEqual(await plain(plainClient("juliet", "romeo")), { kind: "failure", condition: "not-authorized" });
    assert.deepEqual(await plain(plainClient("nurse", "r0m30")), { kind: "failure", condition: "not-authorized" });
  });
  test("authcid and password are SASLprepped before verification", async () => {
    const ctx = context();
    assert.equal((await plain(plainClient("I\u00ADX", "ni\u00ADne"), ctx)).kind, "success");
    assert.deepEqual(ctx.checked, [["IX", "nine"]]);
  });
  test("values SASLprep refuses fail verification without reaching the store", async () => {
    const ctx = context();
    assert.equal(conditionOf(await plain(plainClient("juli\u0007et", "r0m30"), ctx)), "not-authorized");
    assert.equal(conditionOf(await plain(plainClient("juliet", "\u00AD"), ctx)), "not-authorized");
    assert.deepEqual(ctx.checked, []);
  });
  const malformed: [string, Buffer][] = [
    ["an empty authcid", plainClient("", "r0m30")],
    ["an empty password", plainClient("juliet", "")],
    ["one NUL only", Buffer.from("juliet\0r0m30")],
    ["three NULs", Buffer.from("\0juliet\0r0m30\0")],
    ["no NUL at all", Buffer.from("julietr0m30")],
    ["an empty message", Buffer.alloc(0)],
    ["invalid UTF-8", Buffer.concat([Buffer.from("\0juli"), Buffer.from([0xc3, 0x28]), Buffer.from("\0pw")])],
  ];
  for (const [name, data] of malformed) {
    test(`${name} is malformed-request`, async () => assert.equal(conditionOf(await plain(data)), "malformed-request"));
  }
  test("no initial response gets an empty challenge, then the response is checked", async () => {
    const server = createServerMechanism("PLAIN", context())!;
    assert.deepEqual(await server.step(null), { kind: "challenge", data: Buffer.alloc(0) });
    assert.equal((await server.step(plainClient("juliet", "r0m30"))).kind, "success");
    assert.equal(conditionOf(await server.step(plainClient("juliet", "r0m30"))), "malformed-request");
  });
  test("a verifier that throws is temporary-auth-failure", async () => {
    const ctx = context({ verifyPlain: async () => { throw new Error("db down"); } });
    assert.equal(conditionOf(await plain(plainClient("juliet", "r0m30"), ctx)), "temporary-auth-failure");
  });
});

describe("EXTERNAL", () => {
  const external = (identities: string[] | undefined, data: Buffer | null) =>
    createServerMechanism("EXTERNAL", context({ externalIdentities: identities }))!.step(data);

  test("an empty authzid takes the certificate's only identity", async () => {
    assert.deepEqual(await external(["juliet@capulet.lit"], externalClient()), { kind: "success", username: "juliet@capulet.lit" });
  });
  test("an authzid among the certificate's identities succeeds", async () => {
    assert.deepEqual(await external(["capulet.lit", "conference.capulet.lit"], externalClient("conference.capulet.lit")), {
      kind: "success", username: "conference.capulet.lit", authzid: "conference.capulet.lit",
    });
  });
  test("an authzid the certificate does not prove is invalid-authzid", async () => {
    assert.equal(conditionOf(await external(["juliet@capulet.lit"], externalClient("romeo@montague.lit"))), "invalid-authzid");
  });
  test("several identities and no authzid is invalid-authzid", async () => {
    assert.equal(conditionOf(await external(["a.example", "b.example"], externalClient())), "invalid-authzid");
  });
  test("a certificate without identities is not-authorized", async () => {
    const ctx = context({ externalIdentities: ["x.example"] });
    const server = createServerMechanism("EXTERNAL", ctx)!;
    ctx.externalIdentities = [];
    assert.equal(conditionOf(await server.step(externalClient())), "not-authorized");
  });
  test("no initial response gets an empty challenge; the empty response then means the certificate's identity", async () => {
    const server = createServerMechanism("EXTERNAL", context({ externalIdentities: ["capulet.lit"] }))!;
    assert.deepEqual(await server.step(null), { kind: "challenge", data: Buffer.alloc(0) });
    assert.deepEqual(await server.step(Buffer.alloc(0)), { kind: "success", username: "capulet.lit" });
  });
  test("invalid UTF-8 or a NUL in the authzid is malformed-request", async () => {
    assert.equal(conditionOf(await external(["a.example"], Buffer.from([0xff]))), "malformed-request");
    assert.equal(conditionOf(await external(["a.example"], Buffer.from("a.example\0"))), "malformed-request");
  });
  test("the mechanism is unavailable without certificate identities", () => {
    assert.equal(createServerMechanism("EXTERNAL", context()), null);
    assert.equal(createServerMechanism("EXTERNAL", context({ externalIdentities: [] })), null);
  });
});
