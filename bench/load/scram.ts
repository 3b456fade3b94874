// SCRAM-SHA-1 (RFC 5802 §5, §7) for the load generator, without channel binding ("n,,"): the one
// mechanism Prosody, ejabberd and Parley all offer. It differs from protocol/sasl's client in one
// way: the PBKDF2 result (ClientKey/ServerKey) is cached per (password, salt, iterations), as real
// clients cache it (RFC 5802 §5.1 suggests it). Without the cache the generator would spend
// 1.3 ms (4,096 iterations) to 3.3 ms (10,000) of its own CPU per login and could become the
// bottleneck of the login benchmark; with it, servers that give every account its own salt still
// cost one PBKDF2 per account, and servers that share one cost one in all. Either way the
// server's work is unchanged: it stores StoredKey/ServerKey and never runs PBKDF2 at login.
import { randomBytes } from "node:crypto";
import { hmac, normalizeScramPassword, saltedPassword, scramKeys, xor, constantTimeEqual } from "../../protocol/sasl/scram.ts";
import { encodeSaslname, parseServerFinal, parseServerFirst } from "../../protocol/sasl/scram-syntax.ts";

export const MECHANISM = "SCRAM-SHA-1";
const GS2_HEADER = "n,,";
const GS2_HEADER_BASE64 = Buffer.from(GS2_HEADER).toString("base64");
/** Protects the generator from a server asking for absurd work. */
const MAX_ITERATIONS = 1_000_000;
const MAX_CACHED_KEYS = 100_000;

interface Keys {
  clientKey: Buffer;
  storedKey: Buffer;
  serverKey: Buffer;
}

const keyCache = new Map<string, Keys>();
let pbkdf2Runs = 0;

/** How many PBKDF2 computations this process has run (cache misses). */
export function pbkdf2Count(): number {
  return pbkdf2Runs;
}

function keysFor(password: string, salt: Buffer, iterations: number): Keys {
  const id = `${iterations}:${salt.toString("base64")}:${password}`;
  let keys = keyCache.get(id);
  if (!keys) {
    pbkdf2Runs++;
    keys = scramKeys("SHA-1", saltedPassword("SHA-1", normalizeScramPassword(password), salt, iterations));
    if (keyCache.size >= MAX_CACHED_KEYS) keyCache.clear();
    keyCache.set(id, keys);
  }
  return keys;
}

/**
 * The cache as JSON-ready text, so that a later generator process against the same server (the
 * next round of a comparison) starts warm. Benchmark accounts only: these are derived keys of
 * throwaway passwords, kept in the run's temporary directory.
 */
export function exportKeyCache(): Record<string, [string, string, string]> {
  const out: Record<string, [string, string, string]> = {};
  for (const [id, k] of keyCache) out[id] = [k.clientKey.toString("base64"), k.storedKey.toString("base64"), k.serverKey.toString("base64")];
  return out;
}

/** Forgets every cached key (a fresh generator process). */
export function clearKeyCache(): void {
  keyCache.clear();
}

export function importKeyCache(data: unknown): number {
  if (typeof data !== "object" || data === null) return 0;
  let count = 0;
  for (const [id, value] of Object.entries(data as Record<string, unknown>)) {
    if (!Array.isArray(value) || value.length !== 3 || !value.every((v) => typeof v === "string")) continue;
    if (keyCache.size >= MAX_CACHED_KEYS) break;
    const [clientKey, storedKey, serverKey] = value.map((v: string) => Buffer.from(v, "base64"));
    keyCache.set(id, { clientKey, storedKey, serverKey });
    count++;
  }
  return count;
}

export interface ScramLogin {
  /** Base64 initial response for <auth mechanism='SCRAM-SHA-1'>. */
  readonly initialResponse: string;
  /** Base64 client-final-message for the server's base64 challenge; throws on a bad challenge. */
  respond(challengeBase64: string): string;
  /** Whether the base64 additional data of <success/> proves the server knew the credentials. */
  verify(successBase64: string): boolean;
}

export function scramSha1(username: string, password: string): ScramLogin {
  const clientNonce = randomBytes(18).toString("base64");
  // Benchmark account names are ASCII, for which SASLprep changes nothing.
  const bare = `n=${encodeSaslname(username)},r=${clientNonce}`;
  let expectedSignature: Buffer | null = null;
  return {
    initialResponse: Buffer.from(GS2_HEADER + bare).toString("base64"),
    respond(challengeBase64: string): string {
      const serverFirst = Buffer.from(challengeBase64, "base64").toString("utf8");
      const parsed = parseServerFirst(serverFirst);
      if ("error" in parsed) throw new Error(`bad SCRAM challenge: ${parsed.error}`);
      if (!parsed.nonce.startsWith(clientNonce) || parsed.nonce.length === clientNonce.length) throw new Error("the server nonce does not extend ours");
      if (parsed.iterations > MAX_ITERATIONS) throw new Error(`iteration count ${parsed.iterations} is too high`);
      const keys = keysFor(password, parsed.salt, parsed.iterations);
      const withoutProof = `c=${GS2_HEADER_BASE64},r=${parsed.nonce}`;
      const authMessage = `${bare},${serverFirst},${withoutProof}`;
      const proof = xor(keys.clientKey, hmac("SHA-1", keys.storedKey, authMessage));
      expectedSignature = hmac("SHA-1", keys.serverKey, authMessage);
      return Buffer.from(`${withoutProof},p=${proof.toString("base64")}`).toString("base64");
    },
    verify(successBase64: string): boolean {
      if (expectedSignature === null) return false;
      const parsed = parseServerFinal(Buffer.from(successBase64, "base64").toString("utf8"));
      return "verifier" in parsed && constantTimeEqual(parsed.verifier, expectedSignature);
    },
  };
}
