// The DOAP file (XEP-0453: DOAP usage in XMPP 0.1.2, RDF/XML with the
// https://linkmauve.fr/ns/xmpp-doap# SupportedXep extension) and the README's protocol table,
// both generated from the `xeps` claims of the built-in modules (DESIGN.md "Modules"), so that
// what Parley says it implements cannot drift from the code that implements it.
//
// `parley doap` writes parley.doap and rewrites the README between the protocol-table markers
// (nothing outside them); without the markers it prints the table instead.
// Runnable on its own too: `tsx server/cli/doap.ts [--doap FILE] [--readme FILE]`.
import { readFile, writeFile, rename } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { xml, type Element } from "../../protocol/xml/element.ts";
import { escapeAttr, escapeText } from "../../protocol/xml/serialize.ts";
import type { ModuleDefinition, SpecClaim } from "../core/module.ts";

export const TABLE_START = "<!-- protocol-table:start -->";
export const TABLE_END = "<!-- protocol-table:end -->";

const NS_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#";
const NS_DOAP = "http://usefulinc.com/ns/doap#";
const NS_XMPP_DOAP = "https://linkmauve.fr/ns/xmpp-doap#";

export type SpecStatus = SpecClaim["status"];

/** One specification as the DOAP and the table show it, merged over every module that claims it. */
export interface SupportedSpec {
  kind: "xep" | "rfc";
  number: number;
  /** "XEP-0077" or "RFC 6121". */
  id: string;
  url: string;
  title: string | undefined;
  version: string;
  status: SpecStatus;
  modules: string[];
  notes: string[];
}

export interface ProjectInfo {
  name: string;
  shortdesc: string;
  /** An SPDX identifier. */
  license: string;
  version: string;
}

// Titles are only for people reading the table; a specification missing here shows its number alone.
const XEP_TITLES: Readonly<Record<number, string>> = {
  4: "Data Forms",
  12: "Last Activity",
  13: "Flexible Offline Message Retrieval",
  30: "Service Discovery",
  33: "Extended Stanza Addressing",
  45: "Multi-User Chat",
  48: "Bookmarks",
  49: "Private XML Storage",
  50: "Ad-Hoc Commands",
  54: "vcard-temp",
  59: "Result Set Management",
  60: "Publish-Subscribe",
  66: "Out of Band Data",
  68: "Field Standardization for Data Forms",
  77: "In-Band Registration",
  84: "User Avatar",
  85: "Chat State Notifications",
  92: "Software Version",
  114: "Jabber Component Protocol",
  115: "Entity Capabilities",
  128: "Service Discovery Extensions",
  124: "Bidirectional-streams Over Synchronous HTTP (BOSH)",
  133: "Service Administration",
  153: "vCard-Based Avatars",
  156: "Discovering Alternative XMPP Connection Methods",
  160: "Best Practices for Handling Offline Messages",
  163: "Personal Eventing Protocol",
  172: "User Nickname",
  178: "Best Practices for Use of SASL EXTERNAL with Certificates",
  184: "Message Delivery Receipts",
  191: "Blocking Command",
  198: "Stream Management",
  199: "XMPP Ping",
  202: "Entity Time",
  203: "Delayed Delivery",
  206: "XMPP Over BOSH",
  215: "External Service Discovery",
  220: "Server Dialback",
  237: "Roster Versioning",
  249: "Direct MUC Invitations",
  280: "Message Carbons",
  288: "Bidirectional Server-to-Server Connections",
  292: "vCard4 Over XMPP",
  297: "Stanza Forwarding",
  308: "Last Message Correction",
  313: "Message Archive Management",
  319: "Last User Interaction in Presence",
  334: "Message Processing Hints",
  352: "Client State Indication",
  357: "Push Notifications",
  359: "Unique and Stable Stanza IDs",
  363: "HTTP File Upload",
  368: "SRV records for XMPP over TLS",
  377: "Spam Reporting",
  380: "Explicit Message Encryption",
  384: "OMEMO Encryption",
  386: "Bind 2",
  388: "Extensible SASL Profile",
  402: "PEP Native Bookmarks",
  410: "MUC Self-Ping (Schrödinger's Chat)",
  411: "Bookmarks Conversion",
  421: "Anonymous unique occupant identifiers for MUCs",
  424: "Message Retraction",
  428: "Fallback Indication",
  440: "SASL Channel-Binding Type Capability",
  441: "Message Archive Management Preferences",
  444: "Message Reactions",
  453: "DOAP usage in XMPP",
  461: "Message Replies",
  484: "Fast Authentication Streamlining Tokens",
  490: "Message Displayed Synchronization",
};

const RFC_TITLES: Readonly<Record<number, string>> = {
  4013: "SASLprep",
  4616: "The PLAIN SASL Mechanism",
  5802: "SCRAM",
  5929: "Channel Bindings for TLS",
  6120: "XMPP: Core",
  6121: "XMPP: Instant Messaging and Presence",
  6125: "Service Identity in TLS",
  7395: "An XMPP Subprotocol for WebSocket",
  7590: "Use of TLS in XMPP",
  7622: "XMPP: Address Format",
  7677: "SCRAM-SHA-256 and SCRAM-SHA-256-PLUS",
  9266: "Channel Bindings for TLS 1.3",
};

/** The XMPP RFCs xmpp.org hosts (the address XEP-0453's example uses); others go to the RFC Editor. */
const XMPP_ORG_RFCS: ReadonlySet<number> = new Set([3920, 3921, 3922, 3923, 6120, 6121, 6122, 7395, 7590, 7622]);

const STATUS_RANK: Readonly<Record<SpecStatus, number>> = { complete: 3, partial: 2, planned: 1 };

/** Reads a claim's `xep`: 77, "77", "XEP-0077" or "RFC 6121". */
export function specIdentity(claim: SpecClaim["xep"]): { kind: "xep" | "rfc"; number: number } {
  if (typeof claim === "number" && Number.isSafeInteger(claim) && claim > 0) return { kind: "xep", number: claim };
  if (typeof claim === "string") {
    const rfc = /^RFC\s*(\d{1,5})$/i.exec(claim.trim());
    if (rfc) return { kind: "rfc", number: Number(rfc[1]) };
    const xep = /^(?:XEP-?)?(\d{1,4})$/i.exec(claim.trim());
    if (xep && Number(xep[1]) > 0) return { kind: "xep", number: Number(xep[1]) };
  }
  throw new Error(`cannot read the specification claim ${JSON.stringify(claim)}: use a XEP number or "RFC <number>"`);
}

function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.-]/).map((p) => Number.parseInt(p, 10) || 0);
  const pb = b.split(/[.-]/).map((p) => Number.parseInt(p, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * Every specification the modules claim, once each, RFCs first then XEPs by number. Two modules
 * claiming one specification merge: the strongest status wins, with its version (the newer on a tie).
 */
export function supportedSpecs(modules: readonly ModuleDefinition[]): SupportedSpec[] {
  const byId = new Map<string, SupportedSpec>();
  const notesById = new Map<string, Array<{ module: string; note: string }>>();
  for (const module of modules) {
    for (const claim of module.xeps) {
      const { kind, number } = specIdentity(claim.xep);
      const padded = String(number).padStart(4, "0");
      const id = kind === "xep" ? `XEP-${padded}` : `RFC ${number}`;
      if (claim.note) notesById.set(id, [...(notesById.get(id) ?? []), { module: module.name, note: claim.note }]);
      const existing = byId.get(id);
      if (!existing) {
        const url =
          kind === "xep"
            ? `https://xmpp.org/extensions/xep-${padded}.html`
            : XMPP_ORG_RFCS.has(number)
              ? `https://xmpp.org/rfcs/rfc${number}.html`
              : `https://www.rfc-editor.org/rfc/rfc${number}`;
        const title = kind === "xep" ? XEP_TITLES[number] : RFC_TITLES[number];
        byId.set(id, { kind, number, id, url, title, version: claim.version, status: claim.status, modules: [module.name], notes: [] });
        continue;
      }
      const stronger = STATUS_RANK[claim.status] - STATUS_RANK[existing.status];
      if (stronger > 0 || (stronger === 0 && compareVersions(claim.version, existing.version) > 0)) {
        existing.status = claim.status;
        existing.version = claim.version;
      }
      if (!existing.modules.includes(module.name)) existing.modules.push(module.name);
    }
  }
  for (const spec of byId.values()) {
    // With several modules behind one specification, each note says which module it is about.
    const several = spec.modules.length > 1;
    spec.notes = (notesById.get(spec.id) ?? []).map(({ module, note }) => (several ? `${module}: ${note}` : note));
  }
  return [...byId.values()].sort((a, b) => (a.kind === b.kind ? a.number - b.number : a.kind === "rfc" ? -1 : 1));
}

// ---------------------------------------------------------------------------------------------
// DOAP

/** RDF/XML for people as well as machines: indented, one element a line, text kept inline. */
function pretty(el: Element, depth = 0): string {
  const pad = "  ".repeat(depth);
  let open = `<${el.name}`;
  for (const [name, value] of Object.entries(el.attrs)) {
    if (value !== undefined && value !== null) open += ` ${name}="${escapeAttr(String(value))}"`;
  }
  if (el.children.length === 0) return `${pad}${open}/>\n`;
  if (el.children.every((c) => typeof c === "string")) return `${pad}${open}>${escapeText(el.children.join(""))}</${el.name}>\n`;
  const inner = el.children.map((c) => (typeof c === "string" ? (c.trim() === "" ? "" : `${pad}  ${escapeText(c)}\n`) : pretty(c, depth + 1))).join("");
  return `${pad}${open}>\n${inner}${pad}</${el.name}>\n`;
}

function implementsElement(spec: SupportedSpec): Element | null {
  // DOAP has no status for a plain <implements/>: only what is at least partly there is listed.
  if (spec.kind === "rfc") return spec.status === "planned" ? null : xml("implements", { "rdf:resource": spec.url });
  return xml(
    "implements",
    {},
    xml(
      "xmpp:SupportedXep",
      {},
      xml("xmpp:xep", { "rdf:resource": spec.url }),
      xml("xmpp:status", {}, spec.status),
      xml("xmpp:version", {}, spec.version),
      ...spec.notes.map((note) => xml("xmpp:note", { "xml:lang": "en" }, note)),
    ),
  );
}

export function buildDoap(modules: readonly ModuleDefinition[], project: ProjectInfo): string {
  const specs = supportedSpecs(modules);
  const root = xml(
    "rdf:RDF",
    { "xmlns:rdf": NS_RDF, xmlns: NS_DOAP, "xmlns:xmpp": NS_XMPP_DOAP },
    xml(
      "Project",
      { "xml:lang": "en" },
      xml("name", {}, project.name),
      xml("shortdesc", {}, project.shortdesc),
      xml("license", { "rdf:resource": `https://spdx.org/licenses/${project.license}.html` }),
      xml("programming-language", {}, "TypeScript"),
      xml("os", {}, "Linux"),
      xml("category", { "rdf:resource": `${NS_XMPP_DOAP}category-server` }),
      ...specs.map(implementsElement).filter((e): e is Element => e !== null),
      xml("release", {}, xml("Version", {}, xml("revision", {}, project.version))),
    ),
  );
  return `<?xml version="1.0" encoding="UTF-8"?>\n<!-- Generated by \`parley doap\` from the xeps claims of server/modules: edit those, not this file. -->\n${pretty(root)}`;
}

// ---------------------------------------------------------------------------------------------
// README table

/** Markdown cell text: pipes escaped, XML element names shown as code rather than eaten as HTML. */
function cell(text: string): string {
  return text
    .replace(/\|/g, "\\|")
    .replace(/\n/g, " ")
    .replace(/<[^<>`]+>/g, (tag) => `\`${tag}\``);
}

export function protocolTable(modules: readonly ModuleDefinition[]): string {
  const rows = supportedSpecs(modules).map((spec) => {
    const name = spec.title ? `[${spec.id}](${spec.url}): ${cell(spec.title)}` : `[${spec.id}](${spec.url})`;
    return `| ${name} | ${cell(spec.version)} | ${spec.status} | ${spec.modules.map((m) => `\`${m}\``).join(", ")} | ${cell(spec.notes.join("; "))} |`;
  });
  return ["| Specification | Version | Status | Module | Notes |", "| --- | --- | --- | --- | --- |", ...rows].join("\n");
}

/** The README with the table between the markers replaced; null when the markers are not both there, in order. */
export function replaceProtocolTable(readme: string, table: string): string | null {
  const start = readme.indexOf(TABLE_START);
  const end = readme.indexOf(TABLE_END, start + TABLE_START.length);
  if (start === -1 || end === -1) return null;
  return `${readme.slice(0, start + TABLE_START.length)}\n${table}\n${readme.slice(end)}`;
}

// ---------------------------------------------------------------------------------------------
// Writing the files

export interface GenerateOptions {
  modules: readonly ModuleDefinition[];
  project: ProjectInfo;
  doapPath: string;
  readmePath: string;
}

export interface GenerateResult {
  /** What became of the README: rewritten, already current, or left alone (then `table` is to be printed). */
  readme: "updated" | "unchanged" | "no-markers" | "missing";
  table: string;
}

async function writeAtomically(path: string, content: string): Promise<void> {
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, content);
  await rename(temporary, path);
}

export async function generateDoapAndTable(opts: GenerateOptions): Promise<GenerateResult> {
  await writeAtomically(opts.doapPath, buildDoap(opts.modules, opts.project));
  const table = protocolTable(opts.modules);
  let readme: string;
  try {
    readme = await readFile(opts.readmePath, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { readme: "missing", table };
    throw err;
  }
  const updated = replaceProtocolTable(readme, table);
  if (updated === null) return { readme: "no-markers", table };
  if (updated === readme) return { readme: "unchanged", table };
  await writeAtomically(opts.readmePath, updated);
  return { readme: "updated", table };
}

/** Name, description, licence and version from package.json. */
export async function projectInfo(): Promise<ProjectInfo> {
  const pkg = JSON.parse(await readFile(new URL("../../package.json", import.meta.url), "utf8")) as Record<string, unknown>;
  const text = (key: string, fallback: string) => (typeof pkg[key] === "string" ? (pkg[key] as string) : fallback);
  return { name: "Parley", shortdesc: text("description", "An XMPP server"), license: text("license", "AGPL-3.0-or-later"), version: text("version", "0.0.0") };
}

/** `parley doap` and `tsx server/cli/doap.ts`: writes the files, reports on stdout. */
export async function runDoap(opts: { doapPath: string; readmePath: string; out: (line: string) => void }): Promise<void> {
  const { builtinModules } = await import("../modules/index.ts");
  const result = await generateDoapAndTable({ modules: builtinModules, project: await projectInfo(), doapPath: opts.doapPath, readmePath: opts.readmePath });
  opts.out(`wrote ${opts.doapPath}`);
  if (result.readme === "updated") opts.out(`updated the protocol table in ${opts.readmePath}`);
  else if (result.readme === "unchanged") opts.out(`the protocol table in ${opts.readmePath} is current`);
  else {
    const why = result.readme === "missing" ? `there is no ${opts.readmePath}` : `${opts.readmePath} has no ${TABLE_START} ... ${TABLE_END} markers`;
    opts.out(`${why}; the table is:\n`);
    opts.out(result.table);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({ options: { doap: { type: "string" }, readme: { type: "string" } } });
  runDoap({ doapPath: values.doap ?? "parley.doap", readmePath: values.readme ?? "README.md", out: (line) => console.log(line) }).catch((err: unknown) => {
    console.error(`doap: ${(err as Error).message}`);
    process.exitCode = 1;
  });
}
