// End-to-end test support: a real Parley on 127.0.0.1 with OS-chosen ports, its own SQLite file
// (or a PostgreSQL schema), a generated certificate, and accounts made for the test.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig, type Config } from "../../server/core/config.ts";
import { startServer } from "../../server/start.ts";
import { createAccount } from "../../server/core/accounts.ts";
import { silentLogger, createLogger } from "../../server/core/log.ts";
import type { Server } from "../../server/core/server.ts";
import type { HttpTransport } from "../../server/http/index.ts";
import type { ModuleDefinition } from "../../server/core/module.ts";
import type { S2sResolver } from "../../server/transports/s2s/index.ts";
import { XmppClient, type ConnectOptions } from "../../conformance/client/client.ts";

export interface TestServer {
  server: Server;
  config: Config;
  domain: string;
  host: string;
  port: number;
  directTlsPort: number;
  /** The HTTP server's plain and HTTPS ports on 127.0.0.1 (0 when [http] is disabled or has no TLS). */
  httpPort: number;
  httpsPort: number;
  /** The s2s listener's ports (STARTTLS, then Direct TLS if enabled); [] when [s2s] is disabled. */
  s2sPorts: number[];
  /** The server's certificate, to trust in clients. */
  ca: string;
  /** A connected (STARTTLS unless told otherwise) client, not yet logged in. */
  connect(opts?: Partial<ConnectOptions>): Promise<XmppClient>;
  /** A client logged in and bound as `user` (password "pass-<user>" unless given). */
  login(user: string, opts?: { resource?: string; password?: string; mechanism?: string; directTls?: boolean }): Promise<XmppClient>;
  stop(): Promise<void>;
}

export interface TestServerOptions {
  /** TOML appended to the generated configuration. */
  toml?: string;
  /** Accounts to create: names, passwords "pass-<name>". */
  users?: string[];
  modules?: ModuleDefinition[];
  /** Adjust the parsed configuration (ports are set to 0 afterwards). */
  adjust?: (config: Config) => Config;
  /** The CA clients trust, when [tls] names certificates issued by it (default: the self-signed one). */
  ca?: string;
  /** The served domain (default "localhost"). */
  domain?: string;
  /** A fixed s2s port (interop: other servers find us on 5269 by the RFC 6120 fallback); default OS-chosen. */
  s2sPort?: number;
  /** Resolver for s2s (tests fill it with the other servers' ports once they are known). */
  s2sResolver?: S2sResolver;
}

export async function startTestServer(opts: TestServerOptions = {}): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), "parley-spec-"));
  const domain = opts.domain ?? "localhost";
  const parsed = parseConfig(`domains = ["${domain}"]\ndata_dir = "${dir}"\n[limits]\nauth_failure_delay_ms = 0\n${opts.toml ?? ""}`, dir);
  let config: Config = { ...parsed, c2s: { ...parsed.c2s, port: 0, directTlsPort: 0 } };
  if (opts.adjust) config = opts.adjust(config);
  config = { ...config, c2s: { ...config.c2s, port: 0, directTlsPort: 0 }, http: { ...config.http, port: 0, tlsPort: config.http.tlsPort === null ? null : 0 } };
  if (config.s2s.enabled) config = { ...config, s2s: { ...config.s2s, port: opts.s2sPort ?? 0, directTlsPort: config.s2s.directTlsPort === null ? null : 0 } };
  const log = process.env.PARLEY_SPEC_LOG ? createLogger("debug") : silentLogger();
  const server = await startServer(config, { log, modules: opts.modules, s2sResolver: opts.s2sResolver });
  for (const u of opts.users ?? []) await createAccount(server.storage, domain, u, `pass-${u}`);
  const [port, directTlsPort] = server.transports.find((t) => t.name === "c2s")!.ports;
  const http = server.transports.find((t): t is HttpTransport => t.name === "http");
  const ca = opts.ca ?? readFileSync(join(dir, "certs", `${domain}.crt`), "utf8");
  const clients: XmppClient[] = [];
  const t: TestServer = {
    server,
    config,
    domain,
    host: "127.0.0.1",
    port,
    directTlsPort,
    httpPort: http?.plainPorts[0] ?? 0,
    httpsPort: http?.tlsPorts[0] ?? 0,
    s2sPorts: server.transports.find((t) => t.name === "s2s")?.ports ?? [],
    ca,
    async connect(o = {}) {
      const c = await XmppClient.connect({ host: "127.0.0.1", port: o.directTls ? directTlsPort : port, domain, ca, ...o });
      clients.push(c);
      return c;
    },
    async login(user, o = {}) {
      const c = await t.connect({ directTls: o.directTls });
      await c.login({ username: user, password: o.password ?? `pass-${user}`, resource: o.resource, mechanism: o.mechanism });
      return c;
    },
    async stop() {
      await server.stop();
      for (const c of clients) c.destroy();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return t;
}
