// Starting and stopping the daemon: storage (migrated), certificates, modules, transports.
import { openDatabase } from "./core/storage/index.ts";
import { ensureCertificates } from "./core/tls.ts";
import { Server } from "./core/server.ts";
import { createLogger, type Logger } from "./core/log.ts";
import { C2sTransport } from "./transports/c2s.ts";
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
    return server;
  } catch (err) {
    await storage.close();
    throw err;
  }
}
