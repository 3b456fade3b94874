// Module dependencies (DESIGN.md "Modules", ModuleDefinition.depends): avatars need pep and
// vcard, bookmarks need pep and private. Turning off pep (or vcard, or private) in
// `[modules] disabled` leaves the modules that need it out, with one log line each saying why,
// instead of failing the start; what is left out is not advertised in disco (XEP-0030).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { startTestServer, type TestServer } from "../../support/server.ts";
import { accountsOn } from "../../support/accounts.ts";
import { assertError } from "../../support/stanzas.ts";
import { xml } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import { parseConfig } from "../../../server/core/config.ts";
import { Server } from "../../../server/core/server.ts";
import { openDatabase } from "../../../server/core/storage/index.ts";
import { defineModule } from "../../../server/core/module.ts";
import { builtinModules } from "../../../server/modules/index.ts";

const AVATAR_FEATURES = ["urn:xmpp:pep-vcard-conversion:0"];
const BOOKMARK_FEATURES = [NS.bookmarksCompat, `${NS.bookmarks}#compat-pep`];

describe('a server started with [modules] disabled = ["pep"]', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ toml: '\n[modules]\ndisabled = ["pep"]\n' });
  });
  after(async () => {
    await t?.stop();
  });
  const accounts = accountsOn(() => t);

  test("starts without pep, avatar and bookmarks, and keeps vcard and private", () => {
    const loaded = t.server.loaded.map((d) => d.name);
    for (const name of ["pep", "avatar", "bookmarks"]) assert.ok(!loaded.includes(name), `${name} is not loaded`);
    for (const name of ["vcard", "private", "roster", "disco", "muc"]) assert.ok(loaded.includes(name), `${name} is loaded`);
  });

  test("disco#info of an account shows no PEP, avatar or bookmarks feature; the rest answers", async () => {
    const user = await accounts.account("user");
    const c = await accounts.connected(user, "r");
    const info = await c.iq(xml("iq", { type: "get", to: accounts.bare(user) }, xml("query", { xmlns: NS.discoInfo })));
    assert.equal(info.attrs.type, "result");
    const query = info.getChild("query", NS.discoInfo)!;
    const features = query.getChildren("feature").map((f) => f.attrs.var);
    for (const f of [...AVATAR_FEATURES, ...BOOKMARK_FEATURES]) assert.ok(!features.includes(f), `${f} is not advertised`);
    assert.ok(!features.some((f) => f.startsWith(`${NS.pubsub}#`)), "no pubsub feature");
    assert.ok(!query.getChildren("identity").some((i) => i.attrs.category === "pubsub"), "no pep identity");
    assert.ok(features.includes(NS.privateStorage), "private storage is still there");

    // PEP requests are refused as for any service the server does not offer (RFC 6120 §8.3.3.19).
    const pep = await c.iq(xml("iq", { type: "set" }, xml("pubsub", { xmlns: NS.pubsub }, xml("publish", { node: NS.bookmarks }, xml("item", { id: "room@conference.localhost" }, xml("conference", { xmlns: NS.bookmarks }))))));
    assertError(pep, "service-unavailable");
    // Private storage and vCards still work, on their own.
    const stored = await c.iq(xml("iq", { type: "set" }, xml("query", { xmlns: NS.privateStorage }, xml("storage", { xmlns: NS.bookmarksLegacy }, xml("conference", { jid: "room@conference.localhost", autojoin: "true" })))));
    assert.equal(stored.attrs.type, "result");
    const read = await c.iq(xml("iq", { type: "get" }, xml("query", { xmlns: NS.privateStorage }, xml("storage", { xmlns: NS.bookmarksLegacy }))));
    assert.equal(read.getChild("query", NS.privateStorage)?.getChild("storage", NS.bookmarksLegacy)?.getChild("conference")?.attrs.jid, "room@conference.localhost");
    const vcard = await c.iq(xml("iq", { type: "set" }, xml("vCard", { xmlns: NS.vcard }, xml("FN", {}, "User"))));
    assert.equal(vcard.attrs.type, "result");

    const server = await c.iq(xml("iq", { type: "get", to: t.domain }, xml("query", { xmlns: NS.discoInfo })));
    assert.equal(server.attrs.type, "result");
  });
});

/** A server on a fresh SQLite file whose log lines are kept; loads `defs` with `disabled`. */
async function loadWith(disabled: string[], defs = builtinModules): Promise<{ loaded: string[]; lines: Array<Record<string, unknown>>; features: Set<string> }> {
  const dir = mkdtempSync(join(tmpdir(), "parley-deps-"));
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: "info" }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  const config = parseConfig(`domains = ["localhost"]\ndata_dir = "${dir}"\n[modules]\ndisabled = ${JSON.stringify(disabled)}\n`, dir);
  const storage = await openDatabase(join(dir, "parley.db"));
  const server = new Server(config, storage, log);
  try {
    await storage.migrate();
    await server.loadModules(defs);
    return { loaded: server.loaded.map((d) => d.name), lines, features: server.disco.account.features };
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

function skipLines(lines: Array<Record<string, unknown>>): Array<{ module: unknown; needs: unknown; msg: unknown }> {
  return lines.filter((l) => typeof l.msg === "string" && l.msg.includes("not loaded")).map((l) => ({ module: l.module, needs: l.needs, msg: l.msg }));
}

describe("modules whose dependency is not loaded", () => {
  test("disabling pep leaves out avatar and bookmarks, one warning line each", async () => {
    const { loaded, lines, features } = await loadWith(["pep"]);
    assert.ok(!loaded.includes("avatar") && !loaded.includes("bookmarks"));
    assert.deepEqual(skipLines(lines), [
      { module: "bookmarks", needs: "pep", msg: "module bookmarks not loaded: it needs pep, and modules.disabled turns it off" },
      { module: "avatar", needs: "pep", msg: "module avatar not loaded: it needs pep, and modules.disabled turns it off" },
    ]);
    assert.ok(lines.filter((l) => l.module === "bookmarks" || l.module === "avatar").every((l) => l.level === 40), "warnings");
    for (const f of [...AVATAR_FEATURES, ...BOOKMARK_FEATURES]) assert.ok(!features.has(f));
  });

  test("disabling vcard leaves out avatar only; disabling private leaves out bookmarks only", async () => {
    const noVcard = await loadWith(["vcard"]);
    assert.ok(!noVcard.loaded.includes("avatar"));
    assert.ok(noVcard.loaded.includes("bookmarks") && noVcard.loaded.includes("pep"));
    assert.deepEqual(skipLines(noVcard.lines).map((l) => [l.module, l.needs]), [["avatar", "vcard"]]);
    assert.ok(noVcard.features.has(NS.bookmarksCompat));

    const noPrivate = await loadWith(["private"]);
    assert.ok(!noPrivate.loaded.includes("bookmarks"));
    assert.ok(noPrivate.loaded.includes("avatar"));
    assert.deepEqual(skipLines(noPrivate.lines).map((l) => [l.module, l.needs]), [["bookmarks", "private"]]);
    assert.ok(!noPrivate.features.has(NS.bookmarksCompat) && noPrivate.features.has(AVATAR_FEATURES[0]!));
  });

  test("the absence goes down a chain of dependencies, and the log says through which module", async () => {
    const { loaded, lines } = await loadWith(["roster"]);
    for (const name of ["roster", "presence", "pep", "blocking", "avatar", "bookmarks"]) assert.ok(!loaded.includes(name), `${name} is not loaded`);
    assert.ok(loaded.includes("vcard") && loaded.includes("private") && loaded.includes("message"));
    const avatar = skipLines(lines).find((l) => l.module === "avatar");
    assert.equal(avatar?.msg, "module avatar not loaded: it needs pep, and it is not loaded either (it needs roster)");
    // One line per module left out, never twice for the same one.
    const modules = skipLines(lines).map((l) => l.module);
    assert.equal(new Set(modules).size, modules.length);
  });

  test("nothing is left out with every module enabled; an unknown dependency is still a start failure", async () => {
    const all = await loadWith([]);
    assert.deepEqual(all.loaded.sort(), builtinModules.map((d) => d.name).sort());
    assert.deepEqual(skipLines(all.lines), []);
    const broken = defineModule({ name: "broken", xeps: [], depends: ["no-such-module"], setup() {} });
    await assert.rejects(loadWith([], [broken]), /broken depends on unknown module no-such-module/);
  });
});
