// XEP-0479 XMPP Compliance Suites 2023 (version 0.1.0), the server columns: which
// specifications each category (Core, Web, IM, Mobile) needs at the Basic ("Server") and
// Advanced ("Advanced Server") levels, and a verdict from what the runner saw. Web, IM and
// Mobile each include the Core category at the same level (XEP-0479 §2). The A/V Calling
// category's only server item (XEP-0215) is listed as well.
//
// A specification is judged from its scenarios when it has some that ran; otherwise from what
// the server advertises (disco features, identities, stream features), which is reported as
// "advertised" rather than "passed": a claim, not a test.
import type { Discovery, ScenarioResult } from "./runner.ts";

export type Category = "Core" | "Web" | "IM" | "Mobile" | "A/V Calling";
export type SuiteLevel = "Basic" | "Advanced";

export interface Requirement {
  /** "RFC 6120", "XEP-0198". */
  spec: string;
  /** The XEP-0479 feature row it comes from. */
  feature: string;
  category: Category;
  /** Advanced-only rows are not needed at the Basic level. */
  advancedOnly: boolean;
}

const row = (category: Category, feature: string, advancedOnly: boolean, ...specs: string[]): Requirement[] =>
  specs.map((spec) => ({ spec, feature, category, advancedOnly }));

/** XEP-0479 §2, server columns. */
export const REQUIREMENTS: Requirement[] = [
  ...row("Core", "Core features", false, "RFC 6120"),
  ...row("Core", "TLS", false, "RFC 7590"),
  ...row("Core", "Direct TLS", true, "XEP-0368"),
  ...row("Core", "Feature discovery", false, "XEP-0030"),
  ...row("Core", "Feature broadcasts", true, "XEP-0115"),
  ...row("Core", "Server Extensibility", false, "XEP-0114"),
  ...row("Core", "Event publishing", true, "XEP-0163"),
  ...row("Web", "Web Connection Mechanisms", false, "RFC 7395", "XEP-0206"),
  ...row("IM", "Core features", false, "RFC 6121"),
  ...row("IM", "User Avatar Compatibility", true, "XEP-0398", "XEP-0153"),
  ...row("IM", "vcard-temp", false, "XEP-0054"),
  ...row("IM", "Outbound Message Synchronization", false, "XEP-0280"),
  ...row("IM", "User Blocking", true, "XEP-0191"),
  ...row("IM", "Group Chat", false, "XEP-0045", "XEP-0249"),
  ...row("IM", "Advanced Group Chat", true, "XEP-0048", "XEP-0313", "XEP-0402", "XEP-0410"),
  ...row("IM", "Persistent Storage of Private Data via PubSub", true, "XEP-0223"),
  ...row("IM", "Private XML Storage", true, "XEP-0049"),
  ...row("IM", "Stream Management", true, "XEP-0198"),
  ...row("IM", "History Storage / Retrieval", true, "XEP-0313"),
  ...row("IM", "File Upload", false, "XEP-0363"),
  ...row("Mobile", "Stream Management", false, "XEP-0198"),
  ...row("Mobile", "Client State Indication", false, "XEP-0352"),
  ...row("Mobile", "Third Party Push Notifications", true, "XEP-0357"),
  ...row("A/V Calling", "STUN/TURN server discovery", false, "XEP-0215"),
];

/** How to see that a server advertises a specification, when no scenario tested it. */
const ADVERTISED_BY: Record<string, { features?: string[]; identities?: string[]; itemFeatures?: string[]; itemIdentities?: string[] }> = {
  "XEP-0030": { features: ["http://jabber.org/protocol/disco#info"] },
  "XEP-0115": { features: ["http://jabber.org/protocol/caps"] },
  "XEP-0163": { identities: ["pubsub/pep"] },
  "XEP-0398": { features: ["urn:xmpp:pep-vcard-conversion:0"] },
  "XEP-0153": { features: ["vcard-temp"] },
  "XEP-0054": { features: ["vcard-temp"] },
  "XEP-0280": { features: ["urn:xmpp:carbons:2"] },
  "XEP-0191": { features: ["urn:xmpp:blocking"] },
  "XEP-0045": { itemFeatures: ["http://jabber.org/protocol/muc"] },
  "XEP-0249": { itemFeatures: ["http://jabber.org/protocol/muc"] },
  "XEP-0048": { features: ["jabber:iq:private", "urn:xmpp:bookmarks:1#compat"] },
  "XEP-0313": { features: ["urn:xmpp:mam:2"] },
  "XEP-0402": { features: ["urn:xmpp:bookmarks:1#compat"] },
  "XEP-0410": { itemFeatures: ["http://jabber.org/protocol/muc#self-ping-optimization"] },
  "XEP-0223": { features: ["http://jabber.org/protocol/pubsub#publish-options"] },
  "XEP-0049": { features: ["jabber:iq:private"] },
  "XEP-0198": { features: ["urn:xmpp:sm:3"] },
  "XEP-0352": { features: ["urn:xmpp:csi:0"] },
  "XEP-0357": { features: ["urn:xmpp:push:0"] },
  "XEP-0363": { itemFeatures: ["urn:xmpp:http:upload:0"] },
  "XEP-0215": { features: ["urn:xmpp:extdisco:2"] },
};

/** Specifications a client-to-server runner cannot see at all. */
const NOT_OBSERVABLE: Record<string, string> = {
  "XEP-0114": "components connect on their own port with a shared secret",
  "RFC 7395": "WebSocket is an HTTP transport: no --websocket-url was given",
  "XEP-0206": "BOSH is an HTTP transport: no --bosh-url was given",
};

export type SpecStatus = "passed" | "failed" | "advertised" | "missing" | "not observable";

export interface SpecVerdict {
  spec: string;
  status: SpecStatus;
  detail: string;
}

export interface SuiteVerdict {
  category: Category;
  level: SuiteLevel;
  /** "compliant": every specification passed or is advertised; "not compliant": one failed or is missing. */
  verdict: "compliant" | "not compliant";
  specs: SpecVerdict[];
  failed: string[];
  missing: string[];
  /** Compliant only on the strength of advertisements or what the runner cannot observe. */
  untested: string[];
}

export function judgeSpec(spec: string, results: ScenarioResult[], discovery: Discovery | null): SpecVerdict {
  const mine = results.filter((r) => r.scenario.spec === spec && r.scenario.provides.length === 0);
  const ran = mine.filter((r) => r.outcome !== "skip");
  const mustFailed = ran.filter((r) => r.scenario.level === "MUST" && (r.outcome === "fail" || r.outcome === "error"));
  if (mustFailed.length > 0) return { spec, status: "failed", detail: `${mustFailed.length} MUST scenario(s) failed` };
  if (ran.length > 0) return { spec, status: "passed", detail: `${ran.filter((r) => r.outcome === "pass").length}/${ran.length} scenarios passed` };
  if (mine.length > 0 && mine.every((r) => r.reason?.startsWith("needs a Direct TLS port"))) {
    return { spec, status: "not observable", detail: "no Direct TLS port was given (--direct-tls-port)" };
  }
  if (NOT_OBSERVABLE[spec]) return { spec, status: "not observable", detail: NOT_OBSERVABLE[spec] };
  const how = ADVERTISED_BY[spec];
  if (how && discovery) {
    const items = discovery.items;
    const hit =
      how.features?.find((f) => discovery.features.has(f)) ??
      how.identities?.find((i) => discovery.features.has(`identity:${i}`)) ??
      how.itemFeatures?.find((f) => items.some((it) => it.features.includes(f))) ??
      how.itemIdentities?.find((i) => items.some((it) => it.identities.includes(i)));
    if (hit) return { spec, status: "advertised", detail: `advertises ${hit}` };
  }
  return { spec, status: "missing", detail: mine.length > 0 ? "every scenario was skipped: not advertised" : "not advertised" };
}

function requirementsFor(category: Category, level: SuiteLevel): Requirement[] {
  const categories: Category[] = category === "Core" ? ["Core"] : ["Core", category];
  const seen = new Set<string>();
  return REQUIREMENTS.filter((r) => categories.includes(r.category) && (level === "Advanced" || !r.advancedOnly)).filter((r) => {
    if (seen.has(r.spec)) return false;
    seen.add(r.spec);
    return true;
  });
}

/** The XEP-0479 verdicts for Core, Web, IM and Mobile at both levels (and A/V Calling). */
export function complianceVerdicts(results: ScenarioResult[], discovery: Discovery | null): SuiteVerdict[] {
  const out: SuiteVerdict[] = [];
  const categories: Category[] = ["Core", "Web", "IM", "Mobile", "A/V Calling"];
  for (const category of categories) {
    for (const level of ["Basic", "Advanced"] as SuiteLevel[]) {
      const specs = requirementsFor(category, level).map((r) => judgeSpec(r.spec, results, discovery));
      const failed = specs.filter((s) => s.status === "failed").map((s) => s.spec);
      const missing = specs.filter((s) => s.status === "missing").map((s) => s.spec);
      const untested = specs.filter((s) => s.status === "advertised" || s.status === "not observable").map((s) => s.spec);
      out.push({ category, level, verdict: failed.length + missing.length === 0 ? "compliant" : "not compliant", specs, failed, missing, untested });
    }
  }
  return out;
}
