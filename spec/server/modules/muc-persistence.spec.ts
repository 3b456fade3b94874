// End-to-end spec for server/modules/muc: XEP-0045 §10.2 persistent rooms survive a restart
// (configuration, affiliations, subject), temporary ones do not, and after the restart a
// client's XEP-0410 self-ping tells it that it is no longer joined (no ghosts).
// Two servers run one after the other on the same data directory.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig, type Config } from "../../../server/core/config.ts";
import { startServer } from "../../../server/start.ts";
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
const parsed = parseConfig(`domains = ["localhost"]\ndata_dir = "${dir}"\n[limits]\nauth_failure_delay_ms = 0\n`, dir);
const config: Config = { ...parsed, c2s: { ...parsed.c2s, port: 0, directTlsPort: 0 }, http: { ...parsed.http, port: 0, tlsPort: 0 } };
const clients: XmppClient[] = [];

after(() => {
  for (const c of clients) c.destroy();
  rmSync(dir, { recursive: true, force: true });
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

function configure(c: XmppClient, room: string, fields: Record<string, string>): Promise<Element> {
  const form = buildForm({ type: "submit", fields: Object.entries(fields).map(([k, v]) => ({ var: `muc#roomconfig_${k}`, values: [v] })) });
  return c.iq(xml("iq", { type: "set", to: room }, xml("query", { xmlns: NS.mucOwner }, form)));
}

test("a persistent room keeps its configuration, members and subject across a restart; occupants are asked to rejoin", async () => {
  const persistent = `family@${MUC}`;
  const temporary = `chat@${MUC}`;
  let server = await start();
  for (const u of ["romeo", "juliet", "mercutio"]) await createAccount(server.storage, "localhost", u, `pass-${u}`);
  let romeo = await login(server, "romeo");
  await joinRoom(romeo, persistent, "Romeo");
  assert.equal((await configure(romeo, persistent, { persistentroom: "1", membersonly: "1", whois: "anyone", roomname: "Family" })).attrs.type, "result");
  const member = await romeo.iq(xml("iq", { type: "set", to: persistent }, xml("query", { xmlns: NS.mucAdmin }, xml("item", { jid: "juliet@localhost", affiliation: "member" }))));
  assert.equal(member.attrs.type, "result");
  romeo.send(xml("message", { to: persistent, type: "groupchat", id: "subj" }, xml("subject", {}, "Sunday lunch")));
  await romeo.next((el) => el.attrs.id === "subj");
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
  } finally {
    await server.stop();
  }
});
