// XEP-0082: XMPP Date and Time Profiles, version 1.1.1.
// Date "CCYY-MM-DD", DateTime "CCYY-MM-DDThh:mm:ss[.sss]TZD", Time "hh:mm:ss[.sss][TZD]",
// TZD being "Z" or "±hh:mm". We always write UTC ("Z"); we read any offset.
// Fractional seconds: written as ".sss" only when the milliseconds are non-zero, so whole-second
// stamps look exactly like the XEP examples ("2002-09-10T23:08:25Z") while a stamp with
// milliseconds still round-trips. Read with any number of digits, truncated to milliseconds
// (JavaScript's Date holds no finer precision).
// Years outside 0000-9999 and leap seconds (ss = 60) have no representation in these profiles
// (§2.1 gives ss as 00 through 59); we neither write nor accept them.

const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$/;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** "2002-09-10T23:08:25Z", or "2002-09-10T23:08:25.123Z" when the milliseconds are non-zero. */
export function formatDateTime(d: Date): string {
  return `${formatDate(d)}T${formatTime(d)}`;
}

/** The UTC calendar date, "1776-07-04". */
export function formatDate(d: Date): string {
  assertRepresentable(d);
  return `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1, 2)}-${pad(d.getUTCDate(), 2)}`;
}

/** The UTC time of day with its zone, "16:00:00Z" (".sss" only when non-zero). */
export function formatTime(d: Date): string {
  assertRepresentable(d);
  const ms = d.getUTCMilliseconds();
  const fraction = ms === 0 ? "" : `.${pad(ms, 3)}`;
  return `${pad(d.getUTCHours(), 2)}:${pad(d.getUTCMinutes(), 2)}:${pad(d.getUTCSeconds(), 2)}${fraction}Z`;
}

/**
 * Reads a XEP-0082 DateTime. Returns null for anything that is not exactly that profile:
 * a missing zone, the legacy XEP-0091 "CCYYMMDDThh:mm:ss" form, impossible dates
 * ("2023-02-29"), out-of-range fields, surrounding whitespace.
 */
export function parseDateTime(s: string): Date | null {
  if (typeof s !== "string") return null;
  const m = DATE_TIME.exec(s);
  if (!m) return null;
  const [, year, month, day, hour, minute, second, fraction, zone] = m;
  const fields = toFields(year, month, day, hour, minute, second);
  if (!fields) return null;
  const offsetMinutes = parseOffset(zone);
  if (offsetMinutes === null) return null;
  const ms = fraction ? Number(fraction.slice(0, 3).padEnd(3, "0")) : 0;
  const date = new Date(0);
  // setUTCFullYear, not Date.UTC: Date.UTC maps years 0-99 to 1900-1999.
  date.setUTCFullYear(fields.year, fields.month - 1, fields.day);
  date.setUTCHours(fields.hour, fields.minute, fields.second, ms);
  return new Date(date.getTime() - offsetMinutes * 60_000);
}

/** Reads a XEP-0082 Date ("CCYY-MM-DD") as midnight UTC of that day, or null. */
export function parseDate(s: string): Date | null {
  if (typeof s !== "string") return null;
  const m = DATE.exec(s);
  if (!m) return null;
  const fields = toFields(m[1], m[2], m[3], "00", "00", "00");
  if (!fields) return null;
  const date = new Date(0);
  date.setUTCFullYear(fields.year, fields.month - 1, fields.day);
  return date;
}

interface Fields {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

function toFields(...parts: string[]): Fields | null {
  const [year, month, day, hour, minute, second] = parts.map(Number);
  if (month < 1 || month > 12) return null;
  if (day < 1 || day > daysInMonth(year, month)) return null;
  if (hour > 23 || minute > 59 || second > 59) return null;
  return { year, month, day, hour, minute, second };
}

function parseOffset(zone: string): number | null {
  if (zone === "Z") return 0;
  const sign = zone[0] === "-" ? -1 : 1;
  const hours = Number(zone.slice(1, 3));
  const minutes = Number(zone.slice(4, 6));
  if (hours > 23 || minutes > 59) return null;
  return sign * (hours * 60 + minutes);
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return isLeapYear(year) ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

function isLeapYear(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

function assertRepresentable(d: Date): void {
  const time = d.getTime();
  if (Number.isNaN(time)) throw new RangeError("XEP-0082: cannot format an invalid Date");
  const year = d.getUTCFullYear();
  if (year < 0 || year > 9999) throw new RangeError(`XEP-0082: year ${year} has no four-digit form`);
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, "0");
}
