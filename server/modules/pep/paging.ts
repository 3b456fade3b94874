// XEP-0059 (Result Set Management 1.0) over a node's items, as XEP-0060 1.26.0 §6.5.4 allows:
// the items in publication order, their ids as RSM UIDs. Nodes hold at most MAX_ITEMS_LIMIT
// items, so a page is cut from the whole list in memory.
import { StanzaError } from "../../../protocol/errors.ts";
import type { RsmRequest, RsmResponse } from "../../../protocol/rsm.ts";

export function pageOf<T extends { id: string }>(items: readonly T[], rsm: RsmRequest, maxPage: number): { page: T[]; response: RsmResponse } {
  const count = items.length;
  const size = Math.min(rsm.max ?? maxPage, maxPage);
  const position = (id: string): number => {
    const i = items.findIndex((it) => it.id === id);
    if (i < 0) throw new StanzaError("item-not-found", "no item with that RSM id");
    return i;
  };
  let start: number;
  let end: number;
  if (rsm.index !== undefined) {
    start = Math.min(rsm.index, count);
    end = Math.min(start + size, count);
  } else if (rsm.before !== undefined) {
    end = rsm.before === true ? count : position(rsm.before);
    start = Math.max(0, end - size);
  } else {
    start = rsm.after === undefined ? 0 : position(rsm.after) + 1;
    end = Math.min(start + size, count);
  }
  const page = items.slice(start, end);
  const response: RsmResponse = page.length > 0 ? { first: page[0]!.id, firstIndex: start, last: page.at(-1)!.id, count } : { count };
  return { page, response };
}
