// SASL for XMPP (RFC 6120 §6, RFC 4422): mechanisms SCRAM-SHA-1/-256 with and without -PLUS
// (RFC 5802, RFC 7677, RFC 9266, RFC 5929), PLAIN (RFC 4616), EXTERNAL (RFC 4422 App. A,
// XEP-0178), and SASLprep (RFC 4013).
export { saslprep, SaslprepError } from "./saslprep.ts";
export type { SaslprepFailure, SaslprepOptions } from "./saslprep.ts";
export {
  DEFAULT_SCRAM_ITERATIONS,
  deriveScramCredentials,
  unknownUserCredentials,
  verifyScramPassword,
} from "./scram.ts";
export type { ScramCredentials, ScramHash } from "./scram.ts";
export {
  CHANNEL_BINDING_TYPES,
  isChannelBindingType,
  TLS_EXPORTER_LABEL,
  TLS_EXPORTER_LENGTH,
  tlsServerEndPoint,
} from "./channel-binding.ts";
export type { ChannelBindingType } from "./channel-binding.ts";
export { saslFailure } from "./types.ts";
export type { SaslFailureCondition, SaslServerContext, SaslServerSession, SaslStep } from "./types.ts";
export { createServerMechanism, serverMechanisms } from "./mechanisms.ts";
export type { MechanismOfferOptions } from "./mechanisms.ts";
export { createScramClient, externalClient, plainClient, ScramClientError } from "./client.ts";
export type { ScramClient, ScramClientOptions } from "./client.ts";
