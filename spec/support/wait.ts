// Test support: waiting, bounded, for something a server does in its own time.
import assert from "node:assert/strict";

/** Polls `get` every 20 ms until it returns something other than undefined; fails after `ms`. */
export async function waitFor<T>(get: () => T | undefined | Promise<T | undefined>, ms = 10_000): Promise<T> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const v = await get();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail("nothing came in time");
}
