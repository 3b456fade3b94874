// RFC 5802 / RFC 7677 (SCRAM), RFC 4616 (PLAIN) and RFC 4422 Appendix A (EXTERNAL), client side,
// for the conformance runner and the benchmark. Unlike the server, the SCRAM client throws on a
// server message it cannot accept: its caller is a test that wants to know why.
import { randomBytes } from "node:crypto";
import { saslprep } from "./saslprep.ts";
import { constantTimeEqual, hmac, normalizeScramPassword, saltedPassword, scramKeys, xor } from "./scram.ts";
import type { ScramHash } from "./scram.ts";
import { decodeUtf8, encodeSaslname, isValidNonce, parseServerFinal, parseServerFirst } from "./scram-syntax.ts";

export class ScramClientError extends Error {
  override readonly name = "ScramClientError";
}

export interface ScramClientOptions {
  username: string;
  password: string;
  authzid?: string;
  /** This connection's channel binding; without it the client sends "n". */
  channelBinding?: { type: string; data: Buffer };
  /**
   * Whether the server offered a -PLUS mechanism (default true). A client that could bind but
   * saw no -PLUS sends "y" (RFC 5802 §6), which a server that did offer -PLUS must refuse.
   */
  serverSupportsPlus?: boolean;
  /** The client nonce; random unless a test needs a fixed one. */
  nonce?: string;
  /** The largest iteration count the client will compute, against hostile servers. Default 1,000,000. */
  maxIterations?: number;
}

export interface ScramClient {
  /** The mechanism name to put in <auth mechanism=...>. */
  readonly mechanism: string;
  /** client-first-message (the initial response). */
  first(): Buffer;
  /** client-final-message for the server's challenge; throws ScramClientError if it is unacceptable. */
  final(serverFirst: Buffer): Buffer;
  /** Whether the server-final message proves the server knows the credentials. */
  verify(serverFinal: Buffer): boolean;
}

export function createScramClient(hash: ScramHash, opts: ScramClientOptions): ScramClient {
  const binds = opts.channelBinding !== undefined && (opts.serverSupportsPlus ?? true);
  const flag = binds ? `p=${opts.channelBinding!.type}` : opts.channelBinding !== undefined ? "y" : "n";
  const gs2Header = `${flag},${opts.authzid ? `a=${encodeSaslname(opts.authzid)}` : ""},`;
  const clientNonce = opts.nonce ?? randomBytes(24).toString("base64");
  if (!isValidNonce(clientNonce)) throw new ScramClientError("nonce must be printable ASCII without ','");
  // RFC 5802 §5.1: the username is SASLprepped as a query before it is escaped.
  const bare = `n=${encodeSaslname(saslprep(opts.username, { allowUnassigned: true }))},r=${clientNonce}`;
  const maxIterations = opts.maxIterations ?? 1_000_000;
  let expectedServerSignature: Buffer | null = null;

  return {
    mechanism: `SCRAM-${hash}${binds ? "-PLUS" : ""}`,
    first: () => Buffer.from(gs2Header + bare, "utf8"),
    final(serverFirstBytes: Buffer): Buffer {
      const serverFirst = decodeUtf8(serverFirstBytes);
      if (serverFirst === null) throw new ScramClientError("server-first-message is not UTF-8");
      const parsed = parseServerFirst(serverFirst);
      if ("error" in parsed) throw new ScramClientError(parsed.error);
      if (!parsed.nonce.startsWith(clientNonce) || parsed.nonce.length === clientNonce.length) {
        throw new ScramClientError("server nonce does not extend the client nonce");
      }
      if (parsed.iterations > maxIterations) throw new ScramClientError(`iteration count ${parsed.iterations} is too high`);

      const cbindInput = Buffer.concat([Buffer.from(gs2Header, "utf8"), binds ? opts.channelBinding!.data : Buffer.alloc(0)]);
      const withoutProof = `c=${cbindInput.toString("base64")},r=${parsed.nonce}`;
      const authMessage = `${bare},${serverFirst},${withoutProof}`;
      const salted = saltedPassword(hash, normalizeScramPassword(opts.password), parsed.salt, parsed.iterations);
      const { clientKey, storedKey, serverKey } = scramKeys(hash, salted);
      const proof = xor(clientKey, hmac(hash, storedKey, authMessage));
      expectedServerSignature = hmac(hash, serverKey, authMessage);
      return Buffer.from(`${withoutProof},p=${proof.toString("base64")}`, "utf8");
    },
    verify(serverFinalBytes: Buffer): boolean {
      const serverFinal = decodeUtf8(serverFinalBytes);
      if (expectedServerSignature === null || serverFinal === null) return false;
      const parsed = parseServerFinal(serverFinal);
      return "verifier" in parsed && constantTimeEqual(parsed.verifier, expectedServerSignature);
    },
  };
}

/** RFC 4616 PLAIN message: [authzid] NUL authcid NUL passwd. */
export function plainClient(username: string, password: string, authzid = ""): Buffer {
  return Buffer.from(`${authzid}\0${username}\0${password}`, "utf8");
}

/** RFC 4422 Appendix A EXTERNAL message: the requested authzid, empty to use the certificate's. */
export function externalClient(authzid = ""): Buffer {
  return Buffer.from(authzid, "utf8");
}
