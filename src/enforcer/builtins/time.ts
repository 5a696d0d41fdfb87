/**
 * time.* with Go's semantics, as OPA's v1/topdown/time.go calls them: nanoseconds since the epoch in and
 * out (exact, as JSON text), an optional [ns, zone, layout] argument, Go layouts, Go durations.
 * https://github.com/open-policy-agent/opa/blob/main/v1/topdown/time.go
 */
import { breakDown, instantOf, MAX_NS, MIN_NS, NS_PER_SECOND, UTC, type Zone, zoneNamed } from "./civil.ts";
import { evaluationTimeNs } from "./clock.ts";
import { formatTime, NAMED_LAYOUTS } from "./go-layout.ts";
import { parseTime } from "./go-layout-parse.ts";
import type { Builtin } from "./types.ts";
import { bigintResult, fail, intOperand, stringOperand } from "./values.ts";

/** OPA's tzTime: ns, or [ns], [ns, zone] or [ns, zone, layout]. */
function zonedTime(value: unknown): { ns: bigint; zone: Zone; layout: string } {
  let n: unknown = value;
  let zone = UTC;
  let layout = "";
  if (Array.isArray(value)) {
    if (value.length === 0) fail("operand 1 must be either number (ns) or [number (ns), string (tz)]");
    n = value[0];
    if (typeof n !== "number") fail("operand 1 must be number");
    if (value.length > 1) zone = zoneNamed(stringOperand(value[1], 1));
    if (value.length > 2) layout = stringOperand(value[2], 1);
  } else if (typeof value !== "number") {
    fail("operand 1 must be either number (ns) or [number (ns), string (tz)]");
  }
  const number = n as number;
  if (!Number.isInteger(number) || number < -(2 ** 63) || number >= 2 ** 63) fail("timestamp too big");
  return { ns: BigInt(number), zone, layout };
}

function safeNs(ns: bigint): ArrayBuffer {
  if (ns < MIN_NS || ns > MAX_NS) fail("time outside of valid range");
  return bigintResult(ns);
}

function parsedInstant(layout: string, value: string): ArrayBuffer {
  const parsed = parseTime(layout, value);
  const wall = instantOf(parsed, UTC);
  return safeNs(wall - BigInt(parsed.offset ?? 0) * NS_PER_SECOND);
}

const DURATION_UNITS: Record<string, bigint> = {
  ns: 1n,
  us: 1_000n,
  µs: 1_000n,
  μs: 1_000n,
  ms: 1_000_000n,
  s: NS_PER_SECOND,
  m: 60n * NS_PER_SECOND,
  h: 3600n * NS_PER_SECOND,
  // OPA's Go build accepts days, weeks and (365-day) years too.
  d: 86_400n * NS_PER_SECOND,
  w: 7n * 86_400n * NS_PER_SECOND,
  y: 365n * 86_400n * NS_PER_SECOND,
};

const MAX_U63 = 2n ** 63n;

/** Go's time.ParseDuration (with OPA's d, w and y), fraction arithmetic (a float64 multiply, truncated) included. */
export function parseDuration(text: string): bigint {
  let s = text;
  let negative = false;
  if (s[0] === "-" || s[0] === "+") {
    negative = s[0] === "-";
    s = s.slice(1);
  }
  if (s === "0") return 0n;
  if (s === "") fail(`invalid duration "${text}"`);
  let total = 0n;
  while (s !== "") {
    if (!(s[0] === "." || /\d/.test(s[0] as string))) fail(`invalid duration "${text}"`);
    const whole = /^\d*/.exec(s)?.[0] ?? "";
    let v = 0n;
    for (const digit of whole) {
      v = v * 10n + BigInt(digit);
      if (v > MAX_U63) fail(`invalid duration "${text}"`);
    }
    s = s.slice(whole.length);
    let fraction = 0n;
    let scale = 1;
    let hasFraction = false;
    if (s[0] === ".") {
      s = s.slice(1);
      const digits = /^\d*/.exec(s)?.[0] ?? "";
      let overflow = false;
      for (const digit of digits) {
        if (overflow) continue;
        if (fraction > MAX_U63 / 10n) {
          overflow = true;
          continue;
        }
        const next = fraction * 10n + BigInt(digit);
        if (next > MAX_U63) {
          overflow = true;
          continue;
        }
        fraction = next;
        scale *= 10;
      }
      hasFraction = digits.length > 0;
      s = s.slice(digits.length);
      if (whole === "" && !hasFraction) fail(`invalid duration "${text}"`);
    }
    const unitText = /^[^\d.]*/.exec(s)?.[0] ?? "";
    if (unitText === "") fail(`missing unit in duration "${text}"`);
    const unit = DURATION_UNITS[unitText];
    if (unit === undefined) fail(`unknown unit "${unitText}" in duration "${text}"`);
    s = s.slice(unitText.length);
    if (v > MAX_U63 / unit) fail(`invalid duration "${text}"`);
    v *= unit;
    if (fraction > 0n) {
      v += BigInt(Math.trunc(Number(fraction) * (Number(unit) / scale)));
      if (v > MAX_U63) fail(`invalid duration "${text}"`);
    }
    total += v;
    if (total > MAX_U63) fail(`invalid duration "${text}"`);
  }
  if (negative) return -total;
  if (total > MAX_U63 - 1n) fail(`invalid duration "${text}"`);
  return total;
}

function date(value: unknown): number[] {
  const t = breakDown(zonedTime(value).ns, zonedTime(value).zone);
  return [t.year, t.month, t.day];
}

function diff(a: unknown, b: unknown): number[] {
  const first = zonedTime(a);
  const second = zonedTime(b);
  let t1 = first.ns;
  let t2 = second.ns;
  if (t1 > t2) [t1, t2] = [t2, t1];
  const x = breakDown(t1, first.zone);
  const y = breakDown(t2, first.zone);
  let year = y.year - x.year;
  let month = y.month - x.month;
  let day = y.day - x.day;
  let hour = y.hour - x.hour;
  let minute = y.minute - x.minute;
  let second_ = y.second - x.second;
  if (second_ < 0) {
    second_ += 60;
    minute--;
  }
  if (minute < 0) {
    minute += 60;
    hour--;
  }
  if (hour < 0) {
    hour += 24;
    day--;
  }
  if (day < 0) {
    // Go: the day of time.Date(y1, M1, 32) tells the length of month M1.
    const overflow = breakDown(
      instantOf({ year: x.year, month: x.month, day: 32, hour: 0, minute: 0, second: 0, nanosecond: 0 }, UTC),
      UTC,
    );
    day += 32 - overflow.day;
    month--;
  }
  if (month < 0) {
    month += 12;
    year--;
  }
  return [year, month, day, hour, minute, second_];
}

export const timeBuiltins: Record<string, Builtin> = {
  "time.now_ns": () => bigintResult(evaluationTimeNs()),
  "time.parse_rfc3339_ns": (value) => parsedInstant(NAMED_LAYOUTS.RFC3339 as string, stringOperand(value, 1)),
  "time.parse_ns": (layout, value) => {
    const name = stringOperand(layout, 1);
    const text = stringOperand(value, 2);
    return parsedInstant(NAMED_LAYOUTS[name] ?? name, text);
  },
  "time.parse_duration_ns": (value) => bigintResult(parseDuration(stringOperand(value, 1))),
  "time.date": date,
  "time.clock": (value) => {
    const { ns, zone } = zonedTime(value);
    const t = breakDown(ns, zone);
    return [t.hour, t.minute, t.second];
  },
  "time.weekday": (value) => {
    const { ns, zone } = zonedTime(value);
    return ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"][
      breakDown(ns, zone).weekday
    ];
  },
  "time.add_date": (value, years, months, days) => {
    const { ns, zone } = zonedTime(value);
    const y = intOperand(years, 2);
    const m = intOperand(months, 3);
    const d = intOperand(days, 4);
    const t = breakDown(ns, zone);
    return safeNs(instantOf({ ...t, year: t.year + y, month: t.month + m, day: t.day + d }, zone));
  },
  "time.diff": diff,
  "time.format": (value) => {
    const { ns, zone, layout } = zonedTime(value);
    const chosen = layout === "" ? (NAMED_LAYOUTS.RFC3339Nano as string) : (NAMED_LAYOUTS[layout] ?? layout);
    return formatTime(breakDown(ns, zone), chosen);
  },
};
