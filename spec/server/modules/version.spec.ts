// End-to-end specs for server/modules/version: XEP-0092 1.1 software version of the server.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { release, type } from "node:os";
import { startTestServer, type TestServer } from "../../support/server.ts";
import { xml, type Element } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import { parseStanzaError } from "../../../protocol/errors.ts";
import { ConfigError } from "../../../server/core/config.ts";
import version from "../../../server/modules/version/index.ts";

const packageVersion = (JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string }).version;

let t: TestServer;
before(async () => {
  t = await startTestServer({ users: ["romeo"], modules: [version] });
});
after(async () => {
  await t.stop();
});

async function askVersion(server: TestServer, to: string): Promise<Element> {
  const c = await server.login("romeo");
  const r = await c.iq(xml("iq", { type: "get", to }, xml("query", { xmlns: NS.version })));
  await c.close();
  return r;
}

test("the server answers with name Parley and the package's version, and no os by default", async () => {
  const r = await askVersion(t, "localhost");
  assert.equal(r.attrs.type, "result");
  assert.equal(r.attrs.from, "localhost");
  const query = r.getChild("query", NS.version)!;
  assert.equal(query.getChildText("name"), "Parley");
  assert.equal(query.getChildText("version"), packageVersion);
  assert.equal(query.getChild("os"), undefined);
});

test("show_os = true adds the operating system", async () => {
  const s = await startTestServer({ users: ["romeo"], modules: [version], toml: "[modules.version]\nshow_os = true\n" });
  try {
    const query = (await askVersion(s, "localhost")).getChild("query", NS.version)!;
    assert.equal(query.getChildText("os"), `${type()} ${release()}`);
  } finally {
    await s.stop();
  }
});

test("a wrong setting stops the start with a message naming the key", async () => {
  await assert.rejects(
    startTestServer({ modules: [version], toml: "[modules.version]\nshow_os = \"yes\"\nshwo_os = true\n" }),
    (e: unknown) =>
      e instanceof ConfigError &&
      e.problems.some((p) => p.startsWith("modules.version.show_os:")) &&
      e.problems.some((p) => p.startsWith("modules.version.shwo_os:")),
  );
});

test("a user's bare JID is not answered for (the server does not speak for clients' software)", async () => {
  const r = await askVersion(t, "romeo@localhost");
  assert.equal(parseStanzaError(r)?.condition, "service-unavailable");
});
