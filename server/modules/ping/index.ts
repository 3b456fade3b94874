// XEP-0199: XMPP Ping 2.0.1, both ways. Answers pings to the server and on behalf of accounts
// (§4.2, §4.3), and pings every client session itself (§4.1, server-to-client) so that a
// connection whose peer vanished without closing TCP is noticed: a client that answers neither
// a result nor an error within `timeout_s` is closed with <connection-timeout/>.
// Settings: [modules.ping] interval_s = 300 (0 turns server pings off), timeout_s = 60.
import { xml } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import { SettingsReader } from "../../core/config.ts";
import { defineModule, type ModuleApi } from "../../core/module.ts";
import type { ClientSession } from "../../core/sessions.ts";

async function pingSession(m: ModuleApi, session: ClientSession, timeoutMs: number): Promise<void> {
  const jid = session.jid;
  if (!jid) return;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), timeoutMs);
    timer.unref();
  });
  // Any answer, even an error (§4.1: a client that does not support ping), proves the peer is there.
  const answer = m.request(xml("iq", { type: "get", from: jid.domain, to: jid.toString() }, xml("ping", { xmlns: NS.ping }))).then(
    () => "answered" as const,
    () => "timeout" as const,
  );
  const outcome = await Promise.race([answer, timeout]);
  clearTimeout(timer);
  if (outcome === "timeout" && m.sessions.get(jid) === session) {
    m.log.info({ jid: jid.toString() }, "no answer to ping: closing");
    session.close("connection-timeout", "no answer to ping");
  }
}

export default defineModule({
  name: "ping",
  xeps: [{ xep: 199, version: "2.0.1", status: "complete", note: "answers pings, and pings idle clients to find dead connections" }],
  setup(m) {
    const settings = new SettingsReader(m.config, `modules.${m.name}`);
    const intervalS = settings.integer("interval_s", 0, 86_400, 300);
    const timeoutS = settings.integer("timeout_s", 1, 3_600, 60);
    settings.finish();

    m.addFeature(NS.ping);
    m.onIq("get", NS.ping, "ping", () => true, { targets: ["host", "self"] });

    if (intervalS > 0) {
      m.timer(intervalS * 1000, () => {
        for (const session of m.sessions.all()) void pingSession(m, session, timeoutS * 1000);
      }, { repeat: true });
    }
  },
});
