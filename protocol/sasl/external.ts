// RFC 4422 Appendix A (EXTERNAL) with XEP-0178 (best practices for certificates, 1.2): the
// identity comes from the TLS client certificate; the message is only the requested authzid.
import { ServerExchange } from "./exchange.ts";
import { decodeUtf8 } from "./scram-syntax.ts";
import { saslFailure } from "./types.ts";
import type { SaslServerContext, SaslStep } from "./types.ts";

export class ExternalServer extends ServerExchange {
  readonly mechanism = "EXTERNAL";

  constructor(private readonly ctx: SaslServerContext) {
    super();
  }

  protected async next(data: Buffer): Promise<SaslStep> {
    const authzid = decodeUtf8(data);
    if (authzid === null || authzid.includes("\0")) return saslFailure("malformed-request", "authzid is not UTF-8 text");
    const identities = this.ctx.externalIdentities ?? [];
    if (identities.length === 0) return saslFailure("not-authorized", "no usable identity in the certificate");
    if (authzid === "") {
      // With several identities in the certificate, picking one for the client would be a guess.
      if (identities.length > 1) return saslFailure("invalid-authzid", "certificate holds several identities; send one as authzid");
      return { kind: "success", username: identities[0]! };
    }
    if (!identities.includes(authzid)) return saslFailure("invalid-authzid", "authzid is not an identity of the certificate");
    return { kind: "success", username: authzid, authzid };
  }
}
