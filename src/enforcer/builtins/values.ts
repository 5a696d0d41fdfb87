/**
 * How a host built-in sees and returns Rego values through opa-wasm: arguments arrive JSON-parsed (sets as
 * arrays), a result goes back as a JSON value, `undefined` makes the call undefined, and an ArrayBuffer is
 * taken as JSON text (the only way to hand back an integer past 2^53 exactly).
 */

/** A built-in's own error: OPA (without strict-builtin-errors) turns it into an undefined call. */
export class BuiltinError extends Error {}

/**
 * Where OPA itself panics (a type assertion in its Go code), it answers no decision at all: `opa eval` dies,
 * the server drops the request. The embedded engine fails the evaluation instead of deciding.
 */
export class BuiltinHalt extends Error {}

export function halt(message: string): never {
  throw new BuiltinHalt(message);
}

export function fail(message: string): never {
  throw new BuiltinError(message);
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function stringOperand(value: unknown, position: number): string {
  if (typeof value !== "string") fail(`operand ${position} must be string`);
  return value;
}

export function numberOperand(value: unknown, position: number): number {
  if (typeof value !== "number") fail(`operand ${position} must be number`);
  return value;
}

export function objectOperand(value: unknown, position: number): Record<string, unknown> {
  if (!isObject(value)) fail(`operand ${position} must be object`);
  return value;
}

export function arrayOperand(value: unknown, position: number): unknown[] {
  if (!Array.isArray(value)) fail(`operand ${position} must be array or set`);
  return value;
}

/** An integer operand, as OPA's builtins.IntOperand: a number with no fraction. */
export function intOperand(value: unknown, position: number): number {
  const n = numberOperand(value, position);
  if (!Number.isInteger(n)) fail(`operand ${position} must be integer number but got floating-point number`);
  return n;
}

/** JSON text handed to opa-wasm as is, so bigints keep every digit. */
export function rawJson(text: string): ArrayBuffer {
  return new TextEncoder().encode(text).buffer as ArrayBuffer;
}

/** A bigint result, exact. */
export function bigintResult(value: bigint): ArrayBuffer {
  return rawJson(value.toString());
}

/** Builds a JSON text from a value whose bigints are written as exact integers. */
export function jsonWithBigints(value: unknown): ArrayBuffer {
  return rawJson(
    JSON.stringify(value, (_key, v) => (typeof v === "bigint" ? `\u0000${v.toString()}\u0000` : v)).replace(
      /"\\u0000(-?\d+)\\u0000"/g,
      "$1",
    ),
  );
}

const BASE64URL_QUANTA = /^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2}==|[A-Za-z0-9_-]{3}=)?$/;

/**
 * base64.url_decode as OPA does it: missing padding restored per RFC 7515 appendix C, then Go's padded URL
 * decoding (which skips CR and LF and tolerates non-zero trailing bits).
 */
export function decodeBase64Url(text: string): Buffer {
  let s = text;
  if (!s.endsWith("=")) {
    const rest = s.length % 4;
    if (rest === 1) fail(`illegal base64url string: ${s}`);
    if (rest === 2) s += "==";
    if (rest === 3) s += "=";
  }
  s = s.replace(/[\r\n]/g, "");
  if (!BASE64URL_QUANTA.test(s)) fail("illegal base64 data");
  return Buffer.from(s, "base64url");
}

/** The range of a UTF-8 sequence's second byte for each lead byte, as Go's utf8 accept ranges. */
function secondByteRange(lead: number): [number, number, number] | undefined {
  if (lead >= 0xc2 && lead <= 0xdf) return [2, 0x80, 0xbf];
  if (lead === 0xe0) return [3, 0xa0, 0xbf];
  if (lead === 0xed) return [3, 0x80, 0x9f];
  if (lead >= 0xe1 && lead <= 0xef) return [3, 0x80, 0xbf];
  if (lead === 0xf0) return [4, 0x90, 0xbf];
  if (lead >= 0xf1 && lead <= 0xf3) return [4, 0x80, 0xbf];
  if (lead === 0xf4) return [4, 0x80, 0x8f];
  return undefined;
}

/**
 * A Go string built from bytes, as OPA's JSON carries it: Go's encoding/json decodes rune by rune and writes
 * U+FFFD for each byte that starts no valid sequence (so a truncated "%E2%80" is two, where WHATWG's decoder,
 * Node's, writes one for the whole prefix).
 */
export function bytesToString(bytes: Uint8Array): string {
  const whole = Buffer.from(bytes).toString("utf8");
  if (!whole.includes("\ufffd")) return whole;
  let out = "";
  let i = 0;
  while (i < bytes.length) {
    const lead = bytes[i] as number;
    if (lead < 0x80) {
      out += String.fromCharCode(lead);
      i++;
      continue;
    }
    const range = secondByteRange(lead);
    let valid = range !== undefined && i + range[0] <= bytes.length;
    if (range && valid) {
      const second = bytes[i + 1] as number;
      valid = second >= range[1] && second <= range[2];
      for (let k = 2; valid && k < range[0]; k++) valid = ((bytes[i + k] as number) & 0xc0) === 0x80;
    }
    if (range && valid) {
      out += Buffer.from(bytes.subarray(i, i + range[0])).toString("utf8");
      i += range[0];
    } else {
      out += "\ufffd";
      i++;
    }
  }
  return out;
}

/**
 * json.unmarshal as OPA does it: one JSON value, nothing but whitespace after it. Objects come back with a
 * null prototype, so no key of an attacker's document can reach Object.prototype.
 */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text, (_key, value) =>
      isObject(value) ? Object.assign(Object.create(null), value) : value,
    );
  } catch (error) {
    fail(`invalid JSON: ${(error as Error).message}`);
  }
}
