import { createRequire } from "node:module";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { SDK_BUILTINS } from "../../src/enforcer/builtins/catalog.ts";
import { beginEvaluation, customBuiltins, implementedBuiltins } from "../../src/enforcer/builtins/index.ts";
import { repoRoot } from "../helpers/tools.ts";

const require = createRequire(import.meta.url);

function call(name: string, ...args: unknown[]): unknown {
  const implementation = customBuiltins[name];
  if (!implementation) throw new Error(`no built-in ${name}`);
  const result = implementation(...args);
  return result instanceof ArrayBuffer ? JSON.parse(new TextDecoder().decode(result)) : result;
}

const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");

describe("the embedded engine's built-in catalogue", () => {
  it("lists exactly what the wasm SDK implements in JavaScript", () => {
    const sdk = require(
      path.join(repoRoot, "node_modules/@open-policy-agent/opa-wasm/src/builtins/index.js"),
    );
    expect([...SDK_BUILTINS].sort()).toEqual(Object.keys(sdk).sort());
  });

  it("names native, SDK and host built-ins, and nothing the engine cannot run", () => {
    const names = implementedBuiltins();
    for (const name of [
      "count",
      "regex.match",
      "json.marshal",
      "sprintf",
      "yaml.unmarshal",
      "io.jwt.decode_verify",
    ]) {
      expect(names.has(name), name).toBe(true);
    }
    for (const name of [
      "time.now_ns",
      "crypto.sha256",
      "units.parse_bytes",
      ...Object.keys(customBuiltins),
    ]) {
      expect(names.has(name), name).toBe(true);
    }
    for (const name of ["http.send", "net.lookup_ip_addr", "opa.runtime", "rego.parse_module", "__proto__"]) {
      expect(names.has(name), name).toBe(false);
    }
  });

  it("hands out a copy, so no caller can widen it for the next", () => {
    (implementedBuiltins() as Set<string>).add("http.send");
    expect(implementedBuiltins().has("http.send")).toBe(false);
  });

  it("calls no inherited key as a built-in", () => {
    expect(Object.getPrototypeOf(customBuiltins)).toBeNull();
    for (const name of ["__proto__", "constructor", "toString", "hasOwnProperty"]) {
      expect(customBuiltins[name], name).toBeUndefined();
    }
  });
});

describe("host built-ins as opa-wasm calls them", () => {
  it("makes a failing call undefined, as OPA without strict built-in errors", () => {
    expect(call("io.jwt.decode", "not-a-token")).toBeUndefined();
    expect(call("crypto.sha256", 5)).toBeUndefined();
    expect(call("time.parse_duration_ns", "1x")).toBeUndefined();
  });

  it("fails the evaluation where OPA panics instead of deciding", () => {
    const token = `${b64({ alg: "HS256", cty: 7 })}.${b64({})}.`;
    expect(() => call("io.jwt.decode", token)).toThrow(/cty/);
  });

  it("keeps a token's __proto__ claim a plain key, never a prototype", () => {
    const token = `${Buffer.from('{"alg":"HS256"}').toString("base64url")}.${Buffer.from(
      '{"__proto__":{"admin":true},"sub":"x"}',
    ).toString("base64url")}.`;
    const [, payload] = call("io.jwt.decode", token) as [unknown, Record<string, unknown>];
    expect(Object.getPrototypeOf(payload)).toBeNull();
    expect(Object.hasOwn(payload, "__proto__")).toBe(true);
    expect(({} as Record<string, unknown>).admin).toBeUndefined();
    expect(JSON.parse(JSON.stringify(payload))).toEqual(JSON.parse('{"__proto__":{"admin":true},"sub":"x"}'));
  });

  it("returns nanoseconds past 2^53 exactly, as JSON text", () => {
    expect(
      new TextDecoder().decode(
        customBuiltins["time.parse_rfc3339_ns"]?.("2026-12-01T12:00:00.123456789Z") as ArrayBuffer,
      ),
    ).toBe("1796126400123456789");
  });

  it("fixes time.now_ns for one evaluation and reads the clock again for the next", async () => {
    beginEvaluation();
    const first = call("time.now_ns");
    await new Promise((resolve) => setTimeout(resolve, 3));
    expect(call("time.now_ns")).toBe(first);
    beginEvaluation();
    expect(call("time.now_ns") as number).toBeGreaterThan(first as number);
  });
});
