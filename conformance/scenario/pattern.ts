// Matching received stanzas by shape, for the conformance scenarios (conformance/README.md,
// "Patterns"). A pattern is an XML element written in a scenario; a received element matches
// when it has the pattern's name and namespace, every attribute the pattern lists (extra ones
// allowed), the pattern's text when it has any, and, for every child the pattern lists, a
// distinct child that matches it (in any order, extra children allowed).
//
// Values may hold placeholders:
//   {any}         anything, including nothing
//   {=name}       anything, captured into the variable `name` (later steps use it as {name})
//   {name}        the value of a variable: {domain}, {unique}, {romeo}, {romeo.full}, ...
//   {absent}      (a whole attribute value) the attribute must not be there
//   a | b         (an attribute value) either alternative, e.g. from='{romeo} | {absent}'
// and elements may carry match:absent='true' (no child like this one may be present) or
// match:exact='true' (no child elements beyond the ones listed), with
// xmlns:match='urn:parley:conformance:match' (declared for every scenario).
// Variables are XMPP-level values, so substitution happens on the parsed tree and never needs
// XML escaping.
import { Element } from "../../protocol/xml/element.ts";

export const MATCH_NS = "urn:parley:conformance:match";

export type Vars = ReadonlyMap<string, string>;

export class UnknownVariable extends Error {
  constructor(readonly variable: string) {
    super(`unknown variable {${variable}}`);
  }
}

type Token = { kind: "text"; text: string } | { kind: "any" } | { kind: "capture"; name: string } | { kind: "var"; name: string };

const PLACEHOLDER = /\{(=?)([A-Za-z_][\w.-]*)\}/g;

/** Splits a value template into literal text and placeholders. */
export function tokenize(template: string): Token[] {
  const tokens: Token[] = [];
  let last = 0;
  for (const m of template.matchAll(PLACEHOLDER)) {
    if (m.index > last) tokens.push({ kind: "text", text: template.slice(last, m.index) });
    if (m[1] === "=") tokens.push({ kind: "capture", name: m[2] });
    else if (m[2] === "any") tokens.push({ kind: "any" });
    else tokens.push({ kind: "var", name: m[2] });
    last = m.index + m[0].length;
  }
  if (last < template.length) tokens.push({ kind: "text", text: template.slice(last) });
  return tokens;
}

const BASE64_CALL = /\{base64\(((?:[^)]|\)(?!\}))*)\)\}/g;

/**
 * The template with every {name} replaced; {any} and captures are not allowed in what is sent.
 * {base64(text)} sends the base64 of the text after substitution, with \0 for a NUL byte, for
 * hand-made SASL exchanges: {base64(\0{romeo.user}\0{romeo.password})} is a PLAIN response.
 */
export function substitute(template: string, vars: Vars): string {
  const withCalls = template.replace(BASE64_CALL, (_whole, inner: string) =>
    Buffer.from(substituteVars(inner, vars).replace(/\\0/g, "\0"), "utf8").toString("base64"),
  );
  return substituteVars(withCalls, vars);
}

function substituteVars(template: string, vars: Vars): string {
  return template.replace(PLACEHOLDER, (whole, capture: string, name: string) => {
    if (capture || name === "any") throw new Error(`${whole} can only be used in what a client receives`);
    const v = vars.get(name);
    if (v === undefined) throw new UnknownVariable(name);
    return v;
  });
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * Matches a value against a template; returns the variables with any new captures, or null.
 * A variable captured twice in one template must capture the same text both times.
 */
export function matchValue(template: string, value: string, vars: Vars): Map<string, string> | null {
  const tokens = tokenize(template);
  const captureNames: string[] = [];
  let source = "^";
  for (const t of tokens) {
    if (t.kind === "text") source += escapeRegExp(t.text);
    else if (t.kind === "any") source += "[\\s\\S]*?";
    else if (t.kind === "var") {
      const v = vars.get(t.name);
      if (v === undefined) throw new UnknownVariable(t.name);
      source += escapeRegExp(v);
    } else {
      const bound = vars.get(t.name);
      if (bound !== undefined) source += escapeRegExp(bound);
      else {
        captureNames.push(t.name);
        source += "([\\s\\S]*?)";
      }
    }
  }
  const m = new RegExp(source + "$").exec(value);
  if (!m) return null;
  const out = new Map(vars);
  for (let i = 0; i < captureNames.length; i++) {
    const name = captureNames[i];
    const prior = out.get(name);
    if (prior !== undefined && prior !== m[i + 1]) return null;
    out.set(name, m[i + 1]);
  }
  return out;
}

/** Matches an attribute template against a value that may be absent. */
export function matchAttribute(template: string, value: string | undefined, vars: Vars): Map<string, string> | null {
  for (const alternative of template.split(" | ")) {
    const alt = alternative.trim() === "{absent}" ? null : alternative;
    if (alt === null) {
      if (value === undefined) return new Map(vars);
      continue;
    }
    if (value === undefined) continue;
    const m = matchValue(alt, value, vars);
    if (m) return m;
  }
  return null;
}

function isMarkupAttribute(name: string): boolean {
  return name === "xmlns" || name.startsWith("xmlns:") || name.startsWith("match:");
}

function flag(pattern: Element, name: string): boolean {
  return pattern.attrs[`match:${name}`] === "true";
}

function ownText(el: Element): string {
  let s = "";
  for (const c of el.children) if (typeof c === "string") s += c;
  return s.trim();
}

function elementChildren(el: Element): Element[] {
  return el.children.filter((c): c is Element => typeof c !== "string");
}

/**
 * Does `el` have the shape of `pattern`? Returns the variables (with the captures the match
 * made) or null. Unknown variables throw UnknownVariable: that is a mistake in the scenario.
 */
export function matchElement(pattern: Element, el: Element, vars: Vars = new Map()): Map<string, string> | null {
  if (pattern.getName() !== el.getName()) return null;
  // A namespace may hold placeholders too (xmlns='urn:example:{unique}').
  let current: Map<string, string> | null = matchValue(pattern.getNS() ?? "", el.getNS() ?? "", vars);
  if (!current) return null;
  for (const [name, template] of Object.entries(pattern.attrs)) {
    if (isMarkupAttribute(name) || template === undefined || template === null) continue;
    const value = el.attrs[name];
    current = matchAttribute(String(template), value === undefined || value === null ? undefined : String(value), current);
    if (!current) return null;
  }
  const text = ownText(pattern);
  if (text !== "") {
    current = matchValue(text, ownText(el), current);
    if (!current) return null;
  }
  const wanted = elementChildren(pattern);
  const present = wanted.filter((p) => !flag(p, "absent"));
  const forbidden = wanted.filter((p) => flag(p, "absent"));
  const candidates = elementChildren(el);
  if (flag(pattern, "exact") && candidates.length !== present.length) return null;
  current = assign(present, candidates, new Set(), current);
  if (!current) return null;
  const found = current;
  if (forbidden.some((f) => candidates.some((c) => matchElement(f, c, found) !== null))) return null;
  return found;
}

/** Finds distinct children for every pattern child, backtracking over the choices. */
function assign(patterns: Element[], candidates: Element[], used: Set<number>, vars: Map<string, string>): Map<string, string> | null {
  if (patterns.length === 0) return vars;
  const [first, ...rest] = patterns;
  for (let i = 0; i < candidates.length; i++) {
    if (used.has(i)) continue;
    const m = matchElement(first, candidates[i], vars);
    if (!m) continue;
    used.add(i);
    const done = assign(rest, candidates, used, m);
    used.delete(i);
    if (done) return done;
  }
  return null;
}

/** A copy of a scenario element with every {variable} replaced, ready to send. */
export function instantiate(template: Element, vars: Vars): Element {
  const attrs: Record<string, string> = {};
  for (const [k, v] of Object.entries(template.attrs)) {
    if (v === undefined || v === null || k.startsWith("match:") || k === "xmlns:match") continue;
    attrs[k] = substitute(String(v), vars);
  }
  const copy = new Element(template.name, attrs);
  for (const c of template.children) {
    if (typeof c === "string") copy.children.push(substitute(c, vars));
    else {
      const child = instantiate(c, vars);
      child.parent = copy;
      copy.children.push(child);
    }
  }
  return copy;
}

/** Removes the whitespace-only text a scenario's indentation put between elements. */
export function stripIndentation(el: Element): Element {
  const kids = elementChildren(el);
  if (kids.length > 0) el.children = el.children.filter((c) => typeof c !== "string" || c.trim() !== "");
  for (const k of kids) stripIndentation(k);
  return el;
}
