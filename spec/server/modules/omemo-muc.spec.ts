// OMEMO in a group chat (XEP-0384 0.3, the `eu.siacs.conversations.axolotl` namespace deployed
// clients use, §5 "group chats") with a real Signal implementation in the clients, against a real
// server: a members-only, non-anonymous XEP-0045 room whose member list members may read, device
// lists and bundles over PEP (XEP-0163), one groupchat message encrypted for every member device,
// decrypted live and from the room's archive (XEP-0313); outsiders can neither enter nor read the
// archive, and the server's database never holds the plaintext.
//
// The server never reads any of this: the spec proves a room carries OMEMO faithfully.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createCipheriv, createDecipheriv, randomBytes, randomInt } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join as joinPath } from "node:path";
import {
  KeyHelper,
  SessionBuilder,
  SessionCipher,
  SignalProtocolAddress,
  type KeyPairType,
} from "@privacyresearch/libsignal-protocol-typescript";
import { joinRoom } from "./muc-helpers.ts";
import { startTestServer, type TestServer } from "../../support/server.ts";
import { accountsOn } from "../../support/accounts.ts";
import { AXOLOTL, BUNDLES, DEVICELIST, EME, FALLBACK, MemoryStore, OPEN, ab, b64, deviceIdsIn, deviceList, newBundle } from "../../support/omemo.ts";
import { assertError } from "../../support/stanzas.ts";
import { xml, type Element } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import { buildForm } from "../../../protocol/forms.ts";
import { parseStanzaError } from "../../../protocol/errors.ts";
import type { XmppClient } from "../../../conformance/client/client.ts";
import roster from "../../../server/modules/roster/index.ts";
import presence from "../../../server/modules/presence/index.ts";
import message from "../../../server/modules/message/index.ts";
import mam from "../../../server/modules/mam/index.ts";
import disco from "../../../server/modules/disco/index.ts";
import pep from "../../../server/modules/pep/index.ts";
import muc from "../../../server/modules/muc/index.ts";
import { fetchItems, onlineWithCaps, publish } from "./pep-helpers.ts";

const MUC = "conference.localhost";
let t: TestServer;
before(async () => {
  t = await startTestServer({ modules: [roster, presence, message, mam, disco, pep, muc] });
});
after(async () => {
  await t.stop();
});

const accounts = accountsOn(() => t);
const { account, bare } = accounts;

/** One OMEMO device: a connected resource with its own Signal identity, and what it learnt of the room. */
class Device {
  readonly store: MemoryStore;
  bundle!: Element;
  readonly received: string[] = [];
  /** The real JIDs of the room's members, read from its affiliation lists. */
  members: string[] = [];
  /** Device id → owner's real JID, from the members' device lists. */
  readonly owners = new Map<number, string>();

  private constructor(readonly jid: string, readonly id: number, readonly client: XmppClient, identity: KeyPairType) {
    this.store = new MemoryStore(identity, id);
  }

  static async create(user: string, resource: string): Promise<Device> {
    const client = await onlineWithCaps(accounts, user, resource, [DEVICELIST]);
    const d = new Device(bare(user), randomInt(1, 2 ** 31 - 1), client, await KeyHelper.generateIdentityKeyPair());
    d.bundle = await newBundle(d.store);
    return d;
  }

  /** Publishes the bundle, then adds this device to the account's device list (XEP-0384 §4.3). */
  async announce(): Promise<void> {
    assert.equal((await publish(this.client, BUNDLES(this.id), this.bundle, { id: "current", options: OPEN })).attrs.type, "result");
    const current = await this.deviceIds(this.jid).catch(() => []);
    assert.equal((await publish(this.client, DEVICELIST, deviceList(current, this.id), { id: "current", options: OPEN })).attrs.type, "result");
  }

  async deviceIds(owner: string): Promise<number[]> {
    return deviceIdsIn(await fetchItems(this.client, owner === this.jid ? undefined : owner, DEVICELIST));
  }

  /**
   * What an OMEMO client does before writing to a non-anonymous room (XEP-0384 §5): read the
   * member lists for the real JIDs (owners and admins are members too), then their device lists.
   */
  async learnRoom(room: string): Promise<void> {
    const jids: string[] = [];
    for (const affiliation of ["owner", "admin", "member"]) {
      const r = await this.client.iq(xml("iq", { type: "get", to: room }, xml("query", { xmlns: NS.mucAdmin }, xml("item", { affiliation }))));
      assert.equal(r.attrs.type, "result", `${this.jid} reads the ${affiliation} list`);
      for (const item of r.getChild("query", NS.mucAdmin)!.getChildren("item")) jids.push(item.attrs.jid!);
    }
    this.members = jids.sort();
    for (const owner of this.members) for (const id of await this.deviceIds(owner)) this.owners.set(id, owner);
  }

  /** Builds a session with every device of the members (but this one) that has none yet. */
  private async sessions(): Promise<SignalProtocolAddress[]> {
    const out: SignalProtocolAddress[] = [];
    for (const owner of this.members) {
      for (const id of await this.deviceIds(owner)) {
        if (owner === this.jid && id === this.id) continue;
        const address = new SignalProtocolAddress(owner, id);
        if (!(await this.store.loadSession(address.toString()))) {
          const [item] = await fetchItems(this.client, owner === this.jid ? undefined : owner, BUNDLES(id));
          const bundle = item!.getChild("bundle", AXOLOTL)!;
          const spk = bundle.getChild("signedPreKeyPublic")!;
          const pks = bundle.getChild("prekeys")!.getChildren("preKeyPublic");
          const pk = pks[randomInt(pks.length)]!;
          await new SessionBuilder(this.store, address).processPreKey({
            identityKey: ab(bundle.getChildText("identityKey")!),
            registrationId: id,
            signedPreKey: { keyId: Number(spk.attrs.signedPreKeyId), publicKey: ab(spk.getText()), signature: ab(bundle.getChildText("signedPreKeySignature")!) },
            preKey: { keyId: Number(pk.attrs.preKeyId), publicKey: ab(pk.getText()) },
          });
        }
        out.push(address);
      }
    }
    return out;
  }

  /** An OMEMO groupchat message to `room`, with a key for every member device but this one. */
  async encrypt(room: string, plaintext: string, id: string): Promise<{ stanza: Element; rids: number[] }> {
    // XEP-0384 0.3 §4.5: AES-128-GCM; the key and the tag go to each device through Signal.
    const key = randomBytes(16);
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-128-gcm", key, iv);
    const payload = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
    const material = Buffer.concat([key, cipher.getAuthTag()]);
    const header = xml("header", { sid: String(this.id) });
    const rids: number[] = [];
    for (const address of await this.sessions()) {
      const sealed = await new SessionCipher(this.store, address).encrypt(material.buffer.slice(material.byteOffset, material.byteOffset + material.byteLength));
      header.append(xml("key", { rid: String(address.deviceId), prekey: sealed.type === 3 ? "true" : undefined }, Buffer.from(sealed.body!, "latin1").toString("base64")));
      rids.push(address.deviceId);
    }
    header.append(xml("iv", {}, iv.toString("base64")));
    const stanza = xml("message", { to: room, type: "groupchat", id },
      xml("encrypted", { xmlns: AXOLOTL }, header, xml("payload", {}, payload.toString("base64"))),
      xml("store", { xmlns: NS.hints }),
      xml("encryption", { xmlns: EME, namespace: AXOLOTL, name: "OMEMO" }),
      xml("body", {}, FALLBACK));
    return { stanza, rids };
  }

  /** Decrypts an OMEMO message from the device of `sender` (a real JID) meant for this device. */
  async decrypt(sender: string, msg: Element): Promise<string> {
    const encrypted = msg.getChild("encrypted", AXOLOTL);
    assert.ok(encrypted, "the message kept its <encrypted/>");
    const header = encrypted.getChild("header")!;
    const mine = header.getChildren("key").find((k) => Number(k.attrs.rid) === this.id);
    assert.ok(mine, `a key for device ${this.id}`);
    const cipher = new SessionCipher(this.store, new SignalProtocolAddress(sender, Number(header.attrs.sid)));
    const sealed = Buffer.from(mine.getText(), "base64").toString("latin1");
    const material = Buffer.from(
      new Uint8Array(mine.attrs.prekey === "true" ? await cipher.decryptPreKeyWhisperMessage(sealed, "binary") : await cipher.decryptWhisperMessage(sealed, "binary")),
    );
    const decipher = createDecipheriv("aes-128-gcm", material.subarray(0, 16), Buffer.from(header.getChildText("iv")!, "base64"));
    decipher.setAuthTag(material.subarray(16, 32));
    const text = Buffer.concat([decipher.update(Buffer.from(encrypted.getChildText("payload")!, "base64")), decipher.final()]).toString("utf8");
    this.received.push(text);
    return text;
  }
}


/** Enters the room; returns what the room sent up to the subject (presences, history). */
const enter = (c: XmppClient, room: string, nick: string, history?: Record<string, string>): Promise<Element[]> => joinRoom(c, room, nick, { history });

/** The real JID (bare) an occupant's presence (among those seen on entering) shows in a non-anonymous room. */
function realJidOf(seen: Element[], occupant: string): string | undefined {
  const p = seen.findLast((el) => el.name === "presence" && el.attrs.from === occupant && el.getChild("x", NS.mucUser));
  return p?.getChild("x", NS.mucUser)!.getChild("item")?.attrs.jid?.split("/")[0];
}

async function roomArchive(c: XmppClient, room: string, queryid: string): Promise<{ iq: Element; messages: Element[] }> {
  const iq = await c.iq(xml("iq", { type: "set", to: room }, xml("query", { xmlns: NS.mam, queryid })));
  const messages = c.inbox
    .filter((el) => el.getChild("result", NS.mam)?.attrs.queryid === queryid)
    .map((el) => el.getChild("result", NS.mam)!.getChild("forwarded", NS.forward)!.getChild("message")!);
  return { iq, messages };
}

/** Every byte the server keeps: the SQLite database and its journal files. */
function databaseBytes(): Buffer {
  const dir = t.config.dataDir;
  return Buffer.concat(readdirSync(dir).filter((f) => f.startsWith("parley.sqlite")).map((f) => readFileSync(joinPath(dir, f))));
}

test("OMEMO in a members-only, non-anonymous room: every member device decrypts live or from the room archive; outsiders are kept out; no plaintext stored", async () => {
  const alice = await account("alice");
  const bob = await account("bob");
  const carol = await account("carol");
  const dave = await account("dave");

  const a1 = await Device.create(alice, "phone");
  const a2 = await Device.create(alice, "laptop");
  const b1 = await Device.create(bob, "phone");
  const b2 = await Device.create(bob, "laptop");
  const c1 = await Device.create(carol, "phone");
  for (const d of [a1, a2, b1, b2, c1]) await d.announce();

  // Alice creates the room: members-only, non-anonymous, persistent, archived; bob and carol are members.
  const room = `omemo${randomBytes(4).toString("hex")}@${MUC}`;
  await enter(a1.client, room, "AlicePhone");
  const config = buildForm({
    type: "submit",
    fields: Object.entries({ membersonly: "1", whois: "anyone", persistentroom: "1", publicroom: "0", enablelogging: "1" })
      .map(([k, v]) => ({ var: `muc#roomconfig_${k}`, values: [v] })),
  });
  assert.equal((await a1.client.iq(xml("iq", { type: "set", to: room }, xml("query", { xmlns: NS.mucOwner }, config)))).attrs.type, "result");
  for (const jid of [bare(bob), bare(carol)]) {
    const r = await a1.client.iq(xml("iq", { type: "set", to: room }, xml("query", { xmlns: NS.mucAdmin }, xml("item", { jid, affiliation: "member" }))));
    assert.equal(r.attrs.type, "result");
  }

  // Every live device enters (bob's laptop stays out for now) and learns the members and their devices.
  const entered = new Map<Device, Element[]>([
    [a2, await enter(a2.client, room, "AliceLaptop")],
    [b1, await enter(b1.client, room, "BobPhone")],
    [c1, await enter(c1.client, room, "CarolPhone")],
  ]);
  const everyone = [bare(alice), bare(bob), bare(carol)].sort();
  for (const d of [a1, a2, b1, c1]) {
    await d.learnRoom(room);
    assert.deepEqual(d.members, everyone, "the member lists give every member's real JID");
    assert.deepEqual([...d.owners.keys()].sort(), [a1, a2, b1, b2, c1].map((x) => x.id).sort(), "every member device is known");
  }

  // Alice's phone writes; the message carries a key for every other member device, her laptop included.
  const secret = `group secret ${randomBytes(6).toString("hex")}`;
  const { stanza, rids } = await a1.encrypt(room, secret, "g1");
  assert.deepEqual(rids.sort(), [a2, b1, b2, c1].map((x) => x.id).sort());
  a1.client.send(stanza);

  for (const d of [a1, a2, b1, c1]) {
    const got = await d.client.next((el) => el.name === "message" && el.attrs.type === "groupchat" && el.attrs.id === "g1");
    assert.equal(got.attrs.from, `${room}/AlicePhone`);
    // The <encrypted/> element arrives exactly as sent; the hint and the XEP-0380 marker are kept.
    assert.equal(got.getChild("encrypted", AXOLOTL)!.toString(), stanza.getChild("encrypted", AXOLOTL)!.toString());
    assert.equal(got.getChild("encryption", EME)?.attrs.namespace, AXOLOTL);
    if (d === a1) continue; // The sender's reflection: no key for itself.
    // The room shows the sender's real JID, and the sender's device is one of hers.
    const sender = realJidOf(entered.get(d)!, `${room}/AlicePhone`);
    assert.equal(sender, bare(alice));
    assert.equal(d.owners.get(Number(got.getChild("encrypted", AXOLOTL)!.getChild("header")!.attrs.sid)), sender);
    assert.equal(await d.decrypt(sender!, got), secret);
  }

  // Bob's laptop comes later: the room's history shows the message as sent, and the room's
  // archive gives it to the laptop, which finds the sender by its device id and decrypts.
  const history = await enter(b2.client, room, "BobLaptop");
  const replayed = history.find((el) => el.name === "message" && el.attrs.id === "g1");
  assert.ok(replayed, "the history has the message");
  assert.equal(replayed.getChild("encrypted", AXOLOTL)!.toString(), stanza.getChild("encrypted", AXOLOTL)!.toString());
  await b2.learnRoom(room);
  const archived = await roomArchive(b2.client, room, "late");
  assert.equal(archived.iq.attrs.type, "result");
  const fromArchive = archived.messages.find((m) => m.attrs.id === "g1");
  assert.ok(fromArchive, "the room archive has the encrypted message");
  assert.equal(fromArchive.attrs.from, `${room}/AlicePhone`);
  assert.equal(fromArchive.getChildText("body"), FALLBACK);
  const sid = Number(fromArchive.getChild("encrypted", AXOLOTL)!.getChild("header")!.attrs.sid);
  assert.equal(b2.owners.get(sid), bare(alice));
  assert.equal(await b2.decrypt(bare(alice), fromArchive), secret);

  // Bob's phone answers, now that everyone is in: every other device decrypts it live, bob's
  // laptop included, over the sessions the first message started.
  const reply = `group reply ${randomBytes(6).toString("hex")}`;
  const answer = await b1.encrypt(room, reply, "g2");
  assert.deepEqual(answer.rids.sort(), [a1, a2, b2, c1].map((x) => x.id).sort());
  b1.client.send(answer.stanza);
  for (const d of [a1, a2, b2, c1]) {
    const got = await d.client.next((el) => el.name === "message" && el.attrs.type === "groupchat" && el.attrs.id === "g2");
    assert.equal(got.attrs.from, `${room}/BobPhone`);
    assert.equal(d.owners.get(Number(got.getChild("encrypted", AXOLOTL)!.getChild("header")!.attrs.sid)), bare(bob));
    assert.equal(await d.decrypt(bare(bob), got), reply);
  }

  // Every member device read every message meant for it; no sender needs a copy of its own.
  for (const d of [a2, b2, c1]) assert.deepEqual(d.received, [secret, reply]);
  assert.deepEqual(b1.received, [secret]);
  assert.deepEqual(a1.received, [reply]);

  // Dave is no member: he cannot enter, nor read the member list or the archive.
  const outsider = await accounts.online(dave, "x");
  outsider.send(xml("presence", { to: `${room}/Dave` }, xml("x", { xmlns: NS.muc })));
  assertError(await outsider.next((el) => el.name === "presence" && el.attrs.from === `${room}/Dave` && el.attrs.type === "error"), "registration-required");
  assertError(await outsider.iq(xml("iq", { type: "get", to: room }, xml("query", { xmlns: NS.mucAdmin }, xml("item", { affiliation: "member" })))), "forbidden");
  const refused = await roomArchive(outsider, room, "outsider");
  assertError(refused.iq, "forbidden");
  assert.equal(refused.messages.length, 0, "no archived message leaks to an outsider");

  // The server kept the message (its fallback body is there) but not its plaintext.
  await t.server.storage.writer.sync();
  const bytes = databaseBytes();
  assert.ok(bytes.includes(Buffer.from(FALLBACK.slice(0, 30))), "the room archive holds the encrypted message");
  for (const text of [secret, reply]) assert.ok(!bytes.includes(Buffer.from(text)), `no plaintext "${text}" in the database`);

  for (const c of [a1, a2, b1, b2, c1].map((d) => d.client).concat(outsider)) await c.close();
});
