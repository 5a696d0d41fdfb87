/**
 * The built-ins that OPA's wasm compilation leaves to the host, implemented for opa-wasm with OPA's
 * semantics. Both embedded paths (worker threads and in-thread) load the policy with these, and call
 * beginEvaluation() before each evaluation, so per-evaluation state (time.now_ns) is fixed for exactly one.
 * Only erasable TypeScript here: the worker runs from source in tests.
 */
import { OPA_WASM_BUILTINS, REFUSED_BUILTINS, WASM_NATIVE_BUILTINS } from "./native.ts";

/** A built-in as opa-wasm calls it: the arguments as JSON values, the result as a JSON value. */
export type Builtin = (...args: unknown[]) => unknown;

/** name → implementation, in a null-prototype object so no inherited key can be called as a built-in. */
export const customBuiltins: Record<string, Builtin> = Object.create(null);

/** Resets the per-evaluation state of the built-ins; called once before each evaluation. */
export function beginEvaluation(): void {}

/**
 * Every built-in the embedded engine can evaluate: compiled into policy.wasm, answered by opa-wasm, or
 * implemented above; never one of REFUSED_BUILTINS, whatever implements it. The build and the engine's
 * ready() refuse a policy.wasm that needs any other.
 */
export function implementedBuiltins(): ReadonlySet<string> {
  const names = new Set([...WASM_NATIVE_BUILTINS, ...OPA_WASM_BUILTINS, ...Object.keys(customBuiltins)]);
  for (const refused of Object.keys(REFUSED_BUILTINS)) names.delete(refused);
  return names;
}
