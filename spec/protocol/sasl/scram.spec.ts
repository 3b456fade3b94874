// RFC 5802 §5 (SCRAM-SHA-1) and RFC 7677 §3 (SCRAM-SHA-256) test vectors, driven through the
// server and the client, plus the stored-credential helpers.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  createScramClient,
  createServerMechanism,
  deriveScramCredentials,
  unknownUserCredentials,
  verifyScramPassword,
} from "../../../protocol/sasl/index.ts";
import type { SaslServerContext, SaslStep, ScramHash } from "../../../protocol/sasl/index.ts";

const text = (data: Buffer | undefined) => data?.toString("utf8");

function vectorContext(hash: ScramHash, salt: string, serverNonce: string): SaslServerContext {
  const credentials = deriveScramCredentials("pencil", hash, { salt: Buffer.from(salt, "base64"), iterations: 4096 });
  return {
    channelBinding: {},
    offeredPlus: false,
    getScramCredentials: async (username, h) => (username === "user" && h === hash ? credentials : null),
    verifyPlain: async () => false,
    generateNonce: () => serverNonce,
  };
}

const vectors = [
  {
    rfc: "RFC 5802 §5",
    hash: "SHA-1" as ScramHash,
    mechanism: "SCRAM-SHA-1",
    clientNonce: "fyko+d2lbbFgONRv9qkxdawL",
    serverNonce: "3rfcNHYJY1ZVvWVs7j",
    salt: "QSXCR+Q6sek8bf92",
    clientFirst: "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
    serverFirst: "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
    clientFinal: "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
    serverFinal: "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
  },
  {
    rfc: "RFC 7677 §3",
    hash: "SHA-256" as ScramHash,
    mechanism: "SCRAM-SHA-256",
    clientNonce: "rOprNGfwEbeRWgbNEkqO",
    serverNonce: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
    salt: "W22ZaJ0SNY7soEsUEjb6gQ==",
    clientFirst: "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
    serverFirst: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
    clientFinal:
      "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
    serverFinal: "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
  },
];

for (const v of vectors) {
  describe(`${v.rfc} ${v.mechanism} test vector`, () => {
    test("the server answers with the RFC's server-first and server-final messages", async () => {
      const server = createServerMechanism(v.mechanism, vectorContext(v.hash, v.salt, v.serverNonce))!;
      const first = await server.step(Buffer.from(v.clientFirst));
      assert.deepEqual({ kind: first.kind, data: text((first as { data?: Buffer }).data) }, { kind: "challenge", data: v.serverFirst });
      const final = await server.step(Buffer.from(v.clientFinal));
      assert.equal(final.kind, "success");
      assert.equal(text((final as Extract<SaslStep, { kind: "success" }>).data), v.serverFinal);
      assert.equal((final as Extract<SaslStep, { kind: "success" }>).username, "user");
      assert.equal((final as Extract<SaslStep, { kind: "success" }>).authzid, undefined);
    });

    test("the client sends the RFC's client-first and client-final messages and accepts the server", () => {
      const client = createScramClient(v.hash, { username: "user", password: "pencil", nonce: v.clientNonce });
      assert.equal(client.mechanism, v.mechanism);
      assert.equal(text(client.first()), v.clientFirst);
      assert.equal(text(client.final(Buffer.from(v.serverFirst))), v.clientFinal);
      assert.equal(client.verify(Buffer.from(v.serverFinal)), true);
    });

    test("the client rejects a server signature that is off by one bit", () => {
      const client = createScramClient(v.hash, { username: "user", password: "pencil", nonce: v.clientNonce });
      client.first();
      client.final(Buffer.from(v.serverFirst));
      const signature = Buffer.from(v.serverFinal.slice(2), "base64");
      signature[0]! ^= 1;
      assert.equal(client.verify(Buffer.from(`v=${signature.toString("base64")}`)), false);
      assert.equal(client.verify(Buffer.from("e=invalid-proof")), false);
    });
  });
}

describe("client refusals of server-first", () => {
  const client = () => createScramClient("SHA-1", { username: "user", password: "pencil", nonce: "abc" });
  const cases: [string, string][] = [
    ["a nonce that does not extend the client's", "r=xyz123,s=QSXCR+Q6sek8bf92,i=4096"],
    ["a nonce equal to the client's", "r=abc,s=QSXCR+Q6sek8bf92,i=4096"],
    ["a mandatory extension", "m=ext,r=abc123,s=QSXCR+Q6sek8bf92,i=4096"],
    ["a salt that is not base64", "r=abc123,s=QSX*,i=4096"],
    ["an iteration count of zero", "r=abc123,s=QSXCR+Q6sek8bf92,i=0"],
    ["an absurd iteration count", "r=abc123,s=QSXCR+Q6sek8bf92,i=999999999"],
  ];
  for (const [name, serverFirst] of cases) {
    test(`refuses ${name}`, () => {
      const c = client();
      c.first();
      assert.throws(() => c.final(Buffer.from(serverFirst)), { name: "ScramClientError" });
    });
  }
  test("verify is false before final", () => {
    assert.equal(client().verify(Buffer.from("v=rmF9pqV8S7suAoZWja4dJRkFsKQ=")), false);
  });
});

describe("client-first details", () => {
  test("',' and '=' in the username and authzid are escaped", () => {
    const c = createScramClient("SHA-256", { username: "a,b=c", password: "p", authzid: "x=y,z@example.com", nonce: "n1" });
    assert.equal(text(c.first()), "n,a=x=3Dy=2Cz@example.com,n=a=2Cb=3Dc,r=n1");
  });
  test("the username is SASLprepped before sending", () => {
    const c = createScramClient("SHA-256", { username: "I\u00ADX", password: "p", nonce: "n1" });
    assert.equal(text(c.first()), "n,,n=IX,r=n1");
  });
  test("the gs2 flag follows channel binding support", () => {
    const data = Buffer.from("cb");
    const bound = createScramClient("SHA-256", { username: "u", password: "p", nonce: "n", channelBinding: { type: "tls-exporter", data } });
    assert.equal(bound.mechanism, "SCRAM-SHA-256-PLUS");
    assert.equal(text(bound.first()), "p=tls-exporter,,n=u,r=n");
    const unbound = createScramClient("SHA-256", {
      username: "u", password: "p", nonce: "n", channelBinding: { type: "tls-exporter", data }, serverSupportsPlus: false,
    });
    assert.equal(unbound.mechanism, "SCRAM-SHA-256");
    assert.equal(text(unbound.first()), "y,,n=u,r=n");
  });
  test("a nonce containing ',' is refused", () => {
    assert.throws(() => createScramClient("SHA-1", { username: "u", password: "p", nonce: "a,b" }), { name: "ScramClientError" });
  });
});

describe("stored credentials", () => {
  test("derived credentials hold keys of the hash's length and no trace of the password", () => {
    const c = deriveScramCredentials("pencil", "SHA-1", { salt: Buffer.from("QSXCR+Q6sek8bf92", "base64") });
    assert.equal(c.iterations, 4096);
    assert.equal(c.storedKey.length, 20);
    assert.equal(c.serverKey.length, 20);
    assert.deepEqual(Object.keys(c).sort(), ["iterations", "salt", "serverKey", "storedKey"]);
    assert.ok(!JSON.stringify(c).includes("pencil"));
  });
  test("defaults: a fresh 16-byte salt each time and 4096 iterations", () => {
    const a = deriveScramCredentials("secret", "SHA-256");
    const b = deriveScramCredentials("secret", "SHA-256");
    assert.equal(a.salt.length, 16);
    assert.equal(a.iterations, 4096);
    assert.notDeepEqual(a.salt, b.salt);
    assert.notDeepEqual(a.storedKey, b.storedKey);
    assert.equal(a.storedKey.length, 32);
  });
  test("the password is SASLprepped, so equivalent spellings give the same keys", () => {
    const salt = Buffer.alloc(16, 7);
    assert.deepEqual(
      deriveScramCredentials("\u2168", "SHA-256", { salt }).storedKey,
      deriveScramCredentials("I\u00ADX", "SHA-256", { salt }).storedKey,
    );
  });
  test("a password SASLprep refuses cannot be stored", () => {
    assert.throws(() => deriveScramCredentials("bell\u0007", "SHA-1"), { name: "SaslprepError" });
  });
  test("a zero iteration count is refused", () => {
    assert.throws(() => deriveScramCredentials("p", "SHA-1", { iterations: 0 }), RangeError);
  });
  test("verifyScramPassword checks a clear password against stored credentials", () => {
    const stored = deriveScramCredentials("correct horse", "SHA-256");
    assert.equal(verifyScramPassword("correct horse", "SHA-256", stored), true);
    assert.equal(verifyScramPassword("correct horse\u00AD", "SHA-256", stored), true);
    assert.equal(verifyScramPassword("correct hors", "SHA-256", stored), false);
    assert.equal(verifyScramPassword("", "SHA-256", deriveScramCredentials("", "SHA-256")), false);
    assert.equal(verifyScramPassword("x\u0007", "SHA-256", stored), false);
  });
  test("invented credentials for unknown users are stable per name and look real", () => {
    const a = unknownUserCredentials("nobody", "SHA-256");
    assert.deepEqual(unknownUserCredentials("nobody", "SHA-256"), a);
    assert.notDeepEqual(unknownUserCredentials("nobody2", "SHA-256").salt, a.salt);
    assert.equal(a.salt.length, 16);
    assert.equal(a.iterations, 4096);
    assert.equal(a.storedKey.length, 32);
    assert.equal(unknownUserCredentials("nobody", "SHA-1", 10000).storedKey.length, 20);
    assert.equal(unknownUserCredentials("nobody", "SHA-1", 10000).iterations, 10000);
  });
});
