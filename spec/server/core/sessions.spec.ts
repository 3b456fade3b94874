// The session registry (server/core/sessions.ts): who is online, by full and bare JID, as the
// router and the modules ask it. One session of an account is kept without a Map of its own;
// what is asked must not tell the difference.
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseJid } from "../../../protocol/jid.ts";
import { LocalSessionRegistry, type ClientSession } from "../../../server/core/sessions.ts";

const session = (jid: string) => ({ jid: parseJid(jid) }) as unknown as ClientSession;
const names = (list: Iterable<ClientSession>) => [...list].map((s) => s.jid!.toString()).sort();

test("one, two and three resources of an account: get, resources, all and size agree", () => {
  const r = new LocalSessionRegistry();
  const phone = session("juliet@capulet.lit/phone");
  const laptop = session("juliet@capulet.lit/laptop");
  const tablet = session("juliet@capulet.lit/tablet");
  const romeo = session("romeo@montague.lit/r");
  assert.equal(r.add(phone), undefined);
  assert.equal(r.add(romeo), undefined);
  assert.equal(r.get(parseJid("juliet@capulet.lit/phone")), phone);
  assert.equal(r.get(parseJid("juliet@capulet.lit/laptop")), undefined);
  assert.deepEqual(names(r.resources(parseJid("juliet@capulet.lit"))), ["juliet@capulet.lit/phone"]);
  assert.equal(r.size, 2);
  assert.equal(r.add(laptop), undefined);
  assert.equal(r.add(tablet), undefined);
  assert.equal(r.size, 4);
  assert.deepEqual(names(r.resources(parseJid("juliet@capulet.lit/anything"))), ["juliet@capulet.lit/laptop", "juliet@capulet.lit/phone", "juliet@capulet.lit/tablet"]);
  assert.deepEqual(names(r.all()), ["juliet@capulet.lit/laptop", "juliet@capulet.lit/phone", "juliet@capulet.lit/tablet", "romeo@montague.lit/r"]);
  r.remove(laptop);
  r.remove(tablet);
  assert.equal(r.size, 2);
  assert.equal(r.get(parseJid("juliet@capulet.lit/phone")), phone);
  assert.equal(r.get(parseJid("juliet@capulet.lit/tablet")), undefined);
  r.remove(phone);
  assert.deepEqual(r.resources(parseJid("juliet@capulet.lit")), []);
  assert.deepEqual(names(r.all()), ["romeo@montague.lit/r"]);
  assert.equal(r.size, 1);
});

test("a new session with the same resource replaces the old one, which can no longer remove it", () => {
  const r = new LocalSessionRegistry();
  for (const extra of [false, true]) {
    const old = session("juliet@capulet.lit/phone");
    const fresh = session("juliet@capulet.lit/phone");
    const other = session("juliet@capulet.lit/laptop");
    if (extra) r.add(other);
    r.add(old);
    assert.equal(r.add(fresh), old, "the replaced session is returned (RFC 6120 §7.7.2.2: it gets <conflict/>)");
    r.remove(old);
    assert.equal(r.get(parseJid("juliet@capulet.lit/phone")), fresh, "removing the replaced session leaves the new one");
    assert.equal(r.size, extra ? 2 : 1);
    r.remove(fresh);
    if (extra) r.remove(other);
    assert.equal(r.size, 0);
  }
});
