// Specs for protocol/rsm.ts: XEP-0059 result set management.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { xml, type Element } from "../../protocol/xml/element.ts";
import { NS } from "../../protocol/ns.ts";
import { StanzaError } from "../../protocol/errors.ts";
import { buildRsmRequest, buildRsmResponse, parseRsmRequest, parseRsmResponse } from "../../protocol/rsm.ts";

const set = (...children: Element[]) => xml("set", { xmlns: NS.rsm }, ...children);
const el = (name: string, text?: string) => xml(name, {}, text);

function assertBadRequest(fn: () => unknown): void {
  assert.throws(fn, (e: unknown) => e instanceof StanzaError && e.condition === "bad-request" && e.type === "modify");
}

describe("parseRsmRequest", () => {
  test("no <set/> means no paging", () => {
    assert.equal(parseRsmRequest(undefined), null);
    const query = xml("query", { xmlns: NS.discoItems });
    assert.equal(parseRsmRequest(query.getChild("set", NS.rsm)), null);
  });

  test("reads the XEP's requests: limit, next page, previous page, last page, by index, count only", () => {
    assert.deepEqual(parseRsmRequest(set(el("max", "10"))), { max: 10 });
    assert.deepEqual(parseRsmRequest(set(el("max", "10"), el("after", "peterpan@neverland.lit"))), {
      max: 10,
      after: "peterpan@neverland.lit",
    });
    assert.deepEqual(parseRsmRequest(set(el("max", "10"), el("before", "peter@pixyland.org"))), {
      max: 10,
      before: "peter@pixyland.org",
    });
    assert.deepEqual(parseRsmRequest(set(el("max", "10"), el("before"))), { max: 10, before: true });
    assert.deepEqual(parseRsmRequest(set(el("max", "10"), el("index", "371"))), { max: 10, index: 371 });
    assert.deepEqual(parseRsmRequest(set(el("max", "0"))), { max: 0 });
    assert.deepEqual(parseRsmRequest(set()), {});
  });

  test("allows after and before together (a XEP-0313 range)", () => {
    assert.deepEqual(parseRsmRequest(set(el("after", "a"), el("before", "b"))), { after: "a", before: "b" });
  });

  test("reads an empty <after/> as no after, and tolerates xs:int whitespace and '+'", () => {
    assert.deepEqual(parseRsmRequest(set(el("after"), el("max", " 5\n"))), { max: 5 });
    assert.deepEqual(parseRsmRequest(set(el("max", "+7"))), { max: 7 });
  });

  test("ignores children in other namespaces and unknown children", () => {
    const s = set(el("foo", "1"));
    s.append(xml("max", { xmlns: "urn:example" }, "-1"));
    assert.deepEqual(parseRsmRequest(s), {});
  });

  test("answers bad-request for negative, fractional, non-numeric or oversized max and index", () => {
    for (const bad of ["-1", "1.5", "1e3", "ten", "", "0x10", "2147483648", "99999999999999999999", "١٠"]) {
      assertBadRequest(() => parseRsmRequest(set(el("max", bad))));
      assertBadRequest(() => parseRsmRequest(set(el("index", bad))));
    }
    assert.deepEqual(parseRsmRequest(set(el("max", "2147483647"))), { max: 2147483647 });
  });

  test("answers bad-request for repeated children and for elements that are not an RSM set", () => {
    assertBadRequest(() => parseRsmRequest(set(el("max", "1"), el("max", "2"))));
    assertBadRequest(() => parseRsmRequest(set(el("after", "a"), el("after", "b"))));
    assertBadRequest(() => parseRsmRequest(xml("set", { xmlns: "urn:example" })));
    assertBadRequest(() => parseRsmRequest(xml("query", { xmlns: NS.rsm })));
  });

  test("property: arbitrary <set/> contents give a request or bad-request, never another failure", () => {
    const child = fc.record({
      name: fc.constantFrom("max", "index", "before", "after", "first", "count"),
      text: fc.oneof(fc.string({ maxLength: 12 }), fc.integer().map(String)),
    });
    fc.assert(
      fc.property(fc.array(child, { maxLength: 6 }), (children) => {
        try {
          const r = parseRsmRequest(set(...children.map((c) => el(c.name, c.text))));
          assert.ok(r);
          for (const n of [r.max, r.index]) assert.ok(n === undefined || (Number.isInteger(n) && n >= 0));
        } catch (e) {
          assert.ok(e instanceof StanzaError && e.condition === "bad-request", String(e));
        }
      }),
    );
  });
});

describe("buildRsmResponse", () => {
  test("writes first with its index, last and count in the RSM namespace", () => {
    assert.equal(
      buildRsmResponse({ first: "stpeter@jabber.org", firstIndex: 0, last: "peterpan@neverland.lit", count: 800 }).toString(),
      '<set xmlns="http://jabber.org/protocol/rsm"><first index="0">stpeter@jabber.org</first>' +
        "<last>peterpan@neverland.lit</last><count>800</count></set>",
    );
  });

  test("an empty page carries only the count", () => {
    assert.equal(buildRsmResponse({ count: 790 }).toString(), '<set xmlns="http://jabber.org/protocol/rsm"><count>790</count></set>');
  });

  test("refuses counts and indexes that are not non-negative integers", () => {
    assert.throws(() => buildRsmResponse({ count: -1 }), RangeError);
    assert.throws(() => buildRsmResponse({ first: "a", firstIndex: 1.5 }), RangeError);
  });

  test("property: responses and requests round-trip", () => {
    const uid = fc.string({ minLength: 1, maxLength: 20 });
    const n = fc.integer({ min: 0, max: 2 ** 31 - 1 });
    fc.assert(
      fc.property(fc.option(uid, { nil: undefined }), fc.option(n, { nil: undefined }), fc.option(uid, { nil: undefined }), fc.option(n, { nil: undefined }), (first, firstIndex, last, count) => {
        const response = Object.fromEntries(
          Object.entries({ first, firstIndex: first === undefined ? undefined : firstIndex, last, count }).filter(([, v]) => v !== undefined),
        );
        assert.deepEqual(parseRsmResponse(buildRsmResponse(response)), response);
      }),
    );
    fc.assert(
      fc.property(
        fc.record(
          { max: n, index: n, after: uid, before: fc.oneof(uid, fc.constant(true as const)) },
          { requiredKeys: [] },
        ),
        (request) => {
          assert.deepEqual(parseRsmRequest(buildRsmRequest(request)), { ...request });
        },
      ),
    );
  });
});

describe("parseRsmResponse", () => {
  test("reads a response and rejects a malformed count", () => {
    const s = set(xml("first", { index: "10" }, "peter@pixyland.org"), el("last", "peter@rabbit.lit"), el("count", "800"));
    assert.deepEqual(parseRsmResponse(s), { first: "peter@pixyland.org", firstIndex: 10, last: "peter@rabbit.lit", count: 800 });
    assert.equal(parseRsmResponse(undefined), null);
    assertBadRequest(() => parseRsmResponse(set(el("count", "lots"))));
  });
});
