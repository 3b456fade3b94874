// Interop with real client libraries: Debian's slixmpp (/usr/bin/python3) and npm's @xmpp/client.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import tls from "node:tls";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import { client as xmppClient, xml } from "@xmpp/client";
import { startTestServer, type TestServer } from "../support/server.ts";

const SLIXMPP_SCRIPT = fileURLToPath(new URL("./slixmpp_client.py", import.meta.url));
const PYTHON = "/usr/bin/python3";

let t: TestServer;
let caFile: string;
before(async () => {
  t = await startTestServer({ users: ["alice", "bob", "carol"] });
  caFile = join(tmpdir(), `parley-ca-${process.pid}.pem`);
  writeFileSync(caFile, t.ca);
});
after(async () => {
  await t.stop();
});

interface SlixResult {
  code: number | null;
  lines: Array<Record<string, unknown>>;
  stderr: string;
}

function slixmpp(jid: string, password: string, steps: unknown[]): Promise<SlixResult> {
  return new Promise((resolve) => {
    const p = spawn(PYTHON, [SLIXMPP_SCRIPT, "127.0.0.1", String(t.port), jid, password, caFile, JSON.stringify(steps)]);
    let out = "";
    let err = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (err += d));
    const timer = setTimeout(() => p.kill(), 40_000);
    p.on("close", (code) => {
      clearTimeout(timer);
      const lines = out.split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
      resolve({ code, lines, stderr: err });
    });
  });
}

describe("slixmpp (Debian python3-slixmpp)", { skip: !existsSync(PYTHON) }, () => {
  test("logs in over STARTTLS, binds and pings the server", async () => {
    const r = await slixmpp("alice@localhost/slix", "pass-alice", [{ ping: "localhost" }]);
    assert.equal(r.code, 0, r.stderr + JSON.stringify(r.lines));
    assert.ok(r.lines.some((l) => l.event === "session_start" && l.jid === "alice@localhost/slix"));
    assert.ok(r.lines.some((l) => l.step === "ping" && l.ok === true));
  });

  test("a wrong password fails authentication", async () => {
    const r = await slixmpp("alice@localhost/slix", "wrong", []);
    assert.notEqual(r.code, 0);
    assert.ok(r.lines.some((l) => l.event === "failed_auth"));
  });
});

describe("@xmpp/client (npm)", () => {
  // @xmpp/client has no option for a CA; trust the test server's certificate (and only it)
  // by giving tls.connect its `ca`, so verification stays on.
  before(() => {
    const connect = tls.connect;
    (tls as { connect: unknown }).connect = (...args: unknown[]) => {
      const opts = args[0] as tls.ConnectionOptions;
      return connect({ ...opts, ca: t.ca, servername: "localhost" });
    };
  });

  for (const scheme of ["xmpp", "xmpps"] as const) {
    test(`logs in over ${scheme === "xmpp" ? "STARTTLS" : "Direct TLS"} and pings the server`, async () => {
      const port = scheme === "xmpp" ? t.port : t.directTlsPort;
      const c = xmppClient({ service: `${scheme}://127.0.0.1:${port}`, domain: "localhost", username: "bob", password: "pass-bob", resource: "xmppjs" });
      c.on("error", () => {});
      const online = new Promise<string>((resolve) => c.on("online", (address: { toString(): string }) => resolve(address.toString())));
      await c.start();
      assert.equal(await online, "bob@localhost/xmppjs");
      const pong = await c.iqCaller.request(xml("iq", { type: "get", to: "localhost" }, xml("ping", { xmlns: "urn:xmpp:ping" })));
      assert.equal(pong.attrs.type, "result");
      await c.stop();
    });
  }
});
