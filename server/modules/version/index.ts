// XEP-0092: Software Version 1.1, answered for the server. The operating system is left out
// unless `[modules.version] show_os = true`: it tells an attacker which exploits to try, and §4
// requires that an administrator can turn it off.
import { readFileSync } from "node:fs";
import { release, type } from "node:os";
import { NS } from "../../../protocol/ns.ts";
import { xml } from "../../../protocol/xml/element.ts";
import { SettingsReader } from "../../core/config.ts";
import { defineModule } from "../../core/module.ts";

/** The version npm knows Parley by, so the answer cannot drift from the release. */
function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version?: unknown };
  if (typeof pkg.version !== "string") throw new Error("package.json has no version");
  return pkg.version;
}

export default defineModule({
  name: "version",
  xeps: [{ xep: 92, version: "1.1", status: "complete" }],
  setup(m) {
    const settings = new SettingsReader(m.config, `modules.${m.name}`);
    const showOs = settings.boolean("show_os", false);
    settings.finish();
    const version = packageVersion();
    const os = showOs ? `${type()} ${release()}` : undefined;

    m.addFeature(NS.version);
    m.onIq("get", NS.version, "query", () =>
      xml("query", { xmlns: NS.version }, xml("name", {}, "Parley"), xml("version", {}, version), os === undefined ? null : xml("os", {}, os)),
    );
  },
});
