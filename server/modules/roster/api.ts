// RFC 6121 §2 (roster management) and XEP-0237 v1.3 (roster versioning): what the roster module
// offers other modules. The roster module is the only writer of rosters; anyone else who needs
// to change an item (the presence module's subscription state machine, RFC 6121 §3) fires
// ROSTER_UPDATE, so that every change is serialised per account, bumps the version once, and is
// pushed to the interested resources in the order it happened (RFC 6121 §2.6.3).
import type { Jid } from "../../../protocol/jid.ts";
import type { RosterItem } from "../../core/storage/index.ts";

/** The event other modules fire to change one roster item. */
export const ROSTER_UPDATE = "roster/update";

export interface RosterUpdateEvent {
  /** The account whose roster changes (its bare JID). */
  readonly account: Jid;
  /** The contact's bare JID, as stored. */
  readonly contact: string;
  /**
   * Computes the new item from the current one (null when the contact is not in the roster):
   * an item to store, null to remove the item, or undefined to leave it alone. It runs while the
   * account's roster is locked, so it may read and write other per-account state of its own, and
   * may send to local sessions, but it must not route stanzas (routing can reach another
   * account's lock, and two accounts waiting for each other would never finish).
   */
  change(current: RosterItem | null): RosterItem | null | undefined | Promise<RosterItem | null | undefined>;
  /** Runs after the new item is stored and before it is pushed (RFC 6121 §3.1.6 step 1, §3.2.3). */
  beforePush?(after: RosterItem | null): void;
  /** Filled in by the roster module: the item before and after, and the new version if it changed. */
  result?: RosterUpdateResult;
}

export interface RosterUpdateResult {
  before: RosterItem | null;
  after: RosterItem | null;
  /** The roster version after the change, or null when nothing changed. */
  version: number | null;
}

export function hasFrom(item: RosterItem | null): boolean {
  return item !== null && (item.subscription === "from" || item.subscription === "both");
}

export function hasTo(item: RosterItem | null): boolean {
  return item !== null && (item.subscription === "to" || item.subscription === "both");
}
