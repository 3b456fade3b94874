// Specs for protocol/datetime.ts: XEP-0082 Date, DateTime and Time profiles.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { formatDate, formatDateTime, formatTime, parseDate, parseDateTime } from "../../protocol/datetime.ts";

describe("formatDateTime", () => {
  test("writes XEP-0082 / XEP-0203 example stamps exactly", () => {
    assert.equal(formatDateTime(new Date(Date.UTC(2002, 8, 10, 23, 8, 25))), "2002-09-10T23:08:25Z");
    assert.equal(formatDateTime(new Date(Date.UTC(1969, 6, 21, 2, 56, 15))), "1969-07-21T02:56:15Z");
  });

  test("adds .sss only when the milliseconds are non-zero", () => {
    assert.equal(formatDateTime(new Date(Date.UTC(2002, 8, 10, 23, 8, 25, 7))), "2002-09-10T23:08:25.007Z");
    assert.equal(formatDateTime(new Date(Date.UTC(2002, 8, 10, 23, 8, 25, 120))), "2002-09-10T23:08:25.120Z");
  });

  test("writes UTC whatever the local zone, with four-digit years", () => {
    const d = new Date(Date.UTC(2024, 1, 29, 0, 0, 0));
    assert.equal(formatDateTime(d), "2024-02-29T00:00:00Z");
    const early = new Date(0);
    early.setUTCFullYear(33, 0, 1);
    assert.equal(formatDateTime(early), "0033-01-01T00:00:00Z");
  });

  test("refuses what the profile cannot express", () => {
    assert.throws(() => formatDateTime(new Date(NaN)), RangeError);
    assert.throws(() => formatDateTime(new Date(Date.UTC(10000, 0, 1))), RangeError);
    assert.throws(() => formatDateTime(new Date(Date.UTC(-1, 0, 1))), RangeError);
  });
});

describe("formatDate and formatTime", () => {
  test("give the Date and Time profiles in UTC", () => {
    const d = new Date(Date.UTC(1776, 6, 4, 16, 0, 0));
    assert.equal(formatDate(d), "1776-07-04");
    assert.equal(formatTime(d), "16:00:00Z");
    assert.equal(formatTime(new Date(Date.UTC(2000, 0, 1, 9, 5, 3, 450))), "09:05:03.450Z");
  });
});

describe("parseDateTime", () => {
  test("reads the XEP-0082 examples, with offsets normalised to the same instant", () => {
    const utc = parseDateTime("1969-07-21T02:56:15Z");
    const houston = parseDateTime("1969-07-20T21:56:15-05:00");
    assert.equal(utc?.toISOString(), "1969-07-21T02:56:15.000Z");
    assert.equal(houston?.getTime(), utc?.getTime());
    assert.equal(parseDateTime("2002-09-10T23:08:25Z")?.getTime(), Date.UTC(2002, 8, 10, 23, 8, 25));
    assert.equal(parseDateTime("2002-09-11T04:38:25+05:30")?.getTime(), Date.UTC(2002, 8, 10, 23, 8, 25));
  });

  test("reads fractional seconds of any length, keeping milliseconds", () => {
    assert.equal(parseDateTime("2002-09-10T23:08:25.5Z")?.getUTCMilliseconds(), 500);
    assert.equal(parseDateTime("2002-09-10T23:08:25.123Z")?.getUTCMilliseconds(), 123);
    assert.equal(parseDateTime("2002-09-10T23:08:25.123456789Z")?.getUTCMilliseconds(), 123);
  });

  test("crosses day and year boundaries through the offset", () => {
    assert.equal(parseDateTime("2000-01-01T00:30:00+01:00")?.toISOString(), "1999-12-31T23:30:00.000Z");
    assert.equal(parseDateTime("1999-12-31T23:30:00-00:45")?.toISOString(), "2000-01-01T00:15:00.000Z");
  });

  test("handles years below 100 literally (no 19xx mapping)", () => {
    assert.equal(parseDateTime("0099-03-01T00:00:00Z")?.getUTCFullYear(), 99);
    assert.equal(parseDateTime("0000-01-01T00:00:00Z")?.getUTCFullYear(), 0);
  });

  test("rejects everything that is not the DateTime profile", () => {
    for (const s of [
      "",
      "2002-09-10",
      "2002-09-10T23:08:25", // zone is mandatory
      "20020910T23:08:25", // XEP-0091 legacy
      "2002-09-10 23:08:25Z",
      "2002-09-10t23:08:25z",
      " 2002-09-10T23:08:25Z",
      "2002-09-10T23:08:25Z ",
      "2002-9-10T23:08:25Z",
      "2002-09-10T23:08Z",
      "2002-09-10T23:08:25.Z",
      "2002-09-10T23:08:25+0100",
      "2002-09-10T23:08:25+01",
      "2002-13-10T23:08:25Z",
      "2002-00-10T23:08:25Z",
      "2002-09-31T23:08:25Z",
      "2023-02-29T00:00:00Z",
      "1900-02-29T00:00:00Z",
      "2002-09-10T24:00:00Z",
      "2002-09-10T23:60:00Z",
      "2002-09-10T23:59:60Z",
      "2002-09-10T23:08:25+24:00",
      "2002-09-10T23:08:25+01:60",
      "+12002-09-10T23:08:25Z",
      "-2002-09-10T23:08:25Z",
      "２００２-09-10T23:08:25Z",
      "2002-09-10T23:08:25Z\n",
    ]) {
      assert.equal(parseDateTime(s), null, JSON.stringify(s));
    }
    assert.equal(parseDateTime(undefined as unknown as string), null);
  });

  test("accepts leap days that exist", () => {
    assert.equal(parseDateTime("2024-02-29T12:00:00Z")?.getUTCDate(), 29);
    assert.equal(parseDateTime("2000-02-29T12:00:00Z")?.getUTCDate(), 29);
  });

  test("property: format then parse is the identity for every representable instant", () => {
    const yearZero = new Date(0);
    yearZero.setUTCFullYear(0, 0, 1);
    const max = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
    fc.assert(
      fc.property(fc.integer({ min: yearZero.getTime(), max }), (t) => {
        const d = new Date(t);
        assert.equal(parseDateTime(formatDateTime(d))?.getTime(), t);
      }),
    );
  });

  test("property: never throws on arbitrary strings", () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        const d = parseDateTime(s);
        assert.ok(d === null || !Number.isNaN(d.getTime()));
      }),
    );
  });
});

describe("parseDate", () => {
  test("reads CCYY-MM-DD as midnight UTC and rejects impossible dates", () => {
    assert.equal(parseDate("1776-07-04")?.toISOString(), "1776-07-04T00:00:00.000Z");
    assert.equal(parseDate("1776-07-04T00:00:00Z"), null);
    assert.equal(parseDate("2023-02-29"), null);
    assert.equal(parseDate("0001-01-01")?.getUTCFullYear(), 1);
  });
});
