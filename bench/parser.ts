// npm run bench:parser — throughput of the XML stream parser (RFC 6120 streams) on 100,000
// small stanzas fed in 4 KiB chunks, beside saxes (a strict, well-known streaming parser, the
// baseline to beat) and ltx's own parser (fast but unsafe: it accepts comments, DTDs and
// unbounded input). Each parser builds the same ltx Elements, so the work compared is the same.
import { performance } from "node:perf_hooks";
import { SaxesParser } from "saxes";
import { Parser as LtxStreamParser, Element } from "@xmpp/xml";
import { XmlStreamParser } from "../protocol/xml/parser.ts";

const STANZAS = Number(process.env.STANZAS ?? 100_000);
const CHUNK = 4096;
const ROUNDS = Number(process.env.ROUNDS ?? 5);

function corpus(): Buffer {
  const parts = ["<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>"];
  for (let i = 0; i < STANZAS; i++) {
    switch (i % 4) {
      case 0:
      case 1:
        parts.push(`<message to='juliet@example.com/balcony' type='chat' id='m${i}'><body>Wherefore art thou, Romeo? &amp; n°${i}</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>`);
        break;
      case 2:
        parts.push(`<presence><show>away</show><status>Out — back soon</status><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://parley.example' ver='QgayPKawpkPSDYmwT/WM94uAlu0='/></presence>`);
        break;
      default:
        parts.push(`<iq type='get' id='q${i}'><query xmlns='jabber:iq:roster' ver='ver${i}'/></iq>`);
    }
  }
  parts.push("</stream:stream>");
  return Buffer.from(parts.join(""));
}

function chunks(b: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < b.length; i += CHUNK) out.push(b.subarray(i, i + CHUNK));
  return out;
}

type Runner = (input: Buffer[]) => number;

const parley: Runner = (input) => {
  let n = 0;
  const p = new XmlStreamParser({
    streamStart() {},
    stanza() {
      n++;
    },
    streamEnd() {},
    error(e) {
      throw new Error(e.condition + ": " + e.text);
    },
  });
  for (const c of input) p.write(c);
  return n;
};

const saxes: Runner = (input) => {
  let n = 0;
  const p = new SaxesParser({ xmlns: true });
  const stack: Element[] = [];
  p.on("opentag", (tag) => {
    const attrs: Record<string, string> = {};
    for (const k in tag.attributes) attrs[k] = (tag.attributes[k] as { value: string }).value;
    const el = new Element(tag.name, attrs);
    if (stack.length > 1) stack[stack.length - 1].children.push(el);
    stack.push(el);
  });
  p.on("text", (t) => {
    if (stack.length > 1) stack[stack.length - 1].children.push(t);
  });
  p.on("closetag", () => {
    stack.pop();
    if (stack.length === 1) n++;
  });
  p.on("error", (e) => {
    throw e;
  });
  const decoder = new TextDecoder("utf-8", { fatal: true });
  for (const c of input) p.write(decoder.decode(c, { stream: true }));
  return n;
};

const ltx: Runner = (input) => {
  let n = 0;
  const p = new LtxStreamParser();
  p.on("element", () => n++);
  const decoder = new TextDecoder("utf-8", { fatal: true });
  for (const c of input) p.write(decoder.decode(c, { stream: true }));
  return n;
};

const input = chunks(corpus());
const bytes = input.reduce((a, c) => a + c.length, 0);
console.log(`${STANZAS} stanzas, ${(bytes / 1e6).toFixed(1)} MB in ${CHUNK}-byte chunks, best of ${ROUNDS} rounds (node ${process.version})`);
const results: Array<{ name: string; perSec: number; mbPerSec: number }> = [];
for (const [name, fn] of [["parley", parley], ["saxes", saxes], ["ltx (unsafe)", ltx]] as const) {
  let best = Infinity;
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = performance.now();
    const n = fn(input);
    const dt = performance.now() - t0;
    if (n !== STANZAS) throw new Error(`${name} parsed ${n} stanzas, expected ${STANZAS}`);
    best = Math.min(best, dt);
  }
  results.push({ name, perSec: STANZAS / (best / 1000), mbPerSec: bytes / 1e6 / (best / 1000) });
}
console.log("| parser | stanzas/s | MB/s |");
console.log("|---|---:|---:|");
for (const r of results) console.log(`| ${r.name} | ${Math.round(r.perSec).toLocaleString("en")} | ${r.mbPerSec.toFixed(1)} |`);
