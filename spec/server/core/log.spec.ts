// Specs for server/core/log.ts: log lines are written asynchronously, yet an operator watching
// stdout sees a quiet server's line at once, and a process that exits loses none it logged.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const CHILD = fileURLToPath(new URL("./log-child.ts", import.meta.url));

function lines(text: string): Array<{ msg: string; n: number; level: number }> {
  return text.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as { msg: string; n: number; level: number });
}

test("a line logged by a quiet server reaches stdout without waiting for more; lines logged just before exit all arrive, in order", async () => {
  const child = spawn(process.execPath, ["--import", "tsx", CHILD, "5000"], { stdio: ["pipe", "pipe", "inherit"] });
  let out = "";
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (chunk: string) => (out += chunk));
  const deadline = Date.now() + 20_000;
  while (!out.includes("\n") && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(lines(out).map((l) => l.msg), ["first"], "the first line arrived alone, while the process waits");

  child.stdin.write("go\n");
  const [code] = (await once(child, "exit")) as [number | null];
  if (child.stdout.readable) await once(child.stdout, "end");
  assert.equal(code, 0);
  const burst = lines(out).filter((l) => l.msg === "burst");
  assert.equal(burst.length, 5000, "every line logged before process.exit was written");
  assert.ok(burst.every((l, i) => l.n === i + 1 && l.level === 30), "in the order logged, at info level");
});
