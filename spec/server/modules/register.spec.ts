// XEP-0077 2.4 In-Band Registration, end to end: what a client sees before and after logging in.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { startTestServer, type TestServer } from "../../support/server.ts";
import { canLogIn } from "../../support/accounts.ts";
import type { XmppClient } from "../../../conformance/client/client.ts";
import { xml, type Element } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import { parseStanzaError } from "../../../protocol/errors.ts";
import { buildForm, parseForm, formType } from "../../../protocol/forms.ts";
import register from "../../../server/modules/register/index.ts";
import disco from "../../../server/modules/disco/index.ts";
import { RegistrationLimiter, addressKey } from "../../../server/modules/register/limiter.ts";

const query = (...children: Element[]) => xml("query", { xmlns: NS.register }, ...children);
const legacy = (username: string, password: string) => query(xml("username", {}, username), xml("password", {}, password));
const get = (c: XmppClient, to?: string) => c.iq(xml("iq", { type: "get", to }, query()));
const set = (c: XmppClient, payload: Element, to?: string) => c.iq(xml("iq", { type: "set", to }, payload));

function errorOf(reply: Element): { condition: string; type: string } | null {
  const e = parseStanzaError(reply);
  return e && { condition: e.condition, type: e.type };
}

describe("with registration enabled", () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ users: ["romeo", "juliet"], modules: [register, disco], toml: "[registration]\nenabled = true\nper_ip_per_hour = 1000\n" });
  });
  after(() => t.stop());

  test("the stream features offer registration once TLS is up", async () => {
    const c = await t.connect();
    assert.ok(c.features?.getChild("register", NS.registerFeature));
    c.destroy();
  });

  test("before logging in, get returns the legacy fields and an equivalent data form", async () => {
    const c = await t.connect();
    const r = await get(c);
    assert.equal(r.attrs.type, "result");
    const q = r.getChild("query", NS.register)!;
    assert.ok(q.getChildText("instructions"));
    assert.ok(q.getChild("username") && q.getChild("password"));
    assert.equal(q.getChild("registered"), undefined);
    const form = parseForm(q.getChild("x", NS.dataForms)!);
    assert.equal(form.type, "form");
    assert.equal(formType(form), NS.register);
    const fields = Object.fromEntries(form.fields.map((f) => [f.var, f]));
    assert.equal(fields.username.required, true);
    assert.equal(fields.password.type, "text-private");
    c.destroy();
  });

  test("registering with the legacy fields creates an account that can log in", async () => {
    const c = await t.connect();
    const r = await set(c, legacy("Mercutio", "a plague"));
    assert.equal(r.attrs.type, "result");
    // The same stream goes on to authenticate as the new account.
    assert.match(await c.login({ username: "mercutio", password: "a plague" }), /^mercutio@localhost\//);
    await c.close();
  });

  test("registering with the data form works too, and the bare JID is accepted as the username", async () => {
    const c = await t.connect();
    const form = buildForm({
      type: "submit",
      fields: [
        { var: "FORM_TYPE", type: "hidden", values: [NS.register] },
        { var: "username", values: ["tybalt@localhost"] },
        { var: "password", values: ["prince of cats"] },
      ],
    });
    const r = await set(c, query(form), "localhost");
    assert.equal(r.attrs.type, "result");
    c.destroy();
    assert.ok(await canLogIn(t, "tybalt", "prince of cats"));
  });

  test("a taken username is a conflict and leaves the existing password alone", async () => {
    const c = await t.connect();
    const r = await set(c, legacy("ROMEO", "hijack"));
    assert.deepEqual(errorOf(r), { condition: "conflict", type: "cancel" });
    assert.equal(r.getChild("query"), undefined, "the submitted password is not echoed back");
    c.destroy();
    assert.ok(await canLogIn(t, "romeo", "pass-romeo"));
    assert.equal(await canLogIn(t, "romeo", "hijack"), false);
  });

  for (const [what, payload] of [
    ["no password", query(xml("username", {}, "benvolio"))],
    ["an empty password", legacy("benvolio", "")],
    ["no username", query(xml("password", {}, "secret"))],
    ["a username with a space", legacy("ben volio", "secret")],
    ["a username on another domain", legacy("benvolio@example.org", "secret")],
    ["a password SASLprep refuses", legacy("benvolio", "bad\u0007bell")],
  ] as const) {
    test(`${what} is not-acceptable and creates nothing`, async () => {
      const c = await t.connect();
      const r = await set(c, payload);
      assert.deepEqual(errorOf(r), { condition: "not-acceptable", type: "modify" });
      c.destroy();
      assert.equal(await t.server.storage.users.exists("localhost", "benvolio"), false);
    });
  }

  test("one connection registers one account", async () => {
    const c = await t.connect();
    assert.equal((await set(c, legacy("gregory", "first"))).attrs.type, "result");
    assert.deepEqual(errorOf(await set(c, legacy("sampson", "second"))), { condition: "not-acceptable", type: "modify" });
    c.destroy();
    assert.equal(await t.server.storage.users.exists("localhost", "sampson"), false);
  });

  test("<remove/> before logging in is unexpected-request", async () => {
    const c = await t.connect();
    assert.equal(errorOf(await set(c, query(xml("remove", {}))))?.condition, "unexpected-request");
    c.destroy();
  });

  test("after logging in, get shows <registered/> with the username", async () => {
    const c = await t.login("juliet");
    for (const to of [undefined, "localhost", "juliet@localhost"]) {
      const r = await get(c, to);
      assert.equal(r.attrs.type, "result", `to=${to}`);
      const q = r.getChild("query", NS.register)!;
      assert.ok(q.getChild("registered"));
      assert.equal(q.getChildText("username"), "juliet");
      assert.equal(q.getChildText("password"), "", "no password is ever sent back");
    }
    await c.close();
  });

  test("a user changes their own password; the old one stops working", async () => {
    await t.server.storage.users.delete("localhost", "nurse");
    const c0 = await t.connect();
    assert.equal((await set(c0, legacy("nurse", "old secret"))).attrs.type, "result");
    c0.destroy();
    const c = await t.login("nurse", { password: "old secret" });
    assert.equal((await set(c, legacy("nurse", "new secret"), "localhost")).attrs.type, "result");
    await c.close();
    assert.ok(await canLogIn(t, "nurse", "new secret"));
    assert.equal(await canLogIn(t, "nurse", "old secret"), false);
  });

  test("a password change for someone else is not-allowed, an incomplete one bad-request", async () => {
    const c = await t.login("juliet");
    assert.equal(errorOf(await set(c, legacy("romeo", "mine now")))?.condition, "not-allowed");
    assert.equal(errorOf(await set(c, legacy("juliet", "")))?.condition, "bad-request");
    assert.equal(errorOf(await set(c, query(xml("password", {}, "no name"))))?.condition, "bad-request");
    await c.close();
    assert.ok(await canLogIn(t, "romeo", "pass-romeo"));
    assert.ok(await canLogIn(t, "juliet", "pass-juliet"));
  });

  test("<remove/> with other children is bad-request and deletes nothing", async () => {
    const c = await t.login("juliet");
    const r = await set(c, query(xml("remove", {}), xml("username", {}, "juliet")));
    assert.equal(errorOf(r)?.condition, "bad-request");
    await c.close();
    assert.ok(await t.server.storage.users.exists("localhost", "juliet"));
  });

  test("<remove/> deletes the account, answers, then closes every session with not-authorized", async () => {
    await t.server.storage.users.delete("localhost", "paris");
    const reg = await t.connect();
    assert.equal((await set(reg, legacy("paris", "county"))).attrs.type, "result");
    reg.destroy();
    const phone = await t.login("paris", { password: "county", resource: "phone" });
    const laptop = await t.login("paris", { password: "county", resource: "laptop" });
    await t.server.storage.vcards.set("localhost", "paris", "<vCard xmlns='vcard-temp'/>");

    const r = await set(phone, query(xml("remove", {})));
    assert.equal(r.attrs.type, "result");
    assert.equal((await phone.waitClosed())?.condition, "not-authorized");
    assert.equal((await laptop.waitClosed())?.condition, "not-authorized");
    assert.equal(await t.server.storage.users.exists("localhost", "paris"), false);
    assert.equal(await t.server.storage.vcards.get("localhost", "paris"), null, "the account's data goes with it");
    assert.equal(await canLogIn(t, "paris", "county"), false);
  });

  test("jabber:iq:register is a server feature in disco#info", async () => {
    const c = await t.login("romeo");
    const info = await c.iq(xml("iq", { type: "get", to: "localhost" }, xml("query", { xmlns: NS.discoInfo })));
    const features = info.getChild("query", NS.discoInfo)!.getChildren("feature").map((f) => f.attrs.var);
    assert.ok(features.includes(NS.register));
    await c.close();
  });
});

describe("registration limits", () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ modules: [register], toml: "[registration]\nenabled = true\nper_ip_per_hour = 2\n" });
  });
  after(() => t.stop());

  test("an address past its hourly allowance gets policy-violation (wait); failures do not count", async () => {
    const attempt = async (username: string, password = "secret") => {
      const c = await t.connect();
      const r = await set(c, legacy(username, password));
      c.destroy();
      return r;
    };
    assert.equal((await attempt("one")).attrs.type, "result");
    assert.equal(errorOf(await attempt("one"))?.condition, "conflict", "a conflict uses up nothing");
    assert.equal(errorOf(await attempt("two", ""))?.condition, "not-acceptable");
    assert.equal((await attempt("two")).attrs.type, "result");
    assert.deepEqual(errorOf(await attempt("three")), { condition: "policy-violation", type: "wait" });
    assert.equal(await t.server.storage.users.exists("localhost", "three"), false);
  });
});

describe("with registration disabled (the default)", () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ users: ["romeo"], modules: [register] });
  });
  after(() => t.stop());

  test("no stream feature, and register IQs before login are service-unavailable, leaving the stream usable", async () => {
    const c = await t.connect();
    assert.equal(c.features?.getChild("register", NS.registerFeature), undefined);
    assert.equal(errorOf(await get(c))?.condition, "service-unavailable");
    assert.equal(errorOf(await set(c, legacy("mallory", "secret")))?.condition, "service-unavailable");
    assert.equal(await t.server.storage.users.exists("localhost", "mallory"), false);
    assert.match(await c.login({ username: "romeo", password: "pass-romeo" }), /^romeo@/);
    await c.close();
  });

  test("logged-in users can still change their password", async () => {
    const c = await t.login("romeo");
    assert.equal((await set(c, legacy("romeo", "rosaline"))).attrs.type, "result");
    await c.close();
    assert.ok(await canLogIn(t, "romeo", "rosaline"));
  });
});

describe("without TLS", () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ modules: [register], toml: "[registration]\nenabled = true\n[c2s]\nrequire_encryption = false\n" });
  });
  after(() => t.stop());

  test("registration is neither offered nor accepted in clear text", async () => {
    const c = await t.connect({ noTls: true });
    assert.equal(c.secure, false);
    assert.equal(c.features?.getChild("register", NS.registerFeature), undefined);
    assert.equal(errorOf(await set(c, legacy("eve", "sniffed")))?.condition, "not-authorized");
    assert.equal(await t.server.storage.users.exists("localhost", "eve"), false);
    c.destroy();
  });
});

describe("RegistrationLimiter", () => {
  test("allows perHour reservations per address in any hour, refunds give one back", () => {
    let now = 0;
    const limiter = new RegistrationLimiter(2, () => now);
    assert.ok(limiter.tryTake("192.0.2.1"));
    assert.ok(limiter.tryTake("192.0.2.1"));
    assert.equal(limiter.tryTake("192.0.2.1"), false);
    assert.ok(limiter.tryTake("192.0.2.2"), "other addresses are counted apart");
    limiter.refund("192.0.2.1");
    assert.ok(limiter.tryTake("192.0.2.1"));
    now += 60 * 60 * 1000;
    assert.ok(limiter.tryTake("192.0.2.1"), "an hour later the allowance is back");
  });

  test("an IPv6 /64 counts as one address, IPv4-mapped addresses as their IPv4 address", () => {
    assert.equal(addressKey("2001:db8:0:1::1"), addressKey("2001:0db8:0000:0001:ffff:1:2:3"));
    assert.notEqual(addressKey("2001:db8:0:1::1"), addressKey("2001:db8:0:2::1"));
    assert.equal(addressKey("::ffff:192.0.2.7"), "192.0.2.7");
    assert.equal(addressKey("::1"), addressKey("0:0:0:0:0:0:0:1"));
    const limiter = new RegistrationLimiter(1, () => 0);
    assert.ok(limiter.tryTake("2001:db8::1"));
    assert.equal(limiter.tryTake("2001:db8::dead:beef"), false);
  });

  test("property: never more than perHour reservations per address within an hour", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }),
        fc.array(fc.record({ ip: fc.constantFrom("10.0.0.1", "10.0.0.2", "2001:db8::1"), dt: fc.integer({ min: 0, max: 20 * 60 * 1000 }) }), { maxLength: 60 }),
        (perHour, steps) => {
          let now = 0;
          const limiter = new RegistrationLimiter(perHour, () => now);
          const granted: Array<{ ip: string; at: number }> = [];
          for (const { ip, dt } of steps) {
            now += dt;
            if (limiter.tryTake(ip)) granted.push({ ip, at: now });
          }
          for (const g of granted) {
            const inWindow = granted.filter((h) => h.ip === g.ip && h.at <= g.at && g.at - h.at < 60 * 60 * 1000);
            assert.ok(inWindow.length <= perHour);
          }
        },
      ),
    );
  });
});
