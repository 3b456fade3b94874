// Conversions between the stores' JavaScript values and the portable column
// representations chosen in schema.ts (shared by SQLite and PostgreSQL).
import type { Flag } from "./schema.ts";

export function toFlag(value: boolean): Flag {
  return value ? 1 : 0;
}

export function fromFlag(value: number): boolean {
  return value === 1;
}

/** Both drivers bind a Buffer as binary; a plain Uint8Array is wrapped without copying. */
export function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Affected-row counts come back as bigint from both Kysely dialects. */
export function changed(count: bigint | undefined): boolean {
  return (count ?? 0n) > 0n;
}

export type Clock = () => number;
