// Test support: small XMPP clients over RFC 7395 (WebSocket, with the `ws` package) and
// XEP-0206 (BOSH, with node:http), enough to log in with PLAIN, bind and exchange stanzas.
import http from "node:http";
import https from "node:https";
import { WebSocket } from "ws";
import { xml, type Element } from "../../../protocol/xml/element.ts";
import { parseStandalone } from "../../../protocol/xml/standalone.ts";
import { serialize } from "../../../protocol/xml/serialize.ts";
import { parseOneElement } from "../../../server/transports/framing.ts";

export const FRAMING_NS = "urn:ietf:params:xml:ns:xmpp-framing";
const SASL_NS = "urn:ietf:params:xml:ns:xmpp-sasl";
const BIND_NS = "urn:ietf:params:xml:ns:xmpp-bind";
const HTTPBIND = "http://jabber.org/protocol/httpbind";

type Match = (el: Element) => boolean;

/** An inbox with waiters, shared by both clients. */
abstract class Inbox {
  protected inbox: Element[] = [];
  private waiters: Array<{ match: Match; resolve: (el: Element) => void }> = [];
  closed = false;
  private closeWaiters: Array<() => void> = [];
  private ids = 0;

  protected deliver(el: Element): void {
    const i = this.waiters.findIndex((w) => w.match(el));
    if (i >= 0) this.waiters.splice(i, 1)[0].resolve(el);
    else this.inbox.push(el);
  }

  protected markClosed(): void {
    this.closed = true;
    for (const w of this.closeWaiters.splice(0)) w();
  }

  waitClosed(timeout = 5000): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("the stream did not close")), timeout);
      this.closeWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  next(match: Match = () => true, timeout = 5000): Promise<Element> {
    const i = this.inbox.findIndex(match);
    if (i >= 0) return Promise.resolve(this.inbox.splice(i, 1)[0]);
    return new Promise((resolve, reject) => {
      const waiter = {
        match,
        resolve: (el: Element) => {
          clearTimeout(timer);
          resolve(el);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new Error(`nothing matching arrived; inbox: ${this.inbox.map((e) => serialize(e)).join(" ")}`));
      }, timeout);
      this.waiters.push(waiter);
    });
  }

  nextId(): string {
    return `w${++this.ids}`;
  }

  abstract send(el: Element): void;

  /** Sends an IQ and waits for its answer. */
  async iq(el: Element): Promise<Element> {
    el.attrs.id ??= this.nextId();
    const id = el.attrs.id;
    this.send(el);
    return this.next((e) => e.name === "iq" && e.attrs.id === id);
  }

  protected async authenticate(user: string, password: string, domain: string): Promise<void> {
    const features = await this.next((e) => e.name === "stream:features");
    const mechanisms = features.getChild("mechanisms", SASL_NS)?.getChildren("mechanism").map((m) => m.getText()) ?? [];
    if (!mechanisms.includes("PLAIN")) throw new Error(`PLAIN not offered: ${mechanisms.join(" ")}`);
    this.send(xml("auth", { xmlns: SASL_NS, mechanism: "PLAIN" }, Buffer.from(`\0${user}\0${password}`).toString("base64")));
    const result = await this.next((e) => e.getNS() === SASL_NS);
    if (result.name !== "success") throw new Error(`SASL failed: ${serialize(result)}`);
    void domain;
  }

  protected async bindResource(resource?: string): Promise<string> {
    await this.next((e) => e.name === "stream:features");
    const result = await this.iq(xml("iq", { type: "set", xmlns: "jabber:client" }, xml("bind", { xmlns: BIND_NS }, resource ? xml("resource", {}, resource) : null)));
    const jid = result.getChild("bind", BIND_NS)?.getChildText("jid");
    if (result.attrs.type !== "result" || !jid) throw new Error(`bind failed: ${serialize(result)}`);
    return jid;
  }
}

export class WsClient extends Inbox {
  jid = "";
  private constructor(readonly ws: WebSocket) {
    super();
    ws.on("message", (data: Buffer) => {
      const el = parseStandalone(data.toString("utf8"));
      if (el) this.deliver(el);
    });
    ws.on("close", () => this.markClosed());
    ws.on("error", () => {});
  }

  static connect(url: string, opts: { protocols?: string[]; ca?: string } = {}): Promise<WsClient> {
    // The test certificate names "localhost", not the address connected to.
    const tlsOptions = { ca: opts.ca, servername: "localhost" } as WebSocket.ClientOptions;
    const ws = new WebSocket(url, opts.protocols ?? ["xmpp"], tlsOptions);
    return new Promise((resolve, reject) => {
      ws.once("open", () => resolve(new WsClient(ws)));
      ws.once("error", reject);
      ws.once("unexpected-response", (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
  }

  send(el: Element): void {
    this.ws.send(serialize(el));
  }

  raw(text: string | Buffer): void {
    this.ws.send(text);
  }

  open(domain: string): void {
    this.send(xml("open", { xmlns: FRAMING_NS, to: domain, version: "1.0" }));
  }

  /** Opens, authenticates with PLAIN; the stream is reopened and ready to bind or resume. */
  async authenticateOnly(user: string, domain = "localhost"): Promise<void> {
    this.open(domain);
    await this.authenticate(user, `pass-${user}`, domain);
    this.open(domain);
  }

  async login(user: string, domain = "localhost", resource?: string): Promise<string> {
    await this.authenticateOnly(user, domain);
    this.jid = await this.bindResource(resource);
    return this.jid;
  }

  close(): void {
    this.send(xml("close", { xmlns: FRAMING_NS }));
  }
}

export interface BoshResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Element | null;
  text: string;
}

/** One POST to a BOSH endpoint. */
export function boshPost(url: string, text: string, opts: { ca?: string; method?: string; headers?: Record<string, string> } = {}): Promise<BoshResponse> {
  const u = new URL(url);
  const secure = u.protocol === "https:";
  return new Promise((resolve, reject) => {
    const req = (secure ? https : http).request(
      {
        host: "127.0.0.1",
        port: Number(u.port),
        path: u.pathname,
        method: opts.method ?? "POST",
        headers: { "Content-Type": "text/xml; charset=utf-8", "Content-Length": Buffer.byteLength(text), ...opts.headers },
        agent: false,
        ...(secure ? { ca: opts.ca, servername: "localhost" } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const body = Buffer.concat(chunks).toString("utf8");
          const parsed = body ? parseOneElement(body, { maxStanzaSize: 1 << 24, maxDepth: 100 }) : null;
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text: body, body: parsed && "element" in parsed ? parsed.element : null });
        });
      },
    );
    req.setTimeout(90_000, () => req.destroy(new Error("request timeout")));
    req.on("error", reject);
    req.end(text);
  });
}

export class BoshClient extends Inbox {
  sid = "";
  rid = 1000 + Math.floor(Math.random() * 100000);
  jid = "";
  /** Attributes of the session-creation response. */
  created: Record<string, string> = {};
  private outstanding = 0;
  private slotWaiters: Array<() => void> = [];
  private polling = false;
  terminate: Element | null = null;

  constructor(
    readonly url: string,
    readonly domain = "localhost",
    readonly wait = 10,
  ) {
    super();
  }

  /** Sends one <body/> with these children; what comes back lands in the inbox. */
  async post(children: Element[] = [], attrs: Record<string, string> = {}): Promise<Element | null> {
    // No more requests at a time than the server allows ('requests', XEP-0124 §11).
    const limit = Number(this.created.requests) || 2;
    for (let i = 0; i < 1000 && this.outstanding >= limit; i++) await new Promise<void>((resolve) => this.slotWaiters.push(resolve));
    const body = xml("body", { xmlns: HTTPBIND, rid: String(this.rid++), ...(this.sid ? { sid: this.sid } : {}), ...attrs }, ...children);
    this.outstanding++;
    let res: BoshResponse;
    try {
      res = await boshPost(this.url, serialize(body));
    } finally {
      this.outstanding--;
      this.slotWaiters.shift()?.();
    }
    const el = res.body;
    if (el) {
      for (const child of el.getChildElements()) {
        child.parent = null;
        this.deliver(child);
      }
      if (el.attrs.type === "terminate") {
        this.terminate = el;
        this.polling = false;
        this.markClosed();
      }
    }
    if (this.polling && this.outstanding === 0 && !this.closed) void this.post().catch(() => {});
    return el;
  }

  async create(): Promise<Element> {
    const el = await this.post([], { to: this.domain, wait: String(this.wait), hold: "1", ver: "1.11", "xml:lang": "en", "xmpp:version": "1.0", "xmlns:xmpp": "urn:xmpp:xbosh" });
    if (!el || !el.attrs.sid) throw new Error(`no session: ${el ? serialize(el) : "nothing"}`);
    this.sid = el.attrs.sid;
    this.created = { ...el.attrs } as Record<string, string>;
    return el;
  }

  /** Keeps one request waiting at the server, so that it can push (XEP-0124 §10). */
  startPolling(): void {
    this.polling = true;
    if (this.outstanding === 0) void this.post().catch(() => {});
  }

  send(el: Element): void {
    void this.post([el]).catch(() => {});
  }

  async login(user: string, resource?: string): Promise<string> {
    await this.create();
    this.startPolling();
    await this.authenticate(user, `pass-${user}`, this.domain);
    void this.post([], { "xmpp:restart": "true", "xmlns:xmpp": "urn:xmpp:xbosh", to: this.domain }).catch(() => {});
    this.jid = await this.bindResource(resource);
    return this.jid;
  }

  async end(): Promise<Element | null> {
    this.polling = false;
    return this.post([xml("presence", { type: "unavailable", xmlns: "jabber:client" })], { type: "terminate" });
  }
}
