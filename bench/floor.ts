// The login floor: the least a Node.js server can do for the load generator's login, to measure
// what Parley's own login path costs above Node's sockets, streams and TLS.
//
// It answers exactly the exchange bench/load/client.ts makes (STARTTLS or Direct TLS, SASL
// SCRAM-SHA-1 with Parley's own SCRAM code and a real stored key, a stream restart, resource
// binding, initial presence echoed to the resource, and the closing stream) with canned replies
// found by matching the text it receives: no XML parser, no stanza objects, no storage, no
// modules, no logging. It is not an XMPP server and must never face a real client: it trusts the
// generator to send each element in one piece. Same certificate type and TLS settings as Parley.
//
//   npm run bench:floor     (or: tsx bench/floor.ts --port 5222 --tls-port 5223, then the generator)
//
// Every account of --prefix with --password logs in; all share one salt, so the generator derives
// its SCRAM keys once (the server's work does not change: it never runs PBKDF2 at login).
import net from "node:net";
import tls from "node:tls";
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { createServerMechanism } from "../protocol/sasl/mechanisms.ts";
import { deriveScramCredentials, type ScramCredentials } from "../protocol/sasl/scram.ts";
import type { SaslServerSession } from "../protocol/sasl/types.ts";
import { generateSelfSigned, selectXmppClient, serverTlsOptions } from "../server/core/tls.ts";

const NS_STREAM = "http://etherx.jabber.org/streams";
const STARTTLS_FEATURES = "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>";
const SASL_FEATURES = "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism></mechanisms></stream:features>";
const BIND_FEATURES = "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><required/></bind></stream:features>";

export interface FloorOptions {
  host: string;
  port: number;
  tlsPort: number;
  domain: string;
  password: string;
}

export interface FloorServer {
  close(): Promise<void>;
}

/** One client connection: the stage it is at, and what it has bound. */
class FloorConnection {
  private pending = "";
  private sasl: SaslServerSession | null = null;
  private account = "";

  constructor(
    private socket: net.Socket,
    private secure: boolean,
    private authenticated: boolean,
    private readonly floor: { domain: string; credentials: ScramCredentials; tls: tls.TlsOptions },
  ) {
    this.listen(socket);
  }

  private listen(socket: net.Socket): void {
    socket.on("data", (chunk: Buffer) => this.received(chunk.toString("utf8")));
    socket.on("error", () => socket.destroy());
  }

  private received(text: string): void {
    this.pending += text;
    // Each element the generator sends arrives whole; what is left waits for the next chunk.
    for (;;) {
      const m = /^(?:<\?xml[^>]*\?>)?(<stream:stream[^>]*>|<\/stream:stream>|<(starttls|auth|response|iq|presence)\b[^>]*?(?:\/>|>[\s\S]*?<\/\2>))/.exec(this.pending);
      if (!m) return;
      this.pending = this.pending.slice(m[0].length);
      void this.element(m[1]!, m[2]);
    }
  }

  private async element(raw: string, name: string | undefined): Promise<void> {
    const socket = this.socket;
    if (raw.startsWith("<stream:stream")) {
      const features = !this.secure ? STARTTLS_FEATURES : this.authenticated ? BIND_FEATURES : SASL_FEATURES;
      socket.write(`<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='${NS_STREAM}' from='${this.floor.domain}' id='${randomBytes(12).toString("base64url")}' version='1.0' xml:lang='en'>${features}`);
      return;
    }
    if (raw === "</stream:stream>") {
      socket.end("</stream:stream>");
      return;
    }
    if (name === "starttls") {
      socket.write("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
      socket.removeAllListeners("data");
      socket.removeAllListeners("error");
      this.pending = "";
      this.socket = new tls.TLSSocket(socket, { isServer: true, ...this.floor.tls });
      this.secure = true;
      this.listen(this.socket);
      return;
    }
    if (name === "auth" || name === "response") {
      const data = Buffer.from(/>([^<]*)</.exec(raw)?.[1] ?? "", "base64");
      if (name === "auth") {
        const credentials = this.floor.credentials;
        this.sasl = createServerMechanism("SCRAM-SHA-1", {
          channelBinding: {},
          offeredPlus: false,
          getScramCredentials: async () => credentials,
          verifyPlain: async () => false,
        });
      }
      const step = await this.sasl!.step(data);
      if (step.kind === "challenge") {
        socket.write(`<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>${step.data.toString("base64")}</challenge>`);
      } else if (step.kind === "success") {
        this.account = `${step.username}@${this.floor.domain}`;
        this.authenticated = true;
        this.sasl = null;
        socket.write(`<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>${step.data?.toString("base64") ?? ""}</success>`);
      } else {
        socket.end(`<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure></stream:stream>`);
      }
      return;
    }
    if (name === "iq") {
      const id = /\bid=['"]([^'"]*)['"]/.exec(raw)?.[1] ?? "";
      const resource = /<resource>([^<]*)<\/resource>/.exec(raw)?.[1] ?? "floor";
      this.account = `${this.account}/${resource}`;
      socket.write(`<iq type='result' id='${id}'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>${this.account}</jid></bind></iq>`);
      return;
    }
    if (name === "presence") {
      // RFC 6121 §4.2.2: the initial presence goes to the user's own available resources.
      socket.write(`<presence from='${this.account}' to='${this.account}'/>`);
    }
  }
}

export async function startFloor(opts: FloorOptions): Promise<FloorServer> {
  const pair = generateSelfSigned([opts.domain]);
  const tlsOptions = serverTlsOptions({ [opts.domain]: pair }, opts.domain);
  const floor = { domain: opts.domain, credentials: deriveScramCredentials(opts.password, "SHA-1"), tls: tlsOptions };
  const plain = net.createServer((socket) => new FloorConnection(socket, false, false, floor));
  const direct = tls.createServer({ ...tlsOptions, ALPNCallback: selectXmppClient }, (socket) => new FloorConnection(socket, true, false, floor));
  await Promise.all([
    new Promise<void>((resolve, reject) => plain.once("error", reject).listen(opts.port, opts.host, resolve)),
    new Promise<void>((resolve, reject) => direct.once("error", reject).listen(opts.tlsPort, opts.host, resolve)),
  ]);
  return {
    close: async () => {
      plain.close();
      direct.close();
    },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      host: { type: "string", default: "127.0.0.1" },
      port: { type: "string", default: "5222" },
      "tls-port": { type: "string", default: "5223" },
      domain: { type: "string", default: "localhost" },
      password: { type: "string", default: "bench-pass" },
    },
  });
  if (!/^127\./.test(values.host)) throw new Error("the login floor listens on loopback only");
  await startFloor({ host: values.host, port: Number(values.port), tlsPort: Number(values["tls-port"]), domain: values.domain, password: values.password });
  console.log(`login floor on ${values.host}:${values.port} (STARTTLS) and :${values["tls-port"]} (Direct TLS), pid ${process.pid}`);
}
