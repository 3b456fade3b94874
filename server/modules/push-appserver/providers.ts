// The push services Parley's app server delivers through. Each turns one XEP-0357 summary into
// the service's request, and says "sent", "invalid-token" (the device is gone: APNs 410 or
// BadDeviceToken, FCM UNREGISTERED, Web Push 404/410), throws PermanentJobError when retrying
// cannot help, and throws anything else to be retried with backoff.
//
// - APNs: HTTP/2 with token authentication (Apple, "Sending notification requests to APNs" and
//   "Establishing a token-based connection to APNs"): an ES256 JWT {iss: team id, iat} with
//   header kid = key id, reused for under an hour; headers apns-topic, apns-push-type
//   (alert for a visible message, background for a silent wake-up), apns-priority (10 with an
//   alert, 5 for background, as Apple requires), apns-expiration. Written on node:http2 rather
//   than @parse/node-apn: see the README's dependency table.
// - FCM HTTP v1 (Firebase, "Migrate from legacy FCM APIs to HTTP v1"): OAuth 2.0 access token
//   from a service account (RFC 7523 JWT bearer assertion, RS256, scope firebase.messaging,
//   aud = the token endpoint), then POST /v1/projects/<id>/messages:send with a data message and
//   android.priority HIGH or NORMAL.
// - Web Push (RFC 8030, payload encryption RFC 8291 aes128gcm, VAPID RFC 8292) through `web-push`,
//   with Urgency high or normal.
import { connect, constants, type ClientHttp2Session } from "node:http2";
import { Agent } from "node:https";
import { createPrivateKey, type KeyObject } from "node:crypto";
import webpush from "web-push";
import type { PushSummary } from "../../../protocol/push.ts";
import { signJwt } from "./jwt.ts";
import { httpCall } from "./http.ts";
import { PermanentJobError } from "./jobs.ts";

export type DeliveryResult = "sent" | "invalid-token";

export interface Delivery {
  token: string;
  /** APNs only: the device's topic when not the configured one. */
  topic: string | null;
  summary: PushSummary;
}

export interface Provider {
  send(d: Delivery): Promise<DeliveryResult>;
  close(): Promise<void>;
}

/** The data every service carries: strings only (FCM data messages require it). */
export function pushData(s: PushSummary): Record<string, string> {
  const data: Record<string, string> = { "message-count": String(s.messageCount ?? 0), priority: s.priority ?? "low" };
  if (s.pendingSubscriptionCount !== undefined) data["pending-subscription-count"] = String(s.pendingSubscriptionCount);
  if (s.lastMessageSender !== undefined) data["last-message-sender"] = s.lastMessageSender;
  if (s.lastMessageBody !== undefined) data["last-message-body"] = s.lastMessageBody;
  if (s.lastMessageEncrypted) data["last-message-encrypted"] = "1";
  return data;
}

// ---- APNs -----------------------------------------------------------------------------------

export interface ApnsOptions {
  /** The .p8 key, PEM. */
  key: string;
  keyId: string;
  teamId: string;
  /** Default topic: the app's bundle id. */
  topic: string;
  /** https://api.push.apple.com or https://api.sandbox.push.apple.com; a local endpoint in tests. */
  url: string;
  ca?: string;
}

/** Apple accepts a provider token for an hour and refuses one refreshed more than every 20 minutes. */
const APNS_TOKEN_LIFETIME_MS = 40 * 60_000;

export class ApnsProvider implements Provider {
  private session: ClientHttp2Session | null = null;
  private jwt: { token: string; at: number } | null = null;
  private readonly key: KeyObject;

  constructor(private readonly opts: ApnsOptions) {
    this.key = createPrivateKey(opts.key);
  }

  private providerToken(): string {
    const now = Date.now();
    if (!this.jwt || now - this.jwt.at > APNS_TOKEN_LIFETIME_MS) {
      this.jwt = { token: signJwt({ alg: "ES256", kid: this.opts.keyId }, { iss: this.opts.teamId, iat: Math.floor(now / 1000) }, this.key), at: now };
    }
    return this.jwt.token;
  }

  private connection(): ClientHttp2Session {
    if (this.session && !this.session.closed && !this.session.destroyed) return this.session;
    const session = connect(this.opts.url, { ca: this.opts.ca });
    session.on("error", () => session.destroy());
    session.on("goaway", () => session.close());
    session.unref();
    this.session = session;
    return session;
  }

  async send(d: Delivery): Promise<DeliveryResult> {
    const s = d.summary;
    const visible = s.priority === "high";
    const payload = visible
      ? { aps: { alert: { title: s.lastMessageSender ?? "New message", body: s.lastMessageBody ?? (s.lastMessageEncrypted ? "New encrypted message" : "New message") }, sound: "default", "mutable-content": 1 }, xmpp: pushData(s) }
      : { aps: { "content-available": 1 }, xmpp: pushData(s) };
    const body = JSON.stringify(payload);
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = this.connection().request({
        [constants.HTTP2_HEADER_METHOD]: "POST",
        [constants.HTTP2_HEADER_PATH]: `/3/device/${encodeURIComponent(d.token)}`,
        authorization: `bearer ${this.providerToken()}`,
        "apns-topic": d.topic ?? this.opts.topic,
        "apns-push-type": visible ? "alert" : "background",
        "apns-priority": visible ? "10" : "5",
        "apns-expiration": String(Math.floor(Date.now() / 1000) + 86_400),
        "content-type": "application/json",
      });
      req.setTimeout(15_000, () => req.close(constants.NGHTTP2_CANCEL));
      let code = 0;
      const chunks: Buffer[] = [];
      req.on("response", (h) => (code = Number(h[constants.HTTP2_HEADER_STATUS])));
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => resolve({ status: code, text: Buffer.concat(chunks).toString("utf8") }));
      req.on("error", reject);
      req.on("close", () => {
        if (code === 0) reject(new Error("APNs request closed without an answer"));
      });
      req.end(body);
    });
    if (status === 200) return "sent";
    let reason = "";
    try {
      reason = String((JSON.parse(text) as { reason?: string }).reason ?? "");
    } catch {
      /* an empty or non-JSON body */
    }
    if (status === 410 || reason === "BadDeviceToken" || reason === "Unregistered") return "invalid-token";
    if (status === 403 && (reason === "ExpiredProviderToken" || reason === "InvalidProviderToken")) {
      this.jwt = null;
      throw new Error(`APNs ${status} ${reason}`);
    }
    if (status === 429 || status >= 500) throw new Error(`APNs ${status} ${reason}`);
    throw new PermanentJobError(`APNs ${status} ${reason}`);
  }

  async close(): Promise<void> {
    this.session?.close();
  }
}

// ---- FCM HTTP v1 ----------------------------------------------------------------------------

export interface ServiceAccount {
  project_id: string;
  client_email: string;
  private_key: string;
  private_key_id?: string;
  token_uri: string;
}

export interface FcmOptions {
  account: ServiceAccount;
  /** Overrides the service account's token_uri (tests). */
  tokenUrl?: string;
  /** https://fcm.googleapis.com; a local endpoint in tests. */
  url: string;
  ca?: string;
}

export const FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging";

export class FcmProvider implements Provider {
  private access: { token: string; until: number } | null = null;

  constructor(private readonly opts: FcmOptions) {}

  private async accessToken(): Promise<string> {
    if (this.access && Date.now() < this.access.until) return this.access.token;
    const tokenUrl = this.opts.tokenUrl ?? this.opts.account.token_uri;
    const iat = Math.floor(Date.now() / 1000);
    const header: Record<string, unknown> = { alg: "RS256", typ: "JWT" };
    if (this.opts.account.private_key_id) header.kid = this.opts.account.private_key_id;
    const assertion = signJwt(header, { iss: this.opts.account.client_email, scope: FCM_SCOPE, aud: tokenUrl, iat, exp: iat + 3600 }, this.opts.account.private_key);
    const res = await httpCall(tokenUrl, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer", assertion }).toString(),
      ca: this.opts.ca,
    });
    if (res.status !== 200) {
      if (res.status >= 500 || res.status === 429) throw new Error(`FCM token endpoint ${res.status}`);
      throw new PermanentJobError(`FCM token endpoint ${res.status}: ${res.body.slice(0, 200)}`);
    }
    const json = JSON.parse(res.body) as { access_token: string; expires_in?: number };
    this.access = { token: json.access_token, until: Date.now() + Math.max(60, (json.expires_in ?? 3600) - 60) * 1000 };
    return json.access_token;
  }

  async send(d: Delivery): Promise<DeliveryResult> {
    const high = d.summary.priority === "high";
    const body = JSON.stringify({ message: { token: d.token, data: pushData(d.summary), android: { priority: high ? "HIGH" : "NORMAL" } } });
    const res = await httpCall(`${this.opts.url.replace(/\/$/, "")}/v1/projects/${encodeURIComponent(this.opts.account.project_id)}/messages:send`, {
      method: "POST",
      headers: { authorization: `Bearer ${await this.accessToken()}`, "content-type": "application/json; charset=utf-8" },
      body,
      ca: this.opts.ca,
    });
    if (res.status === 200) return "sent";
    let code = "";
    try {
      const err = (JSON.parse(res.body) as { error?: { status?: string; details?: Array<{ errorCode?: string }> } }).error;
      code = err?.details?.find((x) => x.errorCode)?.errorCode ?? err?.status ?? "";
    } catch {
      /* not JSON */
    }
    if (code === "UNREGISTERED" || res.status === 404) return "invalid-token";
    if (res.status === 401) {
      this.access = null;
      throw new Error("FCM 401: access token refused");
    }
    if (res.status === 429 || res.status >= 500 || code === "UNAVAILABLE" || code === "INTERNAL" || code === "QUOTA_EXCEEDED") throw new Error(`FCM ${res.status} ${code}`);
    throw new PermanentJobError(`FCM ${res.status} ${code}`);
  }

  async close(): Promise<void> {}
}

// ---- Web Push -------------------------------------------------------------------------------

export interface WebPushOptions {
  publicKey: string;
  privateKey: string;
  /** mailto: or https: contact (RFC 8292 §2.1 "sub"). */
  subject: string;
  ca?: string;
}

export class WebPushProvider implements Provider {
  private readonly agent: Agent | undefined;

  constructor(private readonly opts: WebPushOptions) {
    this.agent = opts.ca ? new Agent({ ca: opts.ca, keepAlive: false }) : undefined;
  }

  async send(d: Delivery): Promise<DeliveryResult> {
    let subscription: webpush.PushSubscription;
    try {
      subscription = JSON.parse(d.token) as webpush.PushSubscription;
    } catch {
      return "invalid-token";
    }
    try {
      await webpush.sendNotification(subscription, JSON.stringify(pushData(d.summary)), {
        vapidDetails: { subject: this.opts.subject, publicKey: this.opts.publicKey, privateKey: this.opts.privateKey },
        TTL: 86_400,
        urgency: d.summary.priority === "high" ? "high" : "normal",
        contentEncoding: "aes128gcm",
        timeout: 15_000,
        ...(this.agent ? { agent: this.agent } : {}),
      });
      return "sent";
    } catch (err) {
      const status = (err as { statusCode?: number }).statusCode;
      if (status === 404 || status === 410) return "invalid-token";
      if (status !== undefined && status >= 400 && status < 500 && status !== 429) throw new PermanentJobError(`Web Push ${status}`);
      throw err;
    }
  }

  async close(): Promise<void> {
    this.agent?.destroy();
  }
}
