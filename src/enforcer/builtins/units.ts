/**
 * units.parse and units.parse_bytes as OPA's v1/topdown/parse_units.go and parse_bytes.go: exact rational
 * arithmetic (integers come back with every digit), suffixes as OPA spells them.
 */
import type { Builtin } from "./types.ts";
import { bigintResult, fail, stringOperand } from "./values.ts";

const K = 1000n;
const KI = 1024n;

const UNITS: Record<string, [bigint, bigint]> = {
  "": [1n, 1n],
  m: [1n, 1000n],
  k: [K, 1n],
  K: [K, 1n],
  ki: [KI, 1n],
  Ki: [KI, 1n],
  M: [K ** 2n, 1n],
  mi: [KI ** 2n, 1n],
  Mi: [KI ** 2n, 1n],
  g: [K ** 3n, 1n],
  G: [K ** 3n, 1n],
  gi: [KI ** 3n, 1n],
  Gi: [KI ** 3n, 1n],
  t: [K ** 4n, 1n],
  T: [K ** 4n, 1n],
  ti: [KI ** 4n, 1n],
  Ti: [KI ** 4n, 1n],
  p: [K ** 5n, 1n],
  P: [K ** 5n, 1n],
  pi: [KI ** 5n, 1n],
  Pi: [KI ** 5n, 1n],
  e: [K ** 6n, 1n],
  E: [K ** 6n, 1n],
  ei: [KI ** 6n, 1n],
  Ei: [KI ** 6n, 1n],
};

const BYTE_UNITS: Record<string, bigint> = {
  "": 1n,
  kb: K,
  k: K,
  kib: KI,
  ki: KI,
  mb: K ** 2n,
  m: K ** 2n,
  mib: KI ** 2n,
  mi: KI ** 2n,
  gb: K ** 3n,
  g: K ** 3n,
  gib: KI ** 3n,
  gi: KI ** 3n,
  tb: K ** 4n,
  t: K ** 4n,
  tib: KI ** 4n,
  ti: KI ** 4n,
  pb: K ** 5n,
  p: K ** 5n,
  pib: KI ** 5n,
  pi: KI ** 5n,
  eb: K ** 6n,
  e: K ** 6n,
  eib: KI ** 6n,
  ei: KI ** 6n,
};

/** OPA's extractNumAndUnit: the leading decimal (sign, digits, dots, exponent), and the rest. */
function split(text: string): [string, string] {
  const match = /^[+-]?[\p{Nd}.]*(?:[eE][+-]?\d+)?/u.exec(text);
  const number = match ? match[0] : "";
  return [number, text.slice(number.length)];
}

/** big.Rat's SetString for a decimal: numerator and (positive) denominator. */
function rational(text: string): [bigint, bigint] {
  const match = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (!match || (match[2] === "" && (match[3] ?? "") === "")) fail("could not parse amount to a number");
  const fraction = match[3] ?? "";
  const exponent = Number(match[4] ?? 0) - fraction.length;
  if (Math.abs(exponent) > 10_000) fail("could not parse amount to a number");
  let numerator = BigInt(`${match[2]}${fraction}` || "0");
  if (match[1] === "-") numerator = -numerator;
  return exponent >= 0 ? [numerator * 10n ** BigInt(exponent), 1n] : [numerator, 10n ** BigInt(-exponent)];
}

function prepare(value: unknown): [string, string] {
  const text = stringOperand(value, 1).replaceAll('"', "");
  if (text.includes(" ")) fail("spaces not allowed in resource strings");
  const [number, unit] = split(text);
  if (number === "") fail("no amount provided");
  return [number, unit];
}

function parseUnits(value: unknown): unknown {
  const [number, rawUnit] = prepare(value);
  const unit = rawUnit.length > 1 ? rawUnit[0] + rawUnit.slice(1).toLowerCase() : rawUnit;
  const factor = UNITS[unit];
  if (!factor) fail(`unit ${unit} not recognized`);
  const [n, d] = rational(number);
  const numerator = n * factor[0];
  const denominator = d * factor[1];
  if (numerator % denominator === 0n) return bigintResult(numerator / denominator);
  return Number(numerator) / Number(denominator);
}

function parseBytes(value: unknown): unknown {
  const [number, rawUnit] = prepare(typeof value === "string" ? value.toLowerCase() : value);
  const factor = BYTE_UNITS[rawUnit];
  if (factor === undefined) fail(`byte unit ${rawUnit} not recognized`);
  const [n, d] = rational(number);
  return bigintResult((n * factor) / d);
}

export const unitBuiltins: Record<string, Builtin> = {
  "units.parse": parseUnits,
  "units.parse_bytes": parseBytes,
};
