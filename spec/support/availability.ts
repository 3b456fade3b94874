// Test support: a stand-in for the presence module's bookkeeping of RFC 6121 §4.2 (initial
// presence makes a resource available, §4.7.2.3 with its priority) and §4.5 (unavailable ends
// it), for specs of modules that read session.presence but must not depend on presence itself.
// It records and nothing else: no broadcast, no probes, no last activity.
import { defineModule } from "../../server/core/module.ts";

export const availability = defineModule({
  name: "spec-availability",
  xeps: [],
  setup(m) {
    m.hook("presence/self", (ev) => {
      if (!ev.origin) return false;
      if (ev.stanza.attrs.type === "unavailable") {
        ev.origin.presence = null;
        ev.origin.priority = 0;
      } else if (ev.stanza.attrs.type === undefined) {
        ev.origin.presence = ev.stanza;
        ev.origin.priority = Number(ev.stanza.getChildText("priority") ?? "0");
      }
      return true;
    });
  },
});
