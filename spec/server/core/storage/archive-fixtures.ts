// Shared by the writer specs: archive ids that stand for names, so that specs can say "m1".
import { ArchiveIdGenerator } from "../../../../server/core/storage/archive-ids.ts";

const stamps = new ArchiveIdGenerator(() => 1);
const archiveIds = new Map<string, string>();

/** The archive id (made at millisecond 1) that stands for `name` on `host` in these specs. */
export function idOf(host: string, name: string): string {
  const key = `${host}\u0000${name}`;
  let id = archiveIds.get(key);
  if (id === undefined) archiveIds.set(key, (id = stamps.next().id));
  return id;
}
