/**
 * Instants as Go's time.Time sees them: nanoseconds since the Unix epoch in a location (UTC, Local or an
 * IANA zone through Intl), broken down into the proleptic Gregorian calendar.
 */
import { fail } from "./values.ts";

export const NS_PER_SECOND = 1_000_000_000n;
const SECONDS_PER_DAY = 86_400n;

/** Go's time.Unix(0, math.MinInt64) … time.Unix(0, math.MaxInt64): what UnixNano can express. */
export const MIN_NS = -(2n ** 63n);
export const MAX_NS = 2n ** 63n - 1n;

export interface Zone {
  /** "" and "UTC" are UTC; "Local" is the process's zone; anything else an IANA name. */
  name: string;
  /** The UTC offset in seconds in effect at `ns`, and its abbreviation ("" when the zone has none). */
  at(ns: bigint): { offset: number; abbreviation: string };
}

export const UTC: Zone = { name: "UTC", at: () => ({ offset: 0, abbreviation: "UTC" }) };

const zones = new Map<string, Zone>();

/**
 * Intl knows no tzdata abbreviations, only each locale's short names; the English locales between them
 * give tzdata's for most zones (CET, EAT, IST, AEST …). Where none does, Go prints the numeric form.
 */
const ABBREVIATION_LOCALES = ["en-US", "en-GB", "en-IN", "en-AU", "en-NZ", "en-IE", "en-ZA", "en-CA"];

function intlZone(name: string): Zone {
  let offsets: Intl.DateTimeFormat;
  let names: Intl.DateTimeFormat[];
  try {
    offsets = new Intl.DateTimeFormat("en-US", { timeZone: name, timeZoneName: "longOffset" });
    names = ABBREVIATION_LOCALES.map(
      (locale) => new Intl.DateTimeFormat(locale, { timeZone: name, timeZoneName: "short" }),
    );
  } catch {
    fail(`unknown time zone ${name}`);
  }
  const resolved = offsets.resolvedOptions().timeZone;
  // Go's LoadLocation is case-sensitive; Intl is not.
  if (resolved !== name && resolved.toLowerCase() === name.toLowerCase()) fail(`unknown time zone ${name}`);
  const part = (format: Intl.DateTimeFormat, ms: number) =>
    format.formatToParts(ms).find((p) => p.type === "timeZoneName")?.value ?? "";
  return {
    name,
    at(ns) {
      const ms = Number(floorDiv(ns, 1_000_000n));
      const match = /GMT([+-])(\d{2}):(\d{2})(?::(\d{2}))?/.exec(part(offsets, ms));
      const offset = match
        ? (match[1] === "-" ? -1 : 1) *
          (Number(match[2]) * 3600 + Number(match[3]) * 60 + Number(match[4] ?? 0))
        : 0;
      const abbreviation = names
        .map((format) => part(format, ms))
        .find((short) => /^[A-Z]{3,5}$/.test(short));
      return { offset, abbreviation: abbreviation ?? numericAbbreviation(offset) };
    },
  };
}

/** tzdata's name for a zone without letters: "+03", "+0530", "-0930". */
function numericAbbreviation(offset: number): string {
  if (offset === 0) return "GMT";
  const abs = Math.abs(offset);
  const hours = String(Math.floor(abs / 3600)).padStart(2, "0");
  const minutes = Math.floor((abs % 3600) / 60);
  return `${offset < 0 ? "-" : "+"}${hours}${minutes === 0 ? "" : String(minutes).padStart(2, "0")}`;
}

/** A location as OPA's tzTime loads it. */
export function zoneNamed(name: string): Zone {
  if (name === "" || name === "UTC") return UTC;
  let zone = zones.get(name);
  if (!zone) {
    const local = name === "Local" ? Intl.DateTimeFormat().resolvedOptions().timeZone : name;
    zone = local === "UTC" ? UTC : intlZone(local);
    zones.set(name, zone);
  }
  return zone;
}

export function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
}

function floorMod(a: bigint, b: bigint): bigint {
  return a - floorDiv(a, b) * b;
}

/** Days since 1970-01-01 → civil date (Howard Hinnant's algorithm). */
export function civilFromDays(days: number): { year: number; month: number; day: number } {
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor(
    (doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365,
  );
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  return { year: yoe + era * 400 + (month <= 2 ? 1 : 0), month, day };
}

/** Civil date → days since 1970-01-01, normalising out-of-range months and days as Go's time.Date does. */
export function daysFromCivil(year: number, month: number, day: number): number {
  const m0 = month - 1;
  const y = year + Math.floor(m0 / 12);
  const m = (((m0 % 12) + 12) % 12) + 1;
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5);
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468 + (day - 1);
}

export function daysIn(month: number, year: number): number {
  return daysFromCivil(year, month + 1, 1) - daysFromCivil(year, month, 1);
}

/** A civil date and time of day, to the nanosecond, in some zone. */
export interface CivilTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  nanosecond: number;
}

export interface Broken extends CivilTime {
  /** 0 = Sunday, as Go's Weekday. */
  weekday: number;
  /** 1-based day of the year. */
  yearDay: number;
  offset: number;
  abbreviation: string;
}

/** The wall clock of `ns` in `zone`. */
export function breakDown(ns: bigint, zone: Zone): Broken {
  const { offset, abbreviation } = zone.at(ns);
  const wall = ns + BigInt(offset) * NS_PER_SECOND;
  const seconds = floorDiv(wall, NS_PER_SECOND);
  const nanosecond = Number(floorMod(wall, NS_PER_SECOND));
  const days = Number(floorDiv(seconds, SECONDS_PER_DAY));
  const secondOfDay = Number(floorMod(seconds, SECONDS_PER_DAY));
  const { year, month, day } = civilFromDays(days);
  return {
    year,
    month,
    day,
    hour: Math.floor(secondOfDay / 3600),
    minute: Math.floor((secondOfDay % 3600) / 60),
    second: secondOfDay % 60,
    nanosecond,
    weekday: (((days + 4) % 7) + 7) % 7,
    yearDay: days - daysFromCivil(year, 1, 1) + 1,
    offset,
    abbreviation,
  };
}

/** Go's time.Date(year, month, day, hour, minute, second, ns, zone).UnixNano(), without the int64 wrap. */
export function instantOf(fields: CivilTime, zone: Zone): bigint {
  const days = BigInt(daysFromCivil(fields.year, fields.month, fields.day));
  const wall =
    (days * SECONDS_PER_DAY + BigInt(fields.hour * 3600 + fields.minute * 60 + fields.second)) *
      NS_PER_SECOND +
    BigInt(fields.nanosecond);
  // As Go: the offset at the wall time read as UTC, unless the instant it gives lies under another offset.
  const guess = zone.at(wall).offset;
  const utc = wall - BigInt(guess) * NS_PER_SECOND;
  const actual = zone.at(utc).offset;
  return wall - BigInt(actual) * NS_PER_SECOND;
}

export const WEEKDAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
export const MONTHS = [
  "January",
  "February",
  "March",
  "April",
  "May",
  "June",
  "July",
  "August",
  "September",
  "October",
  "November",
  "December",
];
