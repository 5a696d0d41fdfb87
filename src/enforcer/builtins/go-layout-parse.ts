/**
 * Go's time.Parse for a reference-time layout, as far as the instant it names: the fields, and the offset
 * a numeric zone or "Z" gave. https://pkg.go.dev/time#Parse
 */
import { type CivilTime, daysIn, MONTHS, WEEKDAYS } from "./civil.ts";
import { type Chunk, isDigit, tokenize } from "./go-layout.ts";
import { fail } from "./values.ts";

export interface Parsed extends CivilTime {
  /** The offset in seconds the value named, or undefined (UTC, unless a zone abbreviation says otherwise). */
  offset: number | undefined;
}

const lower = (s: string) => s.toLowerCase();

function lookup(names: string[], value: string, length?: number): [number, string] {
  for (let i = 0; i < names.length; i++) {
    const name = length ? (names[i] as string).slice(0, length) : (names[i] as string);
    if (value.length >= name.length && lower(value.slice(0, name.length)) === lower(name)) {
      return [i, value.slice(name.length)];
    }
  }
  fail("bad value for field");
}

function getNumber(value: string, fixed: boolean): [number, string] {
  if (!isDigit(value, 0)) fail("bad number");
  if (!isDigit(value, 1)) {
    if (fixed) fail("bad number");
    return [Number(value[0]), value.slice(1)];
  }
  return [Number(value.slice(0, 2)), value.slice(2)];
}

function getNumber3(value: string, fixed: boolean): [number, string] {
  let n = 0;
  let i = 0;
  for (; i < 3 && isDigit(value, i); i++) n = n * 10 + Number(value[i]);
  if (i === 0 || (fixed && i !== 3)) fail("bad number");
  return [n, value.slice(i)];
}

function skipLiteral(value: string, prefix: string): string {
  let v = value;
  let p = prefix;
  while (p.length > 0) {
    if (p[0] === " ") {
      if (v.length > 0 && v[0] !== " ") fail("literal mismatch");
      p = p.replace(/^ +/, "");
      v = v.replace(/^ +/, "");
      continue;
    }
    if (v.length === 0 || v[0] !== p[0]) fail("literal mismatch");
    p = p.slice(1);
    v = v.slice(1);
  }
  return v;
}

function nanoseconds(value: string, length: number): number {
  if (value[0] !== "." && value[0] !== ",") fail("bad fractional second");
  const digits = value.slice(1, Math.min(length, 10));
  if (!/^\d+$/.test(digits)) fail("bad fractional second");
  return Number(digits.padEnd(9, "0"));
}

/** Go's parseTimeZone: how many bytes of `value` are a zone abbreviation, or 0. */
function zoneAbbreviationLength(value: string): number {
  if (value.length < 3) return 0;
  if (value.startsWith("ChST") || value.startsWith("MeST")) return 4;
  if (value.startsWith("GMT")) {
    const m = /^GMT([+-]\d+)?/.exec(value);
    const sign = m?.[1];
    if (sign && Math.abs(Number(sign)) <= 23) return 3 + sign.length;
    return 3;
  }
  if (value[0] === "+" || value[0] === "-") {
    const m = /^[+-]\d+/.exec(value);
    return m && Math.abs(Number(m[0])) <= 23 ? m[0].length : 0;
  }
  let n = 0;
  while (n < value.length && /[A-Z]/.test(value[n] as string)) n++;
  if (n === 3) return 3;
  if (n === 4) return value[3] === "T" || value.startsWith("WITA") ? 4 : 0;
  if (n === 5) return value[4] === "T" ? 5 : 0;
  return 0;
}

/** Go's time.Parse, as far as the instant: the fields and the offset the value named. */
export function parseTime(layout: string, text: string): Parsed {
  const chunks = tokenize(layout);
  let value = text;
  let year = 0;
  let month = -1;
  let day = -1;
  let yearDay = -1;
  let hour = 0;
  let minute = 0;
  let second = 0;
  let nanosecond = 0;
  let pm = false;
  let am = false;
  let offset: number | undefined;
  for (let index = 0; index < chunks.length; index++) {
    const chunk = chunks[index] as Chunk;
    if ("literal" in chunk) {
      value = skipLiteral(value, chunk.literal);
      continue;
    }
    const std = chunk.std;
    switch (std) {
      case "06": {
        if (value.length < 2 || !/^\d\d/.test(value)) fail("bad year");
        year = Number(value.slice(0, 2));
        year += year >= 69 ? 1900 : 2000;
        value = value.slice(2);
        break;
      }
      case "2006":
        if (value.length < 4 || !/^\d{4}/.test(value)) fail("bad year");
        year = Number(value.slice(0, 4));
        value = value.slice(4);
        break;
      case "January":
      case "Jan":
        [month, value] = lookup(MONTHS, value, std === "Jan" ? 3 : undefined);
        month++;
        break;
      case "Monday":
      case "Mon":
        [, value] = lookup(WEEKDAYS, value, std === "Mon" ? 3 : undefined);
        break;
      case "01":
      case "1":
        [month, value] = getNumber(value, std === "01");
        if (month <= 0 || month > 12) fail("month out of range");
        break;
      case "02":
      case "_2":
      case "2":
        if (std === "_2" && value[0] === " ") value = value.slice(1);
        [day, value] = getNumber(value, std === "02");
        break;
      case "002":
      case "__2":
        if (std === "__2") value = value.replace(/^ {1,2}/, "");
        [yearDay, value] = getNumber3(value, std === "002");
        if (yearDay < 1 || yearDay > 366) fail("day-of-year out of range");
        break;
      case "15":
        [hour, value] = getNumber(value, false);
        if (hour < 0 || hour >= 24) fail("hour out of range");
        break;
      case "03":
      case "3":
        [hour, value] = getNumber(value, std === "03");
        if (hour < 0 || hour > 12) fail("hour out of range");
        break;
      case "04":
      case "4":
        [minute, value] = getNumber(value, std === "04");
        if (minute < 0 || minute >= 60) fail("minute out of range");
        break;
      case "05":
      case "5": {
        [second, value] = getNumber(value, std === "05");
        if (second < 0 || second >= 60) fail("second out of range");
        // A fractional second the layout does not spell out is read anyway, unless one follows.
        const next = chunks[index + 1];
        const fractionNext = next && "std" in next && next.std.startsWith("frac");
        if (
          value.length >= 2 &&
          (value[0] === "." || value[0] === ",") &&
          isDigit(value, 1) &&
          !fractionNext
        ) {
          let n = 2;
          while (n < value.length && isDigit(value, n)) n++;
          nanosecond = nanoseconds(value, n);
          value = value.slice(n);
        }
        break;
      }
      case "PM":
      case "pm": {
        if (value.length < 2) fail("bad AM/PM");
        const p = value.slice(0, 2);
        value = value.slice(2);
        if (p === (std === "PM" ? "PM" : "pm")) pm = true;
        else if (p === (std === "PM" ? "AM" : "am")) am = true;
        else fail("bad AM/PM");
        break;
      }
      case "MST": {
        if (value.startsWith("UTC")) {
          offset = 0;
          value = value.slice(3);
          break;
        }
        const n = zoneAbbreviationLength(value);
        if (n === 0) fail("bad time zone");
        value = value.slice(n);
        break;
      }
      case "frac0": {
        const length = 1 + (chunk.digits ?? 0);
        if (value.length < length) fail("bad fractional second");
        nanosecond = nanoseconds(value, length);
        value = value.slice(length);
        break;
      }
      case "frac9": {
        if (value.length < 2 || (value[0] !== "." && value[0] !== ",") || !isDigit(value, 1)) break;
        let i = 0;
        while (i + 1 < value.length && isDigit(value, i + 1)) i++;
        nanosecond = nanoseconds(value, 1 + i);
        value = value.slice(1 + i);
        break;
      }
      default: {
        if (std.startsWith("Z") && value[0] === "Z") {
          offset = 0;
          value = value.slice(1);
          break;
        }
        const shape = std.slice(1);
        const colon = shape.includes(":");
        const pattern =
          shape === "07"
            ? /^([+-])(\d\d)/
            : shape === "0700"
              ? /^([+-])(\d\d)(\d\d)/
              : shape === "07:00"
                ? /^([+-])(\d\d):(\d\d)/
                : colon
                  ? /^([+-])(\d\d):(\d\d):(\d\d)/
                  : /^([+-])(\d\d)(\d\d)(\d\d)/;
        const m = pattern.exec(value);
        if (!m) fail("bad time zone offset");
        const hh = Number(m[2]);
        const mm = Number(m[3] ?? 0);
        const ss = Number(m[4] ?? 0);
        if (hh > 24 || mm > 60 || ss > 60) fail("time zone offset out of range");
        offset = (m[1] === "-" ? -1 : 1) * (hh * 3600 + mm * 60 + ss);
        value = value.slice(m[0].length);
      }
    }
  }
  if (value.length > 0) fail(`extra text: ${value}`);
  if (pm && hour < 12) hour += 12;
  else if (am && hour === 12) hour = 0;
  if (yearDay >= 0) {
    const leap = daysIn(2, year) === 29;
    if (yearDay > (leap ? 366 : 365)) fail("day-of-year out of range");
    let d = yearDay;
    let m = 1;
    while (d > daysIn(m, year)) {
      d -= daysIn(m, year);
      m++;
    }
    if ((month >= 0 && month !== m) || (day >= 0 && day !== d)) fail("day-of-year does not match");
    month = m;
    day = d;
  } else {
    if (month < 0) month = 1;
    if (day < 0) day = 1;
  }
  if (day < 1 || day > daysIn(month, year)) fail("day out of range");
  // A zone abbreviation (EST, GMT+3) names no offset Go trusts: it keeps the wall clock read as UTC.
  return { year, month, day, hour, minute, second, nanosecond, offset };
}
