// XEP-0191 1.3 §6 (JID matching), which defers to XEP-0016 1.7 §2.1: an item blocks the JIDs it
// names and everything under them. <user@domain/resource> matches only that resource;
// <user@domain> the bare JID and all its resources; <domain/resource> only that; <domain> the
// domain itself and every JID at it.
import type { Jid } from "../../../protocol/jid.ts";

/** The item forms (normalised JID strings) that would block `jid`. */
export function blockingForms(jid: Jid): string[] {
  const forms = [jid.toString(), jid.domain];
  if (jid.local !== "") forms.push(jid.bare.toString());
  if (jid.resource !== "") forms.push(`${jid.domain}/${jid.resource}`);
  return forms;
}

/** True when an item of `blocklist` (normalised JID strings) covers `jid`. */
export function isBlocked(blocklist: ReadonlySet<string>, jid: Jid): boolean {
  if (blocklist.size === 0) return false;
  return blockingForms(jid).some((form) => blocklist.has(form));
}
