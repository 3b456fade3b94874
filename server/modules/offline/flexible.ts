// XEP-0013 v1.2 (Flexible Offline Message Retrieval) over the XEP-0160 store of this module.
//
// - The queue is the disco node 'http://jabber.org/protocol/offline' of the account (§2.2,
//   §2.3): disco#info counts it (XEP-0128 form), disco#items lists one item per message, named
//   by the sender's full JID. Only the account's own sessions may use it; a request addressed to
//   another account's bare JID is <forbidden/> (§2.3, §3).
// - Message nodes are the storage sequence numbers, zero-padded so that the character-by-character
//   ordering §2.3 allows clients to apply is also arrival order.
// - <offline/> IQs on the account (§2.4-§2.7): view and fetch send copies marked with
//   <offline><item node/></offline> and leave them stored (§2.5: only an explicit remove or purge
//   deletes); remove and purge delete. An unknown node fails the whole request with
//   <item-not-found/> before anything is sent or deleted, so a client never has to guess which
//   half of a request happened.
// - §2.2/§2.6: a session that has used any of this does not get the XEP-0160 flood on its
//   initial presence, nor does another session of the account while such a session is online.
import { StanzaError } from "../../../protocol/errors.ts";
import { NS } from "../../../protocol/ns.ts";
import { addDelay } from "../../../protocol/delay.ts";
import { buildForm } from "../../../protocol/forms.ts";
import { xml, type Element } from "../../../protocol/xml/element.ts";
import type { Jid } from "../../../protocol/jid.ts";
import type { ModuleApi } from "../../core/module.ts";
import type { IqEvent } from "../../core/router.ts";
import type { ClientSession } from "../../core/sessions.ts";
import { stanzaFromText, type OfflineMessage } from "../../core/storage/index.ts";
import { DISCO_PRIORITY } from "../disco/index.ts";

export const OFFLINE_NODE = NS.offline;

/** Above the disco module, which answers every other node of an account with item-not-found. */
const NODE_PRIORITY = DISCO_PRIORITY + 10;

const NODE_DIGITS = 16;

/** The opaque node naming a stored message: its sequence number, padded to sort as it arrived. */
export function nodeOfSeq(seq: number): string {
  return String(seq).padStart(NODE_DIGITS, "0");
}

/** The sequence number a node names, or null for anything this server never handed out. */
export function seqOfNode(node: string | undefined): number | null {
  if (node === undefined || !/^\d{1,16}$/.test(node)) return null;
  const seq = Number(node);
  return Number.isSafeInteger(seq) ? seq : null;
}

export interface FlexibleRetrievalDeps {
  /** Runs `fn` after, and before, anything else touching the account's stored messages. */
  serialize<T>(account: string, fn: () => Promise<T>): Promise<T>;
  /** Sessions that have ended; nothing is sent to them. */
  closed: WeakSet<ClientSession>;
}

export interface FlexibleRetrieval {
  /** §2.2: true when `session` must not be flooded with stored messages on its initial presence. */
  suppressesFlood(session: ClientSession): boolean;
}

export function setupFlexibleRetrieval(m: ModuleApi, deps: FlexibleRetrievalDeps): FlexibleRetrieval {
  const { writer, offline } = m.storage;
  const retrieving = new WeakSet<ClientSession>();

  m.addFeature(NS.offline);

  /** The caller's session, marked as retrieving; forbidden for anyone but the account itself. */
  const ownSession = (ev: IqEvent): ClientSession => {
    if (ev.target !== "self" || !ev.origin) throw new StanzaError("forbidden", "only the account itself may read its offline messages");
    retrieving.add(ev.origin);
    return ev.origin;
  };

  /** Everything stored for the account, including what the writer has not committed yet. */
  const storedFor = async (account: Jid): Promise<OfflineMessage[]> => {
    await writer.sync().catch(() => {});
    return offline.list(account.domain, account.local);
  };

  /** The stored messages the request's <item/> nodes name, in request order; all must exist. */
  const named = (stored: OfflineMessage[], items: Element[]): OfflineMessage[] => {
    const bySeq = new Map(stored.map((s) => [s.seq, s]));
    return items.map((item) => {
      const seq = seqOfNode(item.attrs.node);
      const message = seq === null ? undefined : bySeq.get(seq);
      if (!message) throw new StanzaError("item-not-found", `no offline message with node '${item.attrs.node ?? ""}'`);
      return message;
    });
  };

  const sendCopies = (session: ClientSession, account: Jid, messages: OfflineMessage[]): void => {
    for (const message of messages) {
      if (deps.closed.has(session)) return;
      const stanza = stanzaFromText(message.xml);
      if (!stanza) {
        m.log.warn({ seq: message.seq }, "skipping an unreadable offline message");
        continue;
      }
      addDelay(stanza, new Date(message.storedAt), account.domain, "Offline Storage");
      stanza.append(xml("offline", { xmlns: NS.offline }, xml("item", { node: nodeOfSeq(message.seq) })));
      session.send(stanza);
    }
  };

  const remove = async (account: Jid, messages: OfflineMessage[]): Promise<void> => {
    if (messages.length === 0) return;
    await writer.write({ kind: "offline-delete", host: account.domain, username: account.local, seqs: messages.map((s) => s.seq) });
  };

  // §2.2: the size of the queue.
  m.onIq("get", NS.discoInfo, "query", async (ev) => {
    if (ev.payload.attrs.node !== OFFLINE_NODE) return undefined;
    ownSession(ev);
    const account = ev.from.bare;
    await writer.sync().catch(() => {});
    const count = await offline.count(account.domain, account.local);
    return xml(
      "query",
      { xmlns: NS.discoInfo, node: OFFLINE_NODE },
      xml("identity", { category: "automation", type: "message-list" }),
      xml("feature", { var: NS.offline }),
      buildForm({
        type: "result",
        fields: [
          { var: "FORM_TYPE", type: "hidden", values: [NS.offline] },
          { var: "number_of_messages", values: [String(count)] },
        ],
      }),
    );
  }, { targets: ["self", "bare"], priority: NODE_PRIORITY });

  // §2.3: the headers.
  m.onIq("get", NS.discoItems, "query", async (ev) => {
    if (ev.payload.attrs.node !== OFFLINE_NODE) return undefined;
    ownSession(ev);
    const account = ev.from.bare;
    const stored = await storedFor(account);
    const query = xml("query", { xmlns: NS.discoItems, node: OFFLINE_NODE });
    for (const message of stored) {
      const from = stanzaFromText(message.xml)?.attrs.from;
      query.append(xml("item", { jid: account.toString(), node: nodeOfSeq(message.seq), name: from }));
    }
    return query;
  }, { targets: ["self", "bare"], priority: NODE_PRIORITY });

  // §2.4 (view) and §2.6 (fetch): reading never deletes.
  m.onIq("get", NS.offline, "offline", async (ev) => {
    const session = ownSession(ev);
    const account = ev.from.bare;
    const children = ev.payload.getChildElements();
    const fetch = children.some((c) => c.name === "fetch");
    const items = children.filter((c) => c.name === "item");
    if (!fetch && items.length === 0) throw new StanzaError("bad-request", "expected <fetch/> or <item action='view'/>");
    if (items.some((i) => i.attrs.action !== "view")) throw new StanzaError("bad-request", "an IQ get may only view messages");
    return deps.serialize(account.toString(), async () => {
      const stored = await storedFor(account);
      sendCopies(session, account, fetch ? stored : named(stored, items));
      return true as const;
    });
  }, { targets: ["self", "bare"] });

  // §2.5 (remove) and §2.7 (purge).
  m.onIq("set", NS.offline, "offline", async (ev) => {
    ownSession(ev);
    const account = ev.from.bare;
    const children = ev.payload.getChildElements();
    const purge = children.some((c) => c.name === "purge");
    const items = children.filter((c) => c.name === "item");
    if (!purge && items.length === 0) throw new StanzaError("bad-request", "expected <purge/> or <item action='remove'/>");
    if (items.some((i) => i.attrs.action !== "remove")) throw new StanzaError("bad-request", "an IQ set may only remove messages");
    return deps.serialize(account.toString(), async () => {
      const stored = await storedFor(account);
      await remove(account, purge ? stored : named(stored, items));
      return true as const;
    });
  }, { targets: ["self", "bare"] });

  return {
    suppressesFlood(session) {
      if (retrieving.has(session)) return true;
      if (!session.jid) return false;
      return m.sessions.resources(session.jid.bare).some((other) => retrieving.has(other) && !deps.closed.has(other));
    },
  };
}
