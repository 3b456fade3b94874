// Test support for the OMEMO specs (spec/server/modules/omemo*.spec.ts): the legacy OMEMO node
// names (XEP-0384 0.3, eu.siacs.conversations.axolotl) and an in-memory Signal protocol store,
// what a real OMEMO client keeps on the device. Test-only: the server never sees any of it.
import { KeyHelper, type Direction, type KeyPairType, type StorageType } from "@privacyresearch/libsignal-protocol-typescript";
import { NS } from "../../protocol/ns.ts";
import { xml, type Element } from "../../protocol/xml/element.ts";

export const AXOLOTL = NS.omemoLegacy;
export const DEVICELIST = `${AXOLOTL}.devicelist`;
export const BUNDLES = (id: number) => `${AXOLOTL}.bundles:${id}`;
export const OPEN = { "pubsub#access_model": "open" };
/** XEP-0380: Explicit Message Encryption. */
export const EME = "urn:xmpp:eme:0";
export const FALLBACK = "I sent you an OMEMO encrypted message but your client doesn't seem to support that.";

export const b64 = (buf: ArrayBuffer | Buffer) => Buffer.from(buf instanceof ArrayBuffer ? new Uint8Array(buf) : buf).toString("base64");
export const ab = (text: string): ArrayBuffer => {
  const buf = Buffer.from(text, "base64");
  return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
};

/** A Signal protocol store in memory: what an OMEMO client keeps on the device. */
export class MemoryStore implements StorageType {
  readonly map = new Map<string, unknown>();
  constructor(readonly identity: KeyPairType, readonly registrationId: number) {}
  getIdentityKeyPair = async () => this.identity;
  getLocalRegistrationId = async () => this.registrationId;
  // Trust on first use, as the spec's clients have no user to ask.
  isTrustedIdentity = async (_id: string, _key: ArrayBuffer, _direction: Direction) => true;
  saveIdentity = async (address: string, key: ArrayBuffer) => {
    this.map.set(`identity:${address}`, key);
    return false;
  };
  loadPreKey = async (id: string | number) => this.map.get(`prekey:${id}`) as KeyPairType | undefined;
  storePreKey = async (id: string | number, pair: KeyPairType) => void this.map.set(`prekey:${id}`, pair);
  // Kept after use, as OMEMO clients keep them until their catch-up is over: two
  // devices may pick the same pre-key of a bundle, and messages may come late from the archive.
  removePreKey = async (_id: string | number) => undefined;
  storeSession = async (address: string, record: string) => void this.map.set(`session:${address}`, record);
  loadSession = async (address: string) => this.map.get(`session:${address}`) as string | undefined;
  loadSignedPreKey = async (id: string | number) => this.map.get(`signed:${id}`) as KeyPairType | undefined;
  storeSignedPreKey = async (id: string | number, pair: KeyPairType) => void this.map.set(`signed:${id}`, pair);
  removeSignedPreKey = async (id: string | number) => void this.map.delete(`signed:${id}`);
}

/**
 * A device's keys as an OMEMO client makes them (XEP-0384 0.3 §4.3): a signed pre-key and five
 * pre-keys kept in `store`, and the bundle that publishes their public halves.
 */
export async function newBundle(store: MemoryStore): Promise<Element> {
  const signed = await KeyHelper.generateSignedPreKey(store.identity, 1);
  await store.storeSignedPreKey(1, signed.keyPair);
  const prekeys = xml("prekeys");
  for (let id = 1; id <= 5; id++) {
    const pk = await KeyHelper.generatePreKey(id);
    await store.storePreKey(id, pk.keyPair);
    prekeys.append(xml("preKeyPublic", { preKeyId: String(id) }, b64(pk.keyPair.pubKey)));
  }
  return xml("bundle", { xmlns: AXOLOTL },
    xml("signedPreKeyPublic", { signedPreKeyId: "1" }, b64(signed.keyPair.pubKey)),
    xml("signedPreKeySignature", {}, b64(signed.signature)),
    xml("identityKey", {}, b64(store.identity.pubKey)),
    prekeys);
}

/** The device ids of the newest device-list item, [] without one. */
export function deviceIdsIn(items: Element[]): number[] {
  return items.at(-1)?.getChild("list", AXOLOTL)?.getChildren("device").map((d) => Number(d.attrs.id)) ?? [];
}

/** The device list with `id` added to `current`. */
export function deviceList(current: number[], id: number): Element {
  return xml("list", { xmlns: AXOLOTL }, ...[...new Set([...current, id])].map((d) => xml("device", { id: String(d) })));
}
