/**
 * The built-ins that OPA's wasm compilation leaves to the host, implemented for opa-wasm with OPA's
 * semantics. Both embedded paths (worker threads and in-thread) load the policy with these, and call
 * beginEvaluation() before each evaluation, so per-evaluation state (time.now_ns) is fixed for exactly one.
 * Only erasable TypeScript here: the worker runs from source in tests.
 */
import { NATIVE_IN_WASM, REFUSED_BUILTINS, SDK_BUILTINS } from "./catalog.ts";
import { resetClock } from "./clock.ts";
import { cryptoBuiltins } from "./crypto.ts";
import { encodingBuiltins } from "./encoding.ts";
import { jsonBuiltins } from "./json.ts";
import { jwtBuiltins } from "./jwt.ts";
import { miscBuiltins, resetUuids } from "./misc.ts";
import { regexBuiltins } from "./regex.ts";
import { stringBuiltins } from "./strings.ts";
import { timeBuiltins } from "./time.ts";
import type { Builtin } from "./types.ts";
import { unitBuiltins } from "./units.ts";
import { BuiltinHalt } from "./values.ts";

export type { Builtin } from "./types.ts";

const FAMILIES: Record<string, Builtin>[] = [
  jwtBuiltins,
  timeBuiltins,
  cryptoBuiltins,
  encodingBuiltins,
  stringBuiltins,
  unitBuiltins,
  miscBuiltins,
  regexBuiltins,
  jsonBuiltins,
];

/**
 * OPA evaluates without strict-builtin-errors by default (opa eval, /v1/data): a built-in that fails makes
 * its expression undefined rather than failing the query. opa-wasm reads an `undefined` result as exactly
 * that, so every failure of ours becomes one. Where OPA panics instead, the evaluation fails (BuiltinHalt).
 */
function undefinedOnError(implementation: Builtin): Builtin {
  return (...args) => {
    try {
      return implementation(...args);
    } catch (error) {
      if (error instanceof BuiltinHalt) throw error;
      return undefined;
    }
  };
}

/** name → implementation, in a null-prototype object so no inherited key can be called as a built-in. */
export const customBuiltins: Record<string, Builtin> = Object.create(null);
for (const family of FAMILIES) {
  for (const [name, implementation] of Object.entries(family)) {
    customBuiltins[name] = undefinedOnError(implementation);
  }
}

/** Resets the per-evaluation state of the built-ins; called once before each evaluation. */
export function beginEvaluation(): void {
  resetClock();
  resetUuids();
}

// Never one of REFUSED_BUILTINS, whatever implements it: the build and the engine's ready() refuse those.
const IMPLEMENTED: ReadonlySet<string> = new Set(
  [...NATIVE_IN_WASM, ...SDK_BUILTINS, ...Object.keys(customBuiltins)].filter(
    (name) => !Object.hasOwn(REFUSED_BUILTINS, name),
  ),
);

/**
 * The names of every built-in the embedded engine can run: compiled into policy.wasm, implemented by the
 * wasm SDK, or implemented here. A bundle whose policy.wasm imports a built-in outside this set would answer
 * 500 at the first call.
 */
export function implementedBuiltins(): ReadonlySet<string> {
  // A copy: no caller can widen what the next one is told.
  return new Set(IMPLEMENTED);
}
