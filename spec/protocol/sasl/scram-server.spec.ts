// RFC 5802 / RFC 7677 server rules: GS2 header and channel binding (RFC 5802 §6, RFC 9266,
// RFC 5929), nonces, attribute syntax, base64, user enumeration, and the exchange's life cycle.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash, createHmac, pbkdf2Sync } from "node:crypto";
import { createScramClient, createServerMechanism, deriveScramCredentials } from "../../../protocol/sasl/index.ts";
import type { SaslServerContext, SaslStep, ScramClientOptions, ScramCredentials, ScramHash } from "../../../protocol/sasl/index.ts";

const PASSWORDS: Record<string, string> = { user: "pencil", IX: "nine", "a,b=c": "odd name" };
const EXPORTER = Buffer.from("0123456789abcdef0123456789abcdef");
const END_POINT = Buffer.from("fedcba9876543210fedcba9876543210");
const credentialCache = new Map<string, ScramCredentials>();

function context(overrides: Partial<SaslServerContext> = {}): SaslServerContext & { lookups: string[] } {
  const lookups: string[] = [];
  return {
    channelBinding: { "tls-exporter": EXPORTER, "tls-server-end-point": END_POINT },
    offeredPlus: true,
    lookups,
    async getScramCredentials(username, hash) {
      lookups.push(username);
      const password = PASSWORDS[username];
      if (password === undefined) return null;
      const key = `${hash}\0${username}`;
      if (!credentialCache.has(key)) credentialCache.set(key, deriveScramCredentials(password, hash));
      return credentialCache.get(key)!;
    },
    verifyPlain: async () => false,
    ...overrides,
  };
}

const utf8 = (s: string) => Buffer.from(s, "utf8");
const text = (step: SaslStep) => (step.kind === "failure" ? "" : (step.data?.toString("utf8") ?? ""));
const conditionOf = (step: SaslStep) => (step.kind === "failure" ? step.condition : step.kind);

/** Runs a full exchange with our client, letting a test tamper with either client message. */
async function run(
  mechanism: string,
  clientOpts: Partial<ScramClientOptions> & { hash?: ScramHash } = {},
  tamper: { first?: (m: string) => string; final?: (m: string) => string } = {},
  ctx: SaslServerContext = context(),
): Promise<{ first: SaslStep; final?: SaslStep; clientAccepts?: boolean }> {
  const hash = clientOpts.hash ?? (mechanism.includes("SHA-256") ? "SHA-256" : "SHA-1");
  const client = createScramClient(hash, { username: "user", password: "pencil", ...clientOpts });
  const server = createServerMechanism(mechanism, ctx)!;
  const firstMessage = (tamper.first ?? ((m) => m))(client.first().toString("utf8"));
  const first = await server.step(utf8(firstMessage));
  if (first.kind !== "challenge") return { first };
  const finalMessage = (tamper.final ?? ((m) => m))(client.final(first.data).toString("utf8"));
  const final = await server.step(utf8(finalMessage));
  return { first, final, clientAccepts: final.kind === "success" && client.verify(final.data!) };
}

/** An independent SCRAM client computation, for messages our client will not produce. */
function proofFor(hash: ScramHash, password: string, bare: string, serverFirst: string, withoutProof: string): string {
  const algorithm = hash === "SHA-1" ? "sha1" : "sha256";
  const attrs = Object.fromEntries(serverFirst.split(",").map((a) => [a[0], a.slice(2)]));
  const salted = pbkdf2Sync(password, Buffer.from(attrs.s!, "base64"), Number(attrs.i), hash === "SHA-1" ? 20 : 32, algorithm);
  const clientKey = createHmac(algorithm, salted).update("Client Key").digest();
  const storedKey = createHash(algorithm).update(clientKey).digest();
  const signature = createHmac(algorithm, storedKey).update(`${bare},${serverFirst},${withoutProof}`).digest();
  return Buffer.from(clientKey.map((b, i) => b ^ signature[i]!)).toString("base64");
}

async function handcrafted(mechanism: string, gs2: string, bare: string, password: string, ctx = context()) {
  const hash: ScramHash = mechanism.includes("SHA-256") ? "SHA-256" : "SHA-1";
  const server = createServerMechanism(mechanism, ctx)!;
  const first = await server.step(utf8(gs2 + bare));
  if (first.kind !== "challenge") return { first, ctx };
  const serverFirst = first.data.toString("utf8");
  const nonce = serverFirst.split(",")[0]!.slice(2);
  const withoutProof = `c=${utf8(gs2).toString("base64")},r=${nonce}`;
  const final = await server.step(utf8(`${withoutProof},p=${proofFor(hash, password, bare, serverFirst, withoutProof)}`));
  return { first, final, ctx };
}

describe("successful exchanges", () => {
  for (const mechanism of ["SCRAM-SHA-1", "SCRAM-SHA-256"]) {
    test(`${mechanism}: success carries v= and the client accepts it`, async () => {
      const { final, clientAccepts } = await run(mechanism);
      assert.equal(final?.kind, "success");
      assert.match(text(final!), /^v=[A-Za-z0-9+/]+=*$/);
      assert.equal(clientAccepts, true);
    });
  }
  test("the authzid from the GS2 header is returned unescaped", async () => {
    const { final } = await run("SCRAM-SHA-256", { authzid: "ro,me=o@example.com" });
    assert.deepEqual(final, { ...final, kind: "success", username: "user", authzid: "ro,me=o@example.com" });
  });
  test("the username is SASLprepped before lookup and reported prepared", async () => {
    const { final, ctx } = await handcrafted("SCRAM-SHA-256", "n,,", "n=I\u00ADX,r=abc", "nine");
    assert.deepEqual(ctx.lookups, ["IX"]);
    assert.equal(final?.kind, "success");
    assert.equal((final as { username: string }).username, "IX");
  });
  test("escaped ',' and '=' in the username are decoded", async () => {
    const { final } = await run("SCRAM-SHA-1", { username: "a,b=c", password: "odd name" });
    assert.equal((final as { username: string }).username, "a,b=c");
  });
  test("unknown optional extensions are ignored", async () => {
    const { final } = await handcrafted("SCRAM-SHA-1", "n,,", "n=user,r=abc,x=future", "pencil");
    assert.equal(final?.kind, "success");
  });
  test("no initial response: an empty challenge, then the normal exchange", async () => {
    const client = createScramClient("SHA-256", { username: "user", password: "pencil" });
    const server = createServerMechanism("SCRAM-SHA-256", context())!;
    const opening = await server.step(null);
    assert.deepEqual(opening, { kind: "challenge", data: Buffer.alloc(0) });
    const first = await server.step(client.first());
    assert.equal(first.kind, "challenge");
    const final = await server.step(client.final((first as { data: Buffer }).data));
    assert.equal(client.verify((final as { data: Buffer }).data), true);
  });
});

describe("channel binding (RFC 5802 §6)", () => {
  for (const type of ["tls-exporter", "tls-server-end-point"] as const) {
    const data = type === "tls-exporter" ? EXPORTER : END_POINT;
    test(`SCRAM-SHA-256-PLUS with ${type} succeeds`, async () => {
      const { final, clientAccepts } = await run("SCRAM-SHA-256-PLUS", { channelBinding: { type, data } });
      assert.equal(final?.kind, "success");
      assert.equal(clientAccepts, true);
    });
  }
  test("SCRAM-SHA-1-PLUS with an authzid binds the whole GS2 header", async () => {
    const { final } = await run("SCRAM-SHA-1-PLUS", { authzid: "user@example.com", channelBinding: { type: "tls-exporter", data: EXPORTER } });
    assert.equal(final?.kind, "success");
  });
  test("different channel binding data (a man in the middle) is not-authorized", async () => {
    const { final } = await run("SCRAM-SHA-256-PLUS", { channelBinding: { type: "tls-exporter", data: END_POINT } });
    assert.equal(conditionOf(final!), "not-authorized");
  });
  test("'y' when the server offered -PLUS is a downgrade: not-authorized", async () => {
    const { first } = await run("SCRAM-SHA-256", { channelBinding: { type: "tls-exporter", data: EXPORTER }, serverSupportsPlus: false });
    assert.equal(conditionOf(first), "not-authorized");
  });
  test("'y' when the server did not offer -PLUS is accepted", async () => {
    const ctx = context({ offeredPlus: false, channelBinding: {} });
    const { final } = await run("SCRAM-SHA-256", { channelBinding: { type: "tls-exporter", data: EXPORTER }, serverSupportsPlus: false }, {}, ctx);
    assert.equal(final?.kind, "success");
  });
  test("'n' (client cannot bind) is accepted even when -PLUS was offered", async () => {
    const { final } = await run("SCRAM-SHA-1");
    assert.equal(final?.kind, "success");
  });
  test("p= on a mechanism without -PLUS is malformed-request", async () => {
    const { first } = await run("SCRAM-SHA-256", { channelBinding: { type: "tls-exporter", data: EXPORTER } });
    assert.equal(conditionOf(first), "malformed-request");
  });
  test("a -PLUS mechanism without p= is malformed-request", async () => {
    assert.equal(conditionOf((await run("SCRAM-SHA-256-PLUS")).first), "malformed-request");
    const y = await run("SCRAM-SHA-256-PLUS", { channelBinding: { type: "tls-exporter", data: EXPORTER }, serverSupportsPlus: false });
    assert.equal(conditionOf(y.first), "malformed-request");
  });
  test("an unknown channel binding type is not-authorized", async () => {
    const { first } = await run("SCRAM-SHA-256-PLUS", { channelBinding: { type: "tls-unique", data: EXPORTER } });
    assert.equal(conditionOf(first), "not-authorized");
  });
  test("a type this connection cannot provide is not-authorized", async () => {
    const ctx = context({ channelBinding: { "tls-server-end-point": END_POINT } });
    const { first } = await run("SCRAM-SHA-256-PLUS", { channelBinding: { type: "tls-exporter", data: EXPORTER } }, {}, ctx);
    assert.equal(conditionOf(first), "not-authorized");
  });
  test("a type named like an Object property is not mistaken for a binding", async () => {
    const { first } = await run("SCRAM-SHA-256-PLUS", { channelBinding: { type: "constructor", data: EXPORTER } });
    assert.equal(conditionOf(first), "not-authorized");
  });
  test("c= that does not repeat the GS2 header is not-authorized", async () => {
    const { final } = await run("SCRAM-SHA-1", { authzid: "user@example.com" }, { final: (m) => m.replace(/^c=[^,]+/, "c=biws") });
    assert.equal(conditionOf(final!), "not-authorized");
  });
});

describe("nonces", () => {
  test("a final nonce that differs from the combined nonce is not-authorized", async () => {
    const { final } = await run("SCRAM-SHA-1", {}, { final: (m) => m.replace(/,r=([^,]+)/, ",r=$1x") });
    assert.equal(conditionOf(final!), "not-authorized");
  });
  test("a final nonce that only repeats the client's part is not-authorized", async () => {
    const { final } = await run("SCRAM-SHA-1", { nonce: "clientpart" }, { final: (m) => m.replace(/,r=[^,]+/, ",r=clientpart") });
    assert.equal(conditionOf(final!), "not-authorized");
  });
  test("the server nonce extends the client nonce and differs between sessions", async () => {
    const a = await run("SCRAM-SHA-1", { nonce: "samenonce" });
    const b = await run("SCRAM-SHA-1", { nonce: "samenonce" });
    assert.match(text(a.first), /^r=samenonce[^,]{16,},s=/);
    assert.notEqual(text(a.first), text(b.first));
  });
  test("a client nonce with characters outside printable ASCII is malformed-request", async () => {
    const server = createServerMechanism("SCRAM-SHA-1", context())!;
    assert.equal(conditionOf(await server.step(utf8("n,,n=user,r=ab c"))), "malformed-request");
  });
});

describe("credentials", () => {
  test("a wrong password is not-authorized", async () => {
    const { final } = await run("SCRAM-SHA-256", { password: "pen" });
    assert.deepEqual(final, { kind: "failure", condition: "not-authorized" });
  });
  test("an unknown user looks like a wrong password", async () => {
    const unknown = await run("SCRAM-SHA-256", { username: "nobody", password: "pencil" });
    const wrong = await run("SCRAM-SHA-256", { password: "pen" });
    assert.deepEqual(unknown.final, wrong.final);
    const shape = (s: SaslStep) => text(s).replace(/^r=[^,]+/, "r=").replace(/s=[^,]+/, (m) => `s=${Buffer.from(m.slice(2), "base64").length}`);
    assert.equal(shape(unknown.first), shape(wrong.first));
    assert.equal(shape(unknown.first), "r=,s=16,i=4096");
  });
  test("an unknown user sees the same salt on every attempt, and another name another salt", async () => {
    const salt = (s: SaslStep) => text(s).split(",")[1];
    const a = await run("SCRAM-SHA-1", { username: "nobody" });
    const b = await run("SCRAM-SHA-1", { username: "nobody" });
    const c = await run("SCRAM-SHA-1", { username: "somebody" });
    assert.equal(salt(a.first), salt(b.first));
    assert.notEqual(salt(a.first), salt(c.first));
  });
  test("unknown users get the deployment's iteration count", async () => {
    const { first } = await run("SCRAM-SHA-1", { username: "nobody" }, {}, context({ unknownUserIterations: 10000 }));
    assert.match(text(first), /,i=10000$/);
  });
  test("a storage error is temporary-auth-failure", async () => {
    const ctx = context({ getScramCredentials: async () => { throw new Error("db down"); } });
    assert.equal(conditionOf((await run("SCRAM-SHA-1", {}, {}, ctx)).first), "temporary-auth-failure");
  });
  test("unusable stored credentials are temporary-auth-failure", async () => {
    const broken = { salt: Buffer.alloc(16), iterations: 4096, storedKey: Buffer.alloc(3), serverKey: Buffer.alloc(20) };
    const ctx = context({ getScramCredentials: async () => broken });
    assert.equal(conditionOf((await run("SCRAM-SHA-1", {}, {}, ctx)).first), "temporary-auth-failure");
  });
  test("a username SASLprep refuses is malformed-request and never looked up", async () => {
    const ctx = context();
    const server = createServerMechanism("SCRAM-SHA-1", ctx)!;
    assert.equal(conditionOf(await server.step(utf8("n,,n=bell\u0007,r=abc"))), "malformed-request");
    assert.equal(conditionOf(await createServerMechanism("SCRAM-SHA-1", ctx)!.step(utf8("n,,n=\u00AD,r=abc"))), "malformed-request");
    assert.deepEqual(ctx.lookups, []);
  });
});

describe("message syntax", () => {
  const firstCases: [string, string, string][] = [
    ["a mandatory extension m=", "n,,m=ext,n=user,r=abc", "malformed-request"],
    ["'=' not starting =2C or =3D in the username", "n,,n=us=2Xer,r=abc", "malformed-request"],
    ["a bare '=' in the username", "n,,n=a=b,r=abc", "malformed-request"],
    ["lower-case escapes", "n,,n=a=2cb,r=abc", "malformed-request"],
    ["an empty authzid", "n,a=,n=user,r=abc", "malformed-request"],
    ["an authzid without a=", "n,x=user,n=user,r=abc", "malformed-request"],
    ["an unknown gs2 flag", "q,,n=user,r=abc", "malformed-request"],
    ["an empty channel binding name", "p=,,n=user,r=abc", "malformed-request"],
    ["a missing nonce", "n,,n=user", "malformed-request"],
    ["attributes out of order", "n,,r=abc,n=user", "malformed-request"],
    ["an empty username", "n,,n=,r=abc", "malformed-request"],
    ["an empty nonce", "n,,n=user,r=", "malformed-request"],
    ["a malformed extension", "n,,n=user,r=abc,1=x", "malformed-request"],
    ["a NUL in the username", "n,,n=us\0er,r=abc", "malformed-request"],
  ];
  for (const [name, message, condition] of firstCases) {
    test(`client-first with ${name}: ${condition}`, async () => {
      const server = createServerMechanism("SCRAM-SHA-1", context())!;
      assert.equal(conditionOf(await server.step(utf8(message))), condition);
    });
  }
  test("client-first that is not UTF-8 is malformed-request", async () => {
    const server = createServerMechanism("SCRAM-SHA-1", context())!;
    assert.equal(conditionOf(await server.step(Buffer.from([0x6e, 0x2c, 0x2c, 0x6e, 0x3d, 0xff, 0x2c, 0x72, 0x3d, 0x61]))), "malformed-request");
  });
  test("an explicitly empty client-first is malformed-request", async () => {
    const server = createServerMechanism("SCRAM-SHA-1", context())!;
    assert.equal(conditionOf(await server.step(Buffer.alloc(0))), "malformed-request");
  });

  const finalCases: [string, (m: string) => string, string][] = [
    ["c= that is not base64", (m) => m.replace(/^c=[^,]+/, "c=bi*s"), "incorrect-encoding"],
    ["c= with non-zero padding bits", (m) => m.replace(/^c=[^,]+/, "c=QR=="), "incorrect-encoding"],
    ["c= without padding", (m) => m.replace(/^c=[^,]+/, "c=QQ"), "incorrect-encoding"],
    ["p= that is not base64", (m) => m.replace(/p=.*$/, "p=!!!!"), "incorrect-encoding"],
    ["p= with embedded whitespace", (m) => m.replace(/p=(....)/, "p=$1 "), "incorrect-encoding"],
    ["a proof of the wrong length", (m) => m.replace(/p=.*$/, "p=AAAA"), "malformed-request"],
    ["a proof off by one bit", (m) => m.replace(/p=(.)/, (_, c: string) => `p=${c === "A" ? "B" : "A"}`), "not-authorized"],
    ["no proof", (m) => m.replace(/,p=.*$/, ""), "malformed-request"],
    ["proof before nonce", (m) => m.replace(/^(c=[^,]+),(r=[^,]+),(p=.*)$/, "$1,$3,$2"), "malformed-request"],
    ["a malformed extension", (m) => m.replace(/,p=/, ",9=x,p="), "malformed-request"],
    ["a NUL byte", (m) => m.replace(/,p=/, ",x=\0,p="), "malformed-request"],
  ];
  for (const [name, tamper, condition] of finalCases) {
    test(`client-final with ${name}: ${condition}`, async () => {
      const { final } = await run("SCRAM-SHA-1", {}, { final: tamper });
      assert.equal(conditionOf(final!), condition);
    });
  }
});

describe("life cycle", () => {
  test("after success every further step is malformed-request", async () => {
    const client = createScramClient("SHA-1", { username: "user", password: "pencil" });
    const server = createServerMechanism("SCRAM-SHA-1", context())!;
    const first = (await server.step(client.first())) as { data: Buffer };
    const final = client.final(first.data);
    assert.equal((await server.step(final)).kind, "success");
    assert.equal(conditionOf(await server.step(final)), "malformed-request");
  });
  test("after failure every further step is malformed-request, even a valid one", async () => {
    const client = createScramClient("SHA-1", { username: "user", password: "pencil" });
    const server = createServerMechanism("SCRAM-SHA-1", context())!;
    assert.equal(conditionOf(await server.step(utf8("garbage"))), "malformed-request");
    assert.equal(conditionOf(await server.step(client.first())), "malformed-request");
  });
  test("a second step while the first is still looking up credentials is refused", async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const ctx = context({ getScramCredentials: async () => { await gate; return null; } });
    const server = createServerMechanism("SCRAM-SHA-1", ctx)!;
    const pending = server.step(utf8("n,,n=user,r=abc"));
    assert.equal(conditionOf(await server.step(utf8("n,,n=user,r=abc"))), "malformed-request");
    release();
    assert.equal((await pending).kind, "challenge");
  });
});
