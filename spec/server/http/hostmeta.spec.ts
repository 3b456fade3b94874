// XEP-0156 §3: /.well-known/host-meta (XRD) and host-meta.json name the RFC 7395 WebSocket and
// XEP-0206 BOSH endpoints; http.public_url replaces the derived base.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startTestServer, type TestServer } from "../../support/server.ts";
import { parseStandalone } from "../../../protocol/xml/standalone.ts";
import { request } from "./request.ts";

describe("host-meta", () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ modules: [] });
  });
  after(async () => {
    await t.stop();
  });

  test("the XRD over plain HTTP from loopback names ws:// and http:// endpoints on this server", async () => {
    const res = await request(`http://localhost:${t.httpPort}/.well-known/host-meta`);
    assert.equal(res.status, 200);
    assert.match(String(res.headers["content-type"]), /^application\/xrd\+xml/);
    assert.equal(res.headers["access-control-allow-origin"], "*");
    const xrd = parseStandalone(res.body.toString().replace(/^<\?xml[^>]*\?>\s*/, ""), "");
    assert.ok(xrd);
    assert.equal(xrd.getNS(), "http://docs.oasis-open.org/ns/xri/xrd-1.0");
    const links = Object.fromEntries(xrd.getChildren("Link").map((l) => [l.attrs.rel, l.attrs.href]));
    assert.equal(links["urn:xmpp:alt-connections:websocket"], `ws://127.0.0.1:${t.httpPort}/xmpp-websocket`);
    assert.equal(links["urn:xmpp:alt-connections:xbosh"], `http://127.0.0.1:${t.httpPort}/http-bind`);
  });

  test("the JSON over HTTPS names wss:// and https:// endpoints for the domain", async () => {
    const res = await request(`https://localhost:${t.httpsPort}/.well-known/host-meta.json`, { ca: t.ca });
    assert.equal(res.status, 200);
    const doc = JSON.parse(res.body.toString()) as { links: Array<{ rel: string; href: string }> };
    assert.deepEqual(doc.links, [
      { rel: "urn:xmpp:alt-connections:websocket", href: `wss://localhost:${t.httpsPort}/xmpp-websocket` },
      { rel: "urn:xmpp:alt-connections:xbosh", href: `https://localhost:${t.httpsPort}/http-bind` },
    ]);
  });
});

describe("host-meta behind a proxy", () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ modules: [], toml: "[http]\npublic_url = \"https://chat.example.net/xmpp\"\nbosh = false\n" });
  });
  after(async () => {
    await t.stop();
  });

  test("public_url is the base, and a disabled transport is not named", async () => {
    const res = await request(`http://127.0.0.1:${t.httpPort}/.well-known/host-meta.json`);
    const doc = JSON.parse(res.body.toString()) as { links: Array<{ rel: string; href: string }> };
    assert.deepEqual(doc.links, [{ rel: "urn:xmpp:alt-connections:websocket", href: "wss://chat.example.net/xmpp/xmpp-websocket" }]);
    const bosh = await request(`http://127.0.0.1:${t.httpPort}/http-bind`, { method: "POST", body: "<body/>" });
    assert.equal(bosh.status, 404);
  });
});
