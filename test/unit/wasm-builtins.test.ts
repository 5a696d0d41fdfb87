import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { unimplementedBuiltins, unimplementedHint } from "../../src/enforcer/builtin-check.ts";
import { implementedBuiltins } from "../../src/enforcer/builtins/index.ts";
import {
  OPA_WASM_BUILTINS,
  REFUSED_BUILTINS,
  WASM_NATIVE_BUILTINS,
} from "../../src/enforcer/builtins/native.ts";

describe("the built-ins the embedded engine implements", () => {
  it("lists exactly the JavaScript built-ins opa-wasm answers itself", () => {
    const require = createRequire(import.meta.url);
    const entry = require.resolve("@open-policy-agent/opa-wasm");
    const own = require(entry.replace(/src\/index\.c?js$|dist\/.*$/, "src/builtins/index.js"));
    expect([...OPA_WASM_BUILTINS].sort()).toEqual(Object.keys(own).sort());
  });

  it("holds the compiled-in and opa-wasm built-ins, and none of the refused ones", () => {
    const implemented = implementedBuiltins();
    for (const name of [...WASM_NATIVE_BUILTINS, ...OPA_WASM_BUILTINS])
      expect(implemented.has(name)).toBe(true);
    for (const name of Object.keys(REFUSED_BUILTINS)) expect(implemented.has(name)).toBe(false);
    expect(Object.keys(REFUSED_BUILTINS).sort()).toEqual(["http.send", "net.lookup_ip_addr", "opa.runtime"]);
  });

  it("names what is missing, sorted and once, and says why each refused one is", () => {
    expect(unimplementedBuiltins(["sprintf", "opa.runtime", "http.send", "opa.runtime", "count"])).toEqual([
      "http.send",
      "opa.runtime",
    ]);
    const hint = unimplementedHint(["http.send", "no.such_builtin"]);
    expect(hint).toMatch(/^http\.send is refused \(opa-wasm calls built-ins synchronously/);
    expect(hint).toContain("no.such_builtin has no wasm implementation");
  });
});
