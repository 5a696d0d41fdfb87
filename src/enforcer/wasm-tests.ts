/**
 * Evaluates a policy's test rules with the embedded engine's own code: opa-wasm with policyship's built-ins,
 * beginEvaluation() before each evaluation, results read as decisions are. `policyship test` runs this on a
 * policy.wasm compiled from the shipped sources with every test rule as an entrypoint, so a test that holds
 * in OPA but not in the app's engine fails the release.
 */
import { beginEvaluation, customBuiltins } from "./builtins/index.ts";
import { firstResult, messageOf } from "./wasm.ts";

export interface WasmTest {
  /** The test rule as a wasm entrypoint, e.g. authz_test/test_admin. */
  entrypoint: string;
  /** A partial-object test rule (test_x[name] …): every value in it must be true, as OPA's tester has it. */
  partialObject: boolean;
}

export type WasmTestOutcome = { pass: true } | { pass: false; message: string };

/** OPA's tester on a partial-object test: each leaf must be true; anything else fails (v1/tester subResults). */
function allTrue(value: unknown): boolean {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  // A null leaf passes there too (a nil value is a SubResult that did not fail).
  return Object.values(value).every((leaf) =>
    leaf === null ? true : typeof leaf === "boolean" ? leaf : typeof leaf === "object" && allTrue(leaf),
  );
}

function outcomeOf(resultSet: unknown, test: WasmTest): WasmTestOutcome {
  const { defined, result } = firstResult(resultSet);
  if (!defined) return { pass: false, message: "undefined in wasm" };
  if (test.partialObject ? allTrue(result) : result === true) return { pass: true };
  return { pass: false, message: `evaluated to ${JSON.stringify(result)?.slice(0, 200)} in wasm` };
}

/** Runs each test with no input (as `opa test` does) against the module's data; never throws for a test. */
export async function runWasmTests(
  wasm: Uint8Array,
  data: Uint8Array,
  tests: WasmTest[],
): Promise<Map<string, WasmTestOutcome>> {
  const { loadPolicy } = await import("@open-policy-agent/opa-wasm");
  const policy = await loadPolicy(new Uint8Array(wasm).buffer, undefined, customBuiltins);
  policy.setData(data.length > 0 ? new Uint8Array(data).buffer : {});
  const outcomes = new Map<string, WasmTestOutcome>();
  for (const test of tests) {
    try {
      beginEvaluation();
      outcomes.set(test.entrypoint, outcomeOf(policy.evaluate(undefined, test.entrypoint), test));
    } catch (error) {
      outcomes.set(test.entrypoint, { pass: false, message: `error in wasm: ${messageOf(error)}` });
    }
  }
  return outcomes;
}
