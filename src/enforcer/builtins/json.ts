/**
 * json.marshal_with_options as OPA's v1/topdown/encoding.go: Go's encoding/json (keys sorted bytewise, <, >,
 * & and U+2028/U+2029 escaped), MarshalIndent when pretty, and the prefix before the first line too. With
 * `{}` for options it is byte for byte OPA's json.marshal, which policy.wasm's own json.marshal is not.
 */
import type { Builtin } from "./types.ts";
import { fail, isObject, objectOperand } from "./values.ts";

const GO_ESCAPES: Record<string, string> = {
  "<": "\\u003c",
  ">": "\\u003e",
  "&": "\\u0026",
  "\u2028": "\\u2028",
  "\u2029": "\\u2029",
};

function goString(text: string): string {
  return JSON.stringify(text).replace(/[<>&\u2028\u2029]/g, (c) => GO_ESCAPES[c] as string);
}

const byBytes = (a: string, b: string) => Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));

function marshal(value: unknown, prefix: string, indent: string | undefined, depth: number): string {
  if (value === null || typeof value === "boolean" || typeof value === "number") return JSON.stringify(value);
  if (typeof value === "string") return goString(value);
  const newline = (level: number) => (indent === undefined ? "" : `\n${prefix}${indent.repeat(level)}`);
  if (Array.isArray(value)) {
    if (value.length === 0) return "[]";
    const items = value.map((item) => `${newline(depth + 1)}${marshal(item, prefix, indent, depth + 1)}`);
    return `[${items.join(",")}${newline(depth)}]`;
  }
  if (isObject(value)) {
    const keys = Object.keys(value).sort(byBytes);
    if (keys.length === 0) return "{}";
    const colon = indent === undefined ? ":" : ": ";
    const items = keys.map(
      (key) =>
        `${newline(depth + 1)}${goString(key)}${colon}${marshal(value[key], prefix, indent, depth + 1)}`,
    );
    return `{${items.join(",")}${newline(depth)}}`;
  }
  fail("json: unsupported value");
}

function marshalWithOptions(value: unknown, options: unknown): string {
  let indent = "\t";
  let prefix = "";
  let implicitPretty = false;
  let explicitPretty: boolean | undefined;
  for (const [key, option] of Object.entries(objectOperand(options, 2))) {
    if (key === "prefix" || key === "indent") {
      if (typeof option !== "string") fail(`operand 2 key ${key} failed cast to string`);
      if (key === "prefix") prefix = option;
      else indent = option;
      implicitPretty = true;
    } else if (key === "pretty") {
      if (typeof option !== "boolean") fail(`operand 2 key ${key} failed cast to bool`);
      explicitPretty = option;
    } else fail(`operand 2 object contained unknown key ${key}`);
  }
  const pretty = explicitPretty ?? implicitPretty;
  return pretty ? `${prefix}${marshal(value, prefix, indent, 0)}` : marshal(value, "", undefined, 0);
}

export const jsonBuiltins: Record<string, Builtin> = {
  "json.marshal_with_options": marshalWithOptions,
};
