// Interop support (RFC 6120, RFC 6121, XEP-0368): npm's @xmpp/client 0.14 against a test server.
// Records every stanza the library hands over, answers roster pushes (RFC 6121 §2.1.6) as a
// roster-keeping client must, and bounds every wait.
import { once, type EventEmitter } from "node:events";
import tls from "node:tls";
import { client as xmppClient, xml, type XmppJsClient } from "@xmpp/client";
import type { Element } from "../../../protocol/xml/element.ts";
import type { TestServer } from "../../support/server.ts";

export { xml };
export const WAIT_MS = 8000;
export const NS_ROSTER = "jabber:iq:roster";

let trusted: string | null = null;

/**
 * @xmpp/client has no option for a CA: trust the test server's certificate (and only it) by
 * giving node's tls.connect its `ca`, so that verification stays on. Once per process.
 */
export function trustTestServer(t: TestServer): void {
  if (trusted !== null) {
    trusted = t.ca;
    return;
  }
  trusted = t.ca;
  const connect = tls.connect;
  (tls as { connect: unknown }).connect = (...args: unknown[]) => {
    const opts = args[0] as tls.ConnectionOptions;
    return connect({ ...opts, ca: trusted!, servername: "localhost" });
  };
}

export interface XjsOptions {
  resource?: string;
  password?: string;
  directTls?: boolean;
  /** The SASL mechanism to use (one @xmpp/client supports); its own choice when absent. */
  mechanism?: string;
  /** Keep @xmpp/client's automatic reconnection (off by default, so a closed stream stays closed). */
  reconnect?: boolean;
}

export interface RosterItemView {
  jid: string;
  subscription: string;
  ask?: string;
  name?: string;
}

export class Xjs {
  readonly stanzas: Element[] = [];
  readonly errors: Array<{ name?: string; condition?: string; message: string }> = [];
  readonly statuses: string[] = [];
  /** The SASL mechanisms the server offered, and the one used. */
  offered: string[] = [];
  mechanismUsed = "";
  private waiters: Array<() => void> = [];

  constructor(
    readonly client: XmppJsClient,
    readonly username: string,
    private readonly service: string,
    private readonly domain: string,
  ) {
    client.on("stanza", (el: Element) => {
      this.stanzas.push(el);
      this.wake();
    });
    client.on("error", (err: Error & { condition?: string }) => {
      this.errors.push({ name: err.name, condition: err.condition, message: err.message });
      this.wake();
    });
    client.on("status", (status: string) => {
      this.statuses.push(status);
      this.wake();
    });
    // RFC 6121 §2.1.6: a client acknowledges each roster push; with no handler the library
    // would answer <service-unavailable/>.
    client.iqCallee.set(NS_ROSTER, "query", () => true);
  }

  static create(t: TestServer, username: string, opts: XjsOptions = {}): Xjs {
    trustTestServer(t);
    const scheme = opts.directTls ? "xmpps" : "xmpp";
    const port = opts.directTls ? t.directTlsPort : t.port;
    const password = opts.password ?? `pass-${username}`;
    let self: Xjs | undefined;
    const service = `${scheme}://${t.host}:${port}`;
    const c = xmppClient({
      service,
      domain: t.domain,
      resource: opts.resource ?? "xmppjs",
      credentials: async (authenticate: (creds: object, mechanism: string) => Promise<void>, mechanisms: string[]) => {
        const mechanism = opts.mechanism ?? mechanisms[0];
        self!.offered = mechanisms;
        self!.mechanismUsed = mechanism;
        await authenticate({ username, password }, mechanism);
      },
    });
    if (!opts.reconnect) c.reconnect.stop();
    self = new Xjs(c, username, service, t.domain);
    return self;
  }

  /** Connects and logs in; resolves with the bound full JID. */
  static async online(t: TestServer, username: string, opts: XjsOptions = {}): Promise<Xjs> {
    const x = Xjs.create(t, username, opts);
    await x.start();
    return x;
  }

  jid = "";

  /**
   * What client.start() does, with one difference: the wait for "online" is in place before the
   * stream opens. start() only attaches to it after open() resolves, which can be after a SASL
   * failure has already rejected it: an unhandled rejection that fails the spec.
   */
  async start(): Promise<string> {
    const c = this.client;
    const online = once(c as unknown as EventEmitter, "online");
    online.catch(() => {});
    const login = (async () => {
      await c.connect(this.service);
      await c.open({ domain: this.domain });
      const [address] = (await online) as [{ toString(): string }];
      return String(address);
    })();
    this.jid = await withTimeout(login, "login");
    return this.jid;
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  mark(): number {
    return this.stanzas.length;
  }

  waitFor<T>(find: () => T | undefined, what: string, timeoutMs = WAIT_MS): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`@xmpp/client ${this.username}: no ${what} within ${timeoutMs} ms; got: ${this.stanzas.map(String).join("\n")}`));
      }, timeoutMs);
      const check = () => {
        const found = find();
        if (found !== undefined) {
          clearTimeout(timer);
          resolve(found);
        } else this.waiters.push(check);
      };
      check();
    });
  }

  /** The first stanza from index `after` on that satisfies `match`. */
  waitForStanza(match: (el: Element) => boolean, what: string, after = 0): Promise<Element> {
    return this.waitFor(() => this.stanzas.slice(after).find(match), what);
  }

  seen(match: (el: Element) => boolean, after = 0): Element[] {
    return this.stanzas.slice(after).filter(match);
  }

  send(el: Element): Promise<void> {
    return this.client.send(el);
  }

  /** An IQ request; resolves with the result, rejects with the library's StanzaError. */
  iq(type: "get" | "set", to: string | undefined, payload: Element): Promise<Element> {
    return this.client.iqCaller.request(xml("iq", { type, ...(to ? { to } : {}) }, payload), WAIT_MS);
  }

  async rosterGet(): Promise<RosterItemView[]> {
    const result = await this.iq("get", undefined, xml("query", { xmlns: NS_ROSTER }));
    return rosterItems(result.getChild("query", NS_ROSTER)!);
  }

  async rosterSet(jid: string, attrs: Record<string, string> = {}): Promise<void> {
    await this.iq("set", undefined, xml("query", { xmlns: NS_ROSTER }, xml("item", { jid, ...attrs })));
  }

  /** Waits for a roster push about `jid` that satisfies `match`; returns the pushed item. */
  waitForPush(jid: string, match: (item: RosterItemView) => boolean, what: string, after = 0): Promise<RosterItemView> {
    return this.waitFor(() => {
      for (const el of this.stanzas.slice(after)) {
        if (!el.is("iq") || el.attrs.type !== "set") continue;
        const query = el.getChild("query", NS_ROSTER);
        const item = query ? rosterItems(query).find((i) => i.jid === jid) : undefined;
        if (item && match(item)) return item;
      }
      return undefined;
    }, what);
  }

  async stop(): Promise<void> {
    this.client.reconnect.stop();
    if (this.client.status === "offline") return;
    try {
      await withTimeout(this.client.stop(), "stop");
    } catch {
      // The stream may already be gone (the server closed it); nothing left to end.
    }
  }
}

export function rosterItems(query: Element): RosterItemView[] {
  return query.getChildren("item").map((i) => ({
    jid: i.attrs.jid!,
    subscription: i.attrs.subscription ?? "none",
    ask: i.attrs.ask,
    name: i.attrs.name,
  }));
}

export function presenceFrom(bare: string, type?: string): (el: Element) => boolean {
  return (el) => el.is("presence") && (el.attrs.from ?? "").split("/")[0] === bare && el.attrs.type === type;
}

function withTimeout<T>(p: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`@xmpp/client: ${what} took more than ${ms} ms`)), ms);
    }),
  ]);
}
