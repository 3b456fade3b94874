// RFC 4422 (SASL) server exchanges as RFC 6120 §6 (XMPP SASL negotiation) carries them: one
// session per <auth/>, fed the decoded data of <auth/> and each <response/>, answering with the
// next <challenge/>, <success/> or <failure/>.
import type { ChannelBindingType } from "./channel-binding.ts";
import type { ScramCredentials, ScramHash } from "./scram.ts";

/** RFC 6120 §6.5: the defined conditions of a SASL <failure/>. */
export type SaslFailureCondition =
  | "aborted"
  | "account-disabled"
  | "credentials-expired"
  | "encryption-required"
  | "incorrect-encoding"
  | "invalid-authzid"
  | "invalid-mechanism"
  | "malformed-request"
  | "mechanism-too-weak"
  | "not-authorized"
  | "temporary-auth-failure";

export type SaslStep =
  | { kind: "challenge"; data: Buffer }
  /** `data` is RFC 6120 §6.3.10 additional data with success (SCRAM's server-final message). */
  | { kind: "success"; data?: Buffer; username: string; authzid?: string }
  | { kind: "failure"; condition: SaslFailureCondition; text?: string };

export interface SaslServerSession {
  readonly mechanism: string;
  /**
   * Feeds the client's next message. `null` means <auth/> carried no initial response
   * (RFC 6120 §6.4.2), which is different from an empty one ("="): the mechanism then answers
   * with an empty challenge. Never rejects; once a success or failure has been returned,
   * every further call fails with malformed-request.
   *
   * A success names the authenticated user (SASLprepped for SCRAM and PLAIN, a certificate
   * identity for EXTERNAL) and the requested authzid, if any. Whether that user may act as the
   * authzid is the caller's decision (invalid-authzid), as is any further normalisation.
   */
  step(data: Buffer | null): Promise<SaslStep>;
}

export interface SaslServerContext {
  /** Channel binding data of this connection by type (RFC 9266, RFC 5929); empty without TLS. */
  channelBinding: Partial<Record<ChannelBindingType, Buffer>>;
  /** Whether this stream's features offered a -PLUS mechanism: a client's "y" is then a downgrade. */
  offeredPlus: boolean;
  /** Stored credentials, or null for an unknown user. A rejection means temporary-auth-failure. */
  getScramCredentials(username: string, hash: ScramHash): Promise<ScramCredentials | null>;
  /**
   * For PLAIN. Should cost the same for an unknown user as for a wrong password, e.g. by checking
   * against unknownUserCredentials() with verifyScramPassword(). A rejection means temporary-auth-failure.
   */
  verifyPlain(username: string, password: string): Promise<boolean>;
  /** For EXTERNAL: the identities the peer's certificate proves (XEP-0178), already normalised. */
  externalIdentities?: string[];
  /** The iteration count real accounts use, so that invented credentials for unknown users match it. Default 4096. */
  unknownUserIterations?: number;
  /** The SCRAM server nonce; only tests replace the random default. Printable ASCII except ",". */
  generateNonce?: () => string;
}

export function saslFailure(condition: SaslFailureCondition, text?: string): SaslStep {
  return text === undefined ? { kind: "failure", condition } : { kind: "failure", condition, text };
}

export function saslChallenge(data: Buffer): SaslStep {
  return { kind: "challenge", data };
}
