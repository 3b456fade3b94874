// Pure parts of federation: XEP-0185 dialback keys and the XEP-0220 elements, RFC 6120 §3.2 /
// XEP-0368 resolution order (with a stand-in for DNS: specs never query it), and `[s2s]`
// configuration (routes, policy lists).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { dialbackElement, dialbackKey, dialbackKeyMatches, parseDialback } from "../../../protocol/dialback.ts";
import { parseStandalone } from "../../../protocol/xml/standalone.ts";
import { serialize } from "../../../protocol/xml/serialize.ts";
import { ChainResolver, DnsResolver, StaticResolver, orderSrv, type SrvLookup } from "../../../server/transports/s2s/resolver.ts";
import { parseConfig, ConfigError } from "../../../server/core/config.ts";
import { startTestServer } from "../../support/server.ts";

describe("dialback keys (XEP-0185)", () => {
  test("a key verifies only for the same secret, receiving and originating domains and stream", () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1 }), fc.domain(), fc.domain(), fc.stringMatching(/^[0-9a-f]{4,24}$/), (secret, receiving, originating, id) => {
        const key = dialbackKey(secret, receiving, originating, id);
        assert.match(key, /^[0-9a-f]{64}$/);
        assert.ok(dialbackKeyMatches(key, dialbackKey(secret, receiving, originating, id)));
        assert.ok(!dialbackKeyMatches(key, dialbackKey(`${secret}x`, receiving, originating, id)));
        assert.ok(!dialbackKeyMatches(key, dialbackKey(secret, receiving, originating, `${id}0`)));
        if (receiving !== originating) assert.ok(!dialbackKeyMatches(key, dialbackKey(secret, originating, receiving, id)));
      }),
      { numRuns: 50 },
    );
  });

  test("db:result and db:verify round-trip through text", () => {
    const el = dialbackElement({ kind: "verify", from: "a.example", to: "b.example", id: "s1", key: "abcd" });
    const text = serialize(el);
    assert.match(text, /^<db:verify /);
    const back = parseDialback(parseStandalone(text)!);
    assert.deepEqual({ ...back }, { kind: "verify", from: "a.example", to: "b.example", id: "s1", key: "abcd", type: undefined });
    const answer = parseDialback(parseStandalone(`<db:result xmlns:db="jabber:server:dialback" from="B.example" to="a.example" type="valid"/>`)!);
    assert.equal(answer?.type, "valid");
    assert.equal(answer?.from, "b.example");
    assert.equal(parseDialback(parseStandalone(`<db:result xmlns:db="jabber:server:dialback" to="a.example">k</db:result>`)!), null, "from is required");
  });
});

function fakeDns(records: Record<string, Array<{ name: string; port: number; priority: number; weight: number }>>): SrvLookup & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    async resolveSrv(name: string) {
      asked.push(name);
      const r = records[name];
      if (!r) throw Object.assign(new Error("ENOTFOUND"), { code: "ENOTFOUND" });
      return r;
    },
  };
}

describe("finding a remote server", () => {
  test("SRV records in priority order, Direct TLS first at equal priority (RFC 6120 §3.2.1, XEP-0368 §3)", async () => {
    const dns = fakeDns({
      "_xmpp-server._tcp.example.net": [
        { name: "backup.example.net.", port: 5269, priority: 20, weight: 0 },
        { name: "main.example.net.", port: 5269, priority: 10, weight: 0 },
      ],
      "_xmpps-server._tcp.example.net": [{ name: "tls.example.net.", port: 5270, priority: 10, weight: 0 }],
    });
    const found = await new DnsResolver(dns).resolve("example.net");
    assert.deepEqual(found, [
      { host: "tls.example.net", port: 5270, directTls: true },
      { host: "main.example.net", port: 5269, directTls: false },
      { host: "backup.example.net", port: 5269, directTls: false },
    ]);
  });

  test("no SRV record falls back to the domain on 5269; a '.' target means no service", async () => {
    assert.deepEqual(await new DnsResolver(fakeDns({})).resolve("plain.example"), [{ host: "plain.example", port: 5269, directTls: false }]);
    const refused = fakeDns({ "_xmpp-server._tcp.none.example": [{ name: ".", port: 0, priority: 0, weight: 0 }] });
    assert.deepEqual(await new DnsResolver(refused).resolve("none.example"), []);
  });

  test("weighted order keeps every record once", () => {
    fc.assert(
      fc.property(fc.array(fc.record({ name: fc.domain(), port: fc.integer({ min: 1, max: 65535 }), priority: fc.integer({ min: 0, max: 3 }), weight: fc.integer({ min: 0, max: 10 }) }), { maxLength: 8 }), fc.double({ min: 0, max: 0.999, noNaN: true }), (records, r) => {
        const ordered = orderSrv(records, () => r);
        assert.equal(ordered.length, records.length);
        for (let i = 1; i < ordered.length; i++) assert.ok(ordered[i - 1].priority <= ordered[i].priority);
        assert.deepEqual([...ordered].sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y))), [...records].sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y))));
      }),
    );
  });

  test("static routes win over DNS, and without DNS an unknown domain has no address", async () => {
    const dns = fakeDns({});
    const routes = new StaticResolver({ "b.example": [{ host: "127.0.0.5", port: 5269, directTls: false }] });
    const chain = new ChainResolver(routes, new DnsResolver(dns));
    assert.deepEqual(await chain.resolve("b.example"), [{ host: "127.0.0.5", port: 5269, directTls: false }]);
    assert.deepEqual(dns.asked, [], "DNS is not asked about a routed domain");
    assert.deepEqual(await new ChainResolver(routes, null).resolve("c.example"), []);
  });
});

describe("[s2s] configuration", () => {
  test("routes: host:port, tls://host:port and lists tried in order", () => {
    const config = parseConfig(
      ['[s2s]', 'dns = false', '[s2s.routes]', '"b.example" = "127.0.0.5:5269"', '"c.example" = ["tls://127.0.0.6:5270", "[::1]:5269"]'].join("\n"),
      "/srv",
    );
    assert.deepEqual(config.s2s.routes, {
      "b.example": [{ host: "127.0.0.5", port: 5269, directTls: false }],
      "c.example": [{ host: "127.0.0.6", port: 5270, directTls: true }, { host: "::1", port: 5269, directTls: false }],
    });
    assert.equal(config.s2s.dns, false);
    assert.equal(config.s2s.requireEncryption, true, "encryption is required by default");
  });

  test("mistakes are named by key", () => {
    assert.throws(
      () => parseConfig(['[s2s]', 'deny = ["not a host"]', 'require_encryptoin = false', '[s2s.routes]', '"b.example" = "nowhere"'].join("\n"), "/srv"),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        assert.deepEqual(e.problems.sort(), [
          's2s.deny[0]: expected a hostname like "example.com", got "not a host"',
          's2s.require_encryptoin: unknown key (did you mean "require_encryption"?)',
          's2s.routes."b.example": expected "host:port" or "tls://host:port" (or a list of them), got "nowhere"',
        ]);
        return true;
      },
    );
  });
});

describe("starting with [s2s]", () => {
  test("an unreadable ca_file is a configuration error naming the key, and nothing is left listening", async () => {
    await assert.rejects(
      startTestServer({ toml: '[s2s]\nenabled = true\nca_file = "/nonexistent/parley-ca.pem"' }),
      (e: unknown) => e instanceof ConfigError && /^s2s\.ca_file: cannot read \/nonexistent\/parley-ca\.pem: ENOENT$/.test(e.problems[0]),
    );
  });
});
