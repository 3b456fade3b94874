// Component domains (m.addComponent): every stanza to the domain or a JID at it reaches the
// component, whose replies route back like any server-originated stanza.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { xml } from "../../../protocol/xml/element.ts";
import { defineModule } from "../../../server/core/module.ts";
import { startTestServer, type TestServer } from "../../support/server.ts";
import message from "../../../server/modules/message/index.ts";

const echo = defineModule({
  name: "echo-component",
  xeps: [],
  setup(m) {
    m.addComponent("echo.localhost", async (ev) => {
      if (ev.kind !== "message" || ev.stanza.attrs.type === "error") return;
      await m.send(xml("message", { from: ev.to.toString(), to: ev.from.toString(), type: "chat" }, xml("body", {}, `echo: ${ev.stanza.getChildText("body")}`)));
    });
  },
});

let t: TestServer;
before(async () => {
  t = await startTestServer({ users: ["romeo"], modules: [message, echo] });
});
after(async () => {
  await t.stop();
});

test("a message to a JID at a component domain reaches the component, and its reply comes back", async () => {
  const c = await t.login("romeo", { resource: "r" });
  c.send(xml("message", { to: "room@echo.localhost/nick", type: "chat" }, xml("body", {}, "hello")));
  const reply = await c.next((el) => el.name === "message");
  assert.equal(reply.attrs.from, "room@echo.localhost/nick");
  assert.equal(reply.getChildText("body"), "echo: hello");
  await c.close();
});

test("a domain that is neither a host nor a component is remote: remote-server-not-found", async () => {
  const c = await t.login("romeo", { resource: "r2" });
  c.send(xml("message", { to: "room@elsewhere.example", type: "chat", id: "m1" }, xml("body", {}, "hello")));
  const err = await c.next((el) => el.attrs.id === "m1");
  assert.equal(err.attrs.type, "error");
  assert.ok(err.getChild("error")?.getChildElements().some((e) => e.getName() === "remote-server-not-found"));
  await c.close();
});
