// Accounts: creating them and changing passwords. RFC 6120 §13.8 / RFC 5802 §5: only SCRAM
// credentials (salt, iterations, StoredKey, ServerKey) are kept, never the password, for both
// SCRAM-SHA-1 and SCRAM-SHA-256, so every client can log in and nobody can read a password back.
import { deriveScramCredentials } from "../../protocol/sasl/index.ts";
import { usernameCaseMapped } from "../../protocol/precis.ts";
import type { Storage, UserCredentials } from "./storage/index.ts";

export function credentialsFor(password: string, iterations?: number): UserCredentials {
  return {
    scramSha1: deriveScramCredentials(password, "SHA-1", { iterations }),
    scramSha256: deriveScramCredentials(password, "SHA-256", { iterations }),
  };
}

/** The localpart as stored (RFC 7622 §3.3 UsernameCaseMapped), or null if it is not valid. */
export function normalizeUsername(username: string): string | null {
  try {
    const local = usernameCaseMapped(username);
    if (Buffer.byteLength(local) > 1023 || /["&'/:<>@\s]/.test(local)) return null;
    return local;
  } catch {
    return null;
  }
}

export type CreateResult = "created" | "exists" | "invalid-username";

export async function createAccount(storage: Storage, host: string, username: string, password: string): Promise<CreateResult> {
  const local = normalizeUsername(username);
  if (local === null) return "invalid-username";
  return (await storage.users.create(host, local, credentialsFor(password))) ? "created" : "exists";
}

export async function setPassword(storage: Storage, host: string, username: string, password: string): Promise<boolean> {
  const local = normalizeUsername(username);
  if (local === null) return false;
  return storage.users.setCredentials(host, local, credentialsFor(password));
}
