/**
 * base64url.encode_no_pad, hex.* and urlquery.* as OPA's v1/topdown/encoding.go, with Go's net/url
 * escaping (QueryEscape, QueryUnescape, ParseQuery, Values.Encode).
 */
import type { Builtin } from "./types.ts";
import { bytesToString, fail, isObject, stringOperand } from "./values.ts";

const UNRESERVED = /[A-Za-z0-9\-_.~]/;

/** Go's url.QueryEscape. */
function queryEscape(text: string): string {
  let out = "";
  for (const byte of Buffer.from(text, "utf8")) {
    const c = String.fromCharCode(byte);
    if (byte < 0x80 && UNRESERVED.test(c)) out += c;
    else if (c === " ") out += "+";
    else out += `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** Go's url.QueryUnescape. */
function queryUnescape(text: string): string {
  const bytes: number[] = [];
  const source = Buffer.from(text, "utf8");
  for (let i = 0; i < source.length; i++) {
    const byte = source[i] as number;
    if (byte === 0x25) {
      const hex = source.subarray(i + 1, i + 3).toString("latin1");
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) fail(`invalid URL escape "%${hex}"`);
      bytes.push(Number.parseInt(hex, 16));
      i += 2;
    } else bytes.push(byte === 0x2b ? 0x20 : byte);
  }
  return bytesToString(Uint8Array.from(bytes));
}

function encodeObject(value: unknown): string {
  if (!isObject(value)) fail("operand 1 must be object");
  const pairs: string[] = [];
  for (const key of Object.keys(value).sort()) {
    const entry = value[key];
    const values = typeof entry === "string" ? [entry] : Array.isArray(entry) ? entry : undefined;
    if (!values) fail("values must be string, array[string], or set[string]");
    for (const v of values) {
      if (typeof v !== "string") fail("values must be string, array[string], or set[string]");
      pairs.push(`${queryEscape(key)}=${queryEscape(v)}`);
    }
  }
  return pairs.join("&");
}

function decodeObject(value: unknown): Record<string, string[]> {
  const out: Record<string, string[]> = Object.create(null);
  for (const part of stringOperand(value, 1).split("&")) {
    if (part.includes(";")) fail("invalid semicolon separator in query");
    if (part === "") continue;
    const at = part.indexOf("=");
    const key = queryUnescape(at < 0 ? part : part.slice(0, at));
    const v = queryUnescape(at < 0 ? "" : part.slice(at + 1));
    out[key] = [...(out[key] ?? []), v];
  }
  return out;
}

function hexDecode(value: unknown): string {
  const text = stringOperand(value, 1);
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(text)) fail("encoding/hex: invalid byte or odd length");
  return bytesToString(Buffer.from(text, "hex"));
}

export const encodingBuiltins: Record<string, Builtin> = {
  "base64url.encode_no_pad": (value) => Buffer.from(stringOperand(value, 1), "utf8").toString("base64url"),
  "hex.encode": (value) => Buffer.from(stringOperand(value, 1), "utf8").toString("hex"),
  "hex.decode": hexDecode,
  "urlquery.encode": (value) => queryEscape(stringOperand(value, 1)),
  "urlquery.decode": (value) => queryUnescape(stringOperand(value, 1)),
  "urlquery.encode_object": encodeObject,
  "urlquery.decode_object": decodeObject,
};
