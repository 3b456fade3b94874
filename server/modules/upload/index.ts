// XEP-0363: HTTP File Upload 1.1.0 at upload.<host>, an internal component listed in the
// server's disco#items (§2). A local account asks for a slot (§4: filename, size, content-type)
// and gets a PUT URL and a GET URL on Parley's HTTP server (server/http); the PUT URL carries an
// HMAC token bound to the slot's id, name, size, type and expiry, so it cannot be stretched to
// another upload, and the slot is used once. The GET URL's random segment is the only key to the
// file, and files are served so that uploaded HTML or SVG can never run script on our origin
// (attachment unless a known-inert media type, nosniff, a sandboxing Content-Security-Policy).
// Range (RFC 9110 §14), ETag / If-None-Match (§13.1.2) and a year of immutable caching let a CDN
// or reverse proxy (`[http] public_url`) sit in front.
// Settings: [modules.upload] max_file_size = 104857600, quota_per_user = 1073741824,
// slot_lifetime_s = 300, file_lifetime_s = 0 (files kept for ever; when set, a file that old is
// no longer served, caches are told to keep it no longer, and a cleaner deletes it, running every
// cleanup_interval_s = 3600).
import { createReadStream } from "node:fs";
import { pipeline } from "node:stream/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { StanzaError, errorReply } from "../../../protocol/errors.ts";
import { NS } from "../../../protocol/ns.ts";
import { Element, xml } from "../../../protocol/xml/element.ts";
import { buildForm } from "../../../protocol/forms.ts";
import { SettingsReader } from "../../core/config.ts";
import { defineModule, type ModuleApi } from "../../core/module.ts";
import type { IqEvent, StanzaEvent } from "../../core/router.ts";
import { ITEMS_EVENT, type DiscoItemsEvent } from "../disco/index.ts";
import { HTTP_ROUTES_EVENT, sendText, type HttpRequestContext, type HttpRoutesEvent } from "../../http/index.ts";
import { ID_PATTERN, SizeMismatch, UploadStore, loadSecret, newId, slotToken, tokenMatches, type FileMeta, type SlotTerms } from "./store.ts";

export const UPLOAD_PATH = "/upload";

const DEFAULT_TYPE = "application/octet-stream";

/** Types a browser shows without running anything; everything else is served as an attachment. */
const INLINE_TYPES = new Set([
  "image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/bmp",
  "audio/mpeg", "audio/ogg", "audio/mp4", "audio/aac", "audio/webm", "audio/flac", "audio/wav",
  "video/mp4", "video/webm", "video/ogg", "video/quicktime",
  "text/plain",
]);

/** RFC 9110 §8.3.1 media type, with optional parameters; anything else cannot go in a header. */
const MEDIA_TYPE = /^[A-Za-z0-9!#$&^_.+-]{1,64}\/[A-Za-z0-9!#$&^_.+-]{1,64}(\s*;\s*[A-Za-z0-9!#$&^_.+-]+=("[^"\\\r\n]*"|[A-Za-z0-9!#$&^_.+-]+))*$/;

const CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'; sandbox";

function essence(contentType: string): string {
  return contentType.split(";")[0].trim().toLowerCase();
}

/** Media types compare case-insensitively and without blanks around parameters. */
function sameType(a: string, b: string): boolean {
  const norm = (t: string) => t.split(";").map((p) => p.trim().toLowerCase()).join(";");
  return norm(a) === norm(b);
}

/** A name as a client shows it: one path segment, no control characters. */
function validFilename(name: string): boolean {
  return name.length > 0 && Buffer.byteLength(name) <= 255 && name !== "." && name !== ".." && !/[/\\\u0000-\u001f\u007f]/.test(name);
}

/** RFC 8187 ext-value for Content-Disposition's filename*. */
function dispositionFilename(name: string): string {
  return `UTF-8''${encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)}`;
}

interface PendingSlot extends SlotTerms {
  owner: string;
  busy: boolean;
}

interface Settings {
  maxFileSize: number;
  quotaPerUser: number;
  slotLifetimeMs: number;
  /** 0: files are kept for ever. */
  fileLifetimeMs: number;
}

class UploadService {
  private readonly pending = new Map<string, PendingSlot>();
  http: HttpRoutesEvent | null = null;

  constructor(
    private readonly m: ModuleApi,
    private readonly store: UploadStore,
    private readonly secret: Buffer,
    private readonly settings: Settings,
  ) {}

  /** Bytes an account holds and has reserved with slots not yet used. */
  private committed(owner: string): number {
    let reserved = 0;
    for (const slot of this.pending.values()) if (slot.owner === owner) reserved += slot.size;
    return this.store.used(owner) + reserved;
  }

  /** A stored file past file_lifetime_s is gone, even before the cleaner has deleted it. */
  private expired(created: number, now = Date.now()): boolean {
    return this.settings.fileLifetimeMs > 0 && created + this.settings.fileLifetimeMs <= now;
  }

  /** Caches may keep a file a year, or until it expires here. */
  private maxAge(created: number): number {
    const year = 31_536_000;
    if (this.settings.fileLifetimeMs === 0) return year;
    return Math.max(0, Math.min(year, Math.floor((created + this.settings.fileLifetimeMs - Date.now()) / 1000)));
  }

  /** Deletes stored files past their lifetime. */
  async removeExpiredFiles(now = Date.now()): Promise<number> {
    if (this.settings.fileLifetimeMs === 0) return 0;
    return this.store.removeOlderThan(now - this.settings.fileLifetimeMs);
  }

  dropExpired(now = Date.now()): void {
    for (const [id, slot] of this.pending) if (slot.expires <= now && !slot.busy) this.pending.delete(id);
  }

  // ---- XMPP ------------------------------------------------------------------------------

  async handle(host: string, ev: StanzaEvent): Promise<void> {
    const type = ev.stanza.attrs.type;
    if (ev.kind !== "iq") {
      if (ev.kind === "message" && type !== "error" && type !== "groupchat" && type !== "headline") await this.fail(ev, new StanzaError("service-unavailable"));
      return;
    }
    if (type === "result" || type === "error") return;
    const iq = ev as IqEvent;
    if (ev.to.local !== "" || ev.to.resource !== "") return this.fail(ev, new StanzaError("service-unavailable"));
    const key = `${type} ${iq.payload.getNS()} ${iq.payload.getName()}`;
    let payload: Element;
    try {
      if (key === `get ${NS.discoInfo} query`) payload = this.discoInfo(iq);
      else if (key === `get ${NS.discoItems} query`) payload = xml("query", { xmlns: NS.discoItems, node: iq.payload.attrs.node });
      else if (key === `get ${NS.upload} request`) payload = this.slot(host, iq);
      else throw new StanzaError("service-unavailable");
    } catch (err) {
      if (err instanceof StanzaError) return this.fail(ev, err);
      throw err;
    }
    await this.m.send(xml("iq", { type: "result", id: ev.stanza.attrs.id, from: ev.stanza.attrs.to, to: ev.stanza.attrs.from }, payload));
  }

  private fail(ev: StanzaEvent, err: StanzaError): Promise<void> {
    const reply = errorReply(ev.stanza, err);
    return reply ? this.m.send(reply) : Promise.resolve();
  }

  private discoInfo(iq: IqEvent): Element {
    if (iq.payload.attrs.node !== undefined) throw new StanzaError("item-not-found");
    return xml(
      "query",
      { xmlns: NS.discoInfo },
      xml("identity", { category: "store", type: "file", name: "HTTP File Upload" }),
      xml("feature", { var: NS.discoInfo }),
      xml("feature", { var: NS.upload }),
      // §3: the limit as a XEP-0128 extension, so a client can refuse a big file before asking.
      buildForm({
        type: "result",
        fields: [
          { var: "FORM_TYPE", type: "hidden", values: [NS.upload] },
          { var: "max-file-size", values: [String(this.settings.maxFileSize)] },
        ],
      }),
    );
  }

  /** §4 (slot request) and §4.1-§4.3 (its errors). */
  private slot(host: string, iq: IqEvent): Element {
    // Only the host's own accounts, connected here: the files are stored on their behalf.
    if (!iq.origin || iq.from.domain !== host) throw new StanzaError("forbidden", `only accounts of ${host} may upload here`);
    const { filename, size: sizeText, "content-type": requestedType } = iq.payload.attrs;
    if (typeof filename !== "string" || !validFilename(filename)) throw new StanzaError("bad-request", "the filename must be a single file name");
    if (typeof sizeText !== "string" || !/^\d{1,16}$/.test(sizeText)) throw new StanzaError("bad-request", "the size must be a number of bytes");
    const size = Number(sizeText);
    const contentType = requestedType === undefined || requestedType === "" ? DEFAULT_TYPE : requestedType;
    if (!MEDIA_TYPE.test(contentType)) throw new StanzaError("bad-request", "the content-type is not a media type");
    if (size > this.settings.maxFileSize) {
      throw new StanzaError("not-acceptable", {
        text: `the file is larger than ${this.settings.maxFileSize} bytes`,
        appSpecific: xml("file-too-large", { xmlns: NS.upload }, xml("max-size", {}, String(this.settings.maxFileSize))),
      });
    }
    const owner = iq.from.bare.toString();
    this.dropExpired();
    const used = this.committed(owner);
    if (used + size > this.settings.quotaPerUser) {
      throw new StanzaError("resource-constraint", `upload quota exceeded: ${used} of ${this.settings.quotaPerUser} bytes in use`);
    }
    if (!this.http) throw new StanzaError("service-unavailable", "the HTTP server is not running");
    const slot: PendingSlot = { id: newId(), filename, size, contentType, expires: Date.now() + this.settings.slotLifetimeMs, owner, busy: false };
    this.pending.set(slot.id, slot);
    const getUrl = `${this.http.baseUrl(host)}${UPLOAD_PATH}/${slot.id}/${encodeURIComponent(filename)}`;
    const putUrl = `${getUrl}?e=${slot.expires}&t=${slotToken(this.secret, slot)}`;
    return xml("slot", { xmlns: NS.upload }, xml("put", { url: putUrl }), xml("get", { url: getUrl }));
  }

  // ---- HTTP ------------------------------------------------------------------------------

  async serve(req: IncomingMessage, res: ServerResponse, ctx: HttpRequestContext): Promise<void> {
    const cors = { "Access-Control-Allow-Origin": "*" };
    const match = /^\/([^/]+)\/([^/]+)$/.exec(ctx.path);
    const id = match?.[1] ?? "";
    const name = match?.[2] ?? "";
    if (req.method === "OPTIONS") {
      res.writeHead(204, {
        ...cors,
        "Access-Control-Allow-Methods": "GET, HEAD, PUT, OPTIONS",
        "Access-Control-Allow-Headers": "Content-Type",
        "Access-Control-Max-Age": "86400",
      });
      return void res.end();
    }
    if (!match || !ID_PATTERN.test(id)) return sendText(res, 404, "not found\n", cors);
    if (req.method === "PUT") return this.put(req, res, ctx, id, name);
    if (req.method === "GET" || req.method === "HEAD") return this.get(req, res, id, name);
    sendText(res, 405, "method not allowed\n", { ...cors, Allow: "GET, HEAD, PUT, OPTIONS" });
  }

  /** §5: the upload, accepted only exactly as the slot described it. */
  private async put(req: IncomingMessage, res: ServerResponse, ctx: HttpRequestContext, id: string, name: string): Promise<void> {
    const cors = { "Access-Control-Allow-Origin": "*", Connection: "close" };
    const slot = this.pending.get(id);
    const expires = Number(ctx.url.searchParams.get("e"));
    const token = ctx.url.searchParams.get("t") ?? "";
    if (!slot || name !== encodeURIComponent(slot.filename) || expires !== slot.expires || !tokenMatches(this.secret, slot, token)) {
      return sendText(res, 403, "no such upload slot, or it was used already\n", cors);
    }
    if (slot.expires <= Date.now()) {
      if (!slot.busy) this.pending.delete(id);
      return sendText(res, 403, "the upload slot has expired\n", cors);
    }
    if (slot.busy) return sendText(res, 409, "this slot is being uploaded to\n", cors);
    if (req.headers["content-length"] === undefined || Number(req.headers["content-length"]) !== slot.size) {
      return sendText(res, 400, `the slot is for exactly ${slot.size} bytes\n`, cors);
    }
    if (!sameType(req.headers["content-type"] ?? DEFAULT_TYPE, slot.contentType)) {
      return sendText(res, 400, `the slot is for content of type ${slot.contentType}\n`, cors);
    }
    slot.busy = true;
    const meta: FileMeta = { id, owner: slot.owner, filename: slot.filename, size: slot.size, contentType: slot.contentType, created: Date.now() };
    try {
      await this.store.write(meta, req);
    } catch (err) {
      slot.busy = false;
      if (err instanceof SizeMismatch) return sendText(res, 400, `the slot is for exactly ${slot.size} bytes\n`, cors);
      if (req.destroyed || res.destroyed) return;
      throw err;
    }
    this.pending.delete(id);
    sendText(res, 201, "created\n", { "Access-Control-Allow-Origin": "*" });
  }

  private async get(req: IncomingMessage, res: ServerResponse, id: string, name: string): Promise<void> {
    const meta = await this.store.meta(id);
    if (!meta || name !== encodeURIComponent(meta.filename) || this.expired(meta.created)) {
      return sendText(res, 404, "not found\n", { "Access-Control-Allow-Origin": "*" });
    }
    const etag = `"${meta.id}"`;
    const inline = INLINE_TYPES.has(essence(meta.contentType));
    const headers: Record<string, string | number> = {
      "Access-Control-Allow-Origin": "*",
      "Access-Control-Expose-Headers": "Content-Length, Content-Range, ETag",
      "Cache-Control": `public, max-age=${this.maxAge(meta.created)}, immutable`,
      ETag: etag,
      "Last-Modified": new Date(meta.created).toUTCString(),
      "Accept-Ranges": "bytes",
      "Content-Type": meta.contentType,
      "Content-Disposition": `${inline ? "inline" : "attachment"}; filename*=${dispositionFilename(meta.filename)}`,
      "X-Content-Type-Options": "nosniff",
      "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    };
    if (ifNoneMatch(req.headers["if-none-match"], etag)) {
      res.writeHead(304, headers);
      return void res.end();
    }
    let range: { start: number; end: number } | "unsatisfiable" | null = null;
    const ifRange = req.headers["if-range"];
    if (req.headers.range && (ifRange === undefined || ifRange === etag)) range = parseRange(req.headers.range, meta.size);
    if (range === "unsatisfiable") {
      return sendText(res, 416, "range not satisfiable\n", { "Access-Control-Allow-Origin": "*", "Content-Range": `bytes */${meta.size}` });
    }
    const start = range?.start ?? 0;
    const end = range?.end ?? meta.size - 1;
    if (range) headers["Content-Range"] = `bytes ${start}-${end}/${meta.size}`;
    headers["Content-Length"] = meta.size === 0 ? 0 : end - start + 1;
    res.writeHead(range ? 206 : 200, headers);
    if (req.method === "HEAD" || meta.size === 0) return void res.end();
    try {
      await pipeline(createReadStream(this.store.path(id), { start, end }), res);
    } catch {
      res.destroy(); // the client went away, or the file did
    }
  }
}

/** RFC 9110 §13.1.2: weak comparison, a list or "*". */
function ifNoneMatch(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  return header.split(",").some((tag) => {
    const t = tag.trim().replace(/^W\//, "");
    return t === "*" || t === etag;
  });
}

/**
 * RFC 9110 §14.1.2, one range only: a multi-range or malformed header is ignored (the whole
 * file is sent, as §14.2 allows); a range starting past the end is unsatisfiable.
 */
function parseRange(header: string, size: number): { start: number; end: number } | "unsatisfiable" | null {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === "" && m[2] === "")) return null;
  if (size === 0) return null;
  if (m[1] === "") {
    const suffix = Number(m[2]);
    if (suffix === 0) return "unsatisfiable";
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (m[2] !== "" && Number(m[2]) < start) return null;
  if (start >= size) return "unsatisfiable";
  return { start, end };
}

export default defineModule({
  name: "upload",
  xeps: [{ xep: 363, version: "1.1.0", status: "complete", note: "local storage under data_dir/uploads; files expire after file_lifetime_s when set" }],
  depends: ["disco"],
  async setup(m) {
    const reader = new SettingsReader(m.config, `modules.${m.name}`);
    const settings: Settings = {
      maxFileSize: reader.integer("max_file_size", 0, Number.MAX_SAFE_INTEGER, 104_857_600),
      quotaPerUser: reader.integer("quota_per_user", 0, Number.MAX_SAFE_INTEGER, 1_073_741_824),
      slotLifetimeMs: reader.integer("slot_lifetime_s", 1, 86_400, 300) * 1000,
      fileLifetimeMs: reader.integer("file_lifetime_s", 0, 100 * 365 * 86_400, 0) * 1000,
    };
    const cleanupIntervalMs = reader.integer("cleanup_interval_s", 1, 86_400, 3600) * 1000;
    reader.finish();

    const store = new UploadStore(m.serverConfig.dataDir);
    await store.open();
    const service = new UploadService(m, store, await loadSecret(m.serverConfig.dataDir), settings);

    const components = new Map<string, string>();
    for (const host of m.hosts) {
      const domain = `upload.${host}`;
      m.addComponent(domain, (ev) => service.handle(host, ev));
      components.set(host, domain);
    }
    // §2: clients find the service among the server's items.
    m.hook<DiscoItemsEvent>(ITEMS_EVENT, ({ target, to, items }) => {
      const domain = target === "host" ? components.get(to.domain) : undefined;
      if (domain) items.push({ jid: domain, name: "HTTP File Upload" });
    });
    m.hook<HttpRoutesEvent>(HTTP_ROUTES_EVENT, (http) => {
      service.http = http;
      // One byte over the limit is refused before any of the body is read.
      http.register(UPLOAD_PATH, (req, res, ctx) => service.serve(req, res, ctx), { maxBodyBytes: settings.maxFileSize });
    });
    m.timer(60_000, () => service.dropExpired(), { repeat: true });
    let cleaning = false;
    const clean = async () => {
      if (cleaning) return;
      cleaning = true;
      try {
        const removed = await service.removeExpiredFiles();
        if (removed > 0) m.log.info({ removed }, "expired uploads deleted");
      } catch (err) {
        m.log.error({ err }, "deleting expired uploads failed");
      } finally {
        cleaning = false;
      }
    };
    if (settings.fileLifetimeMs > 0) {
      void clean();
      m.timer(cleanupIntervalMs, () => void clean(), { repeat: true });
    }
  },
});
