// XEP-0402: PEP Native Bookmarks 1.2.0 with its compatibility with XEP-0048: Bookmarks 1.2, in both
// of 0048's stores: Private XML Storage (XEP-0049, feature `urn:xmpp:bookmarks:1#compat`) and the
// PEP node `storage:bookmarks` (XEP-0223 private node, feature `urn:xmpp:bookmarks:1#compat-pep`).
//
// The `urn:xmpp:bookmarks:1` node (one item per room, id = room JID) is the truth:
// - a private-storage get of storage:bookmarks is built from it, and a set becomes publishes and
//   retracts on it (only the rooms whose bookmark changed);
// - a client publishing `storage:bookmarks` on PEP does the same;
// - any change of the native node republishes the legacy PEP node, so 0048-over-PEP clients are
//   notified as they would be by another 0048 client.
// 0048's <url/> bookmarks have no 0402 form; they are kept aside and returned to 0048 readers.
import { defineModule } from "../../core/module.ts";
import { NS } from "../../../protocol/ns.ts";
import { xml, childElements, type Element } from "../../../protocol/xml/element.ts";
import { tryParseJid, type Jid } from "../../../protocol/jid.ts";
import { stanzaToText } from "../../core/storage/stanza-text.ts";
import { PEP_CHANGED_EVENT, PEP_ENGINE_EVENT, type PepChange, type PepEngine, type PepEngineRequest, type PepItem } from "../pep/index.ts";
import type { NodeConfig } from "../../../protocol/pubsub.ts";
import { KeyedLock } from "../roster/lock.ts";

const NATIVE = NS.bookmarks;
const LEGACY = NS.bookmarksLegacy;
/** Tags our own engine calls carry, so that their change events are not converted back. */
const TAG = "bookmarks-compat";
/** XEP-0402 §5 / XEP-0223 §2: the configuration both nodes get when we create them. */
const NATIVE_OPTIONS: Partial<NodeConfig> = { accessModel: "whitelist", persistItems: true, maxItems: "max", sendLastPublishedItem: "never" };
const LEGACY_OPTIONS: Partial<NodeConfig> = { accessModel: "whitelist", persistItems: true };
const URLS_KEY = "legacy-urls";

function isTrue(value: string | undefined): boolean {
  return value === "true" || value === "1";
}

/** XEP-0048 <conference/> → the XEP-0402 item (id, payload). */
function nativeFromLegacy(conference: Element): PepItem | null {
  const jid = conference.attrs.jid === undefined ? null : tryParseJid(conference.attrs.jid);
  if (!jid) return null;
  const payload = xml("conference", { xmlns: NATIVE, name: conference.attrs.name, autojoin: isTrue(conference.attrs.autojoin) ? "true" : undefined });
  const nick = conference.getChildText("nick");
  if (nick) payload.append(xml("nick", {}, nick));
  const password = conference.getChildText("password");
  if (password) payload.append(xml("password", {}, password));
  return { id: jid.bare.toString(), payload };
}

/** A XEP-0402 item → the XEP-0048 <conference/>; the 0402 <extensions/> have no 0048 place. */
function legacyFromNative(item: PepItem): Element {
  const c = item.payload;
  const out = xml("conference", { jid: item.id, name: c.attrs.name, autojoin: isTrue(c.attrs.autojoin) ? "true" : "false" });
  const nick = c.getChildText("nick");
  if (nick) out.append(xml("nick", {}, nick));
  const password = c.getChildText("password");
  if (password) out.append(xml("password", {}, password));
  return out;
}

/** Equality of what 0048 can express, so that a 0048 write does not drop 0402 extensions needlessly. */
function sameBookmark(a: Element, b: Element): boolean {
  return stanzaToText(legacyFromNative({ id: "", payload: a })) === stanzaToText(legacyFromNative({ id: "", payload: b }));
}

export default defineModule({
  name: "bookmarks",
  xeps: [
    { xep: 402, version: "1.2.0", status: "complete", note: "with #compat (private storage) and #compat-pep" },
    { xep: 48, version: "1.2", status: "complete", note: "in private storage and in PEP, kept consistent with XEP-0402" },
  ],
  depends: ["pep", "private"],
  setup(m) {
    const store = m.store();
    const lock = new KeyedLock();
    m.addFeature(NS.bookmarksCompat, "account");
    m.addFeature(`${NATIVE}#compat-pep`, "account");

    let engineCache: PepEngine | undefined;
    const engine = async (): Promise<PepEngine> => {
      if (!engineCache) {
        const req: PepEngineRequest = {};
        await m.fire(PEP_ENGINE_EVENT, req);
        if (!req.engine) throw new Error("the bookmarks module needs the pep module");
        engineCache = req.engine;
      }
      return engineCache;
    };

    const legacyStorage = async (owner: Jid): Promise<Element> => {
      const items = (await (await engine()).items(owner, NATIVE)) ?? [];
      const storage = xml("storage", { xmlns: LEGACY }, ...items.map(legacyFromNative));
      const urls = await store.get(owner, URLS_KEY);
      if (Array.isArray(urls)) {
        for (const attrs of urls) {
          if (attrs && typeof attrs === "object" && !Array.isArray(attrs)) storage.append(xml("url", Object.fromEntries(Object.entries(attrs).filter((e): e is [string, string] => typeof e[1] === "string"))));
        }
      }
      return storage;
    };

    /** Makes the native node say what a 0048 <storage/> says. */
    const applyLegacy = async (owner: Jid, storage: Element): Promise<void> => {
      const pep = await engine();
      const wanted = new Map<string, PepItem>();
      for (const c of storage.getChildren("conference")) {
        const item = nativeFromLegacy(c);
        if (item) wanted.set(item.id, item);
      }
      // A <url/> is its attributes (name, url); kept as such, it needs no namespace bookkeeping.
      const urls = storage.getChildren("url").map((u) => Object.fromEntries(Object.entries(u.attrs).filter(([k, v]) => k !== "xmlns" && typeof v === "string")) as Record<string, string>);
      await store.set(owner, URLS_KEY, urls);
      const current = new Map(((await pep.items(owner, NATIVE)) ?? []).map((i) => [i.id, i]));
      for (const [id, item] of wanted) {
        const had = current.get(id);
        if (had && sameBookmark(had.payload, item.payload)) continue;
        // Keep the 0402 <extensions/> a 0048 client never saw.
        const extensions = had?.payload.getChild("extensions");
        if (extensions) item.payload.append(extensions);
        await pep.publish(owner, NATIVE, item, NATIVE_OPTIONS, TAG);
      }
      const gone = [...current.keys()].filter((id) => !wanted.has(id));
      if (gone.length > 0) await pep.retract(owner, NATIVE, gone, TAG);
    };

    const republishLegacy = async (owner: Jid): Promise<void> => {
      await (await engine()).publish(owner, LEGACY, { id: "current", payload: await legacyStorage(owner) }, LEGACY_OPTIONS, TAG);
    };

    m.hook<PepChange>(PEP_CHANGED_EVENT, async (change) => {
      if (change.by === TAG) return false;
      const owner = change.owner.bare;
      await lock.run(owner.toString(), async () => {
        if (change.node === NATIVE) {
          await republishLegacy(owner);
        } else if (change.node === LEGACY && change.published) {
          const storage = change.published.payload;
          if (storage.getName() === "storage" && storage.getNS() === LEGACY) await applyLegacy(owner, storage);
        }
      });
      return false;
    });

    // XEP-0049 storage:bookmarks, answered before the private module (priority 10 > 0).
    const legacyChild = (payload: Element): Element | undefined => {
      const children = childElements(payload);
      return children.length === 1 && children[0]!.getName() === "storage" && children[0]!.getNS() === LEGACY ? children[0] : undefined;
    };

    m.onIq("get", NS.privateStorage, "query", async (ev) => {
      if (!legacyChild(ev.payload)) return undefined;
      return xml("query", { xmlns: NS.privateStorage }, await legacyStorage(ev.from.bare));
    }, { targets: ["self"], priority: 10 });

    m.onIq("set", NS.privateStorage, "query", async (ev) => {
      const storage = legacyChild(ev.payload);
      if (!storage) return undefined;
      const owner = ev.from.bare;
      await lock.run(owner.toString(), async () => {
        await applyLegacy(owner, storage);
        await republishLegacy(owner);
      });
      return true;
    }, { targets: ["self"], priority: 10 });

    m.hook<{ jid: Jid }>("account/deleting", async ({ jid }) => {
      await store.delete(jid.bare, URLS_KEY).catch(() => undefined);
      return false;
    });
  },
});
