// Test harness for DESIGN.md "Storage": every test that touches storage runs against both
// SQLite and PostgreSQL. forEachDatabase registers the same tests once per dialect, each against
// its own throw-away database: a temp file under os.tmpdir(), or a fresh schema
// `parley_test_<random>` in the PostgreSQL database `test`, both removed after the block.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe } from "node:test";
import pg from "pg";
import { openDatabase } from "../../../../server/core/storage/database.ts";
import type { OpenOptions, Storage } from "../../../../server/core/storage/database.ts";
import type { Dialect } from "../../../../server/core/storage/schema.ts";

/** Override with PARLEY_TEST_POSTGRES_URL; the database must exist (schemas are made per test block). */
export const POSTGRES_TEST_URL = process.env.PARLEY_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";

export const DIALECTS: readonly Dialect[] = ["sqlite", "postgres"];

/** What openDatabase needs to reach one test database. */
export interface TestLocation {
  url: string;
  schema?: string;
}

export interface TestDatabase {
  readonly dialect: Dialect;
  /** A migrated database shared by the tests of the block: give each test its own host or users. */
  readonly storage: Storage;
  /** Names a new, empty database (nothing exists until it is opened); removed after the block. */
  createEmpty(): TestLocation;
  /** Opens a Storage without migrating it; closed after the block. */
  open(location: TestLocation, opts?: OpenOptions): Promise<Storage>;
  /** A new, migrated database of its own, for tests that need an empty one or options such as a clock. */
  fresh(opts?: OpenOptions): Promise<Storage>;
}

/** A unique name for a host, user or key, so tests sharing a database never see each other's rows. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(5).toString("hex")}`;
}

export function forEachDatabase(name: string, body: (db: TestDatabase) => void): void {
  for (const dialect of DIALECTS) {
    describe(`${name} [${dialect}]`, () => {
      const harness = new Harness(dialect);
      before(() => harness.start());
      after(() => harness.stop());
      body(harness);
    });
  }
}

class Harness implements TestDatabase {
  readonly dialect: Dialect;
  #shared: Storage | undefined;
  readonly #opened: Storage[] = [];
  readonly #tempDirs: string[] = [];
  readonly #schemas: string[] = [];

  constructor(dialect: Dialect) {
    this.dialect = dialect;
  }

  get storage(): Storage {
    if (!this.#shared) throw new Error("the shared test database exists only while the block's tests run");
    return this.#shared;
  }

  createEmpty(): TestLocation {
    if (this.dialect === "sqlite") {
      const dir = mkdtempSync(join(tmpdir(), "parley-test-"));
      this.#tempDirs.push(dir);
      return { url: join(dir, "parley.sqlite") };
    }
    const schema = `parley_test_${randomBytes(6).toString("hex")}`;
    this.#schemas.push(schema);
    return { url: POSTGRES_TEST_URL, schema };
  }

  async open(location: TestLocation, opts: OpenOptions = {}): Promise<Storage> {
    const options = location.schema === undefined ? opts : { ...opts, schema: location.schema };
    let storage: Storage;
    try {
      storage = await openDatabase(location.url, options);
    } catch (error) {
      throw this.#explain(error);
    }
    this.#opened.push(storage);
    return storage;
  }

  async fresh(opts: OpenOptions = {}): Promise<Storage> {
    const storage = await this.open(this.createEmpty(), opts);
    try {
      await storage.migrate();
    } catch (error) {
      throw this.#explain(error);
    }
    return storage;
  }

  async start(): Promise<void> {
    this.#shared = await this.fresh();
  }

  async stop(): Promise<void> {
    this.#shared = undefined;
    await Promise.allSettled(this.#opened.map((s) => s.close()));
    for (const dir of this.#tempDirs) rmSync(dir, { recursive: true, force: true });
    if (this.#schemas.length > 0) await dropSchemas(this.#schemas);
  }

  #explain(error: unknown): unknown {
    const code = (error as { code?: unknown } | null)?.code;
    if (this.dialect === "postgres" && (code === "ECONNREFUSED" || code === "ENOENT")) {
      return new Error(
        `PostgreSQL is not reachable at ${POSTGRES_TEST_URL}; start it with ` +
          "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`",
        { cause: error },
      );
    }
    return error;
  }
}

async function dropSchemas(schemas: string[]): Promise<void> {
  const client = new pg.Client({ connectionString: POSTGRES_TEST_URL });
  await client.connect();
  try {
    for (const schema of schemas) {
      // The names come from createEmpty (hex only), so quoting is enough to make them safe.
      await client.query(`drop schema if exists "${schema}" cascade`);
    }
  } finally {
    await client.end();
  }
}
