// Starting and stopping the daemon: storage (migrated), certificates, modules, transports
// (c2s, then the HTTP server of server/http when [http] enabled).
import { openDatabase } from "./core/storage/index.ts";
import { ensureCertificates } from "./core/tls.ts";
import { Server } from "./core/server.ts";
import { createLogger, type Logger } from "./core/log.ts";
import { C2sTransport } from "./transports/c2s.ts";
import { HttpTransport } from "./http/index.ts";
import { builtinModules } from "./modules/index.ts";
import type { Config } from "./core/config.ts";
import type { ModuleDefinition } from "./core/module.ts";

export interface StartOptions {
  log?: Logger;
  modules?: ModuleDefinition[];
}

export function databaseUrl(config: Config): string {
  return config.database.dialect === "sqlite" ? config.database.path : config.database.url;
}

export async function startServer(config: Config, opts: StartOptions = {}): Promise<Server> {
  const log = opts.log ?? createLogger(config.log.level);
  const storage = await openDatabase(databaseUrl(config));
  try {
    await storage.migrate();
    const certificates = await ensureCertificates(config);
    const server = new Server(config, storage, log);
    await server.loadModules(opts.modules ?? builtinModules);
    const c2s = new C2sTransport(server, { certificates });
    await c2s.listen();
    server.addTransport(c2s);
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
