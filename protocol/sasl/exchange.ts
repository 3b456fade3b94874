// RFC 4422 §3 (SASL exchange) as RFC 6120 §6.4 runs it: the bookkeeping every server mechanism
// shares, so that each mechanism only writes its own messages.
import { saslChallenge, saslFailure } from "./types.ts";
import type { SaslServerSession, SaslStep } from "./types.ts";

const EMPTY = Buffer.alloc(0);

export abstract class ServerExchange implements SaslServerSession {
  abstract readonly mechanism: string;
  private state: "open" | "busy" | "done" = "open";
  private started = false;

  /** The mechanism's next move; may throw or reject, which reads as temporary-auth-failure. */
  protected abstract next(data: Buffer): Promise<SaslStep>;

  async step(data: Buffer | null): Promise<SaslStep> {
    if (this.state !== "open") {
      return saslFailure("malformed-request", this.state === "busy" ? "a step is already in progress" : "exchange is over");
    }
    // RFC 6120 §6.4.2: without an initial response the server opens with an empty challenge.
    if (data === null && !this.started) {
      this.started = true;
      return saslChallenge(EMPTY);
    }
    this.started = true;
    this.state = "busy";
    let result: SaslStep;
    try {
      result = await this.next(data ?? EMPTY);
    } catch {
      result = saslFailure("temporary-auth-failure");
    }
    this.state = result.kind === "challenge" ? "open" : "done";
    return result;
  }
}
