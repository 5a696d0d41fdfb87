import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Differential, startDifferential, summarize } from "../helpers/differential.ts";

const CALLS: Record<string, string> = {
  parse_rfc3339_ns: "time.parse_rfc3339_ns(c)",
  parse_ns: "time.parse_ns(c[0], c[1])",
  parse_duration_ns: "time.parse_duration_ns(c)",
  date: "time.date(c)",
  clock: "time.clock(c)",
  weekday: "time.weekday(c)",
  format: "time.format(c)",
  add_date: "time.add_date(c[0], c[1], c[2], c[3])",
  diff: "time.diff(c[0], c[1])",
  now: "time.now_ns()",
};

let engines: Differential;

beforeAll(async () => {
  engines = await startDifferential(CALLS);
}, 120_000);

afterAll(async () => {
  await engines?.close();
});

/**
 * Nanosecond timestamps whose JSON text is their exact value: opa-wasm hands built-ins their arguments
 * through JSON.parse, so a timestamp that is not a double (most of them past 2^53) loses its low digits.
 */
function exact(ns: number): boolean {
  return BigInt(JSON.stringify(ns)) === BigInt(ns);
}

const SECONDS = [
  0, -1, 1, 59, 86_399, 86_400, 951_782_400, 951_868_799, 1_700_000_000, 1_711_846_800, 1_711_846_799,
  1_730_000_000, 1_741_503_600, 1_800_000_000, -2_208_988_800, 4_102_444_800, 7_258_118_400, -6_000_000_000,
  9_000_000_000,
];
const NANOS = [0, 500_000_000, 123_000_000, 999_999_000, 1_024, 10_240_000];

function timestamps(): number[] {
  const out: number[] = [];
  for (const s of SECONDS) for (const n of NANOS) if (exact(s * 1e9 + n)) out.push(s * 1e9 + n);
  return out;
}

const ZONES = [
  "",
  "UTC",
  "Local",
  "America/New_York",
  "Europe/Berlin",
  "Asia/Kolkata",
  "Australia/Lord_Howe",
];
const BAD_ZONES = ["Nowhere/City", "america/new_york", 5];
const LAYOUTS = [
  "RFC3339",
  "RFC3339Nano",
  "RFC822Z",
  "RFC1123Z",
  "RubyDate",
  "ANSIC",
  "2006-01-02",
  "02/01/06 3:04:05 PM",
  "Monday, January 2 2006 15h04 .000 ,999",
  "2006-01-02T15:04:05.000000Z0700",
  "_2 __2 002 pm -07 -07:00:00 Z07:00:00 Z070000",
  "no tokens at all",
  "",
];

function zonedArguments(): unknown[] {
  const out: unknown[] = [];
  for (const ns of timestamps()) {
    out.push(ns);
    for (const zone of ZONES) out.push([ns, zone]);
  }
  const some = timestamps().slice(0, 30);
  for (const zone of BAD_ZONES) out.push([some[7], zone]);
  out.push([], [1.5], 1.5, "1700000000", null, [1e19], 1e19, [some[3], "UTC", 7]);
  return out;
}

function formatArguments(): unknown[] {
  const out: unknown[] = [...zonedArguments()];
  for (const ns of timestamps().filter((_, i) => i % 5 === 0)) {
    for (const zone of ["UTC", "America/New_York", "Asia/Kolkata", "Europe/Berlin", "Australia/Lord_Howe"]) {
      for (const layout of LAYOUTS) out.push([ns, zone, layout]);
    }
    // A zone abbreviation (layout "MST") comes from Intl, which matches tzdata for these zones since 2000
    // (not for every zone, nor for every past rule).
    for (const zone of ["America/New_York", "Asia/Kolkata", "Europe/Berlin"]) {
      if (ns >= 9e17) out.push([ns, zone, "UnixDate"], [ns, zone, "RFC1123"]);
    }
  }
  return out;
}

const RFC3339_VALUES = [
  "2026-12-01T12:00:00Z",
  "2026-12-01T12:00:00.123456789Z",
  "2026-12-01T12:00:00.1234567891Z",
  "2026-12-01T12:00:00,5Z",
  "2026-12-01T12:00:00+05:30",
  "2026-12-01T12:00:00-00:00",
  "2026-12-01T12:00:00+24:00",
  "2026-12-01T12:00:00+25:00",
  "2026-12-01t12:00:00z",
  "2026-12-01 12:00:00Z",
  "2024-02-29T00:00:00Z",
  "2023-02-29T00:00:00Z",
  "2026-13-01T00:00:00Z",
  "2026-12-32T00:00:00Z",
  "2026-12-01T24:00:00Z",
  "2026-12-01T23:60:00Z",
  "2026-12-01T23:59:60Z",
  "2026-1-01T00:00:00Z",
  "1677-09-21T00:12:43.145224192Z",
  "1677-09-21T00:12:43.145224191Z",
  "2262-04-11T23:47:16.854775807Z",
  "2262-04-11T23:47:16.854775808Z",
  "1600-01-01T00:00:00Z",
  "2026-12-01T12:00:00",
  "2026-12-01T12:00:00Z trailing",
  "",
  "garbage",
  7,
];

const PARSE_CASES: unknown[] = [
  ["2006-01-02", "2026-12-01"],
  ["2006-01-02", "2026-12-1"],
  ["2006-1-2", "2026-12-1"],
  ["02 Jan 06 15:04 MST", "01 Dec 26 12:00 EST"],
  ["02 Jan 06 15:04 MST", "01 Dec 26 12:00 UTC"],
  ["02 Jan 06 15:04 MST", "01 Dec 26 12:00 GMT+3"],
  ["02 Jan 06 15:04 MST", "01 Dec 26 12:00 XYZW"],
  ["RFC1123Z", "Tue, 01 Dec 2026 12:00:00 +0100"],
  ["RFC1123", "Tue, 01 Dec 2026 12:00:00 CET"],
  ["RFC850", "Tuesday, 01-Dec-26 12:00:00 UTC"],
  ["ANSIC", "Tue Dec  1 12:00:00 2026"],
  ["ANSIC", "Tue Dec 1 12:00:00 2026"],
  ["UnixDate", "Tue Dec  1 12:00:00 UTC 2026"],
  ["RubyDate", "Tue Dec 01 12:00:00 -0800 2026"],
  ["RFC3339Nano", "2026-12-01T12:00:00.5Z"],
  ["3:04PM", "3:04PM"],
  ["3:04PM", "12:04AM"],
  ["3:04pm", "12:04pm"],
  ["3:04PM", "13:04PM"],
  ["January 2, 2006", "december 1, 2026"],
  ["Jan 2 2006 15:04:05.000", "Dec 1 2026 12:00:00.12"],
  ["Jan 2 2006 15:04:05.000", "Dec 1 2026 12:00:00.123"],
  ["Jan 2 2006 15:04:05", "Dec 1 2026 12:00:00.987654321"],
  ["2006 002", "2024 060"],
  ["2006 002", "2023 366"],
  ["2006-01-02 -07", "2026-12-01 +05"],
  ["2006-01-02 -07:00:00", "2026-12-01 +05:30:15"],
  ["2006-01-02 Z07", "2026-12-01 Z"],
  ["2006-01-02  15", "2026-12-01 7"],
  ["06", "68"],
  ["06", "69"],
  ["15:04", "12:00"],
  ["", ""],
  ["2006", "x"],
  [1, "2026"],
];

const DURATIONS = [
  "0",
  "-0",
  "+0",
  "1h",
  "1h30m",
  "1.5h",
  "-1.5h",
  "300ms",
  "1us",
  "1µs",
  "1μs",
  "1ns",
  ".5s",
  "1.s",
  ".s",
  "2562047h47m16.854775807s",
  "2562047h47m16.854775808s",
  "-2562047h47m16.854775808s",
  "9223372036854775807ns",
  "9223372036854775808ns",
  "0.000000001s",
  "0.0000000001s",
  "1.0000000000000000001h",
  "12",
  "1d",
  "1.5d",
  "2w",
  "292y",
  "293y",
  "1D",
  "1mo",
  "",
  "h",
  "1h 2m",
  5,
];

function addDateCases(): unknown[] {
  const out: unknown[] = [];
  for (const base of [951_782_400e9, 1_706_659_200e9, 1_711_846_800e9, 1_730_000_000e9]) {
    for (const [y, m, d] of [
      [0, 0, 0],
      [0, 1, 0],
      [1, 0, 0],
      [0, 0, 1],
      [0, -1, -31],
      [0, 13, 0],
      [250, 0, 0],
      [-400, 0, 0],
    ]) {
      out.push([base, y, m, d], [[base, "America/New_York"], y, m, d]);
    }
  }
  out.push([1_700_000_000e9, 1.5, 0, 0], [1_700_000_000e9, "1", 0, 0]);
  return out;
}

function diffCases(): unknown[] {
  const ts = timestamps();
  const out: unknown[] = [];
  for (let i = 0; i < ts.length; i += 3) {
    for (let j = 1; j < ts.length; j += 7) {
      out.push([ts[i], ts[j]], [[ts[i], "Europe/Berlin"], ts[j]]);
    }
  }
  out.push([1, "x"], [[], 0]);
  return out;
}

describe("time.* in the embedded engine decide as OPA does", () => {
  it("agrees with opa eval on timestamps, zones, layouts, durations and boundaries", async () => {
    const zoned = zonedArguments();
    const corpus: Record<string, unknown[]> = {
      parse_rfc3339_ns: RFC3339_VALUES,
      parse_ns: [...PARSE_CASES, ...RFC3339_VALUES.map((v) => ["RFC3339", v])],
      parse_duration_ns: DURATIONS,
      date: zoned,
      clock: zoned,
      weekday: zoned,
      format: formatArguments(),
      add_date: addDateCases(),
      diff: diffCases(),
    };
    const report = await engines.compare(corpus);
    expect(summarize(report)).toEqual({});
    const opa = engines.lastOpaResults();
    for (const name of Object.keys(CALLS).filter((call) => call !== "now")) {
      const defined = Object.keys(opa[name] ?? {}).length;
      expect(defined, name).toBeGreaterThan(0);
      expect(defined, name).toBeLessThan(corpus[name]?.length ?? 0);
    }
  }, 120_000);

  it("reads the clock once per evaluation: every time.now_ns of one is the same, and it moves on", async () => {
    const calls = { now: Array.from({ length: 50 }, () => 0) };
    const first = (await engines.evaluateBoth(calls)).embedded as { now: Record<string, number> };
    await new Promise((resolve) => setTimeout(resolve, 5));
    const { opa, embedded } = await engines.evaluateBoth(calls);
    const values = Object.values((embedded as { now: Record<string, number> }).now);
    expect(values).toHaveLength(50);
    expect(new Set(values).size).toBe(1);
    expect(new Set(Object.values((opa as { now: Record<string, number> }).now)).size).toBe(1);
    expect(Math.abs((values[0] as number) / 1e6 - Date.now())).toBeLessThan(60_000);
    expect(values[0]).toBeGreaterThan(first.now["0"] as number);
  });
});
