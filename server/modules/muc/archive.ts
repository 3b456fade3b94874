// XEP-0313 Message Archive Management 0.7.5 on a XEP-0045 room JID (§3.2 "MUC archives"), with
// XEP-0359 0.7 stanza-ids by the room, XEP-0059 paging, and the room's discussion history on
// join (XEP-0045 §7.2.14) read from the same archive, so both survive a restart.
//
// A room's archive is the core `archive` table with host = the service domain, username = the
// room's localpart; with_jid is the room's bare JID and with_resource the sender's nick, so a
// 'with' of room@service/nick selects one occupant's messages without revealing real JIDs.
// Writes go through the group-commit writer (DESIGN.md "Storage"): a groupchat message is
// stamped with its stanza-id, queued once, and broadcast without waiting for the disk. Reads
// (queries, history) first wait for what was queued before them.
import { randomBytes } from "node:crypto";
import { clone, xml, type Element } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import { StanzaError } from "../../../protocol/errors.ts";
import type { Jid } from "../../../protocol/jid.ts";
import { historyStart, type HistoryRequest } from "../../../protocol/muc.ts";
import { addStanzaId, mamMetadata, mamResultMessage, parseMamQuery } from "../../../protocol/mam.ts";
import { mamPageFin, mamPageRequest } from "../../core/storage/index.ts";
import { serialize } from "../../../protocol/xml/serialize.ts";
import {
  ArchiveIdGenerator,
  UnknownArchiveIdError,
  stanzaFromText,
  stanzaToText,
  type Storage,
} from "../../core/storage/index.ts";

/**
 * Parley's record of a groupchat sender's real full JID, kept in the archived stanza only:
 * <real-jid xmlns='urn:xmpp:parley:muc:real-jid:0' jid='user@host/res'/>. Readers get it as a
 * muc#user <item jid/> when they may see real JIDs, and never otherwise.
 */
export const REAL_JID_NS = "urn:xmpp:parley:muc:real-jid:0";

/**
 * An archived room message as one reader gets it: the real-JID record becomes
 * <x xmlns='http://jabber.org/protocol/muc#user'><item jid/></x> for `realJids`, and goes
 * otherwise; any other muc#user payload (a sender's spoof, in rows older than the record) goes.
 */
export function forReader(stored: Element, realJids: boolean): Element {
  let real: string | undefined;
  stored.children = stored.children.filter((c) => {
    if (typeof c === "string") return true;
    const ns = c.getNS();
    if (c.getName() === "real-jid" && ns === REAL_JID_NS) {
      real = c.attrs.jid;
      return false;
    }
    return !(c.getName() === "x" && ns === NS.mucUser);
  });
  if (realJids && real !== undefined) stored.append(xml("x", { xmlns: NS.mucUser }, xml("item", { jid: real })));
  return stored;
}

export interface RoomArchiveOptions {
  defaultPage: number;
  maxPage: number;
  /** RSM <count/> only when the matching set holds at most this many (0: never). */
  countLimit: number;
}

export interface HistoryMessage {
  stanza: Element;
  at: Date;
}

export interface ArchiveLog {
  error(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export class RoomArchive {
  readonly #ids = new ArchiveIdGenerator();

  constructor(
    private readonly storage: Storage,
    private readonly log: ArchiveLog,
    private readonly opts: RoomArchiveOptions,
  ) {}

  /**
   * Archives a groupchat message as the room broadcasts it (from room/nick, no 'to'): adds the
   * room's <stanza-id/> to `message` and queues one row. Returns the id.
   */
  append(room: Jid, nick: string, message: Element, realJid?: string): string {
    const { id, ts } = this.#ids.next();
    const by = room.bare.toString();
    addStanzaId(message, id, by);
    let stored = message;
    if (realJid !== undefined) {
      stored = clone(message);
      stored.append(xml("real-jid", { xmlns: REAL_JID_NS, jid: realJid }));
    }
    const entry = { host: room.domain, username: room.local, id, with: by, withResource: nick, direction: "in" as const, xml: stanzaToText(stored), ts };
    this.storage.writer.write({ kind: "archive", entries: [entry] }).catch((err: unknown) => {
      this.log.error({ err, room: by, id }, "archiving a room message failed");
    });
    return id;
  }

  /** §7.2.14: the newest messages within the limits, oldest first; at most `max`. */
  async history(room: Jid, request: HistoryRequest, max: number, now: Date): Promise<HistoryMessage[]> {
    const limit = Math.min(request.maxstanzas ?? max, max);
    if (limit <= 0 || request.maxchars === 0) return [];
    const oldest = Math.max(
      request.seconds !== undefined ? now.getTime() - request.seconds * 1000 : -Infinity,
      request.since !== undefined ? request.since.getTime() : -Infinity,
    );
    await this.storage.writer.sync().catch(() => {});
    const page = await this.storage.archive.query(room.domain, room.local, {
      limit,
      fromEnd: true,
      ...(Number.isFinite(oldest) ? { start: Math.max(0, Math.ceil(oldest)) } : {}),
    });
    const messages: HistoryMessage[] = [];
    for (const row of page.messages) {
      const stanza = stanzaFromText(row.xml);
      if (stanza) messages.push({ stanza: forReader(stanza, false), at: new Date(row.ts) });
    }
    if (request.maxchars === undefined) return messages;
    const sized = messages.map((m) => ({ ...m, chars: serialize(m.stanza).length }));
    return sized.slice(historyStart(sized, { maxchars: request.maxchars }, now));
  }

  /**
   * §4: one query, answered to `to` (the asker's full JID): every result through `send`, in
   * order, then the <fin/> to put in the IQ result. With `realJids` (a moderator, or anyone in
   * a non-anonymous room) each message carries its sender's real JID as a muc#user item.
   */
  async query(room: Jid, payload: Element, to: string, send: (stanza: Element) => Promise<void>, opts: { realJids?: boolean } = {}): Promise<Element> {
    const q = parseMamQuery(payload);
    const paging = mamPageRequest(q, this.opts.defaultPage, this.opts.maxPage, room);
    const { request, filter } = paging;
    const { archive, writer } = this.storage;
    await writer.sync().catch(() => {});
    let page;
    let count: number | undefined;
    try {
      page = await archive.query(room.domain, room.local, request);
      if (this.opts.countLimit > 0) count = await archive.count(room.domain, room.local, filter, { atMost: this.opts.countLimit });
    } catch (err) {
      if (err instanceof UnknownArchiveIdError) throw new StanzaError("item-not-found", `no archived message has the id ${err.id}`);
      if (err instanceof RangeError) throw new StanzaError("policy-violation", err.message);
      throw err;
    }
    const from = room.bare.toString();
    const results = q.flipPage ? [...page.messages].reverse() : page.messages;
    for (const archived of results) {
      const message = stanzaFromText(archived.xml);
      if (!message) {
        this.log.warn({ room: from, id: archived.id }, "an archived room message could not be read");
        continue;
      }
      await send(
        mamResultMessage({ to, from, messageId: randomBytes(9).toString("base64url"), queryId: q.queryId, archiveId: archived.id, stamp: new Date(archived.ts), message: forReader(message, opts.realJids === true) }),
      );
    }
    return mamPageFin(page, paging, count);
  }

  /** #extended §5: the first and last message of the room's archive. */
  async metadata(room: Jid): Promise<Element> {
    await this.storage.writer.sync().catch(() => {});
    const bounds = await this.storage.archive.bounds(room.domain, room.local);
    return mamMetadata(
      bounds && { start: { id: bounds.first.id, stamp: new Date(bounds.first.ts) }, end: { id: bounds.last.id, stamp: new Date(bounds.last.ts) } },
    );
  }
}
