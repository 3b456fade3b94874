// Local stand-ins for the push services, on 127.0.0.1 over TLS with a generated certificate.
// Each checks what the real service documents and refuses what it would refuse, and records
// every request it accepted (and every refusal, so specs can assert there was none):
// - APNs (Apple, "Sending notification requests to APNs", "Establishing a token-based
//   connection"): HTTP/2 only; POST /3/device/<token>; authorization "bearer <JWT>" signed ES256
//   by the team's key with kid and iss; apns-topic; apns-push-type alert|background; apns-priority
//   10|5 (background must be 5 and carry content-available without an alert); 410 Unregistered
//   for tokens marked gone.
// - FCM HTTP v1: POST /token (RFC 7523 JWT bearer grant, RS256 assertion with iss, scope,
//   aud, iat, exp of at most an hour) → access token; POST /v1/projects/<id>/messages:send with
//   that token, message.token, string-only data and android.priority; 404 UNREGISTERED for tokens
//   marked gone.
// - Web Push: POST /push/<id> with VAPID (RFC 8292: "vapid t=<JWT>, k=<key>", ES256, aud = the
//   endpoint's origin, exp within 24 h, sub), TTL, Urgency and Content-Encoding aes128gcm; the
//   body is decrypted as RFC 8291 says (so the payload is checked); 410 for subscriptions marked gone.
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import { createSecureServer, constants, type Http2SecureServer } from "node:http2";
import { createECDH, createPublicKey, createDecipheriv, generateKeyPairSync, hkdfSync, randomBytes, type KeyObject } from "node:crypto";
import type { AddressInfo } from "node:net";
import type { IncomingMessage, ServerResponse } from "node:http";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import forge from "node-forge";
import { Redis } from "ioredis";
import { verifyJwt } from "../../server/modules/push-appserver/jwt.ts";

/** A self-signed RSA certificate for 127.0.0.1 (an IP SAN, so no name needs resolving). */
export function loopbackCertificate(): { cert: string; key: string } {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ type: "spki", format: "pem" }) as string);
  // Positive and in its shortest DER form. A "0"-prefixed random hex string sometimes reached the
  // certificate as a non-minimal INTEGER (a 00 byte before one below 0x80), which OpenSSL refuses
  // ("illegal padding"): one certificate in the first few hundred of a loop over this helper, and
  // once a push spec that failed to start its fakes. 2,000 certificates made this way all loaded.
  const serial = randomBytes(8);
  serial[0] = (serial[0]! & 0x7f) | 0x40;
  cert.serialNumber = serial.toString("hex");
  cert.validity.notBefore = new Date(Date.now() - 3600_000);
  cert.validity.notAfter = new Date(Date.now() + 86_400_000);
  const name = [{ name: "commonName", value: "fake push service" }];
  cert.setSubject(name);
  cert.setIssuer(name);
  cert.setExtensions([
    { name: "basicConstraints", cA: true },
    { name: "subjectAltName", altNames: [{ type: 7, ip: "127.0.0.1" }] },
  ]);
  const keyPem = privateKey.export({ type: "pkcs1", format: "pem" }) as string;
  cert.sign(forge.pki.privateKeyFromPem(keyPem), forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: keyPem };
}

function listen(server: HttpsServer | Http2SecureServer): Promise<number> {
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)));
}

function close(server: HttpsServer | Http2SecureServer): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    (server as HttpsServer).closeAllConnections?.();
  });
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

/**
 * `[modules.push_appserver]` pointing at the fakes (their keys and CAs written to files in `dir`),
 * with `settings` (snake_case keys, TOML values) added or overriding the defaults.
 */
export function appServerToml(dir: string, fakes: { apns: FakeApns; fcm: FakeFcm; web: FakeWebPush }, settings: Record<string, string | number | boolean> = {}): string {
  const { apns, fcm, web } = fakes;
  const file = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };
  const all: Record<string, string | number | boolean> = {
    enabled: true,
    apns_key_file: file("apns.p8", apns.keyPem),
    apns_key_id: apns.keyId,
    apns_team_id: apns.teamId,
    apns_topic: apns.topic,
    apns_url: apns.url,
    apns_ca_file: file("apns-ca.pem", apns.ca),
    fcm_service_account_file: file("service-account.json", JSON.stringify(fcm.serviceAccount())),
    fcm_url: fcm.url,
    fcm_ca_file: file("fcm-ca.pem", fcm.ca),
    vapid_public_key: web.vapid.publicKey,
    vapid_private_key: web.vapid.privateKey,
    vapid_subject: "mailto:ops@localhost",
    web_push_ca_file: file("web-ca.pem", web.ca),
    max_attempts: 4,
    backoff_ms: 50,
    poll_ms: 50,
    ...settings,
  };
  const lines = ["[modules.push_appserver]", ...Object.entries(all).map(([k, v]) => `${k} = ${typeof v === "string" ? JSON.stringify(v) : String(v)}`)];
  return `${lines.join("\n")}\n`;
}

// ---- APNs -----------------------------------------------------------------------------------

export interface ApnsRequest {
  token: string;
  headers: Record<string, string>;
  payload: { aps: Record<string, unknown>; [k: string]: unknown };
}

export class FakeApns {
  readonly requests: ApnsRequest[] = [];
  readonly refusals: string[] = [];
  /** Tokens APNs answers 410 Unregistered for. */
  readonly unregistered = new Set<string>();
  /** Tokens APNs answers 503 ServiceUnavailable for (a service having a bad day). */
  readonly failing = new Set<string>();
  /** Every 503 answered for a token in `failing` (one entry per attempt). */
  readonly failures: string[] = [];
  /** Milliseconds APNs takes to answer an accepted request (a slow service); 0 answers at once. */
  delayMs = 0;
  /** Accepted requests whose answer is being held back by `delayMs`. */
  inFlight = 0;
  readonly teamId = "TEAM123456";
  readonly keyId = "KEY1234567";
  readonly topic = "org.parley.test";
  /** The .p8 key the provider signs with (PKCS#8 PEM). */
  readonly keyPem: string;
  private readonly publicKey: KeyObject;
  port = 0;

  private constructor(
    private readonly server: Http2SecureServer,
    readonly ca: string,
  ) {
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    this.keyPem = privateKey.export({ type: "pkcs8", format: "pem" }) as string;
    this.publicKey = publicKey;
  }

  get url(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  static async start(tls = loopbackCertificate()): Promise<FakeApns> {
    const server = createSecureServer({ cert: tls.cert, key: tls.key, allowHTTP1: false });
    const fake = new FakeApns(server, tls.cert);
    server.on("stream", (stream, headers) => {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        const answer = (status: number, body?: unknown) => {
          stream.respond({ [constants.HTTP2_HEADER_STATUS]: status, "apns-id": randomBytes(16).toString("hex"), "content-type": "application/json" });
          stream.end(body === undefined ? undefined : JSON.stringify(body));
        };
        const refuse = (status: number, reason: string) => {
          fake.refusals.push(reason);
          answer(status, { reason });
        };
        const path = String(headers[constants.HTTP2_HEADER_PATH] ?? "");
        const match = /^\/3\/device\/([0-9a-fA-F]{16,200})$/.exec(path);
        if (headers[constants.HTTP2_HEADER_METHOD] !== "POST") return refuse(405, "MethodNotAllowed");
        if (!match) return refuse(400, "BadDeviceToken");
        const auth = String(headers.authorization ?? "");
        if (!auth.startsWith("bearer ")) return refuse(403, "MissingProviderToken");
        try {
          const { header, claims } = verifyJwt(auth.slice(7), fake.publicKey);
          if (header.alg !== "ES256" || header.kid !== fake.keyId || claims.iss !== fake.teamId) throw new Error();
          const iat = Number(claims.iat);
          if (!Number.isInteger(iat) || Math.abs(Date.now() / 1000 - iat) > 3600) return refuse(403, "ExpiredProviderToken");
        } catch {
          return refuse(403, "InvalidProviderToken");
        }
        if (headers["apns-topic"] !== fake.topic) return refuse(400, headers["apns-topic"] ? "DeviceTokenNotForTopic" : "MissingTopic");
        const type = headers["apns-push-type"];
        const priority = headers["apns-priority"];
        if (type !== "alert" && type !== "background") return refuse(400, "InvalidPushType");
        if (priority !== undefined && priority !== "10" && priority !== "5" && priority !== "1") return refuse(400, "BadPriority");
        let payload: ApnsRequest["payload"];
        try {
          payload = JSON.parse(Buffer.concat(chunks).toString("utf8")) as ApnsRequest["payload"];
        } catch {
          return refuse(400, "PayloadEmpty");
        }
        if (typeof payload.aps !== "object" || payload.aps === null) return refuse(400, "PayloadEmpty");
        if (Buffer.concat(chunks).length > 4096) return refuse(413, "PayloadTooLarge");
        // Apple: a background notification has content-available, no alert/sound/badge, priority 5.
        if (type === "background" && (priority !== "5" || payload.aps["content-available"] !== 1 || "alert" in payload.aps || "sound" in payload.aps)) {
          return refuse(400, "BadPriority");
        }
        if (type === "alert" && !payload.aps.alert) return refuse(400, "PayloadEmpty");
        if (fake.unregistered.has(match[1])) return answer(410, { reason: "Unregistered", timestamp: Date.now() });
        if (fake.failing.has(match[1])) {
          fake.failures.push(match[1]);
          return answer(503, { reason: "ServiceUnavailable" });
        }
        const h: Record<string, string> = {};
        for (const [k, v] of Object.entries(headers)) if (!k.startsWith(":")) h[k] = String(v);
        const accept = () => {
          // A request the client gave up on (its stream is gone) was never delivered.
          if (stream.destroyed || stream.closed) return;
          fake.requests.push({ token: match[1], headers: h, payload });
          answer(200);
        };
        if (fake.delayMs <= 0) return accept();
        fake.inFlight++;
        setTimeout(() => {
          fake.inFlight--;
          accept();
        }, fake.delayMs);
      });
    });
    fake.port = await listen(server);
    return fake;
  }

  stop(): Promise<void> {
    return close(this.server);
  }
}

// ---- FCM HTTP v1 ----------------------------------------------------------------------------

export interface FcmRequest {
  token: string;
  message: { token: string; data?: Record<string, string>; android?: { priority?: string } };
}

export class FakeFcm {
  readonly requests: FcmRequest[] = [];
  readonly refusals: string[] = [];
  readonly unregistered = new Set<string>();
  readonly projectId = "parley-test";
  readonly clientEmail = "push@parley-test.iam.gserviceaccount.com";
  readonly privateKeyPem: string;
  private readonly publicKey: KeyObject;
  private readonly accessTokens = new Set<string>();
  tokenRequests = 0;
  port = 0;

  private constructor(
    private readonly server: HttpsServer,
    readonly ca: string,
  ) {
    const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    this.privateKeyPem = privateKey.export({ type: "pkcs8", format: "pem" }) as string;
    this.publicKey = publicKey;
  }

  get url(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  get tokenUrl(): string {
    return `${this.url}/token`;
  }

  /** The service-account JSON a console would give. */
  serviceAccount(): Record<string, string> {
    return { type: "service_account", project_id: this.projectId, private_key_id: "kid-1", private_key: this.privateKeyPem, client_email: this.clientEmail, token_uri: this.tokenUrl };
  }

  static async start(tls = loopbackCertificate()): Promise<FakeFcm> {
    let fake!: FakeFcm;
    const server = createHttpsServer({ cert: tls.cert, key: tls.key }, (req, res) => {
      void fake.handle(req, res);
    });
    fake = new FakeFcm(server, tls.cert);
    fake.port = await listen(server);
    return fake;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = (await readBody(req)).toString("utf8");
    const refuse = (status: number, reason: string, code = "INVALID_ARGUMENT") => {
      this.refusals.push(reason);
      json(res, status, { error: { code: status, message: reason, status: code } });
    };
    if (req.method === "POST" && req.url === "/token") {
      this.tokenRequests++;
      if (!String(req.headers["content-type"]).startsWith("application/x-www-form-urlencoded")) return refuse(400, "token: not a form");
      const form = new URLSearchParams(body);
      if (form.get("grant_type") !== "urn:ietf:params:oauth:grant-type:jwt-bearer") return refuse(400, "token: grant_type");
      try {
        const { header, claims } = verifyJwt(form.get("assertion") ?? "", this.publicKey);
        const iat = Number(claims.iat);
        const exp = Number(claims.exp);
        if (header.alg !== "RS256") throw new Error("alg");
        if (claims.iss !== this.clientEmail) throw new Error("iss");
        if (claims.aud !== this.tokenUrl) throw new Error("aud");
        if (claims.scope !== "https://www.googleapis.com/auth/firebase.messaging") throw new Error("scope");
        if (!(exp > iat && exp - iat <= 3600 && Math.abs(Date.now() / 1000 - iat) < 300)) throw new Error("exp");
      } catch (err) {
        this.refusals.push(`token: ${(err as Error).message}`);
        return json(res, 400, { error: "invalid_grant", error_description: "Invalid JWT Signature." });
      }
      const access = `ya29.${randomBytes(24).toString("base64url")}`;
      this.accessTokens.add(access);
      return json(res, 200, { access_token: access, expires_in: 3599, token_type: "Bearer" });
    }
    const send = /^\/v1\/projects\/([^/]+)\/messages:send$/.exec(req.url ?? "");
    if (req.method !== "POST" || !send) return refuse(404, `no route ${req.method} ${req.url}`, "NOT_FOUND");
    const auth = String(req.headers.authorization ?? "");
    if (!auth.startsWith("Bearer ") || !this.accessTokens.has(auth.slice(7))) return refuse(401, "send: bad access token", "UNAUTHENTICATED");
    if (send[1] !== this.projectId) return refuse(403, "send: wrong project", "PERMISSION_DENIED");
    let message: FcmRequest["message"];
    try {
      message = (JSON.parse(body) as { message: FcmRequest["message"] }).message;
    } catch {
      return refuse(400, "send: not JSON");
    }
    if (!message || typeof message.token !== "string") return refuse(400, "send: no token");
    if (message.data && Object.values(message.data).some((v) => typeof v !== "string")) return refuse(400, "send: data values must be strings");
    const prio = message.android?.priority;
    if (prio !== undefined && prio !== "HIGH" && prio !== "NORMAL") return refuse(400, "send: android.priority");
    if (this.unregistered.has(message.token)) {
      return json(res, 404, {
        error: {
          code: 404,
          message: "Requested entity was not found.",
          status: "NOT_FOUND",
          details: [{ "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", errorCode: "UNREGISTERED" }],
        },
      });
    }
    this.requests.push({ token: message.token, message });
    json(res, 200, { name: `projects/${this.projectId}/messages/${randomBytes(8).toString("hex")}` });
  }

  stop(): Promise<void> {
    return close(this.server);
  }
}

// ---- Web Push -------------------------------------------------------------------------------

export interface WebPushRequest {
  id: string;
  headers: Record<string, string>;
  payload: Record<string, string>;
}

export interface BrowserSubscription {
  endpoint: string;
  keys: { p256dh: string; auth: string };
}

export class FakeWebPush {
  readonly requests: WebPushRequest[] = [];
  readonly refusals: string[] = [];
  readonly gone = new Set<string>();
  /** The VAPID key pair the app server is configured with (URL-safe base64, as web-push wants). */
  readonly vapid: { publicKey: string; privateKey: string };
  private readonly browsers = new Map<string, { ecdh: ReturnType<typeof createECDH>; auth: Buffer }>();
  port = 0;

  private constructor(
    private readonly server: HttpsServer,
    readonly ca: string,
  ) {
    const ecdh = createECDH("prime256v1");
    ecdh.generateKeys();
    this.vapid = { publicKey: ecdh.getPublicKey().toString("base64url"), privateKey: ecdh.getPrivateKey().toString("base64url") };
  }

  get origin(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  /** What a browser's PushManager.subscribe() would give: an endpoint and its keys. */
  subscribe(id = randomBytes(8).toString("hex")): BrowserSubscription {
    const ecdh = createECDH("prime256v1");
    ecdh.generateKeys();
    const auth = randomBytes(16);
    this.browsers.set(id, { ecdh, auth });
    return { endpoint: `${this.origin}/push/${id}`, keys: { p256dh: ecdh.getPublicKey().toString("base64url"), auth: auth.toString("base64url") } };
  }

  static async start(tls = loopbackCertificate()): Promise<FakeWebPush> {
    let fake!: FakeWebPush;
    const server = createHttpsServer({ cert: tls.cert, key: tls.key }, (req, res) => {
      void fake.handle(req, res);
    });
    fake = new FakeWebPush(server, tls.cert);
    fake.port = await listen(server);
    return fake;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const refuse = (status: number, reason: string) => {
      this.refusals.push(reason);
      res.writeHead(status);
      res.end(reason);
    };
    const match = /^\/push\/([0-9a-f]+)$/.exec(req.url ?? "");
    const browser = match ? this.browsers.get(match[1]) : undefined;
    if (req.method !== "POST" || !match || !browser) return refuse(404, "no such subscription");
    // RFC 8292 §3: Authorization: vapid t=<JWT>, k=<uncompressed P-256 public key>.
    const auth = /^vapid t=([^,\s]+),\s*k=([A-Za-z0-9_-]+)$/.exec(String(req.headers.authorization ?? ""));
    if (!auth) return refuse(401, "no VAPID authorization");
    if (auth[2] !== this.vapid.publicKey) return refuse(403, "VAPID key is not the subscription's application server key");
    const raw = Buffer.from(auth[2], "base64url");
    const key = createPublicKey({ key: { kty: "EC", crv: "P-256", x: raw.subarray(1, 33).toString("base64url"), y: raw.subarray(33, 65).toString("base64url") }, format: "jwk" });
    try {
      const { header, claims } = verifyJwt(auth[1], key);
      if (header.alg !== "ES256") throw new Error("alg");
      if (claims.aud !== this.origin) throw new Error("aud");
      const exp = Number(claims.exp);
      if (!(exp > Date.now() / 1000 && exp <= Date.now() / 1000 + 86_400 + 60)) throw new Error("exp");
      if (typeof claims.sub !== "string" || !/^(mailto:|https:)/.test(claims.sub)) throw new Error("sub");
    } catch (err) {
      return refuse(403, `VAPID JWT: ${(err as Error).message}`);
    }
    if (!/^\d+$/.test(String(req.headers.ttl ?? ""))) return refuse(400, "TTL header required (RFC 8030 §5.2)");
    const urgency = req.headers.urgency;
    if (urgency !== undefined && !["very-low", "low", "normal", "high"].includes(String(urgency))) return refuse(400, "bad Urgency");
    if (req.headers["content-encoding"] !== "aes128gcm") return refuse(415, "Content-Encoding must be aes128gcm (RFC 8291 §4)");
    let plaintext: Buffer;
    try {
      plaintext = decryptAes128gcm(body, browser.ecdh, browser.auth);
    } catch (err) {
      return refuse(400, `payload does not decrypt: ${(err as Error).message}`);
    }
    if (this.gone.has(match[1])) {
      res.writeHead(410);
      res.end();
      return;
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) headers[k] = String(v);
    this.requests.push({ id: match[1], headers, payload: JSON.parse(plaintext.toString("utf8")) as Record<string, string> });
    res.writeHead(201, { location: `${this.origin}/message/${randomBytes(6).toString("hex")}` });
    res.end();
  }

  stop(): Promise<void> {
    return close(this.server);
  }
}

/** RFC 8291 §3.4 and RFC 8188: one aes128gcm record, as a user agent decrypts it. */
function decryptAes128gcm(body: Buffer, ua: ReturnType<typeof createECDH>, authSecret: Buffer): Buffer {
  const salt = body.subarray(0, 16);
  const idlen = body[20];
  const asPublic = body.subarray(21, 21 + idlen);
  const ciphertext = body.subarray(21 + idlen);
  const ecdhSecret = ua.computeSecret(asPublic);
  const keyInfo = Buffer.concat([Buffer.from("WebPush: info\0"), ua.getPublicKey(), asPublic]);
  const ikm = Buffer.from(hkdfSync("sha256", ecdhSecret, authSecret, keyInfo, 32));
  const cek = Buffer.from(hkdfSync("sha256", ikm, salt, Buffer.from("Content-Encoding: aes128gcm\0"), 16));
  const nonce = Buffer.from(hkdfSync("sha256", ikm, salt, Buffer.from("Content-Encoding: nonce\0"), 12));
  const decipher = createDecipheriv("aes-128-gcm", cek, nonce);
  decipher.setAuthTag(ciphertext.subarray(ciphertext.length - 16));
  const padded = Buffer.concat([decipher.update(ciphertext.subarray(0, ciphertext.length - 16)), decipher.final()]);
  // The last record ends with the delimiter 0x02, then zero padding.
  let end = padded.length - 1;
  while (end >= 0 && padded[end] === 0) end--;
  if (padded[end] !== 2) throw new Error("no last-record delimiter");
  return padded.subarray(0, end);
}

/** Deletes every Redis key under `prefix` (a spec's own job queues), bounded to 1,000 SCAN rounds. */
export async function deleteRedisKeys(url: string, prefix: string): Promise<void> {
  const redis = new Redis(url);
  try {
    let cursor = "0";
    for (let i = 0; i < 1000; i++) {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 200);
      if (keys.length > 0) await redis.del(...keys);
      cursor = next;
      if (cursor === "0") break;
    }
  } finally {
    redis.disconnect();
  }
}

/**
 * The three fake services, started together. If one fails to start, those that did are stopped
 * before the error is thrown: a listening fake would keep the spec's process, and with it the
 * whole test run, alive.
 */
export async function startFakePushServices(): Promise<{ apns: FakeApns; fcm: FakeFcm; web: FakeWebPush }> {
  const started = await Promise.allSettled([FakeApns.start(), FakeFcm.start(), FakeWebPush.start()] as const);
  const [apns, fcm, web] = started;
  if (apns.status === "fulfilled" && fcm.status === "fulfilled" && web.status === "fulfilled") {
    return { apns: apns.value, fcm: fcm.value, web: web.value };
  }
  await Promise.all(started.map((r) => (r.status === "fulfilled" ? r.value.stop() : undefined)));
  throw started.find((r): r is PromiseRejectedResult => r.status === "rejected")!.reason;
}
