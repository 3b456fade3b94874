// RFC 6120 §6.3.3 (mechanism offer) and §6.4 (exchange): which SASL mechanisms a stream offers,
// and the server session for the one the client picks. RFC 6120 §13.8 makes SCRAM-SHA-1(-PLUS)
// mandatory to implement; RFC 7677 adds SCRAM-SHA-256(-PLUS).
import { isChannelBindingType } from "./channel-binding.ts";
import { ExternalServer } from "./external.ts";
import { PlainServer } from "./plain.ts";
import { ScramServer } from "./scram-server.ts";
import type { ScramHash } from "./scram.ts";
import type { SaslServerContext, SaslServerSession } from "./types.ts";

const SCRAM_BY_NAME: Readonly<Record<string, { hash: ScramHash; plus: boolean }>> = {
  "SCRAM-SHA-256-PLUS": { hash: "SHA-256", plus: true },
  "SCRAM-SHA-1-PLUS": { hash: "SHA-1", plus: true },
  "SCRAM-SHA-256": { hash: "SHA-256", plus: false },
  "SCRAM-SHA-1": { hash: "SHA-1", plus: false },
};

export interface MechanismOfferOptions {
  /** Whether the stream is encrypted. */
  tls: boolean;
  /** Channel binding types this connection can provide (unknown names are ignored). */
  channelBindings: string[];
  /** Whether to offer PLAIN; it is offered over TLS only, whatever this says. */
  allowPlain: boolean;
  /** Whether the peer presented a certificate with usable identities (XEP-0178). */
  external: boolean;
}

/**
 * The mechanisms to list in <mechanisms/>, most preferred first (RFC 6120 §6.3.3). EXTERNAL
 * leads because it is only offered when the peer has already proven an identity with its
 * certificate; then channel-bound SCRAM, stronger hash first; PLAIN last.
 */
export function serverMechanisms(opts: MechanismOfferOptions): string[] {
  const mechanisms: string[] = [];
  if (opts.tls && opts.external) mechanisms.push("EXTERNAL");
  if (opts.tls && opts.channelBindings.some(isChannelBindingType)) {
    mechanisms.push("SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS");
  }
  mechanisms.push("SCRAM-SHA-256", "SCRAM-SHA-1");
  if (opts.tls && opts.allowPlain) mechanisms.push("PLAIN");
  return mechanisms;
}

/**
 * The server session for `name`, or null when Parley does not implement it or this connection
 * cannot run it (-PLUS without channel binding data, EXTERNAL without certificate identities);
 * the caller answers null with invalid-mechanism. The caller must also refuse names it did not
 * offer (PLAIN without TLS, for instance): this function does not know the offer.
 */
export function createServerMechanism(name: string, ctx: SaslServerContext): SaslServerSession | null {
  const scram = Object.hasOwn(SCRAM_BY_NAME, name) ? SCRAM_BY_NAME[name] : undefined;
  if (scram !== undefined) {
    // Only -PLUS looks at the binding data (a value may be derived when read: server/core/tls.ts).
    if (scram.plus && !Object.values(ctx.channelBinding).some((data) => data !== undefined)) return null;
    return new ScramServer(scram.hash, scram.plus, ctx);
  }
  if (name === "PLAIN") return new PlainServer(ctx);
  if (name === "EXTERNAL") return ctx.externalIdentities?.length ? new ExternalServer(ctx) : null;
  return null;
}
