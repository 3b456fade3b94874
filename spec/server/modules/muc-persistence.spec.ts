// End-to-end spec for server/modules/muc: XEP-0045 §10.2 persistent rooms survive a restart
// (configuration, affiliations, subject, registered nicks, archive), temporary ones do not, and
// after the restart a client's XEP-0410 self-ping tells it that it is no longer joined (no
// ghosts). Servers run one after the other on the same database, SQLite then PostgreSQL.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig, type Config } from "../../../server/core/config.ts";
import { startServer } from "../../../server/start.ts";
import { openDatabase } from "../../../server/core/storage/index.ts";
import { randomBytes } from "node:crypto";
import pg from "pg";
import { POSTGRES_TEST_URL } from "../core/storage/both.ts";
import { createAccount } from "../../../server/core/accounts.ts";
import { silentLogger } from "../../../server/core/log.ts";
import type { Server } from "../../../server/core/server.ts";
import { XmppClient } from "../../../conformance/client/client.ts";
import { xml, type Element } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import { buildForm } from "../../../protocol/forms.ts";
import { parseStanzaError } from "../../../protocol/errors.ts";
import roster from "../../../server/modules/roster/index.ts";
import presence from "../../../server/modules/presence/index.ts";
import message from "../../../server/modules/message/index.ts";
import disco from "../../../server/modules/disco/index.ts";
import muc from "../../../server/modules/muc/index.ts";

const MUC = "conference.localhost";
const dir = mkdtempSync(join(tmpdir(), "parley-muc-"));
function serverConfig(database = ""): Config {
  const parsed = parseConfig(`domains = ["localhost"]\ndata_dir = "${dir}"\n${database}[limits]\nauth_failure_delay_ms = 0\n`, dir);
  return { ...parsed, c2s: { ...parsed.c2s, port: 0, directTlsPort: 0 }, http: { ...parsed.http, port: 0, tlsPort: 0 } };
}
let config: Config = serverConfig();
const clients: XmppClient[] = [];
// The PostgreSQL run keeps its tables in a schema of its own, made here and dropped after.
const pgSchema = `parley_test_muc_${randomBytes(5).toString("hex")}`;

after(async () => {
  for (const c of clients) c.destroy();
  rmSync(dir, { recursive: true, force: true });
  const client = new pg.Client({ connectionString: POSTGRES_TEST_URL });
  await client.connect();
  await client.query(`drop schema if exists "${pgSchema}" cascade`);
  await client.end();
});

async function start(): Promise<Server> {
  return startServer(config, { log: silentLogger(), modules: [roster, presence, message, disco, muc] });
}

async function login(server: Server, user: string): Promise<XmppClient> {
  const port = server.transports.find((t) => t.name === "c2s")!.ports[0];
  const ca = readFileSync(join(dir, "certs", "localhost.crt"), "utf8");
  const c = await XmppClient.connect({ host: "127.0.0.1", port, domain: "localhost", ca });
  clients.push(c);
  await c.login({ username: user, password: `pass-${user}`, resource: "r" });
  c.send(xml("presence"));
  return c;
}

async function joinRoom(c: XmppClient, room: string, nick: string): Promise<Element[]> {
  c.send(xml("presence", { to: `${room}/${nick}` }, xml("x", { xmlns: NS.muc })));
  const seen: Element[] = [];
  for (let i = 0; i < 100; i++) {
    const el = await c.next((e) => (e.attrs.from ?? "").startsWith(room));
    seen.push(el);
    if (el.attrs.type === "error") return seen;
    if (el.name === "message" && el.getChild("subject")) return seen;
  }
  return seen;
}

function register(c: XmppClient, room: string, nick: string): Promise<Element> {
  const form = buildForm({ type: "submit", fields: [{ var: "FORM_TYPE", type: "hidden", values: [NS.mucRegister] }, { var: "muc#register_roomnick", values: [nick] }] });
  return c.iq(xml("iq", { type: "set", to: room }, xml("query", { xmlns: NS.register }, form)));
}

function configure(c: XmppClient, room: string, fields: Record<string, string>): Promise<Element> {
  const form = buildForm({ type: "submit", fields: Object.entries(fields).map(([k, v]) => ({ var: `muc#roomconfig_${k}`, values: [v] })) });
  return c.iq(xml("iq", { type: "set", to: room }, xml("query", { xmlns: NS.mucOwner }, form)));
}

for (const dialect of ["sqlite", "postgres"] as const) {
test(`a persistent room keeps its configuration, members, subject, nicks and archive across a restart; occupants are asked to rejoin [${dialect}]`, async () => {
  if (dialect === "postgres") {
    const client = new pg.Client({ connectionString: POSTGRES_TEST_URL });
    await client.connect();
    await client.query(`create schema "${pgSchema}"`);
    await client.end();
    const url = `${POSTGRES_TEST_URL}?options=${encodeURIComponent(`-c search_path=${pgSchema}`)}`;
    config = serverConfig(`[database]\nurl = "${url}"\n`);
  } else {
    config = serverConfig();
  }
  const persistent = `family@${MUC}`;
  const temporary = `chat@${MUC}`;
  let server = await start();
  assert.equal(server.storage.dialect, dialect);
  for (const u of ["romeo", "juliet", "mercutio"]) await createAccount(server.storage, "localhost", u, `pass-${u}`);
  let romeo = await login(server, "romeo");
  await joinRoom(romeo, persistent, "Romeo");
  assert.equal((await configure(romeo, persistent, { persistentroom: "1", membersonly: "1", whois: "anyone", roomname: "Family" })).attrs.type, "result");
  const member = await romeo.iq(xml("iq", { type: "set", to: persistent }, xml("query", { xmlns: NS.mucAdmin }, xml("item", { jid: "juliet@localhost", affiliation: "member" }))));
  assert.equal(member.attrs.type, "result");
  romeo.send(xml("message", { to: persistent, type: "groupchat", id: "subj" }, xml("subject", {}, "Sunday lunch")));
  await romeo.next((el) => el.attrs.id === "subj");
  romeo.send(xml("message", { to: persistent, type: "groupchat", id: "before" }, xml("body", {}, "said before the restart")));
  const said = await romeo.next((el) => el.attrs.id === "before");
  const stanzaId = said.getChild("stanza-id", NS.sid)?.attrs.id;
  assert.ok(stanzaId);
  assert.equal((await register(romeo, persistent, "Romeo")).attrs.type, "result");
  await joinRoom(romeo, temporary, "Romeo");
  assert.equal((await configure(romeo, temporary, {})).attrs.type, "result");
  await server.stop();

  server = await start();
  try {
    romeo = await login(server, "romeo");
    // XEP-0410: the client pings itself in the room and learns it must join again.
    const ping = await romeo.iq(xml("iq", { type: "get", to: `${persistent}/Romeo` }, xml("ping", { xmlns: NS.ping })));
    assert.equal(parseStanzaError(ping)?.condition, "not-acceptable");

    const juliet = await login(server, "juliet");
    const seen = await joinRoom(juliet, persistent, "Juliet");
    assert.notEqual(seen[0].attrs.type, "error", "the member list survived");
    assert.equal(seen.at(-1)!.getChildText("subject"), "Sunday lunch");
    const history = seen.find((el) => el.getChildText("body") === "said before the restart");
    assert.ok(history, "the history comes from the archive");
    assert.equal(history.getChild("stanza-id", NS.sid)?.attrs.id, stanzaId);
    const archived = await juliet.iq(xml("iq", { type: "set", to: persistent }, xml("query", { xmlns: NS.mam })));
    assert.equal(archived.attrs.type, "result");
    assert.ok(juliet.inbox.some((el) => el.getChild("result", NS.mam)?.attrs.id === stanzaId), "MAM on the room answers from before the restart");
    const nick = await romeo.iq(xml("iq", { type: "get", to: persistent }, xml("query", { xmlns: NS.discoInfo, node: "x-roomuser-item" })));
    assert.equal(nick.getChild("query")!.getChild("identity")?.attrs.name, "Romeo", "the registered nick survived");
    const self = seen.find((el) => el.attrs.from === `${persistent}/Juliet`)!;
    assert.ok(self.getChild("x", NS.mucUser)!.getChildren("status").some((s) => s.attrs.code === "100"), "still non-anonymous");

    const mercutio = await login(server, "mercutio");
    const refused = await joinRoom(mercutio, persistent, "Mercutio");
    assert.equal(parseStanzaError(refused[0])?.condition, "registration-required", "still members-only");

    const info = await romeo.iq(xml("iq", { type: "get", to: persistent }, xml("query", { xmlns: NS.discoInfo })));
    assert.equal(info.getChild("query")!.getChild("identity")?.attrs.name, "Family");
    const owners = await romeo.iq(xml("iq", { type: "get", to: persistent }, xml("query", { xmlns: NS.mucAdmin }, xml("item", { affiliation: "owner" }))));
    assert.deepEqual(owners.getChild("query")!.getChildren("item").map((i) => i.attrs.jid), ["romeo@localhost"]);

    const gone = await romeo.iq(xml("iq", { type: "get", to: temporary }, xml("query", { xmlns: NS.discoInfo })));
    assert.equal(parseStanzaError(gone)?.condition, "item-not-found", "a temporary room does not come back");

    // Destroying a persistent room forgets it for good.
    const destroyed = await romeo.iq(xml("iq", { type: "set", to: persistent }, xml("query", { xmlns: NS.mucOwner }, xml("destroy"))));
    assert.equal(destroyed.attrs.type, "result");
  } finally {
    await server.stop();
  }
  server = await start();
  try {
    const romeo3 = await login(server, "romeo");
    const gone = await romeo3.iq(xml("iq", { type: "get", to: persistent }, xml("query", { xmlns: NS.discoInfo })));
    assert.equal(parseStanzaError(gone)?.condition, "item-not-found");
    assert.equal(await server.storage.archive.count(MUC, "family"), 0, "its archive went with it");
  } finally {
    await server.stop();
  }
});
}

test("rooms kept in the key-value store by an earlier version are moved into the tables at start", async () => {
  const legacyDir = mkdtempSync(join(tmpdir(), "parley-muc-legacy-"));
  const legacyParsed = parseConfig(`domains = ["localhost"]\ndata_dir = "${legacyDir}"\n[limits]\nauth_failure_delay_ms = 0\n`, legacyDir);
  const legacyConfig: Config = { ...legacyParsed, c2s: { ...legacyParsed.c2s, port: 0, directTlsPort: 0 }, http: { ...legacyParsed.http, port: 0, tlsPort: 0 } };
  const storage = await openDatabase(join(legacyDir, "parley.sqlite"));
  await storage.migrate();
  await storage.kv.set("muc", MUC, "", "rooms", ["old"]);
  await storage.kv.set("muc", MUC, "old", "room", {
    config: { persistent: true, name: "Old room", membersOnly: true },
    affiliations: [["romeo@localhost", "owner"], ["juliet@localhost", "member"]],
    subject: "kept",
    subjectBy: "",
    salt: "c2FsdA==",
  });
  await storage.close();
  const server = await startServer(legacyConfig, { log: silentLogger(), modules: [roster, presence, message, disco, muc] });
  try {
    assert.equal(await server.storage.kv.get("muc", MUC, "old", "room"), undefined, "the old entry is gone");
    const members = await server.storage.db
      .withTables<{ muc_affiliations: { service: string; room: string; jid: string; affiliation: string } }>()
      .selectFrom("muc_affiliations")
      .select(["jid", "affiliation"])
      .where("room", "=", "old")
      .execute();
    assert.deepEqual(members.map((r) => `${r.jid} ${r.affiliation}`).sort(), ["juliet@localhost member", "romeo@localhost owner"]);
  } finally {
    await server.stop();
    rmSync(legacyDir, { recursive: true, force: true });
  }
});
