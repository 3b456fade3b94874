// Shared helpers for the specs of PEP-based modules (XEP-0163 1.2 over XEP-0060 1.26.0): clients
// that announce XEP-0115 caps with `+notify` features and answer the server's disco#info.
import { xml, type Element } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import { capsVer } from "../../../protocol/caps.ts";
import type { XmppClient } from "../../../conformance/client/client.ts";
import type { Accounts } from "../../support/accounts.ts";
import { isPresence } from "../../support/stanzas.ts";

const CAPS_NODE = "https://parley.test/client";
const IDENTITY = [{ category: "client", type: "pc", name: "Spec" }];

/** Answers the server's disco#info about our caps node, as a client must (XEP-0115 §6.2). */
export function answerDisco(c: XmppClient, features: string[]): void {
  void (async () => {
    for (let i = 0; i < 1000 && !c.closed; i++) {
      let iq: Element;
      try {
        iq = await c.next((el) => el.name === "iq" && el.attrs.type === "get" && el.getChild("query", NS.discoInfo) !== undefined, 60_000);
      } catch {
        return;
      }
      const node = iq.getChild("query", NS.discoInfo)!.attrs.node;
      c.send(
        xml("iq", { type: "result", id: iq.attrs.id, to: iq.attrs.from }, xml("query", { xmlns: NS.discoInfo, node },
          ...IDENTITY.map((id) => xml("identity", id)),
          ...features.map((f) => xml("feature", { var: f })))),
      );
    }
  })();
}

/** Logged in, interested, answering disco, and available with caps announcing +notify for `notifyNodes`. */
export async function onlineWithCaps(accounts: Accounts, user: string, resource: string, notifyNodes: string[], extra: string[] = []): Promise<XmppClient> {
  const features = [NS.discoInfo, NS.caps, ...extra, ...notifyNodes.map((n) => `${n}+notify`)];
  const c = await accounts.connected(user, resource);
  answerDisco(c, features);
  const ver = capsVer({ identities: IDENTITY, features });
  c.send(xml("presence", {}, xml("c", { xmlns: NS.caps, hash: "sha-1", node: CAPS_NODE, ver })));
  await c.next(isPresence(c.jid!, undefined));
  return c;
}

export function publishOptions(fields: Record<string, string>): Element {
  return xml("publish-options", {}, xml("x", { xmlns: NS.dataForms, type: "submit" },
    xml("field", { var: "FORM_TYPE", type: "hidden" }, xml("value", {}, NS.pubsubPublishOptions)),
    ...Object.entries(fields).map(([k, v]) => xml("field", { var: k }, xml("value", {}, v)))));
}

export function publish(c: XmppClient, node: string, payload: Element, opts?: { id?: string; options?: Record<string, string> }): Promise<Element> {
  return c.iq(xml("iq", { type: "set" }, xml("pubsub", { xmlns: NS.pubsub },
    xml("publish", { node }, xml("item", { id: opts?.id }, payload)),
    opts?.options ? publishOptions(opts.options) : null)));
}

export function retract(c: XmppClient, node: string, id: string): Promise<Element> {
  return c.iq(xml("iq", { type: "set" }, xml("pubsub", { xmlns: NS.pubsub }, xml("retract", { node, notify: "true" }, xml("item", { id })))));
}

/** The <item/>s of a node (an error reply throws). */
export async function fetchItems(c: XmppClient, owner: string | undefined, node: string): Promise<Element[]> {
  const reply = await c.iq(xml("iq", { type: "get", to: owner }, xml("pubsub", { xmlns: NS.pubsub }, xml("items", { node }))));
  if (reply.attrs.type !== "result") throw new Error(`items of ${node}: ${reply.toString()}`);
  return reply.getChild("pubsub", NS.pubsub)!.getChild("items")!.getChildren("item");
}

export function isEvent(from: string, node: string) {
  return (el: Element) => el.name === "message" && el.attrs.from === from && el.getChild("event", NS.pubsubEvent)?.getChild("items")?.attrs.node === node;
}

/** The first <item/> of a notification. */
export function eventItem(message: Element): Element | undefined {
  return message.getChild("event", NS.pubsubEvent)?.getChild("items")?.getChild("item");
}
