// `parley adduser`, `passwd` and `deluser`: accounts managed from the command line, with
// passwords turned into SCRAM credentials exactly as in-band registration does
// (server/core/accounts.ts, RFC 5802 §3). The schema is brought up to date first (idempotent),
// so the first account can be made before the first start.
import { JidError, parseJid } from "../../protocol/jid.ts";
import { saslprep } from "../../protocol/sasl/index.ts";
import { createAccount, normalizeUsername, setPassword } from "../core/accounts.ts";
import type { Config } from "../core/config.ts";
import type { Storage } from "../core/storage/index.ts";
import { withStorage } from "./database.ts";
import { CliError } from "./errors.ts";

export interface Account {
  local: string;
  domain: string;
  /** As printed: local@domain. */
  text: string;
}

/** The account a command line argument names: a bare JID on one of the configured domains. */
export function accountFromArgument(arg: string, config: Config): Account {
  let jid;
  try {
    jid = parseJid(arg);
  } catch (err) {
    if (err instanceof JidError) throw new CliError(`"${arg}" is not a valid JID: ${err.message}`);
    throw err;
  }
  if (jid.local === "") throw new CliError(`"${arg}" names no user: give a JID like user@${config.domains[0]}`);
  if (jid.resource !== "") throw new CliError(`"${arg}" has a resource; give the bare JID ${jid.bare.toString()}`);
  if (!config.domains.includes(jid.domain)) {
    throw new CliError(`${jid.domain} is not a domain this server serves (domains: ${config.domains.join(", ")})`);
  }
  const local = normalizeUsername(jid.local);
  if (local === null) throw new CliError(`"${jid.local}" is not allowed as a username`);
  return { local, domain: jid.domain, text: `${local}@${jid.domain}` };
}

/** Refuses a password SCRAM could not use (RFC 5802 §2.2 SASLprep), before anything is stored. */
export function checkPassword(password: string): void {
  let prepared: string;
  try {
    prepared = saslprep(password, { allowUnassigned: true });
  } catch {
    throw new CliError("the password contains characters that are not allowed (control characters, for instance)");
  }
  if (prepared === "") throw new CliError("the password is empty");
}

async function migrated<T>(config: Config, fn: (storage: Storage) => Promise<T>): Promise<T> {
  return withStorage(config, async (storage) => {
    await storage.migrate();
    return fn(storage);
  });
}

export async function addUser(config: Config, arg: string, password: () => Promise<string>): Promise<string> {
  const account = accountFromArgument(arg, config);
  return migrated(config, async (storage) => {
    // Asked before the password, so nobody types a password for nothing.
    if (await storage.users.exists(account.domain, account.local)) throw new CliError(`${account.text} already exists`);
    const secret = await password();
    checkPassword(secret);
    const outcome = await createAccount(storage, account.domain, account.local, secret);
    if (outcome === "exists") throw new CliError(`${account.text} already exists`);
    if (outcome === "invalid-username") throw new CliError(`"${account.local}" is not allowed as a username`);
    return `created ${account.text}`;
  });
}

export async function changePassword(config: Config, arg: string, password: () => Promise<string>): Promise<string> {
  const account = accountFromArgument(arg, config);
  return migrated(config, async (storage) => {
    if (!(await storage.users.exists(account.domain, account.local))) throw new CliError(`there is no account ${account.text}`);
    const secret = await password();
    checkPassword(secret);
    if (!(await setPassword(storage, account.domain, account.local, secret))) throw new CliError(`there is no account ${account.text}`);
    return `changed the password of ${account.text}`;
  });
}

export async function deleteUser(config: Config, arg: string): Promise<string> {
  const account = accountFromArgument(arg, config);
  return migrated(config, async (storage) => {
    if (!(await storage.users.delete(account.domain, account.local))) throw new CliError(`there is no account ${account.text}`);
    return `deleted ${account.text} and everything stored for it`;
  });
}
