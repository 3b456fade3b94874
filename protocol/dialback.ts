// Server Dialback: XEP-0220 v1.1.1 (db:result, db:verify, the dialback stream feature) with
// the key generation of XEP-0185 v1.0 (dialback key generation and validation).
//
// Pure: builders and readers of the dialback elements and the key function. The key is
// HMAC-SHA256 keyed with SHA-256(secret) over "Receiving Originating StreamID" (XEP-0185 §3),
// hex-encoded, so an authoritative server can check a key it issued without remembering it.
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { xml, type Element } from "./xml/element.ts";
import { NS } from "./ns.ts";

/** XEP-0185 §3: the key the originating server sends and the authoritative server checks. */
export function dialbackKey(secret: string, receiving: string, originating: string, streamId: string): string {
  const keyed = createHash("sha256").update(secret, "utf8").digest("hex");
  return createHmac("sha256", keyed).update(`${receiving} ${originating} ${streamId}`, "utf8").digest("hex");
}

/** Constant-time comparison of a received key with the expected one. */
export function dialbackKeyMatches(expected: string, received: string): boolean {
  const a = Buffer.from(expected, "utf8");
  const b = Buffer.from(received.trim(), "utf8");
  return a.length === b.length && timingSafeEqual(a, b);
}

export type DialbackKind = "result" | "verify";
export type DialbackType = "valid" | "invalid" | "error";

/** A db:result or db:verify element, request (key) or answer (type). */
export interface DialbackElement {
  readonly kind: DialbackKind;
  readonly from: string;
  readonly to: string;
  /** db:verify only: the stream ID the key was generated for. */
  readonly id?: string;
  /** Requests carry the key; answers carry no text. */
  readonly key?: string;
  /** Answers only. */
  readonly type?: DialbackType;
}

/** Reads a db:result / db:verify; null when `el` is neither or lacks from/to. */
export function parseDialback(el: Element): DialbackElement | null {
  if (el.getNS() !== NS.dialback) return null;
  const kind = el.getName();
  if (kind !== "result" && kind !== "verify") return null;
  const from = (el.attrs.from ?? "").toLowerCase();
  const to = (el.attrs.to ?? "").toLowerCase();
  if (!from || !to) return null;
  const type = el.attrs.type;
  const key = el.getText().trim();
  return {
    kind,
    from,
    to,
    id: el.attrs.id,
    key: key === "" ? undefined : key,
    type: type === "valid" || type === "invalid" || type === "error" ? type : undefined,
  };
}

/** Builds a dialback element with the `db:` prefix, declared on the stream header. */
export function dialbackElement(d: DialbackElement): Element {
  const attrs: Record<string, string> = { from: d.from, to: d.to, "xmlns:db": NS.dialback };
  if (d.id !== undefined) attrs.id = d.id;
  if (d.type !== undefined) attrs.type = d.type;
  return xml(`db:${d.kind}`, attrs, d.key ?? null);
}
