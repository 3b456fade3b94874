// XEP-0160 v1.0.1 (Best Practices for Handling Offline Messages), with the storage hints of
// XEP-0334 v0.3.0 and delayed delivery stamps of XEP-0203 v2.0.
//
// - Storing: the message module fires `message/offline` for a normal or chat message that no
//   resource can take (RFC 6121 §8.5.2). Messages with content are queued through the
//   group-commit writer (DESIGN.md "Storage") and the event counts as handled at once, so a
//   sender's stream never waits for the disk; the XEP-0198 acknowledgement waits for the commit
//   instead (storage.writer.sync()). A full queue (`max_messages`) or a failed write sends
//   <service-unavailable/> back to the sender (§2 step 3), a moment later.
// - Not stored, and dropped without an error (an error for every "is typing" to an absent
//   contact would only be noise): messages with only chat states (§3, XEP-0085), a <no-store/>
//   hint (XEP-0334 §4.2; <no-permanent-store/> may still wait here, §4.1), and forwarded copies
//   that were meant for one session (XEP-0313 results, XEP-0280 carbons), which XEP-0198 may
//   hand over when such a session ends. <store/> (§4.4) keeps even a state-only message.
// - Delivering: when a session sends available presence with a non-negative priority and was not
//   receiving bare-JID messages before (§2 step 5), its account's messages go to it in order,
//   each with <delay from='<domain>'/>, and are deleted once written to the session.
//   The presence module records the session as available only after this hook has run; until
//   it has, messages that find no resource are delivered straight to the arriving session (after
//   the stored ones), so none is left behind in storage for a session that is already online.
//   [modules.offline] max_messages = 1000.
// - XEP-0013 v1.2 (flexible retrieval, flexible.ts) reads the same store; a session that uses it
//   is not flooded (§2.2), though live messages still reach it as for any other session.
import type { Element } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import { StanzaError, errorReply } from "../../../protocol/errors.ts";
import { addDelay } from "../../../protocol/delay.ts";
import { carriesContent, storageHints } from "../../../protocol/mam.ts";
import { SettingsReader } from "../../core/config.ts";
import { defineModule } from "../../core/module.ts";
import { OfflineQuotaError, stanzaFromText, stanzaToText } from "../../core/storage/index.ts";
import type { StanzaEvent } from "../../core/router.ts";
import type { ClientSession } from "../../core/sessions.ts";
import type { SessionEvent } from "../../transports/c2s.ts";
import { OFFLINE_EVENT, type OfflineMessageEvent } from "../message/index.ts";
import { setupFlexibleRetrieval } from "./flexible.ts";

/** Above the presence module (0), so stored messages are out before the session counts as available. */
export const OFFLINE_DELIVERY_PRIORITY = 10;

/** Above XEP-0198's c2s/closed handler, which rescues unacknowledged messages into offline storage. */
const SESSION_CLOSED_PRIORITY = 20;

const PAGE = 100;
const MAX_PAGES = 10_000;

/** A session that has sent available presence the presence module may not have recorded yet. */
interface Arrival {
  priority: number;
  /** Stored messages are being delivered; live ones wait in `held` so they come after. */
  flushing: boolean;
  held: Element[];
}

/** RFC 6121 §4.7.2.3, read as the presence module reads it: -128..127, 0 when absent or invalid. */
function priorityOf(presence: Element): number {
  const text = presence.getChildText("priority")?.trim();
  if (text === undefined || !/^[+-]?\d{1,10}$/.test(text)) return 0;
  return Math.max(-128, Math.min(127, Number(text)));
}

/** A copy meant for one session: an archive result or a carbon (XEP-0313 §4.2, XEP-0280 §6). */
function isForwardedCopy(stanza: Element): boolean {
  return (
    stanza.getChild("result", NS.mam) !== undefined ||
    stanza.getChild("sent", NS.carbons) !== undefined ||
    stanza.getChild("received", NS.carbons) !== undefined
  );
}

/** Runs callbacks for one key one at a time, in call order. */
class Serial {
  readonly #tails = new Map<string, Promise<unknown>>();
  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    const next = previous.then(fn, fn);
    const tail = next.catch(() => {});
    this.#tails.set(key, tail);
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return next;
  }
}

export default defineModule({
  name: "offline",
  xeps: [
    { xep: 160, version: "1.0.1", status: "complete", note: "per-account quota; delivery with XEP-0203 delay on the first non-negative presence" },
    { xep: 334, version: "0.3.0", status: "partial", note: "no-store, no-permanent-store and store for offline storage" },
    { xep: 13, version: "1.2", status: "complete" },
  ],
  depends: ["message"],
  setup(m) {
    const settings = new SettingsReader(m.config, `modules.${m.name}`);
    const maxMessages = settings.integer("max_messages", 0, 1_000_000, 1000);
    settings.finish();

    const { writer, offline } = m.storage;
    const arriving = new Map<ClientSession, Arrival>();
    const closed = new WeakSet<ClientSession>();
    const perAccount = new Serial();

    // XEP-0160 §4.
    m.addFeature("msgoffline");

    const flexible = setupFlexibleRetrieval(m, {
      serialize: (account, fn) => perAccount.run(account, fn),
      closed,
    });

    const store = (stanza: Element, account: { domain: string; local: string }): void => {
      const entry = { host: account.domain, username: account.local, xml: stanzaToText(stanza), storedAt: Date.now() };
      writer.write({ kind: "offline", entries: [entry], limit: maxMessages }).catch((err: unknown) => {
        if (err instanceof OfflineQuotaError) m.log.info({ to: `${account.local}@${account.domain}` }, "offline storage full");
        else m.log.error({ err }, "storing an offline message failed");
        const text = err instanceof OfflineQuotaError ? "the recipient's offline storage is full" : "the message could not be stored";
        const reply = errorReply(stanza, new StanzaError("service-unavailable", text));
        if (reply?.attrs.from && reply.attrs.to) void m.send(reply);
      });
    };

    /** The sessions of `account` that have just announced themselves, best priority first. */
    const arrivedSessions = (account: string): Array<[ClientSession, Arrival]> => {
      const found: Array<[ClientSession, Arrival]> = [];
      for (const [session, arrival] of arriving) {
        // Once the presence module has recorded the new presence, routing reaches the session by itself.
        if (closed.has(session) || (session.presence !== null && session.priority >= 0)) {
          if (!arrival.flushing) arriving.delete(session);
          continue;
        }
        if (session.jid?.bare.toString() === account) found.push([session, arrival]);
      }
      const top = Math.max(...found.map(([, a]) => a.priority));
      return found.filter(([, a]) => a.priority === top);
    };

    m.hook<OfflineMessageEvent>(OFFLINE_EVENT, ({ stanza, to }) => {
      const type = stanza.attrs.type ?? "normal";
      if (type !== "chat" && type !== "normal") return false;
      if (maxMessages === 0) return false;
      const hints = storageHints(stanza);
      if (hints.noStore || isForwardedCopy(stanza)) return true;
      if (!hints.store && !carriesContent(stanza)) return true;

      const arrived = arrivedSessions(to.toString());
      if (arrived.length > 0) {
        for (const [session, arrival] of arrived) {
          if (arrival.flushing) arrival.held.push(stanza);
          else session.send(stanza);
        }
        return true;
      }
      store(stanza, to);
      return true;
    });

    /** Sends the account's stored messages to `session`, oldest first, deleting each page sent. */
    const deliverStored = async (session: ClientSession): Promise<void> => {
      const jid = session.jid!;
      // Messages handed to the writer before this session announced itself are in storage now.
      await writer.sync().catch(() => {});
      for (let page = 0; page < MAX_PAGES; page++) {
        const stored = await offline.list(jid.domain, jid.local, PAGE);
        if (stored.length === 0) return;
        const sent: number[] = [];
        for (const message of stored) {
          if (closed.has(session)) break;
          const stanza = stanzaFromText(message.xml);
          if (stanza) {
            addDelay(stanza, new Date(message.storedAt), jid.domain, "Offline Storage");
            session.send(stanza);
          } else {
            m.log.warn({ seq: message.seq }, "dropping an unreadable offline message");
          }
          sent.push(message.seq);
        }
        if (sent.length > 0) await writer.write({ kind: "offline-delete", host: jid.domain, username: jid.local, seqs: sent });
        if (sent.length < stored.length || stored.length < PAGE) return;
      }
    };

    m.hook<StanzaEvent>(
      "presence/self",
      async (ev) => {
        const session = ev.origin;
        if (!session?.jid) return false;
        const type = ev.stanza.attrs.type;
        if (type === "unavailable") {
          if (!arriving.get(session)?.flushing) arriving.delete(session);
          return false;
        }
        if (type !== undefined) return false;
        const priority = priorityOf(ev.stanza);
        const receivedAlready = session.presence !== null && session.priority >= 0;
        if (receivedAlready || priority < 0) return false;

        if (flexible.suppressesFlood(session)) {
          // No flood, but messages arriving before the presence module records the session
          // still go to it rather than into the queue it is reading.
          arriving.set(session, { priority, flushing: false, held: [] });
          return false;
        }
        const arrival: Arrival = { priority, flushing: true, held: [] };
        arriving.set(session, arrival);
        try {
          await perAccount.run(session.jid.bare.toString(), () => deliverStored(session));
        } catch (err) {
          m.log.error({ err, jid: session.jid.toString() }, "delivering offline messages failed");
        } finally {
          arrival.flushing = false;
          const held = arrival.held.splice(0);
          if (closed.has(session)) for (const stanza of held) store(stanza, session.jid.bare);
          else for (const stanza of held) session.send(stanza);
        }
        return false;
      },
      OFFLINE_DELIVERY_PRIORITY,
    );

    // Before XEP-0198 hands the session's unacknowledged messages back to `message/offline`
    // (priority 10): they must be stored, not delivered to the session that just went away.
    m.hook<SessionEvent>(
      "c2s/closed",
      ({ session }) => {
        closed.add(session);
        const arrival = arriving.get(session);
        if (arrival && !arrival.flushing) arriving.delete(session);
        return false;
      },
      SESSION_CLOSED_PRIORITY,
    );
  },
});
