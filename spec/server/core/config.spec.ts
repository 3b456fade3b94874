// Specs for server/core/config.ts: parley.toml (TOML 1.0) validation, defaults and paths.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { stringify } from "smol-toml";
import { ConfigError, loadConfig, parseConfig, SettingsReader } from "../../../server/core/config.ts";
import type { Config } from "../../../server/core/config.ts";

const projectRoot = fileURLToPath(new URL("../../../", import.meta.url));

function problemsOf(text: string): string[] {
  try {
    parseConfig(text, "/srv/parley");
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error.problems;
  }
  assert.fail("the configuration was accepted");
}

function withTempDir<T>(fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), "parley-config-"));
  try {
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("defaults", () => {
  test("an empty file serves localhost on the loopback with STARTTLS, Direct TLS and SQLite", () => {
    const expected: Config = {
      file: null,
      domains: ["localhost"],
      dataDir: "/srv/parley/data",
      c2s: { interfaces: ["127.0.0.1"], port: 5222, directTlsPort: 5223, requireEncryption: true, allowPlain: true, strictChannelBinding: false },
      s2s: {
        enabled: false, interfaces: ["127.0.0.1"], port: 5269, directTlsPort: null, requireEncryption: true, requireValidCertificates: false,
        secureDomains: [], insecureDomains: [], allow: [], deny: [], caFile: null, dialbackSecret: "", routes: {}, dns: true,
        connectTimeoutMs: 10000, authTimeoutMs: 30000, idleTimeoutMs: 600000, maxQueue: 1000, maxStreamsPerIp: 20, bidi: true, keepaliveMs: 60000,
      },
      http: {
        enabled: true, interfaces: ["127.0.0.1"], port: 5280, tlsPort: 5281, publicUrl: "", metricsAllow: ["127.0.0.1", "::1"],
        websocket: true, bosh: true, boshMaxWait: 60, boshInactivity: 60, behindTls: false,
      },
      tls: { certificate: null, key: null, domains: {} },
      database: { dialect: "sqlite", path: "/srv/parley/data/parley.sqlite" },
      limits: {
        maxStanzaSize: 262144,
        maxDepth: 64,
        c2sRateBytesPerSecond: 65536,
        c2sBurstBytes: 262144,
        stanzasPerSecond: 100,
        stanzaBurst: 500,
        authFailuresBeforeClose: 3,
        authFailureDelayMs: 1000,
        loginTimeoutMs: 30000,
        idleTimeoutMs: 300000,
        keepaliveIntervalMs: 60000,
      },
      registration: { enabled: false, perIpPerHour: 5 },
      modules: { disabled: [], settings: {} },
      log: { level: "info" },
    };
    assert.deepEqual(parseConfig("", "/srv/parley"), expected);
  });

  test("the configuration is frozen all the way down", () => {
    const config = parseConfig("[modules.muc]\nrooms = { max = 3 }", "/srv");
    assert.throws(() => {
      (config.c2s as { port: number }).port = 1;
    }, TypeError);
    assert.throws(() => {
      (config.domains as string[]).push("evil.example");
    }, TypeError);
    assert.throws(() => {
      (config.modules.settings.muc.rooms as { max: number }).max = 4;
    }, TypeError);
  });

  test("loadConfig without a path and without ./parley.toml gives the defaults relative to the working directory", () => {
    withTempDir((dir) => {
      const previous = process.cwd();
      process.chdir(dir);
      try {
        const config = loadConfig();
        assert.equal(config.file, null);
        assert.equal(config.dataDir, join(dir, "data"));
        assert.deepEqual(config.domains, ["localhost"]);
      } finally {
        process.chdir(previous);
      }
    });
  });

  test("loadConfig without a path reads ./parley.toml when it exists", () => {
    withTempDir((dir) => {
      writeFileSync(join(dir, "parley.toml"), 'domains = ["chat.example"]\n');
      const previous = process.cwd();
      process.chdir(dir);
      try {
        const config = loadConfig();
        assert.equal(config.file, join(dir, "parley.toml"));
        assert.deepEqual(config.domains, ["chat.example"]);
      } finally {
        process.chdir(previous);
      }
    });
  });
});

describe("paths", () => {
  test("relative paths are resolved against the configuration file's folder, absolute ones kept", () => {
    withTempDir((dir) => {
      const nested = join(dir, "etc");
      const file = join(nested, "parley.toml");
      const text = [
        'domains = ["example.com"]',
        'data_dir = "state"',
        "[tls]",
        'certificate = "certs/example.pem"',
        'key = "/etc/ssl/private/example.key"',
        '[tls.domains."conference.example.com"]',
        'certificate = "../muc.pem"',
        'key = "../muc.key"',
        "[database]",
        'url = "db/parley.sqlite"',
      ].join("\n");
      mkdirSync(nested);
      writeFileSync(file, text);
      const config = loadConfig(file);
      assert.equal(config.file, file);
      assert.equal(config.dataDir, join(nested, "state"));
      assert.equal(config.tls.certificate, join(nested, "certs", "example.pem"));
      assert.equal(config.tls.key, "/etc/ssl/private/example.key");
      assert.deepEqual(config.tls.domains, {
        "conference.example.com": { certificate: join(dir, "muc.pem"), key: join(dir, "muc.key") },
      });
      assert.deepEqual(config.database, { dialect: "sqlite", path: join(nested, "db", "parley.sqlite") });
    });
  });

  test("the default database follows data_dir", () => {
    const config = parseConfig('data_dir = "/var/lib/parley"', "/etc/parley");
    assert.deepEqual(config.database, { dialect: "sqlite", path: "/var/lib/parley/parley.sqlite" });
  });

  test("PostgreSQL URLs and :memory: are taken as they are", () => {
    const url = "postgres://parley:secret@127.0.0.1:5432/parley";
    assert.deepEqual(parseConfig(`[database]\nurl = "${url}"`, "/srv").database, { dialect: "postgres", url });
    assert.deepEqual(parseConfig(`[database]\nurl = "postgresql://127.0.0.1/p"`, "/srv").database, {
      dialect: "postgres",
      url: "postgresql://127.0.0.1/p",
    });
    assert.deepEqual(parseConfig(`[database]\nurl = ":memory:"`, "/srv").database, { dialect: "sqlite", path: ":memory:" });
  });

  test("a configuration file that does not exist is an error naming it", () => {
    const missing = join(tmpdir(), "parley-no-such-dir", "parley.toml");
    assert.throws(
      () => loadConfig(missing),
      (error: unknown) =>
        error instanceof ConfigError &&
        error.message.startsWith(`${missing}: `) &&
        error.problems[0] === "cannot read the configuration file: no such file",
    );
  });
});

describe("mistakes are all reported, each naming its key", () => {
  test("wrong types and out-of-range values", () => {
    assert.deepEqual(
      problemsOf(
        [
          "data_dir = 3",
          "[c2s]",
          'port = "abc"',
          "direct_tls_port = 70000",
          'require_encryption = "yes"',
          'interfaces = "127.0.0.1"',
          "[limits]",
          "max_stanza_size = 100",
          "login_timeout_s = 1.5",
          "[log]",
          'level = "verbose"',
        ].join("\n"),
      ),
      [
        "data_dir: expected a string, got 3",
        "c2s.interfaces: expected an array, got \"127.0.0.1\"",
        'c2s.port: expected an integer 1..65535, got "abc"',
        "c2s.direct_tls_port: expected an integer 0..65535, got 70000",
        'c2s.require_encryption: expected true or false, got "yes"',
        "limits.max_stanza_size: expected an integer 10000..16777216, got 100",
        "limits.login_timeout_s: expected an integer 1..3600, got 1.5",
        'log.level: expected one of "fatal", "error", "warn", "info", "debug", "trace", "silent", got "verbose"',
      ],
    );
  });

  test("unknown keys are errors, with the key that was probably meant", () => {
    assert.deepEqual(
      problemsOf(['dommains = ["example.com"]', "[c2s]", "prot = 5222", "requre_encryption = false", "[c2s.extra]", "[ldap]"].join("\n")),
      [
        'c2s.prot: unknown key (did you mean "port"?)',
        'c2s.requre_encryption: unknown key (did you mean "require_encryption"?)',
        "c2s.extra: unknown key",
        'dommains: unknown key (did you mean "domains"?)',
        "ldap: unknown key",
      ],
    );
  });

  test("a section that is not a table", () => {
    assert.deepEqual(problemsOf("c2s = 5222"), ["c2s: expected a table, got 5222"]);
  });

  test("domains must be hostnames; they are lower-cased and one trailing dot dropped", () => {
    assert.deepEqual(parseConfig('domains = ["Example.COM.", "chat.example.org"]', "/srv").domains, ["example.com", "chat.example.org"]);
    assert.deepEqual(problemsOf('domains = ["bad host", "192.0.2.1", "bücher.example", "-x.example", "ok.example", "OK.example"]'), [
      'domains[0]: expected a hostname like "example.com", got "bad host"',
      'domains[1]: expected a hostname like "example.com", got "192.0.2.1"',
      'domains[2]: expected an ASCII hostname (write internationalized names as xn-- A-labels), got "bücher.example"',
      'domains[3]: expected a hostname like "example.com", got "-x.example"',
      'domains[5]: "ok.example" is listed twice',
    ]);
    assert.deepEqual(problemsOf("domains = []"), ["domains: expected at least one entry, got an empty array"]);
  });

  test("listeners need IP addresses and distinct ports", () => {
    assert.deepEqual(problemsOf(['[c2s]', 'interfaces = ["localhost", "::1", "::1"]', "direct_tls_port = 5222"].join("\n")), [
      'c2s.interfaces[0]: expected an IP address such as "127.0.0.1" or "::", got "localhost"',
      'c2s.interfaces[2]: "::1" is listed twice',
      "c2s.direct_tls_port: 5222 is already c2s.port",
    ]);
    assert.deepEqual(problemsOf(["[s2s]", "enabled = true", "port = 5223"].join("\n")), ["s2s.port: 5223 is already c2s.direct_tls_port"]);
    // Different addresses may share a port, and a disabled s2s listener clashes with nothing.
    assert.equal(parseConfig(['[s2s]', 'enabled = true', 'interfaces = ["127.0.0.2"]', "port = 5222"].join("\n"), "/srv").s2s.port, 5222);
    assert.equal(parseConfig(['[s2s]', "port = 5222"].join("\n"), "/srv").s2s.port, 5222);
    assert.deepEqual(problemsOf(['[c2s]', 'interfaces = ["::"]', "[s2s]", "enabled = true", 'interfaces = ["127.0.0.1"]', "port = 5222"].join("\n")), [
      "s2s.port: 5222 is already c2s.port",
    ]);
  });

  test("[http]: tls_port = 0 disables HTTPS; public_url loses its trailing slash; clashes and bad values are named", () => {
    const http = parseConfig('[http]\ntls_port = 0\npublic_url = "https://files.example.com/x/"\nmetrics_allow = []', "/srv").http;
    assert.equal(http.tlsPort, null);
    assert.equal(http.publicUrl, "https://files.example.com/x");
    assert.deepEqual(http.metricsAllow, []);
    assert.deepEqual(problemsOf(['[http]', 'port = 5222', 'tls_port = 5222', 'public_url = "ftp://x"', 'metrics_allow = ["localhost"]'].join("\n")), [
      'http.metrics_allow[0]: expected an IP address such as "127.0.0.1" or "::", got "localhost"',
      'http.public_url: expected an http:// or https:// URL without query or fragment, got "ftp://x"',
      "http.tls_port: 5222 is already http.port",
      "http.port: 5222 is already c2s.port",
      "http.tls_port: 5222 is already c2s.port",
    ]);
    // A disabled HTTP server clashes with nothing.
    assert.equal(parseConfig("[http]\nenabled = false\nport = 5222", "/srv").http.port, 5222);
  });

  test("direct_tls_port = 0 disables Direct TLS", () => {
    assert.equal(parseConfig("[c2s]\ndirect_tls_port = 0", "/srv").c2s.directTlsPort, null);
  });

  test("certificates come in pairs, and per-host ones only for our domains and their subdomains", () => {
    assert.deepEqual(
      problemsOf(
        [
          'domains = ["example.com"]',
          "[tls]",
          'certificate = "a.pem"',
          '[tls.domains."exmaple.com"]',
          'certificate = "b.pem"',
          'key = "b.key"',
          '[tls.domains."conference.example.com"]',
          'key = "c.key"',
          '[tls.domains."upload.example.com"]',
        ].join("\n"),
      ),
      [
        "tls.key: expected the path of a PEM private key, since certificate is set",
        'tls.domains."exmaple.com": is neither one of domains (example.com) nor a subdomain of one',
        'tls.domains."conference.example.com".certificate: expected the path of a PEM certificate, since key is set',
        'tls.domains."upload.example.com".certificate: expected the path of a PEM certificate',
        'tls.domains."upload.example.com".key: expected the path of a PEM private key',
      ],
    );
    const config = parseConfig(['domains = ["example.com"]', '[tls.domains."Conference.Example.com"]', 'certificate = "c.pem"', 'key = "c.key"'].join("\n"), "/srv");
    assert.deepEqual(Object.keys(config.tls.domains), ["conference.example.com"]);
  });

  test("database URLs of other kinds are refused", () => {
    assert.deepEqual(problemsOf('[database]\nurl = "mysql://127.0.0.1/parley"'), [
      'database.url: expected a SQLite file path or a postgres:// URL, got "mysql://127.0.0.1/parley"',
    ]);
  });

  test("module settings pass through as written; disabled names and table shapes are checked", () => {
    const config = parseConfig(['[modules]', 'disabled = ["register", "bosh"]', "[modules.muc]", 'host = "conference.localhost"', "max_rooms = 10"].join("\n"), "/srv");
    assert.deepEqual(config.modules.disabled, ["register", "bosh"]);
    assert.deepEqual(Object.keys(config.modules.settings), ["muc"]);
    // Tables keep smol-toml's null prototype, so a "__proto__" key stays an ordinary key.
    assert.deepEqual({ ...config.modules.settings.muc }, { host: "conference.localhost", max_rooms: 10 });
    assert.deepEqual(problemsOf(['[modules]', 'disabled = ["Bad Name", 3]', "mam = 3", '[modules."Odd Name"]'].join("\n")), [
      'modules.disabled[0]: expected a module name, got "Bad Name"',
      "modules.disabled[1]: expected a module name, got 3",
      "modules.mam: expected a table of the module's settings, got 3",
      'modules."Odd Name": expected a module name (a-z, 0-9, _ and -) as the table name',
    ]);
  });

  test("a TOML syntax error names the line and column", () => {
    assert.deepEqual(problemsOf('domains = ["a.example"]\n[c2s]\nport = = 5222'), ["line 3, column 8: invalid value"]);
  });

  test("the error message lists every problem", () => {
    const error = (() => {
      try {
        parseConfig("[c2s]\nport = 0\nallow_plain = 1", "/srv");
      } catch (e) {
        return e as ConfigError;
      }
      return assert.fail("accepted");
    })();
    assert.equal(
      error.message,
      "invalid configuration (2 problems):\n  c2s.port: expected an integer 1..65535, got 0\n  c2s.allow_plain: expected true or false, got 1",
    );
  });

  test("any value of the wrong type for a port is reported once, naming the key and the value", () => {
    const notAnInteger = fc.oneof(fc.string(), fc.boolean(), fc.double({ noNaN: true, noDefaultInfinity: true }).filter((n) => !Number.isInteger(n)));
    fc.assert(
      fc.property(notAnInteger, (value) => {
        const problems = problemsOf(stringify({ c2s: { port: value } }));
        assert.deepEqual(problems, [`c2s.port: expected an integer 1..65535, got ${typeof value === "string" ? JSON.stringify(value) : String(value)}`]);
      }),
    );
  });

  test("any valid domain name is accepted, lower-cased", () => {
    fc.assert(
      fc.property(fc.domain(), fc.boolean(), (domain, upper) => {
        const written = upper ? domain.toUpperCase() : domain;
        assert.deepEqual(parseConfig(stringify({ domains: [written] }), "/srv").domains, [domain.toLowerCase()]);
      }),
    );
  });
});

describe("SettingsReader for module settings", () => {
  test("a module checks its table with the same messages and unknown-key errors", () => {
    const config = parseConfig('[modules.mam]\nmax_results = "lots"\ndefault_polcy = "roster"', "/srv");
    const reader = new SettingsReader(config.modules.settings.mam, "modules.mam");
    assert.equal(reader.integer("max_results", 1, 1000, 100), 100);
    assert.equal(reader.oneOf("default_policy", ["always", "never", "roster"], "roster"), "roster");
    assert.throws(
      () => reader.finish(),
      (error: unknown) =>
        error instanceof ConfigError &&
        assert.deepEqual(error.problems, [
          'modules.mam.max_results: expected an integer 1..1000, got "lots"',
          'modules.mam.default_polcy: unknown key (did you mean "default_policy"?)',
        ]) === undefined,
    );
  });

  test("a module without a table reads its defaults", () => {
    const reader = new SettingsReader(undefined, "modules.ping");
    assert.equal(reader.boolean("enabled", true), true);
    assert.doesNotThrow(() => reader.finish());
  });
});

describe("parley.example.toml", () => {
  const examplePath = resolve(projectRoot, "parley.example.toml");
  const example = readFileSync(examplePath, "utf8");

  test("parses to exactly the defaults", () => {
    assert.deepEqual(parseConfig(example, "/srv/parley"), parseConfig("", "/srv/parley"));
  });

  test("documents every key it sets with a comment just above it (or above its group)", () => {
    const lines = example.split("\n");
    lines.forEach((line, index) => {
      if (!/^[a-z_]+ = /.test(line)) return;
      let above = index - 1;
      while (above >= 0 && /^[a-z_]+ = /.test(lines[above])) above--;
      assert.match(lines[above] ?? "", /^#/, `${line} at line ${index + 1} has no comment`);
    });
  });

  test("every key it sets is a known key (changing its value is checked, not ignored)", () => {
    // Replacing each value with a table is wrong for every setting, so each must be reported.
    const lines = example.split("\n");
    let section = "";
    for (const line of lines) {
      const header = /^\[([a-z0-9_.]+)\]$/.exec(line);
      if (header) section = header[1];
      const setting = /^([a-z_]+) = /.exec(line);
      if (!setting) continue;
      const text = `${section ? `[${section}]\n` : ""}${setting[1]} = { wrong = true }`;
      const key = section ? `${section}.${setting[1]}` : setting[1];
      const problems = problemsOf(text);
      assert.ok(
        problems.some((problem) => problem.startsWith(`${key}: expected`)),
        `${key}: ${problems.join("; ")}`,
      );
    }
  });
});
