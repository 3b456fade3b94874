// XEP-0313 v1.1 queries turned into archive page requests, and pages into the <fin/> that ends a
// query (§4.3.3 paging with RSM, XEP-0059 §2). Shared by every archive Parley serves: accounts'
// (the mam module) and rooms' (the muc module).
import type { Jid } from "../../../protocol/jid.ts";
import { mamFin, type MamQuery } from "../../../protocol/mam.ts";
import type { RsmResponse } from "../../../protocol/rsm.ts";
import type { Element } from "../../../protocol/xml/element.ts";
import type { ArchiveFilter, ArchivePage, ArchivePageRequest } from "./archive.ts";

export interface MamPageRequest {
  request: ArchivePageRequest;
  /** The query's filter without RSM's paging bounds: what <count/> counts. */
  filter: ArchiveFilter;
  rsmBefore: string | true | undefined;
  rsmAfter: string | undefined;
}

/**
 * The archive request for a query. RSM <after/> and <before/> page through the set the form
 * describes (<before/> pages back from the end, §4.3.3); the #extended before-id and after-id
 * narrow the set itself and do not change the paging direction (§8). With `room`, the archive
 * holds only that room's messages: a 'with' naming any other JID matches nothing.
 */
export function mamPageRequest(q: MamQuery, defaultPage: number, maxPage: number, room?: Jid): MamPageRequest {
  const filter: ArchiveFilter = {};
  if (q.with) {
    filter.with = q.with.bare.toString();
    if (q.with.resource !== "") filter.withResource = q.with.resource;
    if (room && !q.with.bare.equals(room.bare)) filter.ids = [];
  }
  if (q.start) filter.start = q.start.getTime();
  if (q.end) filter.end = q.end.getTime();
  if (q.afterId !== undefined) filter.afterIds = [q.afterId];
  if (q.beforeId !== undefined) filter.beforeIds = [q.beforeId];
  if (q.ids !== undefined) filter.ids = filter.ids ?? q.ids;

  const rsm = q.rsm ?? {};
  const limit = Math.min(rsm.max ?? defaultPage, maxPage);
  const request: ArchivePageRequest = { ...filter, limit };
  if (rsm.after !== undefined) request.afterIds = [...(filter.afterIds ?? []), rsm.after];
  if (rsm.before !== undefined) {
    request.fromEnd = true;
    if (rsm.before !== true) request.beforeIds = [...(filter.beforeIds ?? []), rsm.before];
  } else if (rsm.index !== undefined) {
    request.offset = rsm.index;
  }
  return { request, filter, rsmBefore: rsm.before, rsmAfter: rsm.after };
}

/** The <fin/> after a page: RSM first and last, the first's index where it is known, the count if asked. */
export function mamPageFin(page: ArchivePage, paging: MamPageRequest, count: number | undefined): Element {
  const { request, rsmAfter, rsmBefore } = paging;
  const rsm: RsmResponse = {};
  const first = page.messages[0];
  const last = page.messages.at(-1);
  if (first && last) {
    rsm.first = first.id;
    rsm.last = last.id;
    if (!request.fromEnd && rsmAfter === undefined) rsm.firstIndex = request.offset ?? 0;
    else if (request.fromEnd && rsmBefore === true && count !== undefined) rsm.firstIndex = Math.max(0, count - page.messages.length);
  }
  if (count !== undefined) rsm.count = count;
  return mamFin(page.complete, rsm);
}
