// XEP-0115: Entity Capabilities 1.6.0, as a receiving server uses it for XEP-0163 1.2 §4.4
// (notification filtering): each resource's <c/> is remembered from its presence, and a 'ver'
// seen for the first time is resolved by one disco#info to a resource that announced it (§6.2),
// checked against the hash (§5.4) and cached per hash and ver, so that a million phones running
// the same client cost one query. A ver whose answer does not hash to it is not cached.
import { xml, type Element } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import { capsVer, discoInfoFromQuery, type CapsHash } from "../../../protocol/caps.ts";
import type { Jid } from "../../../protocol/jid.ts";

interface Announced {
  node: string;
  ver: string;
  hash: string;
}

const HASHES: ReadonlySet<string> = new Set(["sha-1", "sha-256", "sha-512"]);
/** Bounds for what remote peers can make the server hold. */
const MAX_VERS = 10_000;

export class CapsCache {
  private readonly byJid = new Map<string, Announced>();
  private readonly features = new Map<string, ReadonlySet<string>>();
  private readonly resolving = new Map<string, Promise<ReadonlySet<string> | null>>();

  /** @param request sends an IQ from the server and resolves with the answer. */
  constructor(
    private readonly request: (iq: Element) => Promise<Element>,
    private readonly serverDomain: (jid: Jid) => string,
  ) {}

  /** Remembers (or, for presence without <c/>, forgets) what a full JID announced. */
  observe(full: Jid, presence: Element): void {
    const c = presence.getChild("c", NS.caps);
    const { node, ver, hash } = c?.attrs ?? {};
    if (node === undefined || ver === undefined || hash === undefined || !HASHES.has(hash)) {
      this.byJid.delete(full.toString());
      return;
    }
    this.byJid.set(full.toString(), { node, ver, hash });
  }

  forget(full: Jid): void {
    this.byJid.delete(full.toString());
  }

  /** Full JIDs seen with caps whose bare JID is `bare`. */
  resourcesOf(bare: Jid): string[] {
    const prefix = `${bare.toString()}/`;
    return [...this.byJid.keys()].filter((k) => k.startsWith(prefix));
  }

  /** The features of a full JID, resolving its ver on first sight; null when unknown. */
  async featuresOf(full: Jid): Promise<ReadonlySet<string> | null> {
    const announced = this.byJid.get(full.toString());
    if (!announced) return null;
    const key = `${announced.hash}\u0000${announced.ver}`;
    const known = this.features.get(key);
    if (known) return known;
    let pending = this.resolving.get(key);
    if (!pending) {
      pending = this.resolve(full, announced, key).finally(() => this.resolving.delete(key));
      this.resolving.set(key, pending);
    }
    return pending;
  }

  private async resolve(full: Jid, announced: Announced, key: string): Promise<ReadonlySet<string> | null> {
    const iq = xml("iq", { type: "get", from: this.serverDomain(full), to: full.toString() }, xml("query", { xmlns: NS.discoInfo, node: `${announced.node}#${announced.ver}` }));
    let answer: Element;
    try {
      answer = await this.request(iq);
    } catch {
      return null;
    }
    const query = answer.attrs.type === "result" ? answer.getChild("query", NS.discoInfo) : undefined;
    if (!query) return null;
    const info = discoInfoFromQuery(query);
    // §5.4: an answer that does not hash to the announced ver is not to be trusted for it.
    if (capsVer(info, announced.hash as CapsHash) !== announced.ver) return null;
    const features = new Set(info.features);
    if (this.features.size >= MAX_VERS) this.features.clear();
    this.features.set(key, features);
    return features;
  }
}
