/** A built-in as opa-wasm calls it: the arguments as JSON values, the result as a JSON value (or JSON text). */
export type Builtin = (...args: unknown[]) => unknown;
