// Test support for federation specs: two (or more) Parley servers in this process, each with
// its own domain and its own s2s listener on a 127.0.0.x address, finding each other through a
// static resolver filled once their OS-chosen ports are known. Never touches DNS.
import net from "node:net";
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { XmlStreamParser } from "../../../protocol/xml/parser.ts";
import type { Element } from "../../../protocol/xml/element.ts";
import type { S2sEndpoint, S2sResolver, S2sTransport } from "../../../server/transports/s2s/index.ts";
import { startTestServer, type TestServer, type TestServerOptions } from "../../support/server.ts";

/** A resolver whose routes are added as servers start. */
export class TestRoutes implements S2sResolver {
  readonly routes = new Map<string, S2sEndpoint[]>();
  async resolve(domain: string): Promise<S2sEndpoint[]> {
    return this.routes.get(domain) ?? [];
  }
  add(domain: string, host: string, port: number, directTls = false): void {
    this.routes.set(domain, [...(this.routes.get(domain) ?? []), { host, port, directTls }]);
  }
}

export interface FederatedOptions extends TestServerOptions {
  domain: string;
  /** The address its s2s listener binds. */
  address: string;
  /** Extra [s2s] settings (TOML lines). */
  s2s?: string;
}

/** Starts a server federating through `routes`, and registers it (and its components) there. */
export async function startFederated(routes: TestRoutes, o: FederatedOptions): Promise<TestServer> {
  const extra = o.s2s ?? "";
  const defaults = ["auth_timeout_s = 5", "connect_timeout_s = 2"].filter((line) => !extra.includes(line.split(" ")[0]));
  const toml = `\n[s2s]\nenabled = true\ninterfaces = ["${o.address}"]\ndns = false\n${defaults.join("\n")}\n${extra}\n${o.toml ?? ""}`;
  const t = await startTestServer({ ...o, toml, s2sResolver: o.s2sResolver ?? routes });
  for (const domain of [o.domain, ...t.server.components.keys()]) routes.add(domain, o.address, t.s2sPorts[0]);
  return t;
}

/** A raw TCP peer speaking whatever a test writes; what it receives is kept as text. */
export class RawPeer {
  received = "";
  closed = false;
  private waiters: Array<() => void> = [];

  private constructor(readonly socket: net.Socket) {
    socket.setEncoding("utf8");
    socket.on("data", (d: string) => {
      this.received += d;
      this.wake();
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      this.closed = true;
      this.wake();
    });
  }

  private wake(): void {
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w();
  }

  /** `halfOpen`: the peer can still write after the server has ended its side (RFC 6120 §4.4). */
  static connect(host: string, port: number, localAddress?: string, halfOpen = false): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port, localAddress, allowHalfOpen: halfOpen }, () => resolve(new RawPeer(socket)));
      socket.once("error", reject);
    });
  }

  write(data: string): void {
    if (!this.socket.destroyed) this.socket.write(data);
  }

  /** Opens a jabber:server stream with the dialback prefix. */
  open(from: string, to: string): void {
    this.write(`<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' from='${from}' to='${to}' version='1.0'>`);
  }

  /** Waits until the received text matches (or the peer closes, or `ms` pass); returns the match. */
  async waitFor(pattern: RegExp, ms = 5000): Promise<RegExpMatchArray | null> {
    const deadline = Date.now() + ms;
    for (let i = 0; i < 1000; i++) {
      const m = pattern.exec(this.received);
      if (m) return m;
      const left = deadline - Date.now();
      if (this.closed || left <= 0) return null;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return null;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/**
 * A stand-in authoritative server (XEP-0220 §2.3) for domains the test controls: it opens a
 * jabber:server stream without TLS, offers dialback, and answers every db:verify with `answer`
 * ("silent" never answers anything, not even the stream header).
 */
export async function fakeAuthority(address: string, answer: "valid" | "invalid" | "silent"): Promise<{ port: number; close(): void }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
    if (answer === "silent") return;
    const parser = new XmlStreamParser({
      streamStart: (h) => {
        socket.write(`<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' from='${h.attrs.to}' to='${h.attrs.from}' id='fake${Date.now()}' version='1.0'>`);
        socket.write(`<stream:features><dialback xmlns='urn:xmpp:features:dialback'/></stream:features>`);
      },
      stanza: (el) => {
        if (el.getNS() === "jabber:server:dialback" && el.getName() === "verify") {
          socket.write(`<db:verify from='${el.attrs.to}' to='${el.attrs.from}' id='${el.attrs.id}' type='${answer}'/>`);
        }
      },
      streamEnd: () => socket.end(),
      error: () => socket.destroy(),
    });
    socket.on("data", (d: Buffer) => parser.write(d));
  });
  await new Promise<void>((resolve) => server.listen(0, address, resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close() {
      server.close();
      for (const s of sockets) s.destroy();
    },
  };
}

/** Writes a test CA and, for each domain, a certificate it issued (domain and *.domain). */
export function makeTestCa(dir: string, domains: string[]): { caFile: string; ca: string; files: Record<string, { certificate: string; key: string }> } {
  const run = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  run("req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=Parley Test CA",
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign");
  const files: Record<string, { certificate: string; key: string }> = {};
  for (const domain of domains) {
    writeFileSync(join(dir, `${domain}.ext`), `subjectAltName=DNS:${domain},DNS:*.${domain}\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n`);
    run("req", ...ec, "-keyout", `${domain}.key`, "-out", `${domain}.csr`, "-subj", `/CN=${domain}`);
    run("x509", "-req", "-in", `${domain}.csr`, "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", `${domain}.crt`, "-days", "2", "-extfile", `${domain}.ext`);
    files[domain] = { certificate: join(dir, `${domain}.crt`), key: join(dir, `${domain}.key`) };
  }
  return { caFile: join(dir, "ca.pem"), ca: readFileSync(join(dir, "ca.pem"), "utf8"), files };
}

/** How `remote` authenticated on the streams `t` accepted ("external", "dialback"), if it did. */
export function inboundMethods(t: TestServer, remote: string): string[] {
  const s2s = t.server.transports.find((x): x is S2sTransport => x.name === "s2s");
  return [...(s2s?.inbound ?? [])].flatMap((s) => (s.methods.has(remote) ? [s.methods.get(remote)!] : []));
}

/** How `local` authenticated on `t`'s current stream to `remote`, if it did. */
export function outboundMethod(t: TestServer, remote: string, local: string): string | undefined {
  const s2s = t.server.transports.find((x): x is S2sTransport => x.name === "s2s");
  return s2s?.links.get(remote)?.stream?.methods.get(local);
}

/** One connection a ScriptedRemote accepted. */
export interface RemoteConnection {
  readonly index: number;
  readonly socket: net.Socket;
  /** Everything received, as text. */
  received: string;
  /** Stanzas parsed (and so "processed") while the connection was still processing. */
  readonly stanzas: Element[];
  /** Set by a script to stop processing what comes next on this connection. */
  stopped: boolean;
  closed: boolean;
}

/**
 * A stand-in remote server (receiving side, no TLS) for domains a test controls: it offers
 * dialback, answers every db:result with type='valid' at once, and records the stanzas it gets.
 * `onStanza` runs after each recorded stanza and may close the connection however the test
 * wants; `onClose` runs on the peer's closing tag (default: answer with ours and end).
 */
export async function scriptedRemote(
  address: string,
  script: { onStanza?: (c: RemoteConnection, el: Element) => void; onClose?: (c: RemoteConnection) => void } = {},
): Promise<{ port: number; connections: RemoteConnection[]; processed(): Element[]; close(): void }> {
  const connections: RemoteConnection[] = [];
  const server = net.createServer((socket) => {
    const c: RemoteConnection = { index: connections.length, socket, received: "", stanzas: [], stopped: false, closed: false };
    connections.push(c);
    socket.on("error", () => {});
    socket.on("close", () => (c.closed = true));
    const parser = new XmlStreamParser({
      streamStart: (h) => {
        socket.write(`<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' from='${h.attrs.to}' to='${h.attrs.from}' id='remote${c.index}' version='1.0'>`);
        socket.write(`<stream:features><dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback></stream:features>`);
      },
      stanza: (el) => {
        if (c.stopped) return;
        if (el.getNS() === "jabber:server:dialback" && el.getName() === "result" && !el.attrs.type) {
          socket.write(`<db:result from='${el.attrs.to}' to='${el.attrs.from}' type='valid'/>`);
          return;
        }
        c.stanzas.push(el);
        script.onStanza?.(c, el);
      },
      streamEnd: () => {
        if (script.onClose) return script.onClose(c);
        socket.end("</stream:stream>");
      },
      error: () => socket.destroy(),
    });
    socket.on("data", (d: Buffer) => {
      c.received += d.toString("utf8");
      parser.write(d);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, address, resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    connections,
    processed: () => connections.flatMap((c) => c.stanzas),
    close() {
      server.close();
      for (const c of connections) c.socket.destroy();
    },
  };
}
