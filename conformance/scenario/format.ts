// The scenario format of Parley's conformance runner: one plain-text file per behaviour of an
// RFC or XEP, in the spirit of "Romeo sends / Juliet receives" (conformance/README.md has the
// full description). A file is a header of `key: value` lines, a blank line, then steps:
//
//   title: A ping to the server is answered
//   spec: XEP-0199 §4.2
//   level: MUST
//   requires: urn:xmpp:ping
//   clients: romeo
//
//   romeo sends: <iq type='get' to='{domain}' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>
//   romeo receives: <iq type='result' id='p1' from='{domain}'/>
//
// XML may continue on indented lines; `#` starts a comment line; `cleanup:` on a line of its
// own starts steps that always run, even after a failure. Parsing is strict: a mistake in a
// scenario is reported with its file and line, never run.
import { Element } from "../../protocol/xml/element.ts";
import { XmlStreamParser } from "../../protocol/xml/parser.ts";
import { MATCH_NS, stripIndentation, tokenize } from "./pattern.ts";

export type Level = "MUST" | "SHOULD" | "MAY";

/** How a client starts the scenario. */
export type ClientStart =
  | "online" // logged in and bound (no initial presence)
  | "connected" // stream open over TLS, not authenticated
  | "plaintext" // stream open, STARTTLS not done
  | "tcp" // socket open, nothing sent
  | "offline"; // not connected; a step connects or logs in

export interface ClientDecl {
  name: string;
  /** The account role the client logs in as (a role is mapped to one of the runner's accounts). */
  account: string;
  start: ClientStart;
  /** Connect with Direct TLS (XEP-0368) instead of STARTTLS. */
  directTls: boolean;
  /** Over RFC 7395 WebSocket or XEP-0206 BOSH instead of a TCP socket (flags `websocket`, `bosh`). */
  transport?: "websocket" | "bosh";
  /** WebSocket handshake without the "xmpp" subprotocol (flag `no-subprotocol`, with `tcp`). */
  noSubprotocol?: boolean;
}

interface StepBase {
  line: number;
  /** The step as written, for reports. */
  source: string;
}

export type Step =
  | (StepBase & { kind: "send"; client: string; stanza: Element })
  | (StepBase & { kind: "send-raw"; client: string; text: string })
  | (StepBase & { kind: "receive"; client: string; pattern: Element; within?: number })
  | (StepBase & { kind: "nothing"; client: string; within?: number; pattern?: Element })
  | (StepBase & { kind: "discard"; client: string; pattern: Element })
  | (StepBase & { kind: "features"; client: string; pattern: Element })
  | (StepBase & { kind: "connect"; client: string })
  | (StepBase & { kind: "login"; client: string; username?: string; password?: string })
  | (StepBase & { kind: "authenticate"; client: string; username: string; password: string; mechanism?: string })
  | (StepBase & { kind: "disconnect"; client: string })
  | (StepBase & { kind: "disconnected"; client: string; within?: number })
  | (StepBase & { kind: "sync"; client: string })
  | (StepBase & { kind: "wait"; ms: number });

export interface Scenario {
  /** Path relative to the scenarios directory, without extension: "rfc6120/ping-server". */
  id: string;
  file: string;
  title: string;
  /** "RFC 6120", "XEP-0199". */
  spec: string;
  /** "§4.3.2", or "" when the header names no section. */
  section: string;
  level: Level;
  /** Features (disco, stream features or probe-provided) the server must have, else the scenario is skipped. */
  requires: string[];
  /** For probe scenarios: the feature a pass proves. */
  provides: string[];
  /** State to clear for every account the scenario uses, before and after it ("roster"). */
  reset: string[];
  clients: ClientDecl[];
  /** Account roles in order of first use; the runner maps them onto its accounts in that order. */
  accounts: string[];
  steps: Step[];
  cleanup: Step[];
  /** Free text from the `note:` header: why a step is shaped as it is. */
  note?: string;
}

export class ScenarioSyntaxError extends Error {
  constructor(readonly file: string, readonly line: number, message: string) {
    super(`${file}:${line}: ${message}`);
  }
}

const HEADER_KEYS = new Set(["title", "spec", "level", "requires", "provides", "reset", "clients", "note"]);
const NAME = /^[A-Za-z][\w-]*$/;
const WRAPPER_OPEN = `<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' xmlns:match='${MATCH_NS}'>`;

/** Parses one XML element written in a scenario (namespaces jabber:client, stream: and match: are predeclared). */
export function parseXml(text: string): Element {
  const found: Element[] = [];
  let failure: string | null = null;
  const parser = new XmlStreamParser({
    streamStart() {},
    stanza(el) {
      found.push(el);
    },
    streamEnd() {},
    error(e) {
      failure ??= `${e.condition}: ${e.text}`;
    },
  });
  parser.write(Buffer.from(WRAPPER_OPEN + text + "</stream:stream>"));
  if (failure) throw new Error(`not well-formed XML (${failure})`);
  if (found.length !== 1) throw new Error(`expected exactly one XML element, found ${found.length}`);
  return stripIndentation(found[0]);
}

/** "500ms", "2s", "1.5s" -> milliseconds. */
export function parseDuration(s: string): number | null {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s)$/.exec(s.trim());
  if (!m) return null;
  return Math.round(Number(m[1]) * (m[2] === "s" ? 1000 : 1));
}

function splitList(value: string): string[] {
  return value.split(/[\s,]+/).filter((x) => x !== "");
}

/** `romeo`, `balcony = romeo`, `juliet (offline)`, `nurse = juliet (connected, direct-tls)`. */
export function parseClients(value: string): ClientDecl[] {
  const decls: ClientDecl[] = [];
  // Split on commas outside parentheses.
  const parts: string[] = [];
  let depth = 0;
  let current = "";
  for (const ch of value) {
    if (ch === "(") depth++;
    if (ch === ")") depth--;
    if (ch === "," && depth === 0) {
      parts.push(current);
      current = "";
    } else current += ch;
  }
  parts.push(current);
  for (const raw of parts) {
    const part = raw.trim();
    if (part === "") continue;
    const m = /^([A-Za-z][\w-]*)\s*(?:=\s*([A-Za-z][\w-]*))?\s*(?:\(([^)]*)\))?$/.exec(part);
    if (!m) throw new Error(`bad client declaration "${part}" (expected: name [= account] [(flags)])`);
    const decl: ClientDecl = { name: m[1], account: m[2] ?? m[1], start: "online", directTls: false };
    for (const f of splitList(m[3] ?? "")) {
      if (f === "direct-tls") decl.directTls = true;
      else if (f === "websocket" || f === "bosh") decl.transport = f;
      else if (f === "no-subprotocol") decl.noSubprotocol = true;
      else if (["online", "connected", "plaintext", "tcp", "offline"].includes(f)) decl.start = f as ClientStart;
      else throw new Error(`unknown client flag "${f}" (online, connected, plaintext, tcp, offline, direct-tls, websocket, bosh, no-subprotocol)`);
    }
    if (decls.some((d) => d.name === decl.name)) throw new Error(`client "${decl.name}" declared twice`);
    decls.push(decl);
  }
  return decls;
}

interface RawStep {
  line: number;
  head: string;
  body: string;
}

/** Parses the text of a scenario file. `id` names it in reports ("rfc6120/ping-server"). */
export function parseScenario(text: string, id: string, file = id): Scenario {
  const lines = text.replace(/\r\n?/g, "\n").split("\n");
  const fail = (line: number, msg: string): never => {
    throw new ScenarioSyntaxError(file, line, msg);
  };
  const header = new Map<string, { value: string; line: number }>();
  let i = 0;
  // Header: `key: value` lines up to the first blank line.
  for (; i < lines.length; i++) {
    const line = lines[i];
    if (line.trim() === "") {
      if (header.size > 0) break;
      continue;
    }
    if (/^\s*#/.test(line)) continue;
    const m = /^([a-z]+):\s*(.*)$/.exec(line);
    if (!m || !HEADER_KEYS.has(m[1])) fail(i + 1, `expected a header line (${[...HEADER_KEYS].join(", ")}: ...) or a blank line`);
    if (header.has(m![1])) fail(i + 1, `header "${m![1]}" given twice`);
    header.set(m![1], { value: m![2].trim(), line: i + 1 });
  }
  const get = (k: string) => header.get(k)?.value;
  const specValue = get("spec") ?? fail(1, `missing "spec:" header (e.g. spec: RFC 6120 §4.3.2)`);
  const specMatch = /^((?:RFC \d+)|(?:XEP-\d{4}))\s*(§.*)?$/.exec(specValue);
  if (!specMatch) fail(header.get("spec")!.line, `spec must look like "RFC 6120 §4.3.2" or "XEP-0199 §4.2"`);
  const level = (get("level") ?? "MUST").toUpperCase();
  if (level !== "MUST" && level !== "SHOULD" && level !== "MAY") fail(header.get("level")!.line, `level must be MUST, SHOULD or MAY`);
  let clients: ClientDecl[] = [];
  try {
    clients = parseClients(get("clients") ?? "");
  } catch (e) {
    fail(header.get("clients")?.line ?? 1, (e as Error).message);
  }
  const accounts: string[] = [];
  for (const c of clients) if (!accounts.includes(c.account)) accounts.push(c.account);

  // Steps: a line at column 0 starts a step; indented lines continue it.
  const rawMain: RawStep[] = [];
  const rawCleanup: RawStep[] = [];
  let target = rawMain;
  let open: RawStep | null = null;
  for (; i < lines.length; i++) {
    const line = lines[i];
    if (/^\s*#/.test(line)) continue;
    if (line.trim() === "") {
      open = null;
      continue;
    }
    if (/^\s/.test(line)) {
      if (!open) fail(i + 1, "an indented line must continue a step");
      open!.body += (open!.body ? "\n" : "") + line.trim();
      continue;
    }
    if (line.trim() === "cleanup:") {
      if (target === rawCleanup) fail(i + 1, `"cleanup:" given twice`);
      target = rawCleanup;
      open = null;
      continue;
    }
    // The verb phrase holds only lower-case words, numbers and units, so the first ":" after it
    // is the separator even when the XML that follows holds colons.
    const m = /^([A-Za-z][\w-]*)((?: [a-z0-9.]+)*)(?::(?:\s+(.*)|\s*$))?$/.exec(line);
    if (!m) fail(i + 1, `cannot read this step (expected "<client> <verb>[: ...]")`);
    open = { line: i + 1, head: `${m![1]}${m![2]}`, body: m![3] ?? "" };
    target.push(open);
  }

  const names = new Set(clients.map((c) => c.name));
  const build = (raw: RawStep): Step => {
    try {
      return buildStep(raw, names);
    } catch (e) {
      return fail(raw.line, (e as Error).message);
    }
  };
  const steps = rawMain.map(build);
  const cleanup = rawCleanup.map(build);
  if (steps.length === 0) fail(lines.length, "a scenario needs at least one step");
  return {
    id,
    file,
    title: get("title") ?? id,
    spec: specMatch![1],
    section: specMatch![2]?.trim() ?? "",
    level: level as Level,
    requires: splitList(get("requires") ?? ""),
    provides: splitList(get("provides") ?? ""),
    reset: splitList(get("reset") ?? ""),
    clients,
    accounts,
    steps,
    cleanup,
    note: get("note"),
  };
}

function checkPlaceholders(text: string): void {
  for (const t of tokenize(text)) if (t.kind === "capture" || t.kind === "any") throw new Error("{any} and {=name} can only be used in what a client receives");
}

function buildStep(raw: RawStep, clients: Set<string>): Step {
  const words = raw.head.split(" ");
  const base = { line: raw.line, source: raw.body ? `${raw.head}: ${raw.body}` : raw.head };
  if (words[0] === "wait") {
    const ms = parseDuration(words.slice(1).join(""));
    if (ms === null || words.length < 2) throw new Error(`"wait" needs a duration: wait 200ms`);
    return { ...base, kind: "wait", ms };
  }
  const client = words[0];
  if (!clients.has(client)) throw new Error(`unknown client "${client}" (declare it in "clients:")`);
  const verb = words.slice(1);
  const phrase = verb.join(" ");
  const body = raw.body;
  const xmlBody = (): Element => {
    if (!body) throw new Error(`"${phrase}" needs XML after the colon`);
    return parseXml(body);
  };
  const withDuration = (rest: string[]): number | undefined => {
    if (rest.length === 0) return undefined;
    if (rest[0] !== "within" || rest.length !== 2) throw new Error(`expected "within <duration>" after "${verb[0]}"`);
    const ms = parseDuration(rest[1]);
    if (ms === null) throw new Error(`bad duration "${rest[1]}" (e.g. 500ms, 2s)`);
    return ms;
  };
  switch (verb[0]) {
    case "sends":
      if (verb[1] === "raw" && verb.length === 2) {
        if (!body) throw new Error(`"sends raw" needs text after the colon`);
        return { ...base, kind: "send-raw", client, text: body.replace(/\n/g, " ") };
      }
      if (verb.length !== 1) break;
      {
        const stanza = xmlBody();
        const visit = (el: Element) => {
          for (const v of Object.values(el.attrs)) if (typeof v === "string") checkPlaceholders(v);
          for (const c of el.children) typeof c === "string" ? checkPlaceholders(c) : visit(c);
        };
        visit(stanza);
        return { ...base, kind: "send", client, stanza };
      }
    case "receives":
      if (verb[1] === "nothing") {
        const within = withDuration(verb.slice(2));
        return { ...base, kind: "nothing", client, within, pattern: body ? parseXml(body) : undefined };
      }
      return { ...base, kind: "receive", client, within: withDuration(verb.slice(1)), pattern: xmlBody() };
    case "discards":
      if (verb.length !== 1) break;
      return { ...base, kind: "discard", client, pattern: xmlBody() };
    case "has":
      if (phrase !== "has features" && phrase !== "has stream features") break;
      return { ...base, kind: "features", client, pattern: xmlBody() };
    case "connects":
      if (verb.length !== 1 || body) break;
      return { ...base, kind: "connect", client };
    case "logs": {
      if (phrase !== "logs in") break;
      const args = body.split(/\s+/).filter(Boolean);
      if (args.length !== 0 && args.length !== 2) throw new Error(`"logs in" takes nothing, or ": <username> <password>"`);
      return { ...base, kind: "login", client, username: args[0], password: args[1] };
    }
    case "authenticates": {
      if (verb.length !== 1) break;
      const args = body.split(/\s+/).filter(Boolean);
      if (args.length < 2 || args.length > 3) throw new Error(`"authenticates" takes ": <username> <password> [MECHANISM]"`);
      return { ...base, kind: "authenticate", client, username: args[0], password: args[1], mechanism: args[2] };
    }
    case "disconnects":
      if (verb.length !== 1) break;
      return { ...base, kind: "disconnect", client };
    case "is":
      if (verb[1] !== "disconnected") break;
      return { ...base, kind: "disconnected", client, within: withDuration(verb.slice(2)) };
    case "syncs":
      if (verb.length !== 1) break;
      return { ...base, kind: "sync", client };
  }
  throw new Error(
    `unknown step "${phrase}" (sends, sends raw, receives, receives within, receives nothing, discards, has features, connects, logs in, authenticates, disconnects, is disconnected, syncs; or "wait <duration>")`,
  );
}
