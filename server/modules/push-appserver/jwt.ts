// RFC 7519 JSON Web Tokens, compact JWS (RFC 7515) signed with ES256 (APNs provider tokens,
// RFC 7518 §3.4: the signature is r||s, not DER) or RS256 (Google service-account assertions).
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from "node:crypto";

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString("base64url");
}

export function signJwt(header: Record<string, unknown>, claims: Record<string, unknown>, key: KeyObject | string): string {
  const alg = header.alg;
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  const privateKey = typeof key === "string" ? createPrivateKey(key) : key;
  let signature: Buffer;
  if (alg === "ES256") signature = sign("sha256", Buffer.from(input), { key: privateKey, dsaEncoding: "ieee-p1363" });
  else if (alg === "RS256") signature = sign("sha256", Buffer.from(input), privateKey);
  else throw new Error(`unsupported JWT algorithm ${String(alg)}`);
  return `${input}.${b64url(signature)}`;
}

export interface DecodedJwt {
  header: Record<string, unknown>;
  claims: Record<string, unknown>;
}

/** Verifies a compact JWS with the given public key; throws when it does not verify. */
export function verifyJwt(token: string, key: KeyObject | string): DecodedJwt {
  const parts = token.split(".");
  if (parts.length !== 3) throw new Error("not a compact JWS");
  const header = JSON.parse(Buffer.from(parts[0], "base64url").toString()) as Record<string, unknown>;
  const claims = JSON.parse(Buffer.from(parts[1], "base64url").toString()) as Record<string, unknown>;
  const publicKey = typeof key === "string" ? createPublicKey(key) : key;
  const data = Buffer.from(`${parts[0]}.${parts[1]}`);
  const sig = Buffer.from(parts[2], "base64url");
  let ok: boolean;
  if (header.alg === "ES256") ok = verify("sha256", data, { key: publicKey, dsaEncoding: "ieee-p1363" }, sig);
  else if (header.alg === "RS256") ok = verify("sha256", data, publicKey, sig);
  else throw new Error(`unsupported JWT algorithm ${String(header.alg)}`);
  if (!ok) throw new Error("bad JWT signature");
  return { header, claims };
}
