// XEP-0363 HTTP File Upload 1.1.0, end to end: slots asked for over XMPP, files PUT and fetched
// back over HTTPS on 127.0.0.1, and every refusal a client or an attacker can meet.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { statSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { startTestServer, type TestServer } from "../../support/server.ts";
import { xml, type Element } from "../../../protocol/xml/element.ts";
import type { XmppClient } from "../../../conformance/client/client.ts";
import disco from "../../../server/modules/disco/index.ts";
import upload from "../../../server/modules/upload/index.ts";
import { request, type Reply } from "../http/request.ts";

const NS_UPLOAD = "urn:xmpp:http:upload:0";
const MAX = 12 * 1024 * 1024;
const QUOTA = 13 * 1024 * 1024;

interface Slot {
  put: string;
  get: string;
}

async function askSlot(client: XmppClient, attrs: Record<string, string>, to = "upload.localhost"): Promise<Element> {
  return client.iq(xml("iq", { type: "get", to }, xml("request", { xmlns: NS_UPLOAD, ...attrs })));
}

async function slot(client: XmppClient, filename: string, size: number, contentType?: string): Promise<Slot> {
  const reply = await askSlot(client, { filename, size: String(size), ...(contentType ? { "content-type": contentType } : {}) });
  assert.equal(reply.attrs.type, "result", reply.toString());
  const s = reply.getChild("slot", NS_UPLOAD)!;
  return { put: s.getChild("put")!.attrs.url, get: s.getChild("get")!.attrs.url };
}

function errorOf(reply: Element): { type: string; condition: string; text?: string; error: Element } {
  assert.equal(reply.attrs.type, "error", reply.toString());
  const error = reply.getChild("error")!;
  const condition = error.children.find((c) => typeof c !== "string" && (c as Element).attrs.xmlns === "urn:ietf:params:xml:ns:xmpp-stanzas" && (c as Element).name !== "text") as Element;
  return { type: error.attrs.type, condition: condition.name, text: error.getChildText("text", "urn:ietf:params:xml:ns:xmpp-stanzas") ?? undefined, error };
}

describe("XEP-0363 over a running Parley", () => {
  let t: TestServer;
  let alice: XmppClient;
  const put = (url: string, body: Buffer | string, headers: Record<string, string | number> = {}): Promise<Reply> =>
    request(url, { method: "PUT", body, headers: { "Content-Length": Buffer.byteLength(body), ...headers }, ca: t.ca });
  const get = (url: string, headers: Record<string, string> = {}, method = "GET"): Promise<Reply> => request(url, { method, headers, ca: t.ca });

  before(async () => {
    t = await startTestServer({
      users: ["alice", "bob"],
      modules: [disco, upload],
      toml: `[modules.upload]\nmax_file_size = ${MAX}\nquota_per_user = ${QUOTA}\nslot_lifetime_s = 300\n`,
      adjust: (c) => ({ ...c, domains: ["localhost", "example.org"] }),
    });
    alice = await t.login("alice");
  });
  after(() => t.stop());

  test("the server lists upload.localhost; its disco#info has the feature and max-file-size in a XEP-0128 form", async () => {
    const items = await alice.iq(xml("iq", { type: "get", to: "localhost" }, xml("query", { xmlns: "http://jabber.org/protocol/disco#items" })));
    assert.ok(items.getChild("query")!.getChildren("item").some((i) => i.attrs.jid === "upload.localhost"));
    const info = (await alice.iq(xml("iq", { type: "get", to: "upload.localhost" }, xml("query", { xmlns: "http://jabber.org/protocol/disco#info" })))).getChild("query")!;
    assert.ok(info.getChildren("feature").some((f) => f.attrs.var === NS_UPLOAD));
    assert.equal(info.getChild("identity")!.attrs.category, "store");
    const form = info.getChild("x", "jabber:x:data")!;
    const field = (name: string) => form.getChildren("field").find((f) => f.attrs.var === name)?.getChildText("value");
    assert.equal(field("FORM_TYPE"), NS_UPLOAD);
    assert.equal(field("max-file-size"), String(MAX));
  });

  test("a PNG goes up once and comes back with its type, length, ETag, long caching, nosniff and a sandboxing CSP", async () => {
    const png = randomBytes(3000);
    const s = await slot(alice, "holiday photo.png", png.length, "image/png");
    assert.match(s.get, /^https:\/\/localhost:\d+\/upload\/[A-Za-z0-9_-]{22}\/holiday%20photo\.png$/);
    assert.ok(s.put.startsWith(`${s.get}?`));
    assert.equal((await put(s.put, png, { "Content-Type": "image/png" })).status, 201);
    const reply = await get(s.get);
    assert.equal(reply.status, 200);
    assert.deepEqual(reply.body, png);
    assert.equal(reply.headers["content-type"], "image/png");
    assert.equal(reply.headers["content-length"], String(png.length));
    assert.equal(reply.headers["x-content-type-options"], "nosniff");
    assert.match(String(reply.headers["content-security-policy"]), /default-src 'none'.*sandbox/);
    assert.match(String(reply.headers["cache-control"]), /max-age=31536000/);
    assert.match(String(reply.headers["content-disposition"]), /^inline; filename\*=UTF-8''holiday%20photo\.png$/);
    assert.equal(reply.headers["access-control-allow-origin"], "*");
    const etag = String(reply.headers.etag);

    assert.equal((await get(s.get, { "If-None-Match": etag })).status, 304);
    const head = await get(s.get, {}, "HEAD");
    assert.equal(head.status, 200);
    assert.equal(head.body.length, 0);
    assert.equal(head.headers["content-length"], String(png.length));

    // The slot was single-use.
    assert.equal((await put(s.put, png, { "Content-Type": "image/png" })).status, 403);
    assert.deepEqual((await get(s.get)).body, png);
  });

  test("Range requests: 206 with Content-Range for a range, a suffix and an open end; 416 past the end", async () => {
    const data = Buffer.from("0123456789");
    const s = await slot(alice, "digits.txt", data.length, "text/plain");
    assert.equal((await put(s.put, data, { "Content-Type": "text/plain" })).status, 201);
    const cases: Array<[string, string, string]> = [
      ["bytes=2-4", "234", "bytes 2-4/10"],
      ["bytes=-3", "789", "bytes 7-9/10"],
      ["bytes=8-", "89", "bytes 8-9/10"],
      ["bytes=5-100", "56789", "bytes 5-9/10"],
    ];
    for (const [range, body, contentRange] of cases) {
      const reply = await get(s.get, { Range: range });
      assert.equal(reply.status, 206, range);
      assert.equal(reply.body.toString(), body, range);
      assert.equal(reply.headers["content-range"], contentRange, range);
    }
    const past = await get(s.get, { Range: "bytes=10-" });
    assert.equal(past.status, 416);
    assert.equal(past.headers["content-range"], "bytes */10");
    // An If-Range naming another version gets the whole file.
    assert.equal((await get(s.get, { Range: "bytes=2-4", "If-Range": '"other"' })).status, 200);
  });

  test("0 bytes, 1 byte and 10 MB round-trip; a file without content-type is application/octet-stream, as an attachment", async () => {
    for (const size of [0, 1, 10 * 1024 * 1024]) {
      const data = randomBytes(size);
      const s = await slot(alice, `blob-${size}.bin`, size);
      assert.equal((await put(s.put, data)).status, 201, `size ${size}`);
      const reply = await get(s.get);
      assert.equal(reply.status, 200);
      assert.equal(reply.body.length, size);
      assert.ok(reply.body.equals(data), `size ${size}`);
      assert.equal(reply.headers["content-type"], "application/octet-stream");
      assert.match(String(reply.headers["content-disposition"]), /^attachment; /);
    }
  });

  test("HTML and SVG are served as attachments, never inline", async () => {
    for (const [name, type] of [["page.html", "text/html"], ["pic.svg", "image/svg+xml"]]) {
      const body = "<script>alert(1)</script>";
      const s = await slot(alice, name, body.length, type);
      assert.equal((await put(s.put, body, { "Content-Type": type })).status, 201);
      const reply = await get(s.get);
      assert.equal(reply.headers["content-type"], type);
      assert.match(String(reply.headers["content-disposition"]), /^attachment; /);
      assert.equal(reply.headers["x-content-type-options"], "nosniff");
    }
  });

  test("a file over max-file-size: not-acceptable with <file-too-large><max-size/>", async () => {
    const { type, condition, error } = errorOf(await askSlot(alice, { filename: "big.bin", size: String(MAX + 1) }));
    assert.equal(condition, "not-acceptable");
    assert.equal(type, "modify");
    assert.equal(error.getChild("file-too-large", NS_UPLOAD)?.getChildText("max-size"), String(MAX));
  });

  test("over the per-user quota: resource-constraint with a text; another account is not affected", async () => {
    const bob = await t.login("bob");
    const first = await slot(bob, "a.bin", MAX);
    const { condition, text } = errorOf(await askSlot(bob, { filename: "b.bin", size: String(QUOTA - MAX + 1) }));
    assert.equal(condition, "resource-constraint");
    assert.match(text ?? "", /quota/);
    // Alice's uploads count against her own quota only.
    await slot(alice, "small.bin", 10);
    // Using the reserved slot keeps the space taken.
    assert.equal((await put(first.put, Buffer.alloc(MAX))).status, 201);
    assert.equal(errorOf(await askSlot(bob, { filename: "c.bin", size: String(QUOTA - MAX + 1) })).condition, "resource-constraint");
    await bob.close();
  });

  test("accounts of another domain are forbidden; names with a path and nonsense sizes are bad requests", async () => {
    assert.equal(errorOf(await askSlot(alice, { filename: "x.txt", size: "1" }, "upload.example.org")).condition, "forbidden");
    for (const attrs of [
      { filename: "../../etc/passwd", size: "1" },
      { filename: "..", size: "1" },
      { filename: "a/b", size: "1" },
      { filename: "x.txt", size: "-1" },
      { filename: "x.txt", size: "ten" },
      { size: "1" },
      { filename: "x.txt", size: "1", "content-type": "text/plain\r\nX-Evil: 1" },
    ]) {
      assert.equal(errorOf(await askSlot(alice, attrs as Record<string, string>)).condition, "bad-request", JSON.stringify(attrs));
    }
  });

  test("PUTs that do not match their slot are refused: token, expiry, name, size, content type; the slot still works after", async () => {
    const body = Buffer.from("hello");
    const s = await slot(alice, "hello.txt", body.length, "text/plain");
    const u = new URL(s.put);
    const tampered = new URL(s.put);
    tampered.searchParams.set("t", `${u.searchParams.get("t")!.slice(0, -2)}AA`);
    assert.equal((await put(tampered.toString(), body, { "Content-Type": "text/plain" })).status, 403, "tampered token");
    const later = new URL(s.put);
    later.searchParams.set("e", String(Number(u.searchParams.get("e")) + 3_600_000));
    assert.equal((await put(later.toString(), body, { "Content-Type": "text/plain" })).status, 403, "stretched expiry");
    assert.equal((await put(s.put.replace("hello.txt", "other.txt"), body, { "Content-Type": "text/plain" })).status, 403, "other name");
    assert.equal((await put(s.put, "hello!", { "Content-Type": "text/plain" })).status, 400, "longer body");
    assert.equal((await put(s.put, "hell", { "Content-Type": "text/plain" })).status, 400, "shorter body");
    assert.equal((await put(s.put, body, { "Content-Type": "text/html" })).status, 400, "other type");
    assert.equal((await get(s.get)).status, 404, "nothing stored yet");
    assert.equal((await put(s.put, body, { "Content-Type": "Text/Plain" })).status, 201);
    assert.equal((await get(s.get)).body.toString(), "hello");
  });

  test("bodies over max-file-size get 413 before they are read; unknown ids and paths outside uploads 404", async () => {
    const big = await slot(alice, "x.bin", 1);
    const reply = await request(big.put, { method: "PUT", headers: { "Content-Length": MAX + 1 }, ca: t.ca });
    assert.equal(reply.status, 413);
    const base = new URL(big.get).origin;
    assert.equal((await get(`${base}/upload/${"A".repeat(22)}/x.bin`)).status, 404);
    assert.equal((await get(`${base}/upload/../../etc/passwd`)).status, 404);
    assert.equal((await get(`${base}/upload/%2e%2e/%2e%2e`)).status, 404);
  });

  test("the HMAC secret is stored once under data_dir, readable by the owner only; files live under uploads/", () => {
    const mode = statSync(join(t.config.dataDir, "upload.secret")).mode & 0o777;
    assert.equal(mode, 0o600);
    assert.ok(statSync(join(t.config.dataDir, "uploads")).isDirectory());
  });
});

describe("slot lifetime and public_url", () => {
  test("a slot expires after slot_lifetime_s", async () => {
    const t = await startTestServer({ users: ["alice"], modules: [disco, upload], toml: "[modules.upload]\nslot_lifetime_s = 1\n" });
    try {
      const alice = await t.login("alice");
      const s = await slot(alice, "late.txt", 2, "text/plain");
      await new Promise((r) => setTimeout(r, 1200));
      const reply = await request(s.put, { method: "PUT", body: "hi", headers: { "Content-Type": "text/plain" }, ca: t.ca });
      assert.equal(reply.status, 403);
      assert.match(reply.body.toString(), /expired/);
    } finally {
      await t.stop();
    }
  });


  test("slot URLs use [http] public_url when set", async () => {
    const t = await startTestServer({ users: ["alice"], modules: [disco, upload], toml: '[http]\npublic_url = "https://files.example.com/media/"\n' });
    try {
      const alice = await t.login("alice");
      const s = await slot(alice, "a.txt", 1, "text/plain");
      assert.match(s.get, /^https:\/\/files\.example\.com\/media\/upload\/[A-Za-z0-9_-]{22}\/a\.txt$/);
      assert.ok(s.put.startsWith(`${s.get}?`));
    } finally {
      await t.stop();
    }
  });
});
