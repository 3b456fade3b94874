// The conformance client over BOSH (XEP-0124 v1.11 with XEP-0206 v1.4), with node:http(s): the
// same XmppClient surface as the socket client. A session is created with ver='1.6', hold='1';
// the client keeps one request waiting at the server for what it has to say, adds another (up
// to what the server's 'requests' allows) to send, numbers them by 'rid', hands the payloads of
// the answers on in rid order, restarts the stream with xmpp:restart='true' after SASL and ends
// it with type='terminate'.
//
// In raw mode (a scenario's `(tcp)` client) nothing is sent by the client itself: every `sends
// raw:` is one POST of the text as written, and each answer is queued whole for `receives`:
// the <body/> itself on HTTP 200, else <http-error status='...'/> (CONFORMANCE_NS) holding the
// <body/> when the answer had one. Requests go out at once, each on its own connection, so a
// scenario can have several waiting at the server.
import http from "node:http";
import https from "node:https";
import { xml, type Element } from "../../protocol/xml/element.ts";
import { escapeAttr } from "../../protocol/xml/serialize.ts";
import { parseStandalone, standaloneXml } from "../../protocol/xml/standalone.ts";
import { NS } from "../../protocol/ns.ts";
import { parseStreamError } from "../../protocol/errors.ts";
import { XmppClient, type ConnectOptions } from "./client.ts";
import { CONFORMANCE_NS } from "./websocket.ts";

export interface BoshConnectOptions extends ConnectOptions {
  /** http:// or https:// URL of the endpoint. */
  url: string;
  /** Seconds the server may hold a request (default 10). */
  wait?: number;
}

interface Answer {
  status: number;
  body: Element | null;
  text: string;
}

const MAX_QUEUED_BYTES = 16 * 1024 * 1024;

export class BoshXmppClient extends XmppClient {
  sid: string | null = null;
  /** The next rid to use. */
  rid = 1_000_000 + Math.floor(Math.random() * 1_000_000_000);
  /** Attributes of the session-creation response. */
  created: Record<string, string> = {};
  /** The terminate body that ended the session, if one did. */
  terminate: Element | null = null;
  private inFlight = new Map<number, http.ClientRequest>();
  /** Every request not finished yet (raw ones too), to abort them on destroy. */
  private requests = new Set<http.ClientRequest>();
  private answers = new Map<number, Answer>();
  private nextToDeliver = 0;
  private queue: string[] = [];
  private queuedBytes = 0;
  private restartPending = false;
  private terminatePending = false;
  private maxRequests = 2;
  private pollingMs = 0;
  private lastEmpty = 0;
  private pollTimer: NodeJS.Timeout | null = null;
  private readonly agent: http.Agent;

  protected constructor(readonly boshOpts: BoshConnectOptions) {
    super(boshOpts);
    const u = new URL(boshOpts.url);
    this.agent = u.protocol === "https:" ? new https.Agent({ keepAlive: true, maxSockets: 4 }) : new http.Agent({ keepAlive: true, maxSockets: 4 });
  }

  static override async connect(opts: BoshConnectOptions): Promise<BoshXmppClient> {
    const c = new BoshXmppClient(opts);
    await c.open();
    return c;
  }

  override get secure(): boolean {
    return this.boshOpts.url.startsWith("https:");
  }

  protected override bindingData(): { type: string; data: Buffer } | null {
    // Requests may travel on different TLS connections: nothing to bind to (XEP-0440 §4).
    return null;
  }

  /** One POST; resolves with the status and the parsed <body/> (null when there is none). */
  post(text: string, rid?: number): Promise<Answer> {
    const u = new URL(this.boshOpts.url);
    const secure = u.protocol === "https:";
    return new Promise((resolve, reject) => {
      const req = (secure ? https : http).request(
        {
          host: u.hostname,
          port: Number(u.port) || (secure ? 443 : 80),
          path: u.pathname + u.search,
          method: "POST",
          headers: { "Content-Type": "text/xml; charset=utf-8", "Content-Length": Buffer.byteLength(text) },
          agent: this.boshOpts.raw ? false : this.agent,
          ...(secure ? { ca: this.boshOpts.ca, rejectUnauthorized: !this.boshOpts.insecure, servername: /^[\d.]+$|:/.test(this.boshOpts.domain) ? undefined : this.boshOpts.domain } : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on("data", (c: Buffer) => {
            size += c.length;
            if (size > MAX_QUEUED_BYTES) req.destroy(new Error("answer too large"));
            else chunks.push(c);
          });
          res.on("end", () => {
            if (rid !== undefined) this.inFlight.delete(rid);
            const body = Buffer.concat(chunks).toString("utf8");
            const el = body.trim() ? parseStandalone(body, NS.httpbind) : null;
            resolve({ status: res.statusCode ?? 0, text: body, body: el });
          });
          res.on("error", reject);
        },
      );
      if (rid !== undefined) this.inFlight.set(rid, req);
      this.requests.add(req);
      req.once("close", () => this.requests.delete(req));
      // Held requests come back after 'wait' seconds; one that takes far longer is lost.
      req.setTimeout(((this.boshOpts.wait ?? 10) + 20) * 1000, () => req.destroy(new Error("request timeout")));
      req.on("error", (e) => {
        if (rid !== undefined) this.inFlight.delete(rid);
        reject(e);
      });
      req.end(text);
    });
  }

  protected override async open(): Promise<void> {
    if (this.boshOpts.raw) return;
    const rid = this.rid++;
    this.nextToDeliver = rid;
    const wait = this.boshOpts.wait ?? 10;
    const creation =
      `<body xmlns='${NS.httpbind}' xmlns:xmpp='${NS.xbosh}' content='text/xml; charset=utf-8' hold='1' rid='${rid}'` +
      ` to='${escapeAttr(this.opts.domain)}' ver='1.6' wait='${wait}' xml:lang='en' xmpp:version='1.0'/>`;
    const featuresCame = this.next((el) => el.getName() === "features" && el.getNS() === NS.stream);
    featuresCame.catch(() => {});
    let first: Answer;
    try {
      first = await withTimeout(this.post(creation, rid), this.timeout, "no answer to the session request");
    } catch (e) {
      this.markClosed();
      throw e;
    }
    if (first.status !== 200 || !first.body || first.body.getName() !== "body") {
      this.markClosed();
      throw new Error(`session request answered with HTTP ${first.status}: ${first.text.slice(0, 200)}`);
    }
    if (!first.body.attrs.sid) {
      this.deliver(rid, first);
      throw new Error(`session request refused: ${first.text.slice(0, 200)}`);
    }
    for (const [k, v] of Object.entries(first.body.attrs)) if (typeof v === "string") this.created[k] = v;
    this.sid = first.body.attrs.sid;
    const requests = Number(first.body.attrs.requests);
    const hold = Number(first.body.attrs.hold ?? 1);
    this.maxRequests = Math.max(1, Math.min(Number.isFinite(requests) && requests > 0 ? requests : 2, hold + 1));
    if (hold === 0) this.pollingMs = Math.max(0, Number(first.body.attrs.polling ?? 0)) * 1000;
    this.deliver(rid, first);
    this.pump();
    await featuresCame;
  }

  /** Answers are handed on in rid order: a later one waits for the earlier ones. */
  private deliver(rid: number, answer: Answer): void {
    this.answers.set(rid, answer);
    for (let a = this.answers.get(this.nextToDeliver); a; a = this.answers.get(this.nextToDeliver)) {
      this.answers.delete(this.nextToDeliver);
      this.nextToDeliver++;
      if (this.closed) return;
      if (a.status !== 200 || !a.body) {
        this.terminate = a.body;
        this.markClosed();
        return;
      }
      for (const child of a.body.getChildElements()) {
        const el = parseStandalone(standaloneXml(child, NS.client));
        if (el) this.onElement(el);
      }
      if (a.body.attrs.type === "terminate") {
        this.terminate = a.body;
        const error = a.body.getChild("error", NS.stream);
        if (error && !this.streamError) this.streamError = parseStreamError(error);
        this.ended = true;
        this.markClosed();
        return;
      }
    }
  }

  /** Sends what is queued, and keeps one request waiting at the server. */
  private pump(): void {
    if (this.closed || !this.sid) return;
    while (this.inFlight.size < this.maxRequests) {
      const hasPayload = this.queue.length > 0 || this.restartPending || this.terminatePending;
      if (!hasPayload && this.inFlight.size > 0) return;
      if (!hasPayload && this.pollingMs > 0) {
        // Polling session (hold='0'): empty requests no more often than the server allows.
        const due = this.lastEmpty + this.pollingMs - Date.now();
        if (due > 0) {
          this.pollTimer ??= setTimeout(() => {
            this.pollTimer = null;
            this.pump();
          }, due);
          return;
        }
        this.lastEmpty = Date.now();
      }
      const rid = this.rid++;
      let attrs = `xmlns='${NS.httpbind}' rid='${rid}' sid='${escapeAttr(this.sid)}'`;
      let payload = "";
      if (this.restartPending) {
        attrs += ` xmlns:xmpp='${NS.xbosh}' xmpp:restart='true' to='${escapeAttr(this.opts.domain)}' xml:lang='en'`;
        this.restartPending = false;
      } else {
        payload = this.queue.join("");
        this.queue = [];
        this.queuedBytes = 0;
        if (this.terminatePending) {
          attrs += ` type='terminate'`;
          this.terminatePending = false;
        }
      }
      this.post(payload ? `<body ${attrs}>${payload}</body>` : `<body ${attrs}/>`, rid).then(
        (a) => {
          this.deliver(rid, a);
          this.pump();
        },
        () => {
          if (!this.closed) this.markClosed();
        },
      );
    }
  }

  /** Restarts the stream after SASL (XEP-0206 §5) and waits for the new features. */
  override async restart(): Promise<void> {
    this.header = null;
    this.features = null;
    this.restartPending = true;
    this.pump();
    await this.next((el) => el.getName() === "features" && el.getNS() === NS.stream);
  }

  override send(el: Element): void {
    this.write(standaloneXml(el, NS.client));
  }

  /** Raw mode: one POST of exactly this text. Otherwise: payload for the next request. */
  override write(data: string | Buffer): void {
    const text = typeof data === "string" ? data : data.toString("utf8");
    if (this.boshOpts.raw) {
      this.post(text).then(
        (a) => this.onElement(a.status === 200 && a.body ? a.body : xml("http-error", { xmlns: CONFORMANCE_NS, status: String(a.status) }, a.body)),
        (e: Error) => this.onElement(xml("http-error", { xmlns: CONFORMANCE_NS, status: "0" }, e.message)),
      );
      return;
    }
    if (this.closed) return;
    this.queuedBytes += Buffer.byteLength(text);
    if (this.queuedBytes > MAX_QUEUED_BYTES) return this.destroy();
    this.queue.push(text);
    this.pump();
  }

  override async close(): Promise<void> {
    if (this.closed) return;
    if (this.boshOpts.raw) return this.destroy();
    this.terminatePending = true;
    this.pump();
    try {
      await this.waitClosed(2000);
    } catch {
      this.destroy();
    }
  }

  protected override markClosed(): void {
    if (this.pollTimer) clearTimeout(this.pollTimer);
    this.pollTimer = null;
    super.markClosed();
    for (const req of [...this.requests]) req.destroy();
    this.requests.clear();
    this.inFlight.clear();
    this.agent.destroy();
  }

  override destroy(): void {
    this.markClosed();
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(message)), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e as Error);
      },
    );
  });
}
