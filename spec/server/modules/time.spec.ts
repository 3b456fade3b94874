// End-to-end specs for server/modules/time: XEP-0202 2.0 entity time of the server.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { startTestServer, type TestServer } from "../../support/server.ts";
import { xml } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import { parseDateTime } from "../../../protocol/datetime.ts";
import time, { timezoneOffset } from "../../../server/modules/time/index.ts";

let t: TestServer;
before(async () => {
  t = await startTestServer({ users: ["romeo"], modules: [time] });
});
after(async () => {
  await t.stop();
});

test("the server tells its UTC time and its zone offset", async () => {
  const c = await t.login("romeo");
  const before = Date.now();
  const r = await c.iq(xml("iq", { type: "get", to: "localhost" }, xml("time", { xmlns: NS.time })));
  const afterwards = Date.now();
  assert.equal(r.attrs.type, "result");
  const answer = r.getChild("time", NS.time)!;
  const utc = answer.getChildText("utc")!;
  assert.match(utc, /Z$/, "utc is in UTC");
  const stamp = parseDateTime(utc);
  assert.ok(stamp, `${utc} is a XEP-0082 DateTime`);
  // The clock read lies between the request and the answer (to the second the stamp carries).
  assert.ok(stamp.getTime() >= Math.floor(before / 1000) * 1000 && stamp.getTime() <= afterwards, utc);
  const tzo = answer.getChildText("tzo")!;
  assert.match(tzo, /^[+-]\d{2}:\d{2}$/);
  assert.equal(tzo, timezoneOffset(stamp));
  await c.close();
});

test("the offset is written the XEP-0082 way, with the sign of local minus UTC", () => {
  const at = (offsetMinutes: number) => ({ getTimezoneOffset: () => offsetMinutes }) as Date;
  assert.equal(timezoneOffset(at(0)), "+00:00");
  assert.equal(timezoneOffset(at(-330)), "+05:30", "India, UTC+5:30");
  assert.equal(timezoneOffset(at(360)), "-06:00", "CST, UTC-6");
  assert.equal(timezoneOffset(at(-765)), "+12:45", "Chatham, UTC+12:45");
});
