// A real browser against Parley's web transports: Debian's chromium, driven by playwright-core,
// loads the converse.js web client from a page this test serves on 127.0.0.1, logs in over
// WebSocket (RFC 7395), exchanges messages with a second user on a TCP client, uploads an image
// (XEP-0363) that the second user fetches, and logs in again over BOSH (XEP-0206).
//
// The browser never leaves this machine: --host-resolver-rules maps every name but localhost
// and 127.* to nothing, and a route aborts every request that is not to 127.x or localhost.
// A screenshot of each session is kept under $TMPDIR/parley-spec-artefacts/ (not in the tree).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { extname, join, normalize, resolve } from "node:path";
import type { AddressInfo } from "node:net";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { xml, type Element } from "../../protocol/xml/element.ts";
import { parseJid } from "../../protocol/jid.ts";
import { startTestServer, type TestServer } from "../support/server.ts";
import { request } from "../server/http/request.ts";
import type { C2sConnection } from "../../server/transports/c2s.ts";

const CHROMIUM = "/usr/bin/chromium";
const DIST = resolve("node_modules/converse.js/dist");
const ARTEFACTS = join(tmpdir(), "parley-spec-artefacts");

/** Installs Debian's chromium when it is missing; the reason to skip when apt cannot. */
function ensureChromium(): string | null {
  if (existsSync(CHROMIUM)) return null;
  const run = spawnSync("apt-get", ["install", "-y", "chromium"], { stdio: "ignore", timeout: 600_000, env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
  if (existsSync(CHROMIUM)) return null;
  return `chromium is not installed and apt-get could not install it (exit ${run.status ?? run.error?.message})`;
}

const skipReason = ensureChromium();

// A 48x48 PNG, a red and blue chequerboard.
const PNG = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAADAAAAAwCAIAAADYYG7QAAAATklEQVR42u3XsQ0AIAgEQEZiJEdmJEdAEqPNJV8/1wGRq9pUZptbPQEEBAQEBDQEvRx20gMEBAQEBDQF2fZAQEBAQP4y5wcQEBAQ0FfQBgsGiKZelMTQAAAAAElFTkSuQmCC",
  "base64",
);

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".css": "text/css", ".json": "application/json",
  ".wasm": "application/wasm", ".svg": "image/svg+xml", ".png": "image/png", ".woff2": "font/woff2", ".woff": "font/woff",
  ".ttf": "font/ttf", ".mp3": "audio/mpeg", ".ogg": "audio/ogg", ".map": "application/json",
};

/** The page: converse.js from node_modules, configured by query string. */
function page(): string {
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>Parley web client test</title>
<link rel="stylesheet" href="/dist/converse.min.css">
</head>
<body class="converse-fullscreen"><div id="conversejs-bg"></div>
<script type="module">
  import converse from "/dist/converse.min.js";
  const q = new URLSearchParams(location.search);
  converse.plugins.add("parley-test", { initialize() { window.parleyTest = this._converse; } });
  const options = {
    assets_path: "/dist/",
    jid: q.get("jid"),
    password: q.get("password"),
    auto_login: true,
    auto_reconnect: false,
    discover_connection_methods: false,
    view_mode: "fullscreen",
    play_sounds: false,
    show_desktop_notifications: false,
    allow_non_roster_messaging: true,
    persistent_store: "sessionStorage",
    omemo_default: false,
    whitelisted_plugins: ["parley-test"],
    loglevel: "info",
  };
  if (q.get("ws")) options.websocket_url = q.get("ws");
  if (q.get("bosh")) options.bosh_service_url = q.get("bosh");
  converse.initialize(options);
</script></body></html>`;
}

function servePage(): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    if (path === "/" || path === "/index.html") {
      res.writeHead(200, { "Content-Type": TYPES[".html"] }).end(page());
      return;
    }
    if (path.startsWith("/dist/")) {
      const file = normalize(join(DIST, decodeURIComponent(path.slice("/dist/".length))));
      if (file.startsWith(DIST) && existsSync(file) && statSync(file).isFile()) {
        res.writeHead(200, { "Content-Type": TYPES[extname(file)] ?? "application/octet-stream" }).end(readFileSync(file));
        return;
      }
    }
    res.writeHead(404).end();
  });
  return new Promise((ok) => server.listen(0, "127.0.0.1", () => ok(server)));
}

const isBody = (body: string) => (el: Element) => el.name === "message" && el.getChildText("body") === body;

describe("converse.js in chromium", { skip: skipReason ?? false }, () => {
  let t: TestServer;
  let pages: http.Server;
  let pageBase: string;
  const contexts: BrowserContext[] = [];
  const profiles: string[] = [];
  const consoleLines: string[] = [];

  before(async () => {
    t = await startTestServer({
      users: ["alice", "bob"],
      // Plain HTTP only: upload URLs on 127.0.0.1 that the browser can fetch without our CA.
      toml: "[http]\ntls_port = 0\n",
    });
    pages = await servePage();
    pageBase = `http://127.0.0.1:${(pages.address() as AddressInfo).port}/`;
    mkdirSync(ARTEFACTS, { recursive: true });
  });

  after(async () => {
    for (const c of contexts) await c.close().catch(() => {});
    await new Promise((ok) => pages?.close(ok));
    await t?.stop();
    for (const dir of profiles) rmSync(dir, { recursive: true, force: true });
  });

  async function open(query: Record<string, string>): Promise<Page> {
    // A fresh profile (playwright's userDataDir is chromium's --user-data-dir) per browser.
    const profile = mkdtempSync(join(tmpdir(), "parley-chromium-"));
    profiles.push(profile);
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1100, height: 760 },
      args: [
        "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync",
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.*",
      ],
    });
    contexts.push(context);
    const p = context.pages()[0] ?? (await context.newPage());
    // What the page said, to explain a failure.
    p.on("console", (m) => consoleLines.push(`${m.type()}: ${m.text()}`.slice(0, 500)));
    p.on("pageerror", (e) => consoleLines.push(`pageerror: ${e.message}`));
    p.on("requestfailed", (r) => consoleLines.push(`requestfailed: ${r.url()} ${r.failure()?.errorText ?? ""}`));
    // Nothing but this machine: every other request is aborted.
    await p.route("**/*", (route) => {
      const host = new URL(route.request().url()).hostname;
      if (host === "localhost" || /^127\./.test(host)) return route.continue();
      return route.abort("blockedbyclient");
    });
    await p.goto(`${pageBase}?${new URLSearchParams(query)}`);
    return p;
  }

  function sessionOf(jid: string, via: string): C2sConnection | undefined {
    return t.server.sessions.resources(parseJid(jid)).find((s) => (s as C2sConnection).via === via) as C2sConnection | undefined;
  }

  async function waitFor<T>(what: string, fn: () => T | undefined, ms = 30_000): Promise<T> {
    for (let i = 0; i < ms / 100; i++) {
      const v = fn();
      if (v) return v;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`timed out waiting for ${what}; the page said:\n${consoleLines.slice(-40).join("\n")}`);
  }

  test("logs in over WebSocket, chats with a TCP client and uploads an image the other user fetches", async () => {
    const bob = await t.login("bob", { resource: "tcp" });
    bob.send(xml("presence", {}));
    const p = await open({ jid: "alice@localhost", password: "pass-alice", ws: `ws://127.0.0.1:${t.httpPort}/xmpp-websocket` });
    const session = await waitFor("alice over WebSocket", () => sessionOf("alice@localhost", "websocket"));
    assert.equal(session.secure, true, "loopback WebSocket counts as confidential");

    // Alice opens a chat with bob and writes in converse's message box.
    await p.waitForFunction(() => (globalThis as unknown as { parleyTest?: unknown }).parleyTest !== undefined);
    await p.evaluate(async () => {
      const c = (globalThis as unknown as { parleyTest: { api: { chats: { open(jid: string): Promise<unknown> } } } }).parleyTest;
      await c.api.chats.open("bob@localhost");
    });
    const textarea = p.locator("converse-chats .chat-textarea").first();
    await textarea.waitFor({ timeout: 20_000 });
    await textarea.fill("hello from the browser");
    await textarea.press("Enter");
    const got = await bob.next(isBody("hello from the browser"), 20_000);
    assert.match(got.attrs.from ?? "", /^alice@localhost\//);

    bob.send(xml("message", { to: "alice@localhost", type: "chat" }, xml("body", {}, "hello from TCP")));
    await p.locator(".chat-msg__text", { hasText: "hello from TCP" }).first().waitFor({ timeout: 20_000 });

    // The paperclip's file input: converse asks upload.localhost for a slot, PUTs, then sends the URL.
    await p.locator("converse-chats input.fileupload").first().setInputFiles({ name: "dot.png", mimeType: "image/png", buffer: PNG });
    const shared = await bob.next((el) => el.name === "message" && /\/upload\//.test(el.getChildText("body") ?? ""), 30_000);
    const link = shared.getChildText("body")!.trim();
    assert.equal(shared.getChild("x", "jabber:x:oob")?.getChildText("url"), link);
    const fetched = await request(link);
    assert.equal(fetched.status, 200);
    assert.equal(fetched.headers["content-type"], "image/png");
    assert.deepEqual(fetched.body, PNG);

    // Alice's own page shows the uploaded image, loaded back from Parley.
    const shown = p.locator(`img[src="${link}"]`).first();
    await shown.waitFor({ timeout: 20_000 });
    await p.waitForFunction(
      (src) => {
        type Img = { src: string; complete: boolean; naturalWidth: number };
        const doc = (globalThis as unknown as { document: { querySelectorAll(s: string): Iterable<Img> } }).document;
        return [...doc.querySelectorAll("img")].some((i) => i.src === src && i.complete && i.naturalWidth === 48);
      },
      link,
      { timeout: 20_000 },
    );
    await p.screenshot({ path: join(ARTEFACTS, "converse-websocket.png") });
    await bob.close();
  });

  test("logs in over BOSH", async () => {
    const bob = await t.login("bob", { resource: "tcp2" });
    bob.send(xml("presence", {}));
    const p = await open({ jid: "alice@localhost/bosh", password: "pass-alice", bosh: `http://127.0.0.1:${t.httpPort}/http-bind` });
    await waitFor("alice over BOSH", () => sessionOf("alice@localhost", "bosh"));
    bob.send(xml("message", { to: "alice@localhost", type: "chat" }, xml("body", {}, "hello over BOSH")));
    await p.waitForFunction(() => (globalThis as unknown as { parleyTest?: unknown }).parleyTest !== undefined);
    await p.evaluate(async () => {
      const c = (globalThis as unknown as { parleyTest: { api: { chats: { open(jid: string): Promise<unknown> } } } }).parleyTest;
      await c.api.chats.open("bob@localhost");
    });
    await p.locator(".chat-msg__text", { hasText: "hello over BOSH" }).first().waitFor({ timeout: 20_000 });
    await p.screenshot({ path: join(ARTEFACTS, "converse-bosh.png") });
    await bob.close();
  });
});
