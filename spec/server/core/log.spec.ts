// Specs for server/core/log.ts: log lines are written in batches, yet an operator watching
// stdout sees a quiet server's line at once, a process that exits loses none it logged, and a
// stdout that stops taking lines neither blocks the server nor grows its memory without end.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { closeSync, constants, mkdtempSync, openSync, readSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { BatchedLines } from "../../../server/core/log.ts";

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

test("a stdout that takes nothing keeps the server running: lines wait, then are dropped and counted, and the rest arrive in order", () => {
  const dir = mkdtempSync(join(tmpdir(), "parley-log-"));
  const fifo = join(dir, "stdout");
  execFileSync("mkfifo", [fifo]);
  // A non-blocking pipe nobody reads yet: it takes 64 KiB, then says "try again".
  const fd = openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK);
  try {
    const out = new BatchedLines(fd);
    const total = 200_000;
    for (let n = 1; n <= total; n++) out.write(`${JSON.stringify({ level: 30, n, msg: "x".repeat(40) })}\n`);
    // Nothing blocked (we are here); now a reader comes and drains what was kept.
    let text = "";
    const buf = Buffer.alloc(1 << 16);
    for (let rounds = 0; rounds < 10_000; rounds++) {
      out.flush(false);
      let got = 0;
      try {
        got = readSync(fd, buf, 0, buf.length, null);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EAGAIN") throw err;
      }
      if (got === 0) break;
      text += buf.toString("utf8", 0, got);
    }
    const lines = text.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as { n?: number; level: number; msg: string });
    const kept = lines.filter((l) => l.n !== undefined);
    assert.ok(kept.length > 50_000 && kept.length < total, `some lines were kept (${kept.length}), not all`);
    assert.ok(kept.every((l, i) => l.n === i + 1), "the lines kept are the first ones, in order, none twice");
    const note = lines.at(-1)!;
    assert.equal(note.level, 40);
    assert.equal(note.msg, `${total - kept.length} log lines dropped: stdout did not take them`);
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
});
