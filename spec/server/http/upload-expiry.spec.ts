// XEP-0363 uploads expire: past [modules.upload] file_lifetime_s a file is no longer served and
// the periodic cleaner deletes it from data_dir/uploads (and from the uploader's quota).
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { xml } from "../../../protocol/xml/element.ts";
import { startTestServer } from "../../support/server.ts";
import disco from "../../../server/modules/disco/index.ts";
import upload from "../../../server/modules/upload/index.ts";
import { request } from "./request.ts";

const NS_UPLOAD = "urn:xmpp:http:upload:0";

test("a file past file_lifetime_s is gone: not served, deleted by the cleaner", async () => {
  const t = await startTestServer({ users: ["alice"], modules: [disco, upload], toml: "[modules.upload]\nfile_lifetime_s = 2\ncleanup_interval_s = 1\n" });
  try {
    const alice = await t.login("alice");
    const reply = await alice.iq(xml("iq", { type: "get", to: "upload.localhost" }, xml("request", { xmlns: NS_UPLOAD, filename: "note.txt", size: "5", "content-type": "text/plain" })));
    const slot = reply.getChild("slot", NS_UPLOAD)!;
    const put = slot.getChild("put")!.attrs.url;
    const get = slot.getChild("get")!.attrs.url;
    const stored = await request(put, { method: "PUT", body: "hello", headers: { "Content-Type": "text/plain", "Content-Length": 5 }, ca: t.ca });
    assert.equal(stored.status, 201);
    const fresh = await request(get, { ca: t.ca });
    assert.equal(fresh.body.toString(), "hello");
    assert.match(String(fresh.headers["cache-control"]), /max-age=[0-2],/, "caches keep it no longer than it lives");
    const id = new URL(get).pathname.split("/")[2];
    const file = join(t.config.dataDir, "uploads", id);
    assert.ok(existsSync(file));
    for (let i = 0; i < 50 && existsSync(file); i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(existsSync(file), false, "the cleaner deleted the file");
    assert.equal(existsSync(`${file}.json`), false);
    assert.equal((await request(get, { ca: t.ca })).status, 404);
  } finally {
    await t.stop();
  }
});
