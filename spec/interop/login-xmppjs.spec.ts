// Interop, RFC 6120 §5-§7 (STARTTLS, SASL, binding), XEP-0368 (Direct TLS): npm's @xmpp/client
// 0.14 logs in to Parley with every SASL mechanism it has (SCRAM-SHA-1, PLAIN), over xmpp://
// (STARTTLS) and xmpps:// (Direct TLS).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startTestServer, type TestServer } from "../support/server.ts";
import { Xjs, xml } from "./support/xmppjs.ts";

let t: TestServer;
before(async () => {
  t = await startTestServer({ users: ["bob"] });
});
after(async () => {
  await t?.stop();
});

describe("@xmpp/client logs in to Parley", () => {
  for (const [transport, directTls] of [["STARTTLS", false], ["Direct TLS", true]] as const) {
    describe(`over ${transport}`, () => {
      for (const mechanism of ["SCRAM-SHA-1", "PLAIN", undefined]) {
        test(mechanism ? `with ${mechanism}` : "with its own choice, SCRAM-SHA-1", async () => {
          const resource = `${mechanism ?? "default"}-${directTls}`;
          const x = Xjs.create(t, "bob", { directTls, mechanism, resource });
          try {
            assert.equal(await x.start(), `bob@localhost/${resource}`);
            // What the library could use of what Parley offered, in its order of preference.
            assert.deepEqual(x.offered, ["SCRAM-SHA-1", "PLAIN"]);
            assert.equal(x.mechanismUsed, mechanism ?? "SCRAM-SHA-1");
            const pong = await x.iq("get", "localhost", xml("ping", { xmlns: "urn:xmpp:ping" }));
            assert.equal(pong.attrs.type, "result");
          } finally {
            await x.stop();
          }
        });
      }

      for (const mechanism of ["SCRAM-SHA-1", "PLAIN"]) {
        test(`a wrong password with ${mechanism} rejects start() with not-authorized`, async () => {
          const x = Xjs.create(t, "bob", { directTls, mechanism, password: "wrong" });
          try {
            await assert.rejects(x.start(), (err: Error & { condition?: string; name?: string }) => {
              assert.equal(err.name, "SASLError");
              assert.equal(err.condition, "not-authorized");
              return true;
            });
            assert.ok(!x.statuses.includes("online"));
          } finally {
            await x.stop();
          }
        });
      }
    });
  }
});
