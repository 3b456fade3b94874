// RFC 5802 (SCRAM-SHA-1, -PLUS) and RFC 7677 (SCRAM-SHA-256, -PLUS), server side, with channel
// binding per RFC 5802 §6, RFC 9266 and RFC 5929. RFC 6120 §6.3.10 carries the server-final
// message as additional data with <success/>, so the exchange is: client-first -> server-first
// challenge -> client-final -> success(server-final) or failure.
import { randomBytes } from "node:crypto";
import { isChannelBindingType } from "./channel-binding.ts";
import { ServerExchange } from "./exchange.ts";
import { saslprep } from "./saslprep.ts";
import {
  constantTimeEqual,
  digest,
  hmac,
  isUsableCredentials,
  scramDigestLength,
  unknownUserCredentials,
  xor,
} from "./scram.ts";
import type { ScramCredentials, ScramHash } from "./scram.ts";
import { decodeUtf8, isValidNonce, parseClientFinal, parseClientFirst } from "./scram-syntax.ts";
import type { ClientFirstMessage } from "./scram-syntax.ts";
import { saslChallenge, saslFailure } from "./types.ts";
import type { SaslServerContext, SaslStep } from "./types.ts";

interface AwaitingFinal {
  clientFirst: ClientFirstMessage;
  username: string;
  credentials: ScramCredentials;
  userExists: boolean;
  /** gs2-header followed by the channel binding data: what c= must decode to. */
  expectedChannelBinding: Buffer;
  combinedNonce: string;
  serverFirst: string;
}

export class ScramServer extends ServerExchange {
  readonly mechanism: string;
  private awaiting: AwaitingFinal | null = null;

  constructor(
    private readonly hash: ScramHash,
    private readonly plus: boolean,
    private readonly ctx: SaslServerContext,
  ) {
    super();
    this.mechanism = `SCRAM-${hash}${plus ? "-PLUS" : ""}`;
  }

  protected next(data: Buffer): Promise<SaslStep> {
    return this.awaiting === null ? this.first(data) : Promise.resolve(this.final(data, this.awaiting));
  }

  private async first(data: Buffer): Promise<SaslStep> {
    const text = decodeUtf8(data);
    if (text === null) return saslFailure("malformed-request", "not UTF-8");
    const parsed = parseClientFirst(text);
    if (!parsed.ok) return saslFailure(parsed.condition, parsed.text);
    const clientFirst = parsed.value;

    const binding = this.channelBindingFor(clientFirst);
    if (!("data" in binding)) return binding.failure;

    let username: string;
    try {
      username = saslprep(clientFirst.username, { allowUnassigned: true });
    } catch {
      // RFC 5802 §5.1 "invalid-username-encoding": no account can have this name.
      return saslFailure("malformed-request", "username refused by SASLprep");
    }
    if (username === "") return saslFailure("malformed-request", "username is empty after SASLprep");

    let stored: ScramCredentials | null;
    try {
      stored = await this.ctx.getScramCredentials(username, this.hash);
    } catch {
      return saslFailure("temporary-auth-failure");
    }
    if (stored !== null && !isUsableCredentials(stored, this.hash)) return saslFailure("temporary-auth-failure");
    // An unknown user gets the same exchange as a known one and fails only at the proof.
    const credentials = stored ?? unknownUserCredentials(username, this.hash, this.ctx.unknownUserIterations);

    const serverNonce = this.ctx.generateNonce?.() ?? randomBytes(24).toString("base64");
    if (!isValidNonce(serverNonce)) return saslFailure("temporary-auth-failure");
    const combinedNonce = clientFirst.nonce + serverNonce;
    const serverFirst = `r=${combinedNonce},s=${credentials.salt.toString("base64")},i=${credentials.iterations}`;

    this.awaiting = {
      clientFirst,
      username,
      credentials,
      userExists: stored !== null,
      expectedChannelBinding: Buffer.concat([Buffer.from(clientFirst.gs2Header, "utf8"), binding.data]),
      combinedNonce,
      serverFirst,
    };
    return saslChallenge(Buffer.from(serverFirst, "utf8"));
  }

  /** RFC 5802 §6: which channel binding data the gs2-cbind-flag commits the client to. */
  private channelBindingFor(clientFirst: ClientFirstMessage): { data: Buffer } | { failure: SaslStep } {
    if (this.plus) {
      if (clientFirst.flag !== "p") {
        return { failure: saslFailure("malformed-request", `${this.mechanism} requires p=<channel binding type>`) };
      }
      const type = clientFirst.channelBindingType!;
      const data = isChannelBindingType(type) ? this.ctx.channelBinding[type] : undefined;
      if (data === undefined) {
        return { failure: saslFailure("not-authorized", `channel binding type ${type} is not available`) };
      }
      return { data };
    }
    if (clientFirst.flag === "p") {
      return { failure: saslFailure("malformed-request", `channel binding needs ${this.mechanism}-PLUS`) };
    }
    // "y": the client could bind but believes the server cannot. We offered -PLUS, so someone
    // removed it from the feature list on the way (RFC 5802 §6).
    if (clientFirst.flag === "y" && this.ctx.offeredPlus) {
      return { failure: saslFailure("not-authorized", "channel binding downgrade detected") };
    }
    return { data: Buffer.alloc(0) };
  }

  private final(data: Buffer, state: AwaitingFinal): SaslStep {
    const text = decodeUtf8(data);
    if (text === null) return saslFailure("malformed-request", "not UTF-8");
    const parsed = parseClientFinal(text);
    if (!parsed.ok) return saslFailure(parsed.condition, parsed.text);
    const clientFinal = parsed.value;

    if (clientFinal.nonce !== state.combinedNonce) return saslFailure("not-authorized", "nonce mismatch");
    if (!clientFinal.channelBinding.equals(state.expectedChannelBinding)) {
      return saslFailure("not-authorized", "channel binding mismatch");
    }
    if (clientFinal.proof.length !== scramDigestLength(this.hash)) {
      return saslFailure("malformed-request", "client proof has the wrong length");
    }

    const authMessage = `${state.clientFirst.bare},${state.serverFirst},${clientFinal.withoutProof}`;
    const { storedKey, serverKey } = state.credentials;
    const clientSignature = hmac(this.hash, storedKey, authMessage);
    const clientKey = xor(clientFinal.proof, clientSignature);
    const proofMatches = constantTimeEqual(digest(this.hash, clientKey), storedKey);
    if (!proofMatches || !state.userExists) return saslFailure("not-authorized");

    const serverSignature = hmac(this.hash, serverKey, authMessage);
    const success: SaslStep = {
      kind: "success",
      data: Buffer.from(`v=${serverSignature.toString("base64")}`, "utf8"),
      username: state.username,
    };
    if (state.clientFirst.authzid !== undefined) success.authzid = state.clientFirst.authzid;
    return success;
  }
}
