// Accounts: RFC 6120 §6 (SASL) with SCRAM-SHA-1 and SCRAM-SHA-256 (RFC 5802, RFC 7677).
// Only the SCRAM verifiers are stored (salt, iteration count, StoredKey, ServerKey), never a
// password: a database leak then does not hand out passwords, and the server can still
// authenticate a client.
import type { Kysely, Transaction } from "kysely";
import type { Schema, UsersTable } from "./schema.ts";
import { compiledRead } from "./compiled.ts";
import { changed, fromFlag, toBuffer, toFlag, type Clock } from "./values.ts";

export interface ScramCredential {
  salt: Uint8Array;
  iterations: number;
  storedKey: Uint8Array;
  serverKey: Uint8Array;
}

/** At least one mechanism must be present; a missing one is null (e.g. an account imported with SHA-1 only). */
export interface UserCredentials {
  scramSha1: ScramCredential | null;
  scramSha256: ScramCredential | null;
}

/** What comes back out: the binary fields are Buffers. */
export interface StoredScramCredential extends ScramCredential {
  salt: Buffer;
  storedKey: Buffer;
  serverKey: Buffer;
}

export interface UserRecord {
  host: string;
  username: string;
  credentials: { scramSha1: StoredScramCredential | null; scramSha256: StoredScramCredential | null };
  createdAt: number;
  disabled: boolean;
}

type CredentialColumns = Pick<
  UsersTable,
  | "scram_sha1_salt"
  | "scram_sha1_iterations"
  | "scram_sha1_stored_key"
  | "scram_sha1_server_key"
  | "scram_sha256_salt"
  | "scram_sha256_iterations"
  | "scram_sha256_stored_key"
  | "scram_sha256_server_key"
>;

function checkCredential(mechanism: string, credential: ScramCredential | null): void {
  if (credential === null) return;
  if (!Number.isSafeInteger(credential.iterations) || credential.iterations < 1) {
    throw new RangeError(`${mechanism}: iterations must be a positive integer`);
  }
  for (const field of ["salt", "storedKey", "serverKey"] as const) {
    if (!(credential[field] instanceof Uint8Array)) throw new TypeError(`${mechanism}: ${field} must be bytes`);
  }
}

function credentialColumns(credentials: UserCredentials): CredentialColumns {
  checkCredential("SCRAM-SHA-1", credentials.scramSha1);
  checkCredential("SCRAM-SHA-256", credentials.scramSha256);
  if (credentials.scramSha1 === null && credentials.scramSha256 === null) {
    throw new TypeError("an account needs credentials for at least one SCRAM mechanism");
  }
  const sha1 = credentials.scramSha1;
  const sha256 = credentials.scramSha256;
  return {
    scram_sha1_salt: sha1 && toBuffer(sha1.salt),
    scram_sha1_iterations: sha1 && sha1.iterations,
    scram_sha1_stored_key: sha1 && toBuffer(sha1.storedKey),
    scram_sha1_server_key: sha1 && toBuffer(sha1.serverKey),
    scram_sha256_salt: sha256 && toBuffer(sha256.salt),
    scram_sha256_iterations: sha256 && sha256.iterations,
    scram_sha256_stored_key: sha256 && toBuffer(sha256.storedKey),
    scram_sha256_server_key: sha256 && toBuffer(sha256.serverKey),
  };
}

function storedCredential(
  salt: Buffer | null,
  iterations: number | null,
  storedKey: Buffer | null,
  serverKey: Buffer | null,
): StoredScramCredential | null {
  if (salt === null || iterations === null || storedKey === null || serverKey === null) return null;
  return { salt, iterations, storedKey, serverKey };
}

export class UserStore {
  readonly #db: Kysely<Schema>;
  readonly #now: Clock;
  // Every login reads the row (SASL) and checks it is still there (resource binding).
  readonly #row;
  readonly #exists;

  constructor(db: Kysely<Schema>, now: Clock) {
    this.#db = db;
    this.#now = now;
    this.#row = compiledRead(db, (host: string, username: string) =>
      db.selectFrom("users").selectAll().where("host", "=", host).where("username", "=", username));
    this.#exists = compiledRead(db, (host: string, username: string) =>
      db.selectFrom("users").select("username").where("host", "=", host).where("username", "=", username));
  }

  /** Creates the account; false if it already exists (the existing one is left untouched). */
  async create(host: string, username: string, credentials: UserCredentials): Promise<boolean> {
    // Insert-or-ignore, so that two registrations racing for one name cannot both succeed.
    const result = await this.#db
      .insertInto("users")
      .values({ host, username, ...credentialColumns(credentials), created_at: this.#now(), disabled: 0 })
      .onConflict((oc) => oc.columns(["host", "username"]).doNothing())
      .executeTakeFirst();
    return changed(result.numInsertedOrUpdatedRows);
  }

  async get(host: string, username: string): Promise<UserRecord | null> {
    const [row] = await this.#row(host, username);
    if (!row) return null;
    return {
      host: row.host,
      username: row.username,
      credentials: {
        scramSha1: storedCredential(
          row.scram_sha1_salt,
          row.scram_sha1_iterations,
          row.scram_sha1_stored_key,
          row.scram_sha1_server_key,
        ),
        scramSha256: storedCredential(
          row.scram_sha256_salt,
          row.scram_sha256_iterations,
          row.scram_sha256_stored_key,
          row.scram_sha256_server_key,
        ),
      },
      createdAt: row.created_at,
      disabled: fromFlag(row.disabled),
    };
  }

  async exists(host: string, username: string): Promise<boolean> {
    return (await this.#exists(host, username)).length > 0;
  }

  /** Replaces both mechanisms' credentials (a password change); false if there is no such account. */
  async setCredentials(host: string, username: string, credentials: UserCredentials): Promise<boolean> {
    const result = await this.#db
      .updateTable("users")
      .set(credentialColumns(credentials))
      .where("host", "=", host)
      .where("username", "=", username)
      .executeTakeFirst();
    return changed(result.numUpdatedRows);
  }

  /** A disabled account keeps its data but may not log in; false if there is no such account. */
  async setDisabled(host: string, username: string, disabled: boolean): Promise<boolean> {
    const result = await this.#db
      .updateTable("users")
      .set({ disabled: toFlag(disabled) })
      .where("host", "=", host)
      .where("username", "=", username)
      .executeTakeFirst();
    return changed(result.numUpdatedRows);
  }

  /**
   * Deletes the account and, in the same transaction, everything stored for it here: roster,
   * roster version, vCard, last activity, every module's key-value rows, its message archive
   * and its offline messages. Other users' roster
   * items that point at this account are theirs and stay (the roster module unsubscribes them).
   * Returns whether the account existed; leftover data of a missing account is removed all the same.
   */
  async delete(host: string, username: string): Promise<boolean> {
    return this.#db.transaction().execute(async (trx) => {
      const result = await trx
        .deleteFrom("users")
        .where("host", "=", host)
        .where("username", "=", username)
        .executeTakeFirst();
      await deleteUserData(trx, host, username);
      return changed(result.numDeletedRows);
    });
  }

  async count(host: string): Promise<number> {
    const row = await this.#db
      .selectFrom("users")
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .where("host", "=", host)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }
}

async function deleteUserData(trx: Transaction<Schema>, host: string, username: string): Promise<void> {
  for (const table of ["roster_items", "roster_versions", "vcards", "last_activity", "kv", "archive", "offline"] as const) {
    await trx.deleteFrom(table).where("host", "=", host).where("username", "=", username).execute();
  }
}
