// XEP-0352: Client State Indication 1.0.0 (urn:xmpp:csi:0): a client that says it is inactive
// (a phone in a pocket) is spared what can wait, and gets it, folded, when it is active again.
//
// - §4.1: the <csi/> stream feature is offered once the client has authenticated.
// - §4.2: <active/> and <inactive/> arrive as nonzas, in order with the client's stanzas (the
//   c2s transport handles one element at a time, as §5.1 asks). A stream starts active, and a
//   new or resumed stream never inherits an old one's state (§5.2). Repeating a state is harmless.
// - While inactive, an outgoing filter (ClientSession.addOutgoingFilter) sorts what the server
//   sends by the rules in urgency.ts: urgent stanzas go out at once, after everything held before
//   them; presence and chat states are folded; the rest is held in order. <active/> sends
//   everything held, in order. The queue is bounded: once `[modules.csi] max_held` stanzas
//   (500 by default) are held, all of them go out, so memory stays bounded and nothing waits
//   forever behind a flood.
// - Held stanzas are released with sendNow: XEP-0198's write observer sees them then, when they
//   are really written, but filters added after this one never do. So the filter is added when
//   the client goes inactive and removed when it comes back, after whatever filters the session
//   already had.
// - A lost connection ends the inactive state: when the session hibernates for XEP-0198
//   resumption (`c2s/hibernating`), everything held is released with sendNow, where stream
//   management's write observer queues it as unacknowledged: it is sent again on the resumed
//   stream, or handed to offline storage if nobody resumes. The resumed stream starts active
//   (§5.2: the state is not restored); `c2s/resuming` makes sure of that when a stream takes
//   over a session whose old connection the server still thought open. Stream management has
//   stopped observing that old connection by then, so what it held is lost in that rare case.
// - What is still held when a stream closes for good (</stream:stream>) is lost with it, like
//   what sits in a closed socket's buffer: presence and chat states are stale by then; receipts,
//   markers and messages are in the archive (XEP-0313), where clients catch up from anyway.
import { xml, type Element } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import { SettingsReader } from "../../core/config.ts";
import { defineModule } from "../../core/module.ts";
import type { ClientSession } from "../../core/sessions.ts";
import type { NonzaEvent, ResumeEvent, SessionEvent, StreamFeaturesEvent } from "../../transports/c2s.ts";
import { disposition } from "./urgency.ts";

export { disposition, type Disposition } from "./urgency.ts";

const MODULE = "csi";

/** The state of a session that said <inactive/>; absent while it is active. */
class InactiveSession {
  /** Held stanzas in the order they will go out; folded ones are keyed by what they fold on. */
  private readonly held = new Map<string, Element>();
  private sequence = 0;
  private readonly removeFilter: () => void;

  constructor(
    private readonly session: ClientSession,
    private readonly maxHeld: number,
  ) {
    this.removeFilter = session.addOutgoingFilter((stanza) => this.filter(stanza));
  }

  private filter(stanza: Element): boolean {
    const d = disposition(stanza);
    if (d.kind === "pass") return true;
    if (d.kind === "urgent") {
      this.flush();
      return true;
    }
    const key = d.kind === "fold" ? d.key : `\u0001${++this.sequence}`;
    // Deleting first moves a folded stanza to the end: the newest goes after what preceded it.
    this.held.delete(key);
    this.held.set(key, stanza);
    if (this.held.size >= this.maxHeld) this.flush();
    return false;
  }

  /** Writes everything held, in order. */
  flush(): void {
    const stanzas = [...this.held.values()];
    this.held.clear();
    for (const stanza of stanzas) this.session.sendNow(stanza);
  }

  /** Back to active: everything held goes out and the filter goes away. */
  end(): void {
    this.removeFilter();
    this.flush();
  }
}

/** Whether the client of `session` has said it is inactive. */
export function isInactive(session: ClientSession): boolean {
  return session.data.get(MODULE) instanceof InactiveSession;
}

/** The session is active again: everything held goes out. */
function becomeActive(session: ClientSession): void {
  const state = session.data.get(MODULE);
  if (!(state instanceof InactiveSession)) return;
  session.data.delete(MODULE);
  state.end();
}

export default defineModule({
  name: MODULE,
  xeps: [{ xep: 352, version: "1.0.0", status: "complete", note: "presence and chat states folded, urgent stanzas flush the queue" }],
  setup(m) {
    const settings = new SettingsReader(m.config, `modules.${m.name}`);
    const maxHeld = settings.integer("max_held", 1, 100_000, 500);
    settings.finish();

    m.hook<StreamFeaturesEvent>("c2s/features", ({ features }) => {
      features.append(xml("csi", { xmlns: NS.csi }));
    });

    m.hook<NonzaEvent>("c2s/nonza", ({ session, element }) => {
      if (element.getNS() !== NS.csi) return false;
      const state = session.data.get(MODULE);
      if (element.name === "inactive") {
        if (!(state instanceof InactiveSession)) session.data.set(MODULE, new InactiveSession(session, maxHeld));
        return true;
      }
      if (element.name === "active") {
        becomeActive(session);
        return true;
      }
      return false;
    });

    m.hook<SessionEvent>("c2s/hibernating", ({ session }) => becomeActive(session));
    // Before the old session's module state is carried over to the stream that resumes it.
    m.hook<ResumeEvent>("c2s/resuming", ({ previous }) => becomeActive(previous));
  },
});
