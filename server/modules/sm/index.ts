// XEP-0198: Stream Management 1.6.1 (urn:xmpp:sm:3): acknowledgements both ways and session
// resumption.
//
// - Inbound 'h' counts stanzas the server has handled to the end (routed, delivered, or stored
//   by a module that awaited its commit), so an <a/> is never sent for a stanza that could
//   still be lost (see C2sConnection.handledCount).
// - Outbound, every stanza written to the client waits in a queue until the client's <a/>
//   covers it; the server asks with <r/> once a few are outstanding.
// - A connection lost without </stream:stream> keeps its session for `resume_timeout_s` (the
//   client asked for resume="true"): stanzas for it queue up, its contacts see nothing. A new
//   stream of the same account resumes it with <resume previd h/>; the queue beyond h is sent
//   again. If nobody resumes in time, or the stream closes for good, unacknowledged messages
//   are handed to offline storage (`message/offline`), neither bounced nor lost.
// Settings: [modules.sm] resume_timeout_s = 300, max_queue = 5000, request_every = 5.
import { randomBytes } from "node:crypto";
import { Element, xml } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import { SettingsReader } from "../../core/config.ts";
import { defineModule, type ModuleApi } from "../../core/module.ts";
import { OFFLINE_EVENT, type OfflineMessageEvent } from "../message/index.ts";
import type { C2sConnection, NonzaEvent, SessionEvent, StreamFeaturesEvent } from "../../transports/c2s.ts";
import type { ClientSession } from "../../core/sessions.ts";

interface SmState {
  id: string | null;
  /** handledCount of the session when SM was enabled. */
  inboundBase: number;
  /** Stanzas written and not yet acknowledged, oldest first. */
  unacked: Element[];
  /** How many stanzas the client has acknowledged in all (its last h). */
  acked: number;
  /** An <r/> is out and not yet answered. */
  requested: boolean;
  stopObserving: () => void;
}

const STANZAS = new Set(["message", "presence", "iq"]);

function smElement(name: string, attrs: Record<string, string | number | undefined> = {}, ...children: Element[]): Element {
  return xml(name, { xmlns: NS.sm, ...attrs }, ...children);
}

function failed(condition: string, h?: number): Element {
  return smElement("failed", { h }, xml(condition, { xmlns: NS.stanzas }));
}

export default defineModule({
  name: "sm",
  xeps: [{ xep: 198, version: "1.6.1", status: "complete", note: "acks after handling; resumption; unacknowledged messages go to offline storage" }],
  depends: ["message"],
  setup(m) {
    const settings = new SettingsReader(m.config, `modules.${m.name}`);
    const resumeTimeoutS = settings.integer("resume_timeout_s", 0, 86_400, 300);
    const maxQueue = settings.integer("max_queue", 10, 1_000_000, 5000);
    const requestEvery = settings.integer("request_every", 1, 1000, 5);
    settings.finish();

    /** Resumable sessions by stream id. */
    const resumable = new Map<string, ClientSession>();

    const stateOf = (session: ClientSession) => session.data.get("sm") as SmState | undefined;

    const observe = (session: ClientSession, state: SmState) =>
      session.addWriteObserver((el) => {
        if (!STANZAS.has(el.name)) return;
        state.unacked.push(el);
        if (state.unacked.length > maxQueue) {
          session.close("resource-constraint", "too many unacknowledged stanzas");
          return;
        }
        if (!session.hibernating && !state.requested && state.unacked.length >= requestEvery) {
          state.requested = true;
          session.sendNow(smElement("r"));
        }
      });

    /** Applies the client's h; false when it acknowledges more than was sent (§4). */
    const acknowledge = (state: SmState, h: number): boolean => {
      const newly = h - state.acked;
      if (!Number.isInteger(h) || newly < 0 || newly > state.unacked.length) return false;
      state.unacked.splice(0, newly);
      state.acked = h;
      state.requested = false;
      return true;
    };

    const parseH = (el: Element): number => {
      const raw = el.attrs.h ?? "";
      return /^\d{1,10}$/.test(raw) ? Number(raw) : NaN;
    };

    m.hook<StreamFeaturesEvent>("c2s/features", ({ features }) => {
      features.append(smElement("sm"));
    });

    m.hook<NonzaEvent>("c2s/nonza", async ({ session, element }) => {
      if (element.getNS() !== NS.sm) return false;
      const state = stateOf(session);
      switch (element.getName()) {
        case "enable": {
          if (state) {
            session.sendNow(failed("unexpected-request"));
            return true;
          }
          const wantsResume = element.attrs.resume === "true" || element.attrs.resume === "1";
          // 'h' counts what the client sent after <enable/> (§4): a stanza sent before it may
          // still wait for its writes to commit, and must be counted before the base is taken.
          await (session as C2sConnection).settled();
          const fresh: SmState = { id: null, inboundBase: session.handledCount, unacked: [], acked: 0, requested: false, stopObserving: () => {} };
          session.data.set("sm", fresh);
          fresh.stopObserving = observe(session, fresh);
          const attrs: Record<string, string | number | undefined> = {};
          if (wantsResume && resumeTimeoutS > 0) {
            fresh.id = randomBytes(18).toString("base64url");
            resumable.set(fresh.id, session);
            session.resumeTimeoutMs = resumeTimeoutS * 1000;
            attrs.id = fresh.id;
            attrs.resume = "true";
            attrs.max = resumeTimeoutS;
          }
          session.sendNow(smElement("enabled", attrs));
          return true;
        }
        case "r":
          if (!state) return false;
          // Count everything before this <r/> that has reached the disk or the recipient.
          await (session as C2sConnection).settled();
          session.sendNow(smElement("a", { h: (session.handledCount - state.inboundBase) % 2 ** 32 }));
          return true;
        case "a":
          if (!state) return false;
          if (!acknowledge(state, parseH(element))) {
            session.close("undefined-condition", "the acknowledged count is higher than what was sent");
          }
          return true;
        default:
          return false;
      }
    });

    // <resume/> comes after authentication and instead of binding (§5).
    m.hook<NonzaEvent>("c2s/nonza-unbound", async ({ session, element }) => {
      if (element.getNS() !== NS.sm) return false;
      const conn = session as C2sConnection;
      if (element.getName() === "enable") {
        session.sendNow(failed("unexpected-request"));
        return true;
      }
      if (element.getName() !== "resume") return false;
      const previous = resumable.get(element.attrs.previd ?? "") as C2sConnection | undefined;
      const prevState = previous ? stateOf(previous) : undefined;
      if (!previous || !prevState || !conn.account || !previous.jid?.bare.equals(conn.account)) {
        session.sendNow(failed("item-not-found"));
        return true;
      }
      const h = parseH(element);
      if (!acknowledge(prevState, h)) {
        session.sendNow(failed("undefined-condition"));
        return true;
      }
      resumable.delete(prevState.id!);
      // resumeFrom fires c2s/resuming, where CSI releases what it held: those stanzas are
      // written to `previous` and must still land in its queue, so observation stops after.
      await conn.resumeFrom(previous);
      prevState.stopObserving();
      // A new id for the new stream: the old one must not resume twice.
      prevState.id = randomBytes(18).toString("base64url");
      resumable.set(prevState.id, session);
      const pending = prevState.unacked.splice(0);
      prevState.requested = false;
      prevState.stopObserving = observe(session, prevState);
      session.sendNow(smElement("resumed", { previd: element.attrs.previd, h: (session.handledCount - prevState.inboundBase) % 2 ** 32 }));
      for (const stanza of pending) session.sendNow(stanza);
      return true;
    });

    // The session is gone for good: what the client never acknowledged goes to offline storage.
    m.hook<SessionEvent>("c2s/closed", async ({ session }) => {
      const state = stateOf(session);
      if (!state) return false;
      if (state.id && resumable.get(state.id) === session) resumable.delete(state.id);
      state.stopObserving();
      const pending = state.unacked.splice(0);
      await rescue(m, session, pending);
      return false;
    }, 10);
  },
});

/** Hands unacknowledged messages to offline storage, in order; other stanzas are dropped. */
async function rescue(m: ModuleApi, session: ClientSession, pending: Element[]): Promise<void> {
  const account = session.jid?.bare;
  if (!account) return;
  for (const stanza of pending) {
    if (stanza.name !== "message") continue;
    const type = stanza.attrs.type ?? "normal";
    if (type !== "chat" && type !== "normal") continue;
    try {
      const stored = await m.fire<OfflineMessageEvent>(OFFLINE_EVENT, { stanza, to: account });
      if (!stored) m.log.info({ to: account.toString() }, "an unacknowledged message had nowhere to go");
    } catch (err) {
      m.log.error({ err }, "storing an unacknowledged message failed");
    }
  }
}
