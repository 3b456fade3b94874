// RFC 5802 §3 (SCRAM algorithm) with RFC 7677 (SCRAM-SHA-256): what a server stores for a
// password, and the key arithmetic both ends share. The password itself is never kept.
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from "node:crypto";
import { saslprep } from "./saslprep.ts";

export type ScramHash = "SHA-1" | "SHA-256";

export interface ScramCredentials {
  salt: Buffer;
  iterations: number;
  storedKey: Buffer;
  serverKey: Buffer;
}

export const SCRAM_HASHES: readonly ScramHash[] = ["SHA-256", "SHA-1"];

/** RFC 7677 §4 asks for at least 4096 iterations; RFC 5802 §5.1 uses the same for SHA-1. */
export const DEFAULT_SCRAM_ITERATIONS = 4096;
export const DEFAULT_SALT_LENGTH = 16;

const NODE_DIGEST: Readonly<Record<ScramHash, string>> = { "SHA-1": "sha1", "SHA-256": "sha256" };
const DIGEST_LENGTH: Readonly<Record<ScramHash, number>> = { "SHA-1": 20, "SHA-256": 32 };

export function scramDigestLength(hash: ScramHash): number {
  return DIGEST_LENGTH[hash];
}

/**
 * RFC 5802 §2.2 Normalize(): SASLprep treating the password as a query, so that characters
 * newer than Unicode 3.2 (emoji) are allowed, as clients do. Throws SaslprepError.
 */
export function normalizeScramPassword(password: string): string {
  return saslprep(password, { allowUnassigned: true });
}

/** The stored form of a password (RFC 5802 §3: SaltedPassword, StoredKey, ServerKey). */
export function deriveScramCredentials(
  password: string,
  hash: ScramHash,
  opts: { salt?: Buffer; iterations?: number } = {},
): ScramCredentials {
  const iterations = opts.iterations ?? DEFAULT_SCRAM_ITERATIONS;
  if (!Number.isSafeInteger(iterations) || iterations < 1) throw new RangeError("iterations must be a positive integer");
  const salt = opts.salt ?? randomBytes(DEFAULT_SALT_LENGTH);
  if (salt.length === 0) throw new RangeError("salt must not be empty");
  const keys = scramKeys(hash, saltedPassword(hash, normalizeScramPassword(password), salt, iterations));
  return { salt: Buffer.from(salt), iterations, storedKey: keys.storedKey, serverKey: keys.serverKey };
}

/**
 * Checks a password given in clear (PLAIN) against stored SCRAM credentials. Costs one PBKDF2,
 * like deriving them; a password SASLprep refuses never matches.
 */
export function verifyScramPassword(password: string, hash: ScramHash, credentials: ScramCredentials): boolean {
  if (!isUsableCredentials(credentials, hash)) return false;
  let normalized: string;
  try {
    normalized = normalizeScramPassword(password);
  } catch {
    normalized = "";
  }
  const { storedKey } = scramKeys(hash, saltedPassword(hash, normalized, credentials.salt, credentials.iterations));
  return normalized !== "" && constantTimeEqual(storedKey, credentials.storedKey);
}

// One secret per process makes the invented credentials below stable while the process lives
// (a salt that changed on every attempt would betray an unknown user) and unguessable outside it.
const UNKNOWN_USER_SECRET = randomBytes(32);

/**
 * Credentials for a user that does not exist, derived from the name so that repeated attempts
 * see the same salt. No proof can match them; they exist so that an unknown user and a wrong
 * password look alike (RFC 5802 §9, user enumeration).
 */
export function unknownUserCredentials(
  username: string,
  hash: ScramHash,
  iterations: number = DEFAULT_SCRAM_ITERATIONS,
): ScramCredentials {
  const derive = (purpose: string) =>
    createHmac("sha256", UNKNOWN_USER_SECRET).update(`${purpose}\0${hash}\0${username}`, "utf8").digest();
  return {
    salt: derive("salt").subarray(0, DEFAULT_SALT_LENGTH),
    iterations,
    storedKey: derive("stored-key").subarray(0, DIGEST_LENGTH[hash]),
    serverKey: derive("server-key").subarray(0, DIGEST_LENGTH[hash]),
  };
}

/** True when credentials have the shape `hash` needs; storage may hand back anything. */
export function isUsableCredentials(credentials: ScramCredentials, hash: ScramHash): boolean {
  return (
    Buffer.isBuffer(credentials.salt) &&
    credentials.salt.length > 0 &&
    Number.isSafeInteger(credentials.iterations) &&
    credentials.iterations >= 1 &&
    Buffer.isBuffer(credentials.storedKey) &&
    credentials.storedKey.length === DIGEST_LENGTH[hash] &&
    Buffer.isBuffer(credentials.serverKey) &&
    credentials.serverKey.length === DIGEST_LENGTH[hash]
  );
}

// --- RFC 5802 §3 primitives, shared by the server and the client ---

/** Hi(str, salt, i) is PBKDF2 with HMAC as the PRF and one block of output. */
export function saltedPassword(hash: ScramHash, normalizedPassword: string, salt: Buffer, iterations: number): Buffer {
  return pbkdf2Sync(Buffer.from(normalizedPassword, "utf8"), salt, iterations, DIGEST_LENGTH[hash], NODE_DIGEST[hash]);
}

export function scramKeys(hash: ScramHash, salted: Buffer): { clientKey: Buffer; storedKey: Buffer; serverKey: Buffer } {
  const clientKey = hmac(hash, salted, "Client Key");
  return { clientKey, storedKey: digest(hash, clientKey), serverKey: hmac(hash, salted, "Server Key") };
}

export function hmac(hash: ScramHash, key: Buffer, data: Buffer | string): Buffer {
  return createHmac(NODE_DIGEST[hash], key).update(data).digest();
}

export function digest(hash: ScramHash, data: Buffer): Buffer {
  return createHash(NODE_DIGEST[hash]).update(data).digest();
}

export function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

export function constantTimeEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
