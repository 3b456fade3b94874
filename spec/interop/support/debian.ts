// Test support for the interop specs that run Debian's XMPP servers beside Parley.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

/**
 * Installs Debian package `pkg` when `binary` is missing (the specs install what they use, as
 * .ci/run does). Returns why the spec must be skipped, or null: these servers run as their own
 * users and the specs edit /etc/hosts, so they need root.
 */
export function ensureDebianServer(binary: string, pkg: string, name: string): string | null {
  if (process.getuid?.() !== 0) return `needs root (${name} runs as its own user, /etc/hosts is edited)`;
  if (!existsSync(binary)) {
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    spawnSync("apt-get", ["install", "-y", "-qq", "-o", "DPkg::Lock::Timeout=600", pkg], { env, stdio: "ignore" });
    if (!existsSync(binary)) return `${pkg} could not be installed`;
  }
  return null;
}
