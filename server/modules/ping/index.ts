// XEP-0199: XMPP Ping 2.0.1. Answers pings to the server and on behalf of accounts.
import { defineModule } from "../../core/module.ts";
import { NS } from "../../../protocol/ns.ts";

export default defineModule({
  name: "ping",
  xeps: [{ xep: 199, version: "2.0.1", status: "complete" }],
  setup(m) {
    m.addFeature(NS.ping);
    m.onIq("get", NS.ping, "ping", () => true, { targets: ["host", "self"] });
  },
});
