// XEP-0398: User Avatar to vCard-Based Avatars Conversion 1.0.0, joining XEP-0084 (User Avatar
// 1.1.4, the PEP nodes urn:xmpp:avatar:data and urn:xmpp:avatar:metadata) and XEP-0153
// (vCard-Based Avatars 1.1.1) through XEP-0054 vcard-temp:
// - an avatar published on PEP becomes the vCard's PHOTO (§3.1), and a vCard published with a
//   PHOTO becomes the PEP data and metadata items (§3.2); a metadata without <info/> (XEP-0084
//   §4.2 "disabling") or a vCard without PHOTO removes the other side's avatar;
// - the account's available presence carries <x xmlns='vcard-temp:x:update'><photo/></x> with
//   the SHA-1 of the current avatar (§3.1, XEP-0153 §4.1): the id XEP-0084 gives the same image.
// Conversions the module makes itself are tagged, so they are not converted back.
import { createHash } from "node:crypto";
import { defineModule } from "../../core/module.ts";
import { NS } from "../../../protocol/ns.ts";
import { xml, type Element } from "../../../protocol/xml/element.ts";
import type { Jid } from "../../../protocol/jid.ts";
import type { StanzaEvent } from "../../core/router.ts";
import { PEP_CHANGED_EVENT, PEP_ENGINE_EVENT, type PepChange, type PepEngine, type PepEngineRequest } from "../pep/index.ts";
import { VCARD_UPDATED_EVENT, type VCardUpdatedEvent } from "../vcard/index.ts";
import { vcardFromText, vcardToText } from "../vcard/stored.ts";
import { KeyedLock } from "../roster/lock.ts";

const TAG = "avatar-conversion";
const CONVERSION_FEATURE = "urn:xmpp:pep-vcard-conversion:0";

interface Avatar {
  /** SHA-1 of the image, hex: the XEP-0084 item id and the XEP-0153 photo hash. */
  id: string;
  type: string;
  base64: string;
}

function sha1Hex(bytes: Buffer): string {
  return createHash("sha1").update(bytes).digest("hex");
}

/** Base64 as vCards and avatar data carry it (line breaks allowed). */
function decodeBase64(text: string): Buffer | null {
  const compact = text.replace(/\s+/g, "");
  if (compact === "" || !/^[A-Za-z0-9+/]*={0,2}$/.test(compact)) return null;
  return Buffer.from(compact, "base64");
}

/** The avatar a vCard's PHOTO holds, undefined when it has none (or only an EXTVAL). */
function avatarOfVCard(vcard: Element): Avatar | undefined {
  const photo = vcard.getChild("PHOTO");
  const binval = photo?.getChildText("BINVAL");
  if (!photo || !binval) return undefined;
  const bytes = decodeBase64(binval);
  if (!bytes) return undefined;
  return { id: sha1Hex(bytes), type: photo.getChildText("TYPE") || "image/png", base64: bytes.toString("base64") };
}

export default defineModule({
  name: "avatar",
  xeps: [
    { xep: 84, version: "1.1.4", status: "complete", note: "PEP nodes, converted to and from the vCard" },
    { xep: 398, version: "1.0.0", status: "complete" },
    { xep: 153, version: "1.1.1", status: "complete", note: "the server sets the photo hash in presence" },
  ],
  depends: ["pep", "vcard"],
  setup(m) {
    const lock = new KeyedLock();
    /** Bare JID → current photo hash ("" for none, null for never had one); absent when not read yet. */
    const hashes = new Map<string, string | null>();
    m.addFeature(CONVERSION_FEATURE, "account");

    let engineCache: PepEngine | undefined;
    const engine = async (): Promise<PepEngine> => {
      if (!engineCache) {
        const req: PepEngineRequest = {};
        await m.fire(PEP_ENGINE_EVENT, req);
        if (!req.engine) throw new Error("the avatar module needs the pep module");
        engineCache = req.engine;
      }
      return engineCache;
    };

    const storedVCard = async (owner: Jid): Promise<Element | null> => {
      const stored = await m.storage.vcards.get(owner.domain, owner.local);
      return stored ? vcardFromText(stored.xml) : null;
    };

    /** The photo hash of an account: from its PEP metadata, else its vCard; null when it never had an avatar. */
    const currentHash = async (owner: Jid): Promise<string | null> => {
      const key = owner.bare.toString();
      if (hashes.has(key)) return hashes.get(key)!;
      const metadata = await (await engine()).items(owner, NS.avatarMetadata);
      let hash: string | null = null;
      const last = metadata?.at(-1);
      if (last) {
        hash = last.payload.getChild("info")?.attrs.id ?? "";
      } else {
        const vcard = await storedVCard(owner);
        if (vcard) hash = avatarOfVCard(vcard)?.id ?? "";
      }
      hashes.set(key, hash);
      return hash;
    };

    const writeVCardPhoto = async (owner: Jid, avatar: Avatar | null): Promise<void> => {
      const vcard = (await storedVCard(owner)) ?? xml("vCard", { xmlns: NS.vcard });
      vcard.children = vcard.children.filter((c) => typeof c === "string" || c.getName() !== "PHOTO");
      if (avatar) vcard.append(xml("PHOTO", {}, xml("TYPE", {}, avatar.type), xml("BINVAL", {}, avatar.base64)));
      await m.storage.vcards.set(owner.domain, owner.local, vcardToText(vcard));
    };

    // PEP → vCard (XEP-0398 §3.1).
    m.hook<PepChange>(PEP_CHANGED_EVENT, async (change) => {
      if (change.by === TAG || change.node !== NS.avatarMetadata || !change.published) return false;
      const owner = change.owner.bare;
      await lock.run(owner.toString(), async () => {
        const infos = change.published!.payload.getChildren("info");
        if (infos.length === 0) {
          await writeVCardPhoto(owner, null);
          hashes.set(owner.toString(), "");
          return;
        }
        // The info whose data is in the data node (XEP-0084 §4.2: at most one without url).
        const inline = infos.find((i) => i.attrs.url === undefined) ?? infos[0]!;
        const id = inline.attrs.id;
        if (!id) return;
        hashes.set(owner.toString(), id);
        const data = (await (await engine()).items(owner, NS.avatarData))?.find((i) => i.id === id);
        const bytes = data ? decodeBase64(data.payload.getText()) : null;
        if (!bytes) return; // only a URL avatar: vCard photos carry the image itself
        await writeVCardPhoto(owner, { id, type: inline.attrs.type ?? "image/png", base64: bytes.toString("base64") });
      });
      return false;
    });

    // vCard → PEP (XEP-0398 §3.2).
    m.hook<VCardUpdatedEvent>(VCARD_UPDATED_EVENT, async ({ jid, vcard }) => {
      const owner = jid.bare;
      await lock.run(owner.toString(), async () => {
        const avatar = avatarOfVCard(vcard);
        const pep = await engine();
        // What PEP holds now (the vCard store already has the new vCard).
        const metadata = (await pep.items(owner, NS.avatarMetadata))?.at(-1);
        const before = metadata ? (metadata.payload.getChild("info")?.attrs.id ?? "") : null;
        if (!avatar) {
          if (before) {
            await pep.publish(owner, NS.avatarMetadata, { id: "none", payload: xml("metadata", { xmlns: NS.avatarMetadata }) }, {}, TAG);
          }
          hashes.set(owner.toString(), "");
          return;
        }
        hashes.set(owner.toString(), avatar.id);
        if (before === avatar.id) return;
        const bytes = Buffer.from(avatar.base64, "base64");
        await pep.publish(owner, NS.avatarData, { id: avatar.id, payload: xml("data", { xmlns: NS.avatarData }, avatar.base64) }, {}, TAG);
        await pep.publish(
          owner,
          NS.avatarMetadata,
          { id: avatar.id, payload: xml("metadata", { xmlns: NS.avatarMetadata }, xml("info", { id: avatar.id, bytes: String(bytes.length), type: avatar.type })) },
          {},
          TAG,
        );
      });
      return false;
    });

    // The photo hash in the account's available presence (XEP-0153 §4.1, XEP-0398 §3.1).
    const stampPresence = async (ev: StanzaEvent): Promise<boolean> => {
      if (ev.stanza.attrs.type !== undefined || !ev.origin) return false;
      const hash = await currentHash(ev.from.bare);
      if (hash === null) return false;
      const stanza = ev.stanza;
      stanza.children = stanza.children.filter((c) => typeof c === "string" || !(c.getName() === "x" && c.getNS() === NS.vcardUpdate));
      stanza.append(xml("x", { xmlns: NS.vcardUpdate }, xml("photo", {}, hash === "" ? null : hash)));
      return false;
    };
    for (const target of ["self", "bare", "full"]) m.hook<StanzaEvent>(`pre-presence/${target}`, stampPresence, 1000);

    m.hook<{ jid: Jid }>("account/deleting", ({ jid }) => {
      hashes.delete(jid.bare.toString());
      return false;
    });
  },
});
