// The conformance scenario format (conformance/scenario/format.ts) and the shipped scenarios.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { parseClients, parseDuration, parseScenario, ScenarioSyntaxError } from "../../conformance/scenario/format.ts";
import { loadScenarios } from "../../conformance/scenario/load.ts";
import { selected, specKey, parseAccounts, parseConfigFile } from "../../conformance/cli.ts";

const PING = `# a comment
title: A ping
spec: XEP-0199 §4.2
level: MUST
requires: urn:xmpp:ping, http://jabber.org/protocol/disco#info
reset: roster
clients: romeo, balcony = romeo (offline), juliet (connected, direct-tls)

romeo sends: <iq type='get' to='{domain}' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>
romeo receives within 2s:
  <iq type='result' id='p1'
      from='{domain}'/>
juliet receives nothing within 500ms
juliet receives nothing within 300ms: <message/>
balcony logs in
balcony logs in: someone secret
juliet authenticates: {juliet.user} wrong PLAIN
romeo has features: <stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>
romeo sends raw: </stream:stream>
romeo is disconnected within 1s
wait 100ms

cleanup:
romeo disconnects
`;

describe("parseScenario", () => {
  test("reads the header", () => {
    const s = parseScenario(PING, "xep-0199/ping");
    assert.equal(s.title, "A ping");
    assert.equal(s.spec, "XEP-0199");
    assert.equal(s.section, "§4.2");
    assert.equal(s.level, "MUST");
    assert.deepEqual(s.requires, ["urn:xmpp:ping", "http://jabber.org/protocol/disco#info"]);
    assert.deepEqual(s.reset, ["roster"]);
    assert.deepEqual(s.accounts, ["romeo", "juliet"]);
    assert.deepEqual(s.clients.map((c) => [c.name, c.account, c.start, c.directTls]), [
      ["romeo", "romeo", "online", false],
      ["balcony", "romeo", "offline", false],
      ["juliet", "juliet", "connected", true],
    ]);
  });

  test("reads every kind of step, with XML continued on indented lines", () => {
    const s = parseScenario(PING, "x");
    assert.deepEqual(
      s.steps.map((x) => x.kind),
      ["send", "receive", "nothing", "nothing", "login", "login", "authenticate", "features", "send-raw", "disconnected", "wait"],
    );
    const receive = s.steps[1];
    assert.ok(receive.kind === "receive" && receive.within === 2000 && receive.pattern.attrs.from === "{domain}" && receive.line === 10);
    const nothing = s.steps[3];
    assert.ok(nothing.kind === "nothing" && nothing.within === 300 && nothing.pattern?.name === "message");
    const login = s.steps[5];
    assert.ok(login.kind === "login" && login.username === "someone" && login.password === "secret");
    const auth = s.steps[6];
    assert.ok(auth.kind === "authenticate" && auth.mechanism === "PLAIN");
    assert.deepEqual(s.cleanup.map((x) => x.kind), ["disconnect"]);
  });

  test("mistakes are reported with the file and line", () => {
    const bad = (text: string, line: number, message: RegExp) =>
      assert.throws(() => parseScenario(text, "bad", "bad.scenario"), (e: unknown) => e instanceof ScenarioSyntaxError && e.line === line && message.test(e.message));
    const head = "spec: RFC 6120 §4\nclients: romeo\n\n";
    bad(head + "juliet sends: <iq/>", 4, /unknown client "juliet"/);
    bad(head + "romeo sends: <iq>", 4, /not well-formed/);
    bad(head + "romeo dances", 4, /unknown step/);
    bad(head + "romeo sends: <iq id='{any}'/>", 4, /only be used in what a client receives/);
    bad(head + "romeo receives nothing within soon", 4, /duration/);
    bad("spec: RFC 6120\nlevel: OFTEN\nclients: romeo\n\nromeo syncs", 2, /MUST, SHOULD or MAY/);
    bad("title: no spec\nclients: romeo\n\nromeo syncs", 1, /missing "spec:"/);
    bad("spec: XEP-0199\nclients: romeo\n\n  <iq/>", 4, /indented line/);
  });

  test("durations and client declarations", () => {
    assert.equal(parseDuration("500ms"), 500);
    assert.equal(parseDuration("1.5s"), 1500);
    assert.equal(parseDuration("soon"), null);
    assert.throws(() => parseClients("romeo (sleepy)"), /unknown client flag/);
    assert.throws(() => parseClients("romeo, romeo"), /declared twice/);
  });
});

describe("the shipped scenarios", () => {
  const scenarios = loadScenarios();

  test("all parse, have unique ids, and cover the specifications the runner promises", () => {
    assert.equal(new Set(scenarios.map((s) => s.id)).size, scenarios.length);
    const specs = new Set(scenarios.filter((s) => s.provides.length === 0).map((s) => s.spec));
    for (const spec of ["RFC 6120", "RFC 6121", "XEP-0030", "XEP-0199", "XEP-0092", "XEP-0012", "XEP-0054", "XEP-0077"]) assert.ok(specs.has(spec), spec);
  });

  test("every requirement is either a disco/stream feature name or provided by a probe", () => {
    const provided = new Set(scenarios.flatMap((s) => s.provides));
    for (const s of scenarios) {
      // Feature names are URIs, except a few registered bare names such as XEP-0160's "msgoffline".
      const bareFeatures = new Set(["direct-tls", "msgoffline"]);
      for (const r of s.requires) assert.ok(provided.has(r) || r.includes(":") || bareFeatures.has(r), `${s.id} requires ${r}, which nothing provides`);
    }
  });
});

describe("command line helpers", () => {
  test("--only matches specs however they are spelled, and scenario ids", () => {
    const s = parseScenario(PING, "xep-0199/ping");
    assert.equal(specKey("XEP-0199"), "xep199");
    for (const o of ["xep-0199", "XEP 199", "xep0199", "xep-0199/ping", "xep-0199/"]) assert.ok(selected(s, [o]), o);
    assert.ok(!selected(s, ["rfc6120"]));
    assert.ok(!selected(s, ["xep-0199/pi"]));
  });

  test("accounts and config files", () => {
    assert.deepEqual(parseAccounts("alice:pa:ss, bob:x"), [
      { username: "alice", password: "pa:ss" },
      { username: "bob", password: "x" },
    ]);
    assert.throws(() => parseAccounts("alice"), /user:password/);
    assert.deepEqual(parseConfigFile("# c\nhost = 127.0.0.2\nregister\ntls-insecure = false\ndomain: \"a.test\"\n"), ["--host", "127.0.0.2", "--register", "--domain", "a.test"]);
  });
});
