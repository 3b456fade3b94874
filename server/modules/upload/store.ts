// XEP-0363 HTTP File Upload 1.1.0: where uploaded files live. One directory, <data_dir>/uploads,
// holding <id> (the bytes) and <id>.json (who uploaded it, its name, size and type). The id is
// 128 random bits in base64url and is the only thing ever joined to the directory: a file name
// never becomes a path, so `../` in a name cannot escape. Writes go to <id>.part and are renamed
// into place only when the exact announced size has arrived, so a reader never sees half a file.
// Files older than the module's file_lifetime_s are deleted by a periodic cleaner.
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { createWriteStream } from "node:fs";
import { chmod, mkdir, readFile, readdir, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";

export interface FileMeta {
  id: string;
  /** Bare JID of the uploader. */
  owner: string;
  filename: string;
  size: number;
  contentType: string;
  /** Unix milliseconds. */
  created: number;
}

export const ID_PATTERN = /^[A-Za-z0-9_-]{22}$/;

export function newId(): string {
  return randomBytes(16).toString("base64url");
}

/** The HMAC key for PUT tokens: made once, kept under data_dir, readable by the daemon only. */
export async function loadSecret(dataDir: string): Promise<Buffer> {
  const path = join(dataDir, "upload.secret");
  try {
    return Buffer.from((await readFile(path, "utf8")).trim(), "hex");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  await mkdir(dataDir, { recursive: true });
  const secret = randomBytes(32);
  try {
    await writeFile(path, `${secret.toString("hex")}\n`, { mode: 0o600, flag: "wx" });
    await chmod(path, 0o600);
    return secret;
  } catch (err) {
    // Another start raced us: use what it wrote.
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return Buffer.from((await readFile(path, "utf8")).trim(), "hex");
    throw err;
  }
}

/** What a PUT token is bound to: a slot may be used for exactly this upload before `expires`. */
export interface SlotTerms {
  id: string;
  filename: string;
  size: number;
  contentType: string;
  /** Unix milliseconds. */
  expires: number;
}

export function slotToken(secret: Buffer, t: SlotTerms): string {
  const text = [t.id, t.filename, String(t.size), t.contentType, String(t.expires)].join("\n");
  return createHmac("sha256", secret).update(text).digest("base64url");
}

export function tokenMatches(secret: Buffer, t: SlotTerms, token: string): boolean {
  const expected = Buffer.from(slotToken(secret, t));
  const given = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export class SizeMismatch extends Error {}

export class UploadStore {
  readonly dir: string;
  /** Bytes stored per owner (bare JID). */
  private readonly usage = new Map<string, number>();

  constructor(dataDir: string) {
    this.dir = join(dataDir, "uploads");
  }

  async open(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    for (const name of await readdir(this.dir)) {
      if (name.endsWith(".part")) {
        await rm(join(this.dir, name), { force: true }); // an upload cut short by a restart
        continue;
      }
      if (!name.endsWith(".json")) continue;
      const meta = await this.meta(name.slice(0, -5));
      if (meta) this.usage.set(meta.owner, (this.usage.get(meta.owner) ?? 0) + meta.size);
    }
  }

  used(owner: string): number {
    return this.usage.get(owner) ?? 0;
  }

  path(id: string): string {
    if (!ID_PATTERN.test(id)) throw new Error("bad upload id");
    return join(this.dir, id);
  }

  async meta(id: string): Promise<FileMeta | null> {
    if (!ID_PATTERN.test(id)) return null;
    try {
      return JSON.parse(await readFile(`${this.path(id)}.json`, "utf8")) as FileMeta;
    } catch {
      return null;
    }
  }

  /**
   * Streams `body` to disk; it must be exactly `meta.size` bytes (more aborts the copy at the
   * first extra byte). Throws SizeMismatch when it is not; nothing is kept then.
   */
  async write(meta: FileMeta, body: Readable): Promise<void> {
    const final = this.path(meta.id);
    const part = `${final}.part`;
    let received = 0;
    const counted = async function* (source: Readable) {
      for await (const chunk of source) {
        received += (chunk as Buffer).length;
        if (received > meta.size) throw new SizeMismatch(`more than ${meta.size} bytes`);
        yield chunk as Buffer;
      }
    };
    try {
      await pipeline(body, counted, createWriteStream(part, { flags: "wx", mode: 0o600 }));
      if (received !== meta.size) throw new SizeMismatch(`${received} bytes instead of ${meta.size}`);
      await writeFile(`${final}.json.part`, JSON.stringify(meta), { mode: 0o600, flag: "wx" });
      await rename(part, final);
      await rename(`${final}.json.part`, `${final}.json`);
    } catch (err) {
      await rm(part, { force: true });
      await rm(`${final}.json.part`, { force: true });
      throw err;
    }
    this.usage.set(meta.owner, this.used(meta.owner) + meta.size);
  }

  /**
   * Deletes every file stored before `cutoff` (Unix ms): the metadata goes first, so a reader
   * racing the cleaner sees "not found" rather than half a file. Returns how many went.
   */
  async removeOlderThan(cutoff: number): Promise<number> {
    let removed = 0;
    for (const name of await readdir(this.dir)) {
      if (!name.endsWith(".json")) continue;
      const meta = await this.meta(name.slice(0, -5));
      if (!meta || meta.created >= cutoff) continue;
      const path = this.path(meta.id);
      await rm(`${path}.json`, { force: true });
      await rm(path, { force: true });
      const left = this.used(meta.owner) - meta.size;
      if (left > 0) this.usage.set(meta.owner, left);
      else this.usage.delete(meta.owner);
      removed++;
    }
    return removed;
  }
}
