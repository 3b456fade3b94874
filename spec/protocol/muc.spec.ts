// Specs for protocol/muc.ts: XEP-0045 1.34 items, status codes, join history limits (§7.2.14),
// the muc#roomconfig form (§10.2) and room features (§6.4).
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { xml } from "../../protocol/xml/element.ts";
import { NS } from "../../protocol/ns.ts";
import { StanzaError } from "../../protocol/errors.ts";
import { getValue, type DataForm } from "../../protocol/forms.ts";
import { parseXml } from "../support/xml.ts";
import {
  DEFAULT_ROOM_CONFIG,
  applyRoomConfig,
  historyStart,
  mucUserElement,
  parseAdminQuery,
  parseInvitations,
  parseJoin,
  roomConfigForm,
  roomFeatures,
  statusCodes,
  type HistoryEntry,
} from "../../protocol/muc.ts";

function condition(fn: () => unknown, expected: string): void {
  assert.throws(fn, (e: unknown) => e instanceof StanzaError && e.condition === expected);
}

function submission(fields: Record<string, string[]>): DataForm {
  return { type: "submit", fields: Object.entries(fields).map(([name, values]) => ({ var: name, values })) };
}

describe("muc#user and muc#admin", () => {
  test("an <x/> carries items then status codes, and the codes read back", () => {
    const x = mucUserElement({ items: [{ affiliation: "member", role: "participant", jid: "a@b/c", actor: { nick: "boss" }, reason: "why" }], statuses: [110, 307] });
    const presence = xml("presence", {}, x);
    assert.deepEqual(statusCodes(presence), [110, 307]);
    const item = x.getChild("item")!;
    assert.equal(item.attrs.affiliation, "member");
    assert.equal(item.getChild("actor")?.attrs.nick, "boss");
    assert.equal(item.getChildText("reason"), "why");
  });

  test("admin items: unknown affiliations and roles are bad-request", () => {
    const ok = parseAdminQuery(parseXml(`<query xmlns='${NS.mucAdmin}'><item nick='x' role='none'><reason>spam</reason></item></query>`));
    assert.deepEqual(ok, [{ nick: "x", role: "none", reason: "spam" }]);
    condition(() => parseAdminQuery(parseXml(`<query xmlns='${NS.mucAdmin}'><item jid='a@b' affiliation='king'/></query>`)), "bad-request");
    condition(() => parseAdminQuery(parseXml(`<query xmlns='${NS.mucAdmin}'><item nick='a' role='god'/></query>`)), "bad-request");
  });

  test("mediated invitations and declines are read; one without 'to' is bad-request", () => {
    const m = parseXml(`<message><x xmlns='${NS.mucUser}'><invite to='a@b'><reason>hi</reason></invite></x></message>`);
    assert.deepEqual(parseInvitations(m), { invites: [{ to: "a@b", reason: "hi" }] });
    const d = parseXml(`<message><x xmlns='${NS.mucUser}'><decline to='c@d'/></x></message>`);
    assert.deepEqual(parseInvitations(d).decline, { to: "c@d" });
    condition(() => parseInvitations(parseXml(`<message><x xmlns='${NS.mucUser}'><invite/></x></message>`)), "bad-request");
  });
});

describe("join requests and history (§7.2.14)", () => {
  test("password and limits are read; malformed limits are ignored", () => {
    const p = parseXml(`<presence><x xmlns='${NS.muc}'><password>pw</password><history maxstanzas='5' maxchars='-1' seconds='x' since='2020-01-01T00:00:00Z'/></x></presence>`);
    const req = parseJoin(p);
    assert.equal(req.muc, true);
    assert.equal(req.password, "pw");
    assert.deepEqual(req.history, { maxstanzas: 5, since: new Date("2020-01-01T00:00:00Z") });
    assert.equal(parseJoin(parseXml("<presence/>")).muc, false);
  });

  const now = new Date("2024-01-01T12:00:00Z");
  const entries: HistoryEntry[] = [0, 1, 2, 3, 4].map((i) => ({ at: new Date(now.getTime() - (5 - i) * 60_000), chars: 100 }));

  test("each limit alone", () => {
    assert.equal(historyStart(entries, {}, now), 0);
    assert.equal(historyStart(entries, { maxstanzas: 2 }, now), 3);
    assert.equal(historyStart(entries, { maxstanzas: 0 }, now), 5);
    assert.equal(historyStart(entries, { maxchars: 250 }, now), 3);
    assert.equal(historyStart(entries, { seconds: 150 }, now), 3);
    assert.equal(historyStart(entries, { since: new Date(now.getTime() - 3 * 60_000) }, now), 2);
  });

  test("property: the selection is a suffix that satisfies every limit, and is the longest such", () => {
    const entryArb = fc.record({ offset: fc.integer({ min: 0, max: 10_000 }), chars: fc.integer({ min: 1, max: 500 }) });
    fc.assert(
      fc.property(
        fc.array(entryArb, { maxLength: 30 }),
        fc.record({ maxstanzas: fc.option(fc.nat(40), { nil: undefined }), maxchars: fc.option(fc.nat(5000), { nil: undefined }), seconds: fc.option(fc.nat(12_000), { nil: undefined }) }),
        (raw, limits) => {
          const sorted = raw.map((e) => e.offset).sort((a, b) => b - a);
          const list: HistoryEntry[] = sorted.map((offset, i) => ({ at: new Date(now.getTime() - offset * 1000), chars: raw[i].chars }));
          const request = Object.fromEntries(Object.entries(limits).filter(([, v]) => v !== undefined));
          const start = historyStart(list, request, now);
          const ok = (s: number): boolean => {
            const picked = list.slice(s);
            if (limits.maxstanzas !== undefined && picked.length > limits.maxstanzas) return false;
            if (limits.maxchars !== undefined && picked.reduce((n, e) => n + e.chars, 0) > limits.maxchars) return false;
            if (limits.seconds !== undefined && picked.some((e) => e.at.getTime() < now.getTime() - limits.seconds! * 1000)) return false;
            return true;
          };
          assert.ok(ok(start));
          if (start > 0) assert.ok(!ok(start - 1));
        },
      ),
    );
  });
});

describe("room configuration (§10.2)", () => {
  test("the form shows the current values under the muc#roomconfig FORM_TYPE", () => {
    const form = roomConfigForm({ ...DEFAULT_ROOM_CONFIG, name: "Hall", maxUsers: 0 });
    assert.equal(getValue(form, "FORM_TYPE"), NS.mucRoomConfig);
    assert.equal(getValue(form, "muc#roomconfig_roomname"), "Hall");
    assert.equal(getValue(form, "muc#roomconfig_maxusers"), "none");
    assert.equal(getValue(form, "muc#roomconfig_whois"), "moderators");
  });

  test("an empty submission changes nothing; fields given change only themselves", () => {
    assert.deepEqual(applyRoomConfig(DEFAULT_ROOM_CONFIG, { type: "submit", fields: [] }), { ...DEFAULT_ROOM_CONFIG });
    const next = applyRoomConfig(DEFAULT_ROOM_CONFIG, submission({ "muc#roomconfig_membersonly": ["1"], "muc#roomconfig_whois": ["anyone"], "muc#roomconfig_getmemberlist": ["moderator", "participant", "member"] }));
    assert.equal(next.membersOnly, true);
    assert.equal(next.whois, "anyone");
    assert.deepEqual(next.getMemberList, ["moderator", "participant"]);
    assert.equal(next.moderated, DEFAULT_ROOM_CONFIG.moderated);
  });

  test("wrong values are not-acceptable: booleans, whois, maxusers, a password room without a password", () => {
    condition(() => applyRoomConfig(DEFAULT_ROOM_CONFIG, submission({ "muc#roomconfig_moderatedroom": ["maybe"] })), "not-acceptable");
    condition(() => applyRoomConfig(DEFAULT_ROOM_CONFIG, submission({ "muc#roomconfig_whois": ["all"] })), "not-acceptable");
    condition(() => applyRoomConfig(DEFAULT_ROOM_CONFIG, submission({ "muc#roomconfig_maxusers": ["-3"] })), "not-acceptable");
    condition(() => applyRoomConfig(DEFAULT_ROOM_CONFIG, submission({ "muc#roomconfig_passwordprotectedroom": ["1"] })), "not-acceptable");
    condition(() => applyRoomConfig(DEFAULT_ROOM_CONFIG, submission({ FORM_TYPE: ["urn:other"] })), "not-acceptable");
    condition(() => applyRoomConfig(DEFAULT_ROOM_CONFIG, submission({ "muc#roomconfig_maxusers": ["500"] }), 100), "not-acceptable");
  });

  test("presence broadcast (muc#roomconfig_presencebroadcast): every role by default, offered as a list-multi, set by a submission, unknown roles refused", () => {
    assert.deepEqual([...DEFAULT_ROOM_CONFIG.presenceBroadcast].sort(), ["moderator", "participant", "visitor"]);
    const field = roomConfigForm(DEFAULT_ROOM_CONFIG).fields.find((f) => f.var === "muc#roomconfig_presencebroadcast");
    assert.equal(field?.type, "list-multi");
    assert.deepEqual(field?.options?.map((o) => o.value), ["moderator", "participant", "visitor"]);
    const next = applyRoomConfig(DEFAULT_ROOM_CONFIG, submission({ "muc#roomconfig_presencebroadcast": ["moderator", "moderator", " participant "] }));
    assert.deepEqual(next.presenceBroadcast, ["moderator", "participant"]);
    assert.deepEqual(applyRoomConfig(DEFAULT_ROOM_CONFIG, submission({ "muc#roomconfig_presencebroadcast": [] })).presenceBroadcast, [], "nobody's presence is broadcast");
    assert.deepEqual(applyRoomConfig(next, submission({ "muc#roomconfig_roomname": ["x"] })).presenceBroadcast, ["moderator", "participant"], "left out, it stays");
    condition(() => applyRoomConfig(DEFAULT_ROOM_CONFIG, submission({ "muc#roomconfig_presencebroadcast": ["none"] })), "not-acceptable");
    assert.notEqual(next.presenceBroadcast, DEFAULT_ROOM_CONFIG.presenceBroadcast, "the default's array is not shared");
  });

  test("turning the password off forgets it", () => {
    const locked = applyRoomConfig(DEFAULT_ROOM_CONFIG, submission({ "muc#roomconfig_passwordprotectedroom": ["1"], "muc#roomconfig_roomsecret": ["s"] }));
    assert.equal(locked.password, "s");
    assert.equal(applyRoomConfig(locked, submission({ "muc#roomconfig_passwordprotectedroom": ["0"] })).password, "");
  });

  test("room features name each property of the configuration", () => {
    assert.deepEqual(roomFeatures(DEFAULT_ROOM_CONFIG), [NS.muc, "muc_temporary", "muc_open", "muc_semianonymous", "muc_unsecured", "muc_unmoderated", "muc_public"]);
    const omemo = { ...DEFAULT_ROOM_CONFIG, persistent: true, membersOnly: true, whois: "anyone" as const, public: false };
    assert.deepEqual(roomFeatures(omemo).slice(1), ["muc_persistent", "muc_membersonly", "muc_nonanonymous", "muc_unsecured", "muc_unmoderated", "muc_hidden"]);
  });
});
