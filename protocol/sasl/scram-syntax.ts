// RFC 5802 §5 and §7 (SCRAM message syntax): parsing and building the four messages. Attributes
// come in a fixed order, separated by ","; values never contain "," or NUL.
import type { SaslFailureCondition } from "./types.ts";

export type Parsed<T> = { ok: true; value: T } | { ok: false; condition: SaslFailureCondition; text: string };

const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Strict UTF-8 that decodes back to the same bytes (no BOM stripping), or null. */
export function decodeUtf8(data: Buffer): string | null {
  try {
    return UTF8.decode(data);
  } catch {
    return null;
  }
}

/** saslname (RFC 5802 §5.1): "," and "=" travel as "=2C" and "=3D". */
export function encodeSaslname(name: string): string {
  return name.replace(/=/g, "=3D").replace(/,/g, "=2C");
}

/** Decodes a saslname; null if it is empty or holds a "=" that starts neither "=2C" nor "=3D". */
export function decodeSaslname(value: string): string | null {
  if (value === "" || value.includes("\0")) return null;
  if (/=(?!2C|3D)/.test(value)) return null;
  return value.replace(/=2C|=3D/g, (escape) => (escape === "=2C" ? "," : "="));
}

/** c-nonce and s-nonce: printable ASCII except ",". */
export function isValidNonce(nonce: string): boolean {
  return /^[\x21-\x2B\x2D-\x7E]+$/.test(nonce);
}

/** RFC 4648 base64 in canonical form: padded, no whitespace, zero pad bits. */
export function decodeBase64(text: string): Buffer | null {
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text)) return null;
  const bytes = Buffer.from(text, "base64");
  return bytes.toString("base64") === text ? bytes : null;
}

/** attr-val of an optional extension: ALPHA "=" 1*value-char. */
function isExtension(attribute: string): boolean {
  return /^[A-Za-z]=[^,\0]+$/.test(attribute);
}

function valueOf(attribute: string | undefined, name: string): string | undefined {
  return attribute !== undefined && attribute.startsWith(name + "=") ? attribute.slice(name.length + 1) : undefined;
}

const fail = <T>(condition: SaslFailureCondition, text: string): Parsed<T> => ({ ok: false, condition, text });

export interface ClientFirstMessage {
  /** "n": no channel binding; "y": client could bind but thinks the server cannot; "p": binds. */
  flag: "n" | "y" | "p";
  channelBindingType?: string;
  authzid?: string;
  /** gs2-header exactly as sent, including its trailing ",". */
  gs2Header: string;
  /** client-first-message-bare exactly as sent, part of AuthMessage. */
  bare: string;
  /** The username as sent, unescaped but not yet SASLprepped. */
  username: string;
  nonce: string;
}

export function parseClientFirst(text: string): Parsed<ClientFirstMessage> {
  const parts = text.split(",");
  if (parts.length < 4) return fail("malformed-request", "client-first-message needs gs2-header, n= and r=");
  const [flagPart, authzPart, userPart, noncePart] = parts as [string, string, string, string];

  let flag: ClientFirstMessage["flag"];
  let channelBindingType: string | undefined;
  if (flagPart === "n" || flagPart === "y") flag = flagPart;
  else if (/^p=[A-Za-z0-9.-]+$/.test(flagPart)) {
    flag = "p";
    channelBindingType = flagPart.slice(2);
  } else return fail("malformed-request", "bad gs2-cbind-flag");

  let authzid: string | undefined;
  if (authzPart !== "") {
    const raw = valueOf(authzPart, "a");
    authzid = raw === undefined ? undefined : (decodeSaslname(raw) ?? undefined);
    if (authzid === undefined) return fail("malformed-request", "bad authzid in gs2-header");
  }

  if (valueOf(userPart, "m") !== undefined) return fail("malformed-request", "unsupported mandatory extension (m=)");
  const rawUser = valueOf(userPart, "n");
  const username = rawUser === undefined ? null : decodeSaslname(rawUser);
  if (username === null) return fail("malformed-request", "bad n= attribute");
  const nonce = valueOf(noncePart, "r");
  if (nonce === undefined || !isValidNonce(nonce)) return fail("malformed-request", "bad r= attribute");
  if (!parts.slice(4).every(isExtension)) return fail("malformed-request", "bad extension attribute");

  const message: ClientFirstMessage = {
    flag,
    gs2Header: `${flagPart},${authzPart},`,
    bare: parts.slice(2).join(","),
    username,
    nonce,
  };
  if (channelBindingType !== undefined) message.channelBindingType = channelBindingType;
  if (authzid !== undefined) message.authzid = authzid;
  return { ok: true, value: message };
}

export interface ClientFinalMessage {
  channelBinding: Buffer;
  nonce: string;
  proof: Buffer;
  /** client-final-message-without-proof exactly as sent, part of AuthMessage. */
  withoutProof: string;
}

export function parseClientFinal(text: string): Parsed<ClientFinalMessage> {
  const parts = text.split(",");
  if (parts.length < 3) return fail("malformed-request", "client-final-message needs c=, r= and p=");
  const cbind = valueOf(parts[0], "c");
  const nonce = valueOf(parts[1], "r");
  const proof = valueOf(parts[parts.length - 1], "p");
  if (cbind === undefined || nonce === undefined || proof === undefined) {
    return fail("malformed-request", "client-final-message needs c=, r= and p= in that order");
  }
  if (!isValidNonce(nonce)) return fail("malformed-request", "bad r= attribute");
  if (!parts.slice(2, -1).every(isExtension)) return fail("malformed-request", "bad extension attribute");
  const channelBinding = decodeBase64(cbind);
  if (channelBinding === null || cbind === "") return fail("incorrect-encoding", "c= is not base64");
  const proofBytes = decodeBase64(proof);
  if (proofBytes === null || proof === "") return fail("incorrect-encoding", "p= is not base64");
  return {
    ok: true,
    value: { channelBinding, nonce, proof: proofBytes, withoutProof: parts.slice(0, -1).join(",") },
  };
}

export interface ServerFirstMessage {
  nonce: string;
  salt: Buffer;
  iterations: number;
}

/** For the client; `text` explains a refusal. */
export function parseServerFirst(text: string): ServerFirstMessage | { error: string } {
  const parts = text.split(",");
  if (valueOf(parts[0], "m") !== undefined) return { error: "server sent a mandatory extension (m=)" };
  const nonce = valueOf(parts[0], "r");
  const salt = valueOf(parts[1], "s");
  const iterations = valueOf(parts[2], "i");
  if (nonce === undefined || !isValidNonce(nonce)) return { error: "bad r= in server-first-message" };
  const saltBytes = salt === undefined || salt === "" ? null : decodeBase64(salt);
  if (saltBytes === null) return { error: "bad s= in server-first-message" };
  if (iterations === undefined || !/^[1-9][0-9]{0,9}$/.test(iterations)) return { error: "bad i= in server-first-message" };
  if (!parts.slice(3).every(isExtension)) return { error: "bad extension in server-first-message" };
  return { nonce, salt: saltBytes, iterations: Number(iterations) };
}

/** For the client: the server signature, or the server's e= error. */
export function parseServerFinal(text: string): { verifier: Buffer } | { error: string } {
  const parts = text.split(",");
  const error = valueOf(parts[0], "e");
  if (error !== undefined) return { error: `server-error ${error}` };
  const verifier = valueOf(parts[0], "v");
  const bytes = verifier === undefined || verifier === "" ? null : decodeBase64(verifier);
  if (bytes === null) return { error: "bad v= in server-final-message" };
  if (!parts.slice(1).every(isExtension)) return { error: "bad extension in server-final-message" };
  return { verifier: bytes };
}
