// XEP-0115: Entity Capabilities, version 1.6.0: the verification string ('ver') of §5.1, computed
// from XEP-0030 disco#info data (identities, features) and XEP-0128 extension forms.
//
// Every sort here is the "i;octet" collation of RFC 4790 that §5.1 names: strings compare by
// their UTF-8 bytes. JavaScript's `<` compares UTF-16 code units, which orders U+E000..U+FFFF
// after the astral planes and would give a different hash for names with emoji or CJK
// extensions than every other implementation computes.
import { createHash } from "node:crypto";
import { Element, childElements, xml } from "./xml/element.ts";
import { NS } from "./ns.ts";
import { FORM_TYPE_FIELD, getField, parseForm, type DataForm } from "./forms.ts";

export interface CapsIdentity {
  category: string;
  type: string;
  name?: string;
  /** The identity's xml:lang. */
  lang?: string;
}

/** What the hash covers: one disco#info answer. */
export interface CapsInput {
  identities: readonly CapsIdentity[];
  features: Iterable<string>;
  /** XEP-0128 extension forms; one without a FORM_TYPE field is left out of the hash. */
  forms?: readonly DataForm[];
}

/** The hash functions of the IANA registry that Parley computes; sha-1 is the one §5.1 requires. */
export type CapsHash = "sha-1" | "sha-256" | "sha-512";

const NODE_DIGEST: Record<CapsHash, string> = { "sha-1": "sha1", "sha-256": "sha256", "sha-512": "sha512" };

/** Called, not looked up on each string: see charCodeAt in xml/serialize.ts. */
const charCodeAt = String.prototype.charCodeAt;

/**
 * The RFC 4790 "i;octet" order: by UTF-8 bytes. UTF-8 keeps code-point order, and UTF-16 code
 * units agree with it except where a surrogate meets another code unit, so only a first
 * difference at a surrogate is settled by encoding (a server's caps are hashed at every login,
 * and two Buffers per comparison were most of that work).
 */
export function octetCompare(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = charCodeAt.call(a, i);
    const y = charCodeAt.call(b, i);
    if (x === y) continue;
    if ((x & 0xf800) === 0xd800 || (y & 0xf800) === 0xd800) return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
    return x < y ? -1 : 1;
  }
  return a.length < b.length ? -1 : a.length > b.length ? 1 : 0;
}

function formTypeOf(form: DataForm): string | undefined {
  // §5.4 reads the FORM_TYPE whatever the field's type (hidden or not), unlike XEP-0068's
  // context rule in forms.ts formType(): a peer's hash counts such a form, so ours must too.
  return getField(form, FORM_TYPE_FIELD)?.values[0];
}

/** §5.1 steps 1-7: the string S that is hashed. */
export function verificationString(input: CapsInput): string {
  let s = "";
  const identities = [...input.identities].sort(
    (a, b) =>
      octetCompare(a.category, b.category) ||
      octetCompare(a.type, b.type) ||
      octetCompare(a.lang ?? "", b.lang ?? "") ||
      octetCompare(a.name ?? "", b.name ?? ""),
  );
  for (const id of identities) s += `${id.category}/${id.type}/${id.lang ?? ""}/${id.name ?? ""}<`;
  for (const feature of [...input.features].sort(octetCompare)) s += `${feature}<`;
  const forms = (input.forms ?? [])
    .map((form) => ({ form, type: formTypeOf(form) }))
    .filter((f): f is { form: DataForm; type: string } => f.type !== undefined)
    .sort((a, b) => octetCompare(a.type, b.type));
  for (const { form, type } of forms) {
    s += `${type}<`;
    const fields = form.fields
      .filter((f) => f.var !== undefined && f.var !== FORM_TYPE_FIELD)
      .sort((a, b) => octetCompare(a.var!, b.var!));
    for (const field of fields) {
      s += `${field.var}<`;
      for (const value of [...field.values].sort(octetCompare)) s += `${value}<`;
    }
  }
  return s;
}

/** §5.1 steps 8-10: base64 of the hash of S in UTF-8. */
export function capsVer(input: CapsInput, hash: CapsHash = "sha-1"): string {
  return createHash(NODE_DIGEST[hash]).update(verificationString(input), "utf8").digest("base64");
}

/** The <c/> element of §4 (in presence, or as a stream feature of a server). */
export function capsElement(node: string, ver: string, hash: CapsHash = "sha-1"): Element {
  return xml("c", { xmlns: NS.caps, hash, node, ver });
}

/**
 * Reads a disco#info <query/> into what the hash covers, so a received answer can be checked
 * against the 'ver' that announced it (§5.4). Forms that are not valid data forms are skipped.
 */
export function discoInfoFromQuery(query: Element): Required<CapsInput> & { features: string[] } {
  const identities: CapsIdentity[] = [];
  const features: string[] = [];
  const forms: DataForm[] = [];
  for (const child of childElements(query)) {
    const ns = child.getNS();
    if (ns === NS.discoInfo && child.getName() === "identity") {
      const { category, type, name } = child.attrs;
      if (category === undefined || type === undefined) continue;
      const identity: CapsIdentity = { category, type };
      if (name !== undefined) identity.name = name;
      if (child.attrs["xml:lang"] !== undefined) identity.lang = child.attrs["xml:lang"];
      identities.push(identity);
    } else if (ns === NS.discoInfo && child.getName() === "feature") {
      if (child.attrs.var !== undefined) features.push(child.attrs.var);
    } else if (ns === NS.dataForms && child.getName() === "x") {
      try {
        forms.push(parseForm(child));
      } catch {
        // Not a form we can read; §5.4 leaves it out rather than failing the whole answer.
      }
    }
  }
  return { identities, features, forms };
}
