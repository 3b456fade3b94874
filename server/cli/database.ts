// The database as the command line sees it (DESIGN.md "Storage"): opened from the configuration,
// with the list of migrations not yet applied, so `parley check` can report them without
// applying anything and `parley migrate` can say what it did.
import { Migrator, sql } from "kysely";
import { openDatabase, type Storage } from "../core/storage/index.ts";
import { InCodeMigrationProvider } from "../core/storage/migrations.ts";
import { databaseUrl } from "../start.ts";
import type { Config } from "../core/config.ts";
import { CliError } from "./errors.ts";

/** How long a command waits for the database before giving up (an unreachable host can hang). */
const CONNECT_TIMEOUT_MS = 15_000;

export function describeDatabase(config: Config): string {
  if (config.database.dialect === "sqlite") return `SQLite ${config.database.path}`;
  const url = new URL(config.database.url);
  if (url.password) url.password = "***";
  return `PostgreSQL ${url.toString()}`;
}

/** Runs `fn` with the storage open, and closes it whatever happens. */
export async function withStorage<T>(config: Config, fn: (storage: Storage) => Promise<T>): Promise<T> {
  const storage = await withTimeout(openDatabase(databaseUrl(config)), `cannot reach the database (${describeDatabase(config)})`);
  try {
    return await fn(storage);
  } catch (err) {
    if (err instanceof CliError) throw err;
    // Driver errors ("connect ECONNREFUSED") do not say which database they are about.
    const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : "";
    throw new CliError(`cannot use ${describeDatabase(config)}: ${(err as Error).message}${cause}`);
  } finally {
    await storage.close();
  }
}

/** Names of the migrations the database has not had yet, in the order they would run. */
export async function pendingMigrations(storage: Storage): Promise<string[]> {
  let migrationTableSchema: string | undefined;
  if (storage.dialect === "postgres") {
    const current = await withTimeout(sql<{ schema: string | null }>`select current_schema() as schema`.execute(storage.db), "the database did not answer");
    migrationTableSchema = current.rows[0]?.schema ?? undefined;
  }
  const migrator = new Migrator({ db: storage.db, provider: new InCodeMigrationProvider(storage.dialect), migrationTableSchema });
  const all = await withTimeout(migrator.getMigrations(), "the database did not answer");
  return all.filter((m) => m.executedAt === undefined).map((m) => m.name);
}

export async function withTimeout<T>(work: Promise<T>, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new CliError(`${message}: no answer within ${CONNECT_TIMEOUT_MS / 1000} s`)), CONNECT_TIMEOUT_MS);
    timer.unref();
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
