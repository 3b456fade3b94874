// XEP-0357: Push Notifications 0.4.1 (urn:xmpp:push:0): the <enable/> and <disable/> a client
// sends its server (§5, §6), and the pubsub publish the server sends the app server (§7) with
// the urn:xmpp:push:summary form and the registration's publish-options (its secrets).
// Also the "push priority" practice: Tigase's <priority xmlns='tigase:push:priority:0'/> inside
// <notification/> (read by Siskin's and Monal's app servers, written by Prosody's
// mod_cloud_notify_priority), mirrored in the summary form as a Parley field
// `last-message-priority` (high: show an alert; low: wake silently) for app servers that only
// read the form. Pure codecs: no storage, no routing.
import { xml, childElements, type Element } from "./xml/element.ts";
import { NS } from "./ns.ts";
import { StanzaError } from "./errors.ts";
import { FORM_TYPE_FIELD, buildForm, formType, parseForm, type DataForm, type FormField } from "./forms.ts";
import { tryParseJid, type Jid } from "./jid.ts";

export const PUSH_PRIORITY_NS = "tigase:push:priority:0";
/** The summary field Parley adds for the priority (not in XEP-0357's registry). */
export const PRIORITY_FIELD = "last-message-priority";
/**
 * Parley's summary field saying the last message was end-to-end encrypted ("1"): the hint that
 * replaces its body, so an app can show "encrypted message" rather than nothing.
 */
export const ENCRYPTED_FIELD = "last-message-encrypted";
/**
 * A publish-options field only Parley reads: "1" lets notifications carry the message body
 * (XEP-0357 §8 leaves privacy to the user's server; Parley sends no body unless the client asks).
 * It is stripped before the publish-options are forwarded to the app server.
 */
export const INCLUDE_BODY_FIELD = "urn:xmpp:parley:push:include-body";

export type PushPriority = "high" | "low";

export interface PushEnable {
  /** The app server's JID. */
  jid: Jid;
  node: string;
  /** §5: the publish-options form, forwarded with every publish (secrets live here). */
  publishOptions?: DataForm;
}

export interface PushDisable {
  jid: Jid;
  /** Absent: every node at that app server (§6). */
  node?: string;
}

/** Reads <enable xmlns='urn:xmpp:push:0'/>; bad-request when jid or node is missing or invalid. */
export function parseEnable(el: Element): PushEnable {
  const jid = tryParseJid(el.attrs.jid ?? "");
  if (!jid) throw new StanzaError("bad-request", "enable needs the app server's jid");
  const node = el.attrs.node;
  if (!node) throw new StanzaError("bad-request", "enable needs a node");
  const x = el.getChild("x", NS.dataForms);
  const out: PushEnable = { jid, node };
  if (x) {
    const form = parseForm(x);
    const type = formType(form);
    if (type !== undefined && type !== NS.pubsubPublishOptions) throw new StanzaError("bad-request", `publish-options FORM_TYPE must be ${NS.pubsubPublishOptions}`);
    out.publishOptions = form;
  }
  return out;
}

export function buildEnable(e: PushEnable): Element {
  const el = xml("enable", { xmlns: NS.push, jid: e.jid.toString(), node: e.node });
  if (e.publishOptions) el.append(buildForm(e.publishOptions));
  return el;
}

export function parseDisable(el: Element): PushDisable {
  const jid = tryParseJid(el.attrs.jid ?? "");
  if (!jid) throw new StanzaError("bad-request", "disable needs the app server's jid");
  return el.attrs.node ? { jid, node: el.attrs.node } : { jid };
}

export function buildDisable(d: PushDisable): Element {
  return xml("disable", { xmlns: NS.push, jid: d.jid.toString(), node: d.node });
}

/** A publish-options submission from plain fields (FORM_TYPE added). */
export function publishOptionsForm(fields: Record<string, string>): DataForm {
  return {
    type: "submit",
    fields: [{ var: FORM_TYPE_FIELD, type: "hidden", values: [NS.pubsubPublishOptions] }, ...Object.entries(fields).map(([k, v]): FormField => ({ var: k, values: [v] }))],
  };
}

/** The publish-options fields as a map (FORM_TYPE left out); the first value of each. */
export function optionValues(form: DataForm | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of form?.fields ?? []) if (f.var && f.var !== FORM_TYPE_FIELD) out[f.var] = f.values[0] ?? "";
  return out;
}

/** What the user's server tells the app server (§7, the summary form). */
export interface PushSummary {
  messageCount?: number;
  pendingSubscriptionCount?: number;
  lastMessageSender?: string;
  lastMessageBody?: string;
  /** The last message was end-to-end encrypted (then there is never a body). */
  lastMessageEncrypted?: boolean;
  priority?: PushPriority;
}

export function buildNotification(s: PushSummary): Element {
  const fields: FormField[] = [{ var: FORM_TYPE_FIELD, values: [NS.pushSummary] }];
  if (s.messageCount !== undefined) fields.push({ var: "message-count", values: [String(s.messageCount)] });
  if (s.pendingSubscriptionCount !== undefined) fields.push({ var: "pending-subscription-count", values: [String(s.pendingSubscriptionCount)] });
  if (s.lastMessageSender !== undefined) fields.push({ var: "last-message-sender", values: [s.lastMessageSender] });
  if (s.lastMessageBody !== undefined) fields.push({ var: "last-message-body", values: [s.lastMessageBody] });
  if (s.lastMessageEncrypted) fields.push({ var: ENCRYPTED_FIELD, values: ["1"] });
  if (s.priority !== undefined) fields.push({ var: PRIORITY_FIELD, values: [s.priority] });
  const n = xml("notification", { xmlns: NS.push }, buildForm({ type: "submit", fields }));
  if (s.priority !== undefined) n.append(xml("priority", { xmlns: PUSH_PRIORITY_NS }, s.priority));
  return n;
}

/** The <pubsub/> payload of the publish IQ (§7). publishOptions is forwarded as the user gave it. */
export function buildPublish(node: string, summary: PushSummary, publishOptions?: DataForm): Element {
  const pubsub = xml("pubsub", { xmlns: NS.pubsub }, xml("publish", { node }, xml("item", {}, buildNotification(summary))));
  if (publishOptions) pubsub.append(xml("publish-options", {}, buildForm({ ...publishOptions, type: "submit" })));
  return pubsub;
}

export interface ReceivedPublish {
  node: string;
  summary: PushSummary;
  /** publish-options fields other than FORM_TYPE. */
  options: Record<string, string>;
}

/** Reads a §7 publish as an app server gets it; bad-request when it is not one. */
export function parsePublish(pubsub: Element): ReceivedPublish {
  if (pubsub.getName() !== "pubsub" || pubsub.getNS() !== NS.pubsub) throw new StanzaError("bad-request", "not a pubsub publish");
  const publish = pubsub.getChild("publish");
  const node = publish?.attrs.node;
  if (!publish || !node) throw new StanzaError("bad-request", "publish needs a node");
  const notification = publish.getChild("item")?.getChild("notification", NS.push);
  const summary: PushSummary = {};
  const x = notification?.getChild("x", NS.dataForms);
  if (x) {
    const form = parseForm(x);
    if (formType(form) === NS.pushSummary || formType(form) === undefined) {
      for (const f of form.fields) {
        const v = f.values[0];
        if (v === undefined) continue;
        switch (f.var) {
          case "message-count":
            if (/^\d{1,9}$/.test(v)) summary.messageCount = Number(v);
            break;
          case "pending-subscription-count":
            if (/^\d{1,9}$/.test(v)) summary.pendingSubscriptionCount = Number(v);
            break;
          case "last-message-sender":
            summary.lastMessageSender = v;
            break;
          case "last-message-body":
            summary.lastMessageBody = v;
            break;
          case PRIORITY_FIELD:
            if (v === "high" || v === "low") summary.priority = v;
            break;
          case ENCRYPTED_FIELD:
            if (v === "1" || v === "true") summary.lastMessageEncrypted = true;
            break;
        }
      }
    }
  }
  const prio = notification?.getChildText("priority", PUSH_PRIORITY_NS)?.trim();
  if (prio === "high" || prio === "low") summary.priority = prio;
  const optionsX = pubsub.getChild("publish-options")?.getChild("x", NS.dataForms);
  const options = optionsX ? optionValues(parseForm(optionsX)) : {};
  return { node, summary, options };
}

/** Whether any child of `message` is end-to-end encrypted content the server cannot read. */
export function isEncryptedMessage(message: Element): boolean {
  return childElements(message).some(
    (c) =>
      (c.name === "encrypted" && (c.getNS() === NS.omemo || c.getNS() === NS.omemoLegacy)) ||
      // XEP-0373 OpenPGP for XMPP, and the legacy XEP-0027.
      (c.name === "openpgp" && c.getNS() === "urn:xmpp:openpgp:0") ||
      (c.name === "x" && c.getNS() === "jabber:x:encrypted"),
  );
}
