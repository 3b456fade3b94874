// Starting and stopping the daemon: storage (migrated), certificates, modules, transports
// (c2s, s2s when [s2s] enabled, then the HTTP server of server/http when [http] enabled).
import { openDatabase } from "./core/storage/index.ts";
import { storageBatchFailures, storageBatchOperations } from "./core/metrics.ts";
import { ensureCertificates } from "./core/tls.ts";
import { Server } from "./core/server.ts";
import { createLogger, type Logger } from "./core/log.ts";
import { C2sTransport } from "./transports/c2s.ts";
import { HttpTransport } from "./http/index.ts";
import { S2sTransport, type S2sResolver } from "./transports/s2s/index.ts";
import { builtinModules } from "./modules/index.ts";
import type { Config } from "./core/config.ts";
import type { ModuleDefinition } from "./core/module.ts";

export interface StartOptions {
  log?: Logger;
  modules?: ModuleDefinition[];
  /** How s2s finds remote domains (default: [s2s.routes], then DNS when s2s.dns is on). */
  s2sResolver?: S2sResolver;
}

export function databaseUrl(config: Config): string {
  return config.database.dialect === "sqlite" ? config.database.path : config.database.url;
}

export async function startServer(config: Config, opts: StartOptions = {}): Promise<Server> {
  const log = opts.log ?? createLogger(config.log.level);
  const storage = await openDatabase(databaseUrl(config), {
    writer: {
      onBatch: ({ operations, error }) => {
        storageBatchOperations.observe(operations);
        if (error !== undefined) storageBatchFailures.inc();
      },
    },
  });
  try {
    await storage.migrate();
    const certificates = await ensureCertificates(config);
    const server = new Server(config, storage, log);
    await server.loadModules(opts.modules ?? builtinModules);
    const c2s = new C2sTransport(server, { certificates });
    // Made before anything listens: an unreadable s2s.ca_file is a ConfigError, not a half-started server.
    const s2s = config.s2s.enabled ? new S2sTransport(server, { certificates, resolver: opts.s2sResolver }) : null;
    await c2s.listen();
    server.addTransport(c2s);
    if (s2s) {
      server.addTransport(s2s);
      await s2s.listen();
    }
    if (config.http.enabled) {
      const web = new HttpTransport(server, { certificates });
      // Added before listening, so that server.stop() closes whatever did start.
      server.addTransport(web);
      await web.listen();
    }
    return server;
  } catch (err) {
    await storage.close();
    throw err;
  }
}
