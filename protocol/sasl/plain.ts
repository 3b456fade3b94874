// RFC 4616 (PLAIN), server side: message = [authzid] NUL authcid NUL passwd, in UTF-8.
// RFC 6120 §6.4.7 allows it only over TLS; the caller decides whether to offer it.
import { ServerExchange } from "./exchange.ts";
import { saslprep } from "./saslprep.ts";
import { decodeUtf8 } from "./scram-syntax.ts";
import { saslFailure } from "./types.ts";
import type { SaslServerContext, SaslStep } from "./types.ts";

export class PlainServer extends ServerExchange {
  readonly mechanism = "PLAIN";

  constructor(private readonly ctx: SaslServerContext) {
    super();
  }

  protected async next(data: Buffer): Promise<SaslStep> {
    const text = decodeUtf8(data);
    if (text === null) return saslFailure("malformed-request", "not UTF-8");
    const fields = text.split("\0");
    if (fields.length !== 3) return saslFailure("malformed-request", "expected authzid NUL authcid NUL passwd");
    const [authzid, authcid, passwd] = fields as [string, string, string];
    if (authcid === "" || passwd === "") return saslFailure("malformed-request", "empty authcid or password");

    // RFC 4616 §4: if SASLprep fails or leaves nothing, "verification SHALL fail".
    const username = prepareQuery(authcid);
    const password = prepareQuery(passwd);
    if (username === null || password === null) return saslFailure("not-authorized");

    let verified: boolean;
    try {
      verified = await this.ctx.verifyPlain(username, password);
    } catch {
      return saslFailure("temporary-auth-failure");
    }
    if (verified !== true) return saslFailure("not-authorized");
    return authzid === "" ? { kind: "success", username } : { kind: "success", username, authzid };
  }
}

function prepareQuery(value: string): string | null {
  try {
    const prepared = saslprep(value, { allowUnassigned: true });
    return prepared === "" ? null : prepared;
  } catch {
    return null;
  }
}
