// XEP-0313 v0.7.5 Message Archive Management (urn:xmpp:mam:2 and urn:xmpp:mam:2#extended) for
// one-to-one chats, with XEP-0359 v0.7 stanza-ids, XEP-0441 v0.2.0 archiving preferences,
// XEP-0059 v1.0 paging and the XEP-0334 v0.3.0 storage hints.
//
// What is archived (§5.1.1): normal and chat messages an account sends or receives that carry
// content (protocol/mam.ts carriesContent: a body, a receipt or marker, an encrypted payload...;
// not chat states alone), or a <store/> hint; never errors or groupchat, never with <no-store/>
// or <no-permanent-store/>, and only as the account's preferences allow. A message between two
// local accounts is in both archives, each under its own id; one to the account itself, once.
//
// Where (priorities):
// - Sent: `pre-message/{bare,full}` at ARCHIVE_PRIORITY. The sender's <stanza-id/> is added for
//   the sent carbons (§3.5 "SHOULD include the element as a child of the forwarded message"),
//   which are copied at DELIVERY_PRIORITY, and removed again at OUTBOUND_STRIP_PRIORITY, before
//   the message leaves: the contact has no access to the sender's archive (§3.5 "MUST NOT").
// - Received: `message/{bare,full,self}` at ARCHIVE_PRIORITY, above the message module's
//   DELIVERY_PRIORITY, so the recipient's sessions, carbons and offline storage all get the
//   stanza with <stanza-id by='<recipient bare JID>'/>. Any stanza-id claiming that 'by' is
//   removed first, archived or not (XEP-0359 §5: it would be a spoof).
//
// Durability (DESIGN.md "Storage"): the stanza-id is added at once and the row goes to the
// group-commit writer; delivery does not wait for the disk. Whoever acknowledges the sender
// (XEP-0198) waits for storage.writer.sync() instead. If the batch fails, the message has still
// been delivered (and carries an id the archive does not know: a query for it answers
// item-not-found), the failure is logged, and the sender's acknowledgement, which waits for the
// same batch, is not given, so the client sends it again.
//
// Queries are served to the account itself only (the 'self' target); another account's archive
// is <forbidden/> (§7.1).
// [modules.mam] default = "always" | "roster" | "never" (the preference of accounts that set
// none), default_page = 50, max_page = 250, count_limit = 10000 (RSM <count/> is given when the
// matching set holds at most this many messages, 0 for never: counting walks the whole set, a
// cost that grows with it, while a page costs the same at any size).
import { randomBytes } from "node:crypto";
import type { Element } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import { StanzaError } from "../../../protocol/errors.ts";
import type { Jid } from "../../../protocol/jid.ts";
import {
  addStanzaId,
  archivedByPrefs,
  buildPrefs,
  carriesContent,
  mamMetadata,
  mamQueryForm,
  mamResultMessage,
  parseMamQuery,
  parsePrefs,
  storageHints,
  stripStanzaIds,
  type ArchiveDefault,
  type MamPrefs,
} from "../../../protocol/mam.ts";
import { mamPageFin, mamPageRequest } from "../../core/storage/index.ts";
import { SettingsReader } from "../../core/config.ts";
import { defineModule, type ModuleApi } from "../../core/module.ts";
import type { IqEvent, StanzaEvent } from "../../core/router.ts";
import {
  ArchiveIdGenerator,
  UnknownArchiveIdError,
  stanzaFromText,
  stanzaToText,
  type ArchiveEntry,
  type JsonValue,
} from "../../core/storage/index.ts";
import { DELIVERY_PRIORITY } from "../message/index.ts";

/** Above delivery, carbons and offline storage, so they all see the stanza-id. */
export const ARCHIVE_PRIORITY = 10;
/** Below the sent carbons (DELIVERY_PRIORITY): the sender's stanza-id goes no further. */
export const OUTBOUND_STRIP_PRIORITY = DELIVERY_PRIORITY - 100;

const PREFS_KEY = "prefs";
const PREFS_CACHE = 10_000;

function wantsArchiving(stanza: Element): boolean {
  const type = stanza.attrs.type ?? "normal";
  if (type === "error" || type === "groupchat") return false;
  // A MAM result (from a room's or another archive) answers a query: it is not conversation,
  // and archiving it would copy the other archive into this one.
  if (stanza.getChild("result", NS.mam)) return false;
  const hints = storageHints(stanza);
  if (hints.noStore || hints.noPermanentStore) return false;
  if (hints.store) return true;
  // Headlines are notifications, not conversation (§5.1.1 "not generally suggested").
  return type !== "headline" && carriesContent(stanza);
}

function isPrefs(value: JsonValue | undefined): value is { default: ArchiveDefault; always: string[]; never: string[] } {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const v = value as Record<string, JsonValue>;
  return typeof v.default === "string" && Array.isArray(v.always) && Array.isArray(v.never);
}

export default defineModule({
  name: "mam",
  xeps: [
    { xep: 313, version: "0.7.5", status: "complete", note: "user archives of one-to-one messages; #extended with metadata, flipped pages, before-id/after-id/ids" },
    { xep: 359, version: "0.7.0", status: "complete", note: "stanza-id of the archive on every archived message; spoofed ones removed" },
    { xep: 441, version: "0.2.0", status: "complete" },
    { xep: 334, version: "0.3.0", status: "partial", note: "store, no-store and no-permanent-store for the archive" },
  ],
  depends: ["message"],
  setup(m) {
    const settings = new SettingsReader(m.config, `modules.${m.name}`);
    const serverDefault = settings.oneOf<ArchiveDefault>("default", ["always", "roster", "never"], "always");
    const maxPage = settings.integer("max_page", 1, 10_000, 250);
    const defaultPage = settings.integer("default_page", 1, 10_000, 50);
    const countLimit = settings.integer("count_limit", 0, 1_000_000_000, 10_000);
    settings.finish();
    if (defaultPage > maxPage) throw new Error(`[modules.mam] default_page (${defaultPage}) is larger than max_page (${maxPage})`);

    const { archive, writer, roster, users } = m.storage;
    const store = m.store();
    const ids = new ArchiveIdGenerator();
    const prefsCache = new Map<string, MamPrefs>();

    m.addFeature(NS.mam, "account");
    m.addFeature(NS.mamExtended, "account");
    // XEP-0359 §4: an entity that adds stanza-ids advertises it where they are added, the account.
    m.addFeature(NS.sid, "account");

    const prefsOf = async (account: Jid): Promise<MamPrefs> => {
      const key = account.toString();
      const cached = prefsCache.get(key);
      if (cached) return cached;
      const value = await store.get(account, PREFS_KEY);
      const prefs: MamPrefs = isPrefs(value) ? { default: value.default, always: value.always, never: value.never } : { default: serverDefault, always: [], never: [] };
      if (prefsCache.size >= PREFS_CACHE) prefsCache.delete(prefsCache.keys().next().value!);
      prefsCache.set(key, prefs);
      return prefs;
    };

    const allowedByPrefs = async (account: Jid, peer: Jid): Promise<boolean> =>
      archivedByPrefs(await prefsOf(account), peer, async (bare) => (await roster.get(account.domain, account.local, bare)) !== null);

    /**
     * Whether the account keeps messages with `peer`. The message is delivered whatever happens
     * here: when the preferences (or, for a recipient without sessions, the account) cannot be
     * read, it goes unarchived and the failure is logged.
     */
    const archivable = async (account: Jid, peer: Jid, checkExists = false): Promise<boolean> => {
      try {
        if (checkExists && m.sessions.resources(account).length === 0 && !(await users.exists(account.domain, account.local))) return false;
        return await allowedByPrefs(account, peer);
      } catch (err) {
        m.log.error({ err, account: account.toString() }, "could not decide whether to archive a message; not archived");
        return false;
      }
    };

    /** Stamps the stanza with a new archive id by `account` and queues its row; returns the id. */
    const archiveFor = (account: Jid, peer: Jid, direction: "in" | "out", stanza: Element, stampFirst: boolean): string => {
      const { id, ts } = ids.next();
      const by = account.toString();
      // Received: kept as the recipient got it, stanza-id included. Sent: kept as sent.
      if (stampFirst) addStanzaId(stanza, id, by);
      const entry: ArchiveEntry = {
        host: account.domain,
        username: account.local,
        id,
        with: peer.bare.toString(),
        withResource: peer.resource,
        direction,
        xml: stanzaToText(stanza),
        ts,
      };
      if (!stampFirst) addStanzaId(stanza, id, by);
      writer.write({ kind: "archive", entries: [entry] }).catch((err: unknown) => {
        m.log.error({ err, account: by, id }, "archiving a message failed");
      });
      return id;
    };

    // ---- archiving ------------------------------------------------------------------------------

    const outbound = async (ev: StanzaEvent): Promise<boolean> => {
      if (!ev.origin) return false;
      const account = ev.from.bare;
      stripStanzaIds(ev.stanza, account.toString());
      // To the account itself: archived once, on the way in.
      if (ev.to.bare.equals(account)) return false;
      if (!wantsArchiving(ev.stanza)) return false;
      if (!(await archivable(account, ev.to))) return false;
      archiveFor(account, ev.to, "out", ev.stanza, false);
      return false;
    };

    const stripOutbound = (ev: StanzaEvent): boolean => {
      if (ev.origin && !ev.to.bare.equals(ev.from.bare)) stripStanzaIds(ev.stanza, ev.from.bare.toString());
      return false;
    };

    const inbound = async (ev: StanzaEvent): Promise<boolean> => {
      const account = ev.to.bare;
      stripStanzaIds(ev.stanza, account.toString());
      if (!wantsArchiving(ev.stanza)) return false;
      if (ev.target === "full" && !m.sessions.get(ev.to) && (ev.stanza.attrs.type ?? "normal") !== "chat") {
        // RFC 6121 §8.5.3.2.1: this one is bounced, not delivered; it is not part of the history.
        return false;
      }
      if (!(await archivable(account, ev.from, true))) return false;
      archiveFor(account, ev.from, "in", ev.stanza, true);
      return false;
    };

    for (const target of ["bare", "full"]) {
      m.hook<StanzaEvent>(`pre-message/${target}`, outbound, ARCHIVE_PRIORITY);
      m.hook<StanzaEvent>(`pre-message/${target}`, stripOutbound, OUTBOUND_STRIP_PRIORITY);
    }
    for (const target of ["bare", "full", "self"]) m.hook<StanzaEvent>(`message/${target}`, inbound, ARCHIVE_PRIORITY);

    // ---- queries (§4) ---------------------------------------------------------------------------

    const query = async (ev: IqEvent): Promise<Element> => {
      const session = ev.origin;
      if (!session?.jid) throw new StanzaError("forbidden", "only the account's own sessions may query its archive");
      const account = ev.from.bare;
      const q = parseMamQuery(ev.payload);
      const paging = mamPageRequest(q, defaultPage, maxPage);
      const { request, filter } = paging;

      // What the account's sessions have already been sent is in the answer, committed or not yet.
      await writer.sync().catch(() => {});
      let page;
      let count: number | undefined;
      try {
        page = await archive.query(account.domain, account.local, request);
        if (countLimit > 0) count = await archive.count(account.domain, account.local, filter, { atMost: countLimit });
      } catch (err) {
        if (err instanceof UnknownArchiveIdError) throw new StanzaError("item-not-found", `no archived message has the id ${err.id}`);
        if (err instanceof RangeError) throw new StanzaError("policy-violation", err.message);
        throw err;
      }

      const results = q.flipPage ? [...page.messages].reverse() : page.messages;
      const to = session.jid.toString();
      for (const archived of results) {
        const message = stanzaFromText(archived.xml);
        if (!message) {
          m.log.warn({ account: account.toString(), id: archived.id }, "an archived message could not be read");
          continue;
        }
        session.send(
          mamResultMessage({
            to,
            from: account.toString(),
            messageId: randomBytes(9).toString("base64url"),
            queryId: q.queryId,
            archiveId: archived.id,
            stamp: new Date(archived.ts),
            message,
          }),
        );
      }

      return mamPageFin(page, paging, count);
    };

    m.onIq("set", NS.mam, "query", query, { targets: ["self"] });
    m.onIq("get", NS.mam, "query", () => mamQueryForm(true), { targets: ["self"] });

    m.onIq(
      "get",
      NS.mam,
      "metadata",
      async (ev) => {
        const account = ev.from.bare;
        await writer.sync().catch(() => {});
        const bounds = await archive.bounds(account.domain, account.local);
        return mamMetadata(
          bounds && {
            start: { id: bounds.first.id, stamp: new Date(bounds.first.ts) },
            end: { id: bounds.last.id, stamp: new Date(bounds.last.ts) },
          },
        );
      },
      { targets: ["self"] },
    );

    // ---- preferences (XEP-0441) -----------------------------------------------------------------

    m.onIq("get", NS.mam, "prefs", async (ev) => buildPrefs(await prefsOf(ev.from.bare)), { targets: ["self"] });
    m.onIq(
      "set",
      NS.mam,
      "prefs",
      async (ev) => {
        const account = ev.from.bare;
        const prefs = parsePrefs(ev.payload);
        await store.set(account, PREFS_KEY, { default: prefs.default, always: prefs.always, never: prefs.never });
        prefsCache.set(account.toString(), prefs);
        return buildPrefs(prefs);
      },
      { targets: ["self"] },
    );

    forbidOthers(m);
  },
});

/** §7.1: another account's archive and preferences are not the asker's to read or change. */
function forbidOthers(m: ModuleApi): void {
  const refuse = () => {
    throw new StanzaError("forbidden", "an archive is only open to its own account");
  };
  for (const [type, name] of [["set", "query"], ["get", "query"], ["get", "metadata"], ["get", "prefs"], ["set", "prefs"]] as const) {
    m.onIq(type, NS.mam, name, refuse, { targets: ["bare"] });
  }
}
