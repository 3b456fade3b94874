import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { xml } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import { startTestServer, type TestServer } from "../../support/server.ts";
import ping from "../../../server/modules/ping/index.ts";

let t: TestServer;
before(async () => {
  t = await startTestServer({ users: ["romeo", "juliet"], modules: [ping], toml: "[modules.ping]\ninterval_s = 1\ntimeout_s = 1\n" });
});
after(async () => {
  await t.stop();
});

test("the server and accounts answer pings (XEP-0199 §4.2, §4.3)", async () => {
  const c = await t.login("romeo");
  for (const to of ["localhost", undefined]) {
    const r = await c.iq(xml("iq", { type: "get", to }, xml("ping", { xmlns: NS.ping })));
    assert.equal(r.attrs.type, "result");
  }
  await c.close();
});

test("the server pings clients; one that answers stays, one that never answers is closed", async () => {
  const answering = await t.login("romeo", { resource: "alive" });
  const silent = await t.login("juliet", { resource: "dead" });
  // `answering` replies to every ping the server sends; `silent` ignores them.
  const reply = async () => {
    for (;;) {
      const p = await answering.next((el) => el.name === "iq" && el.attrs.type === "get" && !!el.getChild("ping", NS.ping), 10_000);
      assert.equal(p.attrs.from, "localhost");
      answering.send(xml("iq", { type: "result", id: p.attrs.id, to: p.attrs.from }));
    }
  };
  void reply().catch(() => {});
  const ping = await silent.next((el) => !!el.getChild("ping", NS.ping));
  assert.equal(ping.attrs.to, silent.jid);
  assert.equal((await silent.waitClosed(5000))?.condition, "connection-timeout");
  // Two more rounds later the answering client is still served.
  await new Promise((r) => setTimeout(r, 2500));
  const r = await answering.iq(xml("iq", { type: "get", to: "localhost" }, xml("ping", { xmlns: NS.ping })));
  assert.equal(r.attrs.type, "result");
  answering.destroy();
});
