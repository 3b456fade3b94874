// Storage spec for server/modules/muc/store.ts (migration 0003_muc): XEP-0045 persistent rooms,
// their configuration, subject, affiliations and registered nicks, and the room archive in the
// core archive table, survive closing and reopening the database, on SQLite and PostgreSQL.
import { test } from "node:test";
import assert from "node:assert/strict";
import { forEachDatabase, uniqueName } from "../core/storage/both.ts";
import { MucStore, readConfig, type StoredRoom } from "../../../server/modules/muc/store.ts";
import { DEFAULT_ROOM_CONFIG } from "../../../protocol/muc.ts";

function room(name: string): StoredRoom {
  return {
    room: name,
    config: { ...DEFAULT_ROOM_CONFIG, getMemberList: ["moderator", "participant"], persistent: true, membersOnly: true, whois: "anyone", name: "Family" },
    subject: "Sunday lunch",
    subjectBy: "Romeo",
    salt: "c2FsdA==",
    affiliations: [
      ["romeo@example.org", "owner"],
      ["juliet@example.org", "member"],
      ["tybalt@example.org", "outcast"],
    ],
    nicks: [["juliet@example.org", "Jules"]],
  };
}

const sorted = <T>(a: T[]) => [...a].sort((x, y) => (JSON.stringify(x) < JSON.stringify(y) ? -1 : 1));

forEachDatabase("muc store", (db) => {
  test("a saved room, its changes and its archive survive reopening the database; deleting forgets all of it", async () => {
    const location = db.createEmpty();
    const service = `conference.${uniqueName("h")}`;
    let storage = await db.open(location);
    await storage.migrate();
    let store = new MucStore(storage.db);
    await store.saveRoom(service, room("family"));
    await store.saveRoom(service, { ...room("other"), affiliations: [["romeo@example.org", "owner"]], nicks: [] });
    await store.setAffiliation(service, "family", "nurse@example.org", "admin");
    await store.setAffiliation(service, "family", "tybalt@example.org", "none");
    await store.setAffiliation(service, "family", "juliet@example.org", "admin");
    await store.setNick(service, "family", "nurse@example.org", "Nurse");
    await store.setNick(service, "family", "juliet@example.org", "Juliet");
    await store.saveSubject(service, "family", "Monday", "");
    // An archive id of millisecond 1 (its first 10 characters), as the archive requires of ts.
    await storage.archive.append([{ host: service, username: "family", id: "00000000010000000000000001", with: `family@${service}`, withResource: "Romeo", direction: "in", xml: "<message xmlns='jabber:client'/>", ts: 1 }]);
    await storage.close();

    storage = await db.open(location);
    store = new MucStore(storage.db);
    const loaded = (await store.loadRooms(service)).sort((a, b) => (a.room < b.room ? -1 : 1));
    assert.deepEqual(loaded.map((r) => r.room), ["family", "other"]);
    const family = loaded[0];
    assert.deepEqual(family.config, room("family").config);
    assert.equal(family.subject, "Monday");
    assert.equal(family.subjectBy, "");
    assert.equal(family.salt, "c2FsdA==");
    assert.deepEqual(sorted(family.affiliations), sorted([["romeo@example.org", "owner"], ["juliet@example.org", "admin"], ["nurse@example.org", "admin"]]));
    assert.deepEqual(sorted(family.nicks), sorted([["juliet@example.org", "Juliet"], ["nurse@example.org", "Nurse"]]));
    assert.equal(await storage.archive.count(service, "family"), 1);
    assert.deepEqual(await store.loadRooms(`other.${service}`), [], "rooms belong to their service");

    // Saving the whole room again replaces what was there.
    await store.saveRoom(service, { ...family, affiliations: [["romeo@example.org", "owner"]], nicks: [] });
    const replaced = (await store.loadRooms(service)).find((r) => r.room === "family")!;
    assert.deepEqual(replaced.affiliations, [["romeo@example.org", "owner"]]);
    assert.deepEqual(replaced.nicks, []);

    // A nick is registered to one JID at a time in a room.
    await store.setNick(service, "family", "a@example.org", "Same");
    await assert.rejects(store.setNick(service, "family", "b@example.org", "Same"));

    await store.deleteRoom(service, "family", { archive: true });
    assert.deepEqual((await store.loadRooms(service)).map((r) => r.room), ["other"]);
    assert.equal(await storage.archive.count(service, "family"), 0);
  });

  test("a stored configuration missing newer fields, or with wrong types, reads with the defaults", () => {
    const config = readConfig(JSON.stringify({ name: "Old", persistent: true, maxUsers: "many" }));
    assert.equal(config.name, "Old");
    assert.equal(config.persistent, true);
    assert.equal(config.maxUsers, DEFAULT_ROOM_CONFIG.maxUsers);
    assert.deepEqual(readConfig("not json"), { ...DEFAULT_ROOM_CONFIG, getMemberList: [...DEFAULT_ROOM_CONFIG.getMemberList] });
  });

  test("the role lists (getMemberList, presenceBroadcast) read back as stored, and a list with a non-role reads as the default", () => {
    const config = readConfig(JSON.stringify({ presenceBroadcast: ["moderator"], getMemberList: [] }));
    assert.deepEqual(config.presenceBroadcast, ["moderator"]);
    assert.deepEqual(config.getMemberList, []);
    const bad = readConfig(JSON.stringify({ presenceBroadcast: ["moderator", 7], getMemberList: ["king"] }));
    assert.deepEqual(bad.presenceBroadcast, [...DEFAULT_ROOM_CONFIG.presenceBroadcast]);
    assert.deepEqual(bad.getMemberList, [...DEFAULT_ROOM_CONFIG.getMemberList]);
  });
});
