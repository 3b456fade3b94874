// XEP-0202: Entity Time 2.0, answered for the server: its offset from UTC (tzo) and the time
// in UTC (utc), both in the XEP-0082 profiles.
import { NS } from "../../../protocol/ns.ts";
import { xml } from "../../../protocol/xml/element.ts";
import { formatDateTime } from "../../../protocol/datetime.ts";
import { defineModule } from "../../core/module.ts";

/** XEP-0082 TZD "±hh:mm" of the server's local zone at `now` ("+00:00" for UTC, never "Z"). */
export function timezoneOffset(now: Date): string {
  // getTimezoneOffset() is UTC minus local time, so its sign is the opposite of the TZD's.
  const minutes = -now.getTimezoneOffset();
  const abs = Math.abs(minutes);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${minutes < 0 ? "-" : "+"}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

export default defineModule({
  name: "time",
  xeps: [{ xep: 202, version: "2.0", status: "complete" }],
  setup(m) {
    m.addFeature(NS.time);
    m.onIq("get", NS.time, "time", () => {
      const now = new Date();
      return xml("time", { xmlns: NS.time }, xml("tzo", {}, timezoneOffset(now)), xml("utc", {}, formatDateTime(now)));
    });
  },
});
