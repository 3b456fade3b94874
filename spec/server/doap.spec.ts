// XEP-0453 DOAP and the README protocol table, generated from the modules' claims.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { XmlStreamParser } from "../../protocol/xml/parser.ts";
import type { Element } from "../../protocol/xml/element.ts";
import { defineModule, type ModuleDefinition } from "../../server/core/module.ts";
import { builtinModules } from "../../server/modules/index.ts";
import {
  TABLE_END,
  TABLE_START,
  buildDoap,
  generateDoapAndTable,
  protocolTable,
  replaceProtocolTable,
  specIdentity,
  supportedSpecs,
  type ProjectInfo,
} from "../../server/cli/doap.ts";

const PROJECT: ProjectInfo = { name: "Parley", shortdesc: "An XMPP server", license: "AGPL-3.0-or-later", version: "0.1.0" };
const RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#";
const DOAP = "http://usefulinc.com/ns/doap#";
const XMPP_DOAP = "https://linkmauve.fr/ns/xmpp-doap#";

/** Parses the DOAP document with Parley's own strict parser: the root stands in for a stream header. */
function parseDoap(text: string): Element {
  const body = text.replace(/^<\?xml[^>]*\?>\s*/, "").replace(/^<!--[\s\S]*?-->\s*/, "");
  let root: Element | null = null;
  const parser = new XmlStreamParser(
    { streamStart: () => {}, stanza: (el) => (root ??= el), streamEnd: () => {}, error: (e) => assert.fail(`not well-formed: ${e.text}`) },
    { maxStanzaSize: 1 << 24 },
  );
  parser.write(`<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>${body}`);
  assert.ok(root, "the DOAP parsed into an element");
  return root;
}

interface DoapEntry {
  xep: string;
  status: string;
  version: string;
  notes: string[];
}

function doapContents(text: string): { xeps: DoapEntry[]; rfcs: string[]; project: Element } {
  const root = parseDoap(text);
  assert.equal(root.getName(), "RDF");
  assert.equal(root.getNS(), RDF);
  const project = root.getChild("Project", DOAP)!;
  assert.ok(project, "one doap:Project");
  const xeps: DoapEntry[] = [];
  const rfcs: string[] = [];
  for (const impl of project.getChildren("implements", DOAP)) {
    const supported = impl.getChild("SupportedXep", XMPP_DOAP);
    if (!supported) {
      rfcs.push(impl.attrs["rdf:resource"]);
      continue;
    }
    xeps.push({
      xep: supported.getChild("xep", XMPP_DOAP)!.attrs["rdf:resource"],
      status: supported.getChildText("status", XMPP_DOAP) ?? "",
      version: supported.getChildText("version", XMPP_DOAP) ?? "",
      notes: supported.getChildren("note", XMPP_DOAP).map((n) => n.getText()),
    });
  }
  return { xeps, rfcs, project };
}

const xepUrl = (n: number) => `https://xmpp.org/extensions/xep-${String(n).padStart(4, "0")}.html`;

describe("DOAP", () => {
  test("lists every XEP the built-in modules claim, with their status and version, and nothing else", () => {
    const { xeps, rfcs, project } = doapContents(buildDoap(builtinModules, PROJECT));
    const claimed = new Map<string, { status: string; version: string }>();
    const claimedRfcs = new Set<string>();
    for (const module of builtinModules) {
      for (const claim of module.xeps) {
        const { kind, number } = specIdentity(claim.xep);
        if (kind === "xep") claimed.set(xepUrl(number), { status: claim.status, version: claim.version });
        else if (claim.status !== "planned") claimedRfcs.add(number.toString());
      }
    }
    assert.ok(claimed.size > 0, "the built-in modules claim something");
    assert.deepEqual(new Set(xeps.map((x) => x.xep)), new Set(claimed.keys()));
    assert.equal(xeps.length, claimed.size, "each XEP once");
    for (const entry of xeps) {
      assert.ok(["complete", "partial", "planned"].includes(entry.status));
      assert.ok(entry.version !== "");
    }
    // With one claim per XEP, the DOAP says exactly what the module says.
    for (const entry of xeps) {
      const claims = builtinModules.flatMap((m) => m.xeps).filter((c) => specIdentity(c.xep).kind === "xep" && xepUrl(specIdentity(c.xep).number) === entry.xep);
      if (claims.length === 1) assert.deepEqual({ status: entry.status, version: entry.version }, claimed.get(entry.xep));
    }
    assert.deepEqual(new Set(rfcs.map((u) => /rfc(\d+)/.exec(u)![1])), claimedRfcs);
    assert.equal(project.getChildText("name", DOAP), "Parley");
    assert.equal(project.getChild("license", DOAP)?.attrs["rdf:resource"], "https://spdx.org/licenses/AGPL-3.0-or-later.html");
  });

  test("two modules claiming one XEP make one entry: the stronger status, its version, both notes", () => {
    const modules: ModuleDefinition[] = [
      defineModule({ name: "alpha", xeps: [{ xep: 30, version: "2.4", status: "partial", note: "identities only" }, { xep: "RFC 6121", version: "1.0", status: "planned" }], setup() {} }),
      defineModule({ name: "beta", xeps: [{ xep: "XEP-0030", version: "2.5rc3", status: "complete", note: "items & <feature/> too" }, { xep: "RFC 6120", version: "1.0", status: "complete" }], setup() {} }),
    ];
    const { xeps, rfcs } = doapContents(buildDoap(modules, PROJECT));
    assert.deepEqual(xeps, [{ xep: xepUrl(30), status: "complete", version: "2.5rc3", notes: ["alpha: identities only", "beta: items & <feature/> too"] }]);
    assert.deepEqual(rfcs, ["https://xmpp.org/rfcs/rfc6120.html"], "a planned RFC is not something Parley implements");
    const [rfc6120, rfc6121, xep30] = supportedSpecs(modules);
    assert.deepEqual([rfc6120.id, rfc6121.id, xep30.id], ["RFC 6120", "RFC 6121", "XEP-0030"]);
    assert.deepEqual(xep30.modules, ["alpha", "beta"]);
  });

  test("a claim that names no specification is refused rather than written out", () => {
    assert.throws(() => specIdentity("XEP-zero"), /cannot read the specification claim/);
    assert.throws(() => specIdentity(0), /cannot read/);
    assert.deepEqual(specIdentity("rfc 7622"), { kind: "rfc", number: 7622 });
    assert.deepEqual(specIdentity("XEP-0198"), { kind: "xep", number: 198 });
  });
});

describe("README protocol table", () => {
  const modules: ModuleDefinition[] = [
    defineModule({ name: "vcard", xeps: [{ xep: 54, version: "1.2", status: "complete", note: "empty <vCard/> | when none" }], setup() {} }),
    defineModule({ name: "ping", xeps: [{ xep: 199, version: "2.0.1", status: "complete" }], setup() {} }),
  ];

  test("has a row per specification, with links, and notes that cannot break the table", () => {
    const lines = protocolTable(modules).split("\n");
    assert.equal(lines.length, 2 + 2);
    assert.match(lines[2], /^\| \[XEP-0054\]\(https:\/\/xmpp\.org\/extensions\/xep-0054\.html\): vcard-temp \| 1\.2 \| complete \| `vcard` \| empty `<vCard\/>` \\\| when none \|$/);
    assert.match(lines[3], /XEP-0199.*XMPP Ping \| 2\.0\.1 \| complete \| `ping` \|/);
    for (const line of lines) assert.equal(line.split(/(?<!\\)\|/).length, 7, `six cells: ${line}`);
  });

  test("only the text between the markers changes, and a second run changes nothing", () => {
    const readme = `# Parley\n\nIntro.\n\n${TABLE_START}\nold table\n${TABLE_END}\n\nMore text.\n`;
    const once = replaceProtocolTable(readme, protocolTable(modules))!;
    assert.ok(once.startsWith(`# Parley\n\nIntro.\n\n${TABLE_START}\n| Specification`));
    assert.ok(once.endsWith(`|\n${TABLE_END}\n\nMore text.\n`));
    assert.doesNotMatch(once, /old table/);
    assert.equal(replaceProtocolTable(once, protocolTable(modules)), once);
    assert.equal(replaceProtocolTable("# no markers\n", "x"), null);
    assert.equal(replaceProtocolTable(`${TABLE_END}\n${TABLE_START}\n`, "x"), null, "markers out of order are not markers");
  });

  test("generating writes parley.doap, updates a README with markers, leaves one without them alone", async () => {
    const dir = mkdtempSync(join(tmpdir(), "parley-doap-"));
    try {
      const doapPath = join(dir, "parley.doap");
      const readmePath = join(dir, "README.md");
      const missing = await generateDoapAndTable({ modules, project: PROJECT, doapPath, readmePath });
      assert.equal(missing.readme, "missing");
      assert.equal(existsSync(readmePath), false, "no README is created");
      assert.equal(doapContents(readFileSync(doapPath, "utf8")).xeps.length, 2);

      writeFileSync(readmePath, "# Parley\nno markers here\n");
      assert.equal((await generateDoapAndTable({ modules, project: PROJECT, doapPath, readmePath })).readme, "no-markers");
      assert.equal(readFileSync(readmePath, "utf8"), "# Parley\nno markers here\n");

      writeFileSync(readmePath, `# Parley\n${TABLE_START}\n${TABLE_END}\n`);
      const updated = await generateDoapAndTable({ modules, project: PROJECT, doapPath, readmePath });
      assert.equal(updated.readme, "updated");
      assert.match(readFileSync(readmePath, "utf8"), /XEP-0054/);
      assert.equal((await generateDoapAndTable({ modules, project: PROJECT, doapPath, readmePath })).readme, "unchanged");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("the committed files", () => {
  test("README.md's protocol table and parley.doap are what the built-in modules generate (run `npm run doap`)", async () => {
    const root = join(import.meta.dirname, "..", "..");
    const readme = readFileSync(join(root, "README.md"), "utf8");
    assert.equal(replaceProtocolTable(readme, protocolTable(builtinModules)), readme, "README.md protocol table is stale");
    const { projectInfo } = await import("../../server/cli/doap.ts");
    assert.equal(readFileSync(join(root, "parley.doap"), "utf8"), buildDoap(builtinModules, await projectInfo()), "parley.doap is stale");
  });
});
