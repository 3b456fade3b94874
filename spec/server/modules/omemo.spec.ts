// OMEMO end to end (XEP-0384 0.3, the `eu.siacs.conversations.axolotl` namespace deployed
// clients use) with a real Signal implementation in the clients, against a real server: device
// lists (access_model=open) and bundles over PEP (XEP-0163), encrypted messages delivered live,
// copied by carbons (XEP-0280), stored offline (XEP-0160) and archived (XEP-0313), decrypted by
// every device; and the server's database never holds the plaintext.
//
// The server never reads any of this: the spec proves it carries OMEMO faithfully.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createCipheriv, createDecipheriv, randomBytes, randomInt } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import {
  KeyHelper,
  SessionBuilder,
  SessionCipher,
  SignalProtocolAddress,
  type KeyPairType,
} from "@privacyresearch/libsignal-protocol-typescript";
import { startTestServer, type TestServer } from "../../support/server.ts";
import { accountsOn } from "../../support/accounts.ts";
import { AXOLOTL, BUNDLES, DEVICELIST, EME, FALLBACK, MemoryStore, OPEN, ab, b64, deviceIdsIn, deviceList, newBundle } from "../../support/omemo.ts";
import { xml, type Element } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import type { XmppClient } from "../../../conformance/client/client.ts";
import roster from "../../../server/modules/roster/index.ts";
import presence from "../../../server/modules/presence/index.ts";
import message from "../../../server/modules/message/index.ts";
import offline from "../../../server/modules/offline/index.ts";
import mam from "../../../server/modules/mam/index.ts";
import carbons from "../../../server/modules/carbons/index.ts";
import disco from "../../../server/modules/disco/index.ts";
import pep from "../../../server/modules/pep/index.ts";
import { fetchItems, isEvent, onlineWithCaps, publish } from "./pep-helpers.ts";

let t: TestServer;
before(async () => {
  t = await startTestServer({ modules: [roster, presence, message, offline, mam, carbons, disco, pep] });
});
after(async () => {
  await t.stop();
});

const accounts = accountsOn(() => t);
const { account, bare, setSubscription } = accounts;

/** One OMEMO device: a connected resource with its own Signal identity. */
class Device {
  readonly store: MemoryStore;
  bundle!: Element;
  readonly received: string[] = [];

  private constructor(readonly jid: string, readonly id: number, readonly client: XmppClient, identity: KeyPairType) {
    this.store = new MemoryStore(identity, id);
  }

  static async create(user: string, resource: string): Promise<Device> {
    const client = await onlineWithCaps(accounts, user, resource, [DEVICELIST]);
    const carbonsOn = await client.iq(xml("iq", { type: "set" }, xml("enable", { xmlns: NS.carbons })));
    assert.equal(carbonsOn.attrs.type, "result");
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

  /** Builds a session with every device of `owners` (but this one) that has none yet. */
  private async sessionsWith(owners: string[]): Promise<SignalProtocolAddress[]> {
    const out: SignalProtocolAddress[] = [];
    for (const owner of owners) {
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

  /** An OMEMO message to `to` (bare JID) readable by all its devices and this account's others. */
  async encrypt(to: string, plaintext: string, id: string): Promise<Element> {
    // XEP-0384 0.3 §4.5: AES-128-GCM; the key and the tag go to each device through Signal.
    const key = randomBytes(16);
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-128-gcm", key, iv);
    const payload = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
    const material = Buffer.concat([key, cipher.getAuthTag()]);
    const header = xml("header", { sid: String(this.id) });
    for (const address of await this.sessionsWith([to, this.jid])) {
      const sealed = await new SessionCipher(this.store, address).encrypt(material.buffer.slice(material.byteOffset, material.byteOffset + material.byteLength));
      header.append(xml("key", { rid: String(address.deviceId), prekey: sealed.type === 3 ? "true" : undefined }, Buffer.from(sealed.body!, "latin1").toString("base64")));
    }
    header.append(xml("iv", {}, iv.toString("base64")));
    return xml("message", { to, type: "chat", id },
      xml("encrypted", { xmlns: AXOLOTL }, header, xml("payload", {}, payload.toString("base64"))),
      xml("store", { xmlns: NS.hints }),
      xml("encryption", { xmlns: EME, namespace: AXOLOTL, name: "OMEMO" }),
      xml("body", {}, FALLBACK));
  }

  /** Decrypts an OMEMO message (from `sender`'s account) meant for this device. */
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

const carbonOf = (kind: "sent" | "received", id: string) => (el: Element) =>
  el.name === "message" && el.getChild(kind, NS.carbons)?.getChild("forwarded", NS.forward)?.getChild("message")?.attrs.id === id;
const forwarded = (el: Element, kind: "sent" | "received") => el.getChild(kind, NS.carbons)!.getChild("forwarded", NS.forward)!.getChild("message")!;
const direct = (id: string) => (el: Element) => el.name === "message" && el.attrs.id === id && el.getChild("encrypted", AXOLOTL) !== undefined;

/** The copy of message `id` a device got: directly, or as a carbon. */
async function copyOf(d: Device, id: string): Promise<Element> {
  const got = await d.client.next((el) => direct(id)(el) || carbonOf("received", id)(el) || carbonOf("sent", id)(el));
  if (got.getChild("received", NS.carbons)) return forwarded(got, "received");
  if (got.getChild("sent", NS.carbons)) return forwarded(got, "sent");
  return got;
}

async function mamMessages(c: XmppClient, queryid: string): Promise<Element[]> {
  const fin = await c.iq(xml("iq", { type: "set" }, xml("query", { xmlns: NS.mam, queryid })));
  assert.equal(fin.attrs.type, "result");
  return c.inbox
    .filter((el) => el.getChild("result", NS.mam)?.attrs.queryid === queryid)
    .map((el) => el.getChild("result", NS.mam)!.getChild("forwarded", NS.forward)!.getChild("message")!);
}

/** Every byte the server keeps: the SQLite database and its journal files. */
function databaseBytes(): Buffer {
  const dir = t.config.dataDir;
  return Buffer.concat(readdirSync(dir).filter((f) => f.startsWith("parley.sqlite")).map((f) => readFileSync(join(dir, f))));
}

test("two users with two OMEMO devices each: live, carbons, offline and MAM, all decrypted, no plaintext stored", async () => {
  const alice = await account("alice");
  const bob = await account("bob");
  await setSubscription(alice, bob, "both");
  await setSubscription(bob, alice, "both");

  const a1 = await Device.create(alice, "phone");
  const a2 = await Device.create(alice, "laptop");
  const b1 = await Device.create(bob, "phone");
  const b2 = await Device.create(bob, "laptop");
  for (const d of [a1, a2, b1, b2]) await d.announce();
  // A contact's device list change is pushed to its +notify resources (XEP-0384 §4.2).
  await b1.client.next((el) => isEvent(bare(alice), DEVICELIST)(el) && el.getChild("event", NS.pubsubEvent)!.getChild("items")!.getChild("item")!.getChild("list", AXOLOTL)!.getChildren("device").length === 2);
  assert.deepEqual((await a1.deviceIds(bare(bob))).sort(), [b1.id, b2.id].sort());
  // Open device lists and bundles: even someone not in the roster can start a session.
  const stranger = await Device.create(await account("stranger"), "x");
  assert.deepEqual((await stranger.deviceIds(bare(alice))).sort(), [a1.id, a2.id].sort());

  const secrets = [`live secret ${randomBytes(6).toString("hex")}`, `reply secret ${randomBytes(6).toString("hex")}`, `offline secret ${randomBytes(6).toString("hex")}`];

  // 1. Live: alice's phone to bob; bob's devices and alice's laptop (sent carbon) decrypt.
  const m1 = await a1.encrypt(bare(bob), secrets[0]!, "m1");
  a1.client.send(m1);
  const m1AtBob = await copyOf(b1, "m1");
  // The <encrypted/> element arrives exactly as sent; the XEP-0334 hint and XEP-0380 marker are kept.
  assert.equal(m1AtBob.getChild("encrypted", AXOLOTL)!.toString(), m1.getChild("encrypted", AXOLOTL)!.toString());
  assert.ok(m1AtBob.getChild("store", NS.hints));
  assert.equal(m1AtBob.getChild("encryption", EME)?.attrs.namespace, AXOLOTL);
  assert.equal(await b1.decrypt(bare(alice), m1AtBob), secrets[0]);
  assert.equal(await b2.decrypt(bare(alice), await copyOf(b2, "m1")), secrets[0]);
  assert.equal(await a2.decrypt(bare(alice), await copyOf(a2, "m1")), secrets[0]);

  // 2. Bob's laptop replies; alice's devices and bob's phone decrypt.
  b2.client.send(await b2.encrypt(bare(alice), secrets[1]!, "m2"));
  assert.equal(await a1.decrypt(bare(bob), await copyOf(a1, "m2")), secrets[1]);
  assert.equal(await a2.decrypt(bare(bob), await copyOf(a2, "m2")), secrets[1]);
  assert.equal(await b1.decrypt(bare(bob), await copyOf(b1, "m2")), secrets[1]);

  // 3. Offline: bob's devices go away; alice writes; bob's phone gets it from offline storage,
  //    bob's laptop from the archive, and alice's laptop reads its copy from its own archive.
  const b1Id = b1.id;
  await b1.client.close();
  await b2.client.close();
  a1.client.send(await a1.encrypt(bare(bob), secrets[2]!, "m3"));
  assert.equal(await a2.decrypt(bare(alice), await copyOf(a2, "m3")), secrets[2]);

  const phoneAgain = await accounts.connected(bob, "phone");
  phoneAgain.send(xml("presence"));
  const stored = await phoneAgain.next(direct("m3"));
  assert.ok(stored.getChild("delay", NS.delay), "delivered from offline storage");
  Object.assign(b1, { client: phoneAgain });
  assert.equal(b1.id, b1Id);
  assert.equal(await b1.decrypt(bare(alice), stored), secrets[2]);

  const laptopAgain = await accounts.connected(bob, "laptop");
  const archived = await mamMessages(laptopAgain, "omemo");
  const fromArchive = archived.find((m) => m.attrs.id === "m3");
  assert.ok(fromArchive, "the archive has the encrypted message");
  assert.equal(fromArchive.getChild("body")?.getText(), FALLBACK);
  assert.equal(await b2.decrypt(bare(alice), fromArchive), secrets[2]);

  // Every device read every message meant for it.
  assert.deepEqual(b1.received, secrets);
  assert.deepEqual(b2.received, [secrets[0], secrets[2]]);
  assert.deepEqual(a1.received, [secrets[1]]);
  assert.deepEqual(a2.received, secrets);

  // The server kept the messages (their fallback bodies are there) but none of the plaintext.
  await t.server.storage.writer.sync();
  const bytes = databaseBytes();
  assert.ok(bytes.includes(Buffer.from(FALLBACK.slice(0, 30))), "the archive holds the encrypted messages");
  for (const secret of secrets) assert.ok(!bytes.includes(Buffer.from(secret)), `no plaintext "${secret}" in the database`);
});
