import { describe, expect, it } from "vitest";
import { unimplementedBuiltins, unimplementedHint } from "../../src/enforcer/builtin-check.ts";
import { NATIVE_IN_WASM, REFUSED_BUILTINS, SDK_BUILTINS } from "../../src/enforcer/builtins/catalog.ts";
import { implementedBuiltins } from "../../src/enforcer/builtins/index.ts";

describe("the built-ins the embedded engine implements", () => {
  it("holds the compiled-in and opa-wasm built-ins, and none of the refused ones", () => {
    const implemented = implementedBuiltins();
    for (const name of [...NATIVE_IN_WASM, ...SDK_BUILTINS].filter(
      (name) => !Object.hasOwn(REFUSED_BUILTINS, name),
    ))
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
