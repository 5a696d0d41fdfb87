/**
 * The built-ins the embedded engine has without policyship's own implementations: those OPA compiles into
 * policy.wasm itself, and those opa-wasm implements in JavaScript. Only erasable TypeScript here: the worker
 * runs from source in tests.
 */

/**
 * Compiled into policy.wasm by `opa build --target wasm` (OPA 1.22): a module calls them as its own
 * functions and never lists them in its `builtins` export. Read off a module that calls every built-in of
 * `opa capabilities --current`: these are the ones its `builtins` export does not name.
 * https://www.openpolicyagent.org/docs/wasm#builtins
 */
// biome-ignore format: a long list reads better filled than one name per line
export const WASM_NATIVE_BUILTINS: readonly string[] = [
  "abs", "and", "array.concat", "array.flatten", "array.reverse", "array.slice", "base64.decode",
  "base64.encode", "base64.is_valid", "base64url.decode", "base64url.encode", "bits.and", "bits.lsh",
  "bits.negate", "bits.or", "bits.rsh", "bits.xor", "ceil", "concat", "contains", "count", "div",
  "endswith", "equal", "floor", "format_int", "glob.match", "graph.reachable", "gt", "gte", "indexof",
  "intersection", "is_array", "is_boolean", "is_null", "is_number", "is_object", "is_set", "is_string",
  "json.filter", "json.is_valid", "json.marshal", "json.remove", "json.unmarshal", "lower", "lt", "lte",
  "max", "min", "minus", "mul", "neq", "net.cidr_contains", "net.cidr_intersects", "numbers.range",
  "object.filter", "object.get", "object.keys", "object.remove", "object.union", "object.union_n", "or",
  "plus", "product", "regex.find_all_string_submatch_n", "regex.is_valid", "regex.match",
  "rego.metadata.chain", "rego.metadata.rule", "rem", "replace", "round", "sort", "split", "startswith",
  "strings.replace_n", "strings.reverse", "substring", "sum", "to_number", "trim", "trim_left",
  "trim_prefix", "trim_right", "trim_space", "trim_suffix", "type_name", "union", "upper", "walk",
];

/**
 * What @open-policy-agent/opa-wasm answers itself (its src/builtins): it looks these up before the custom
 * built-ins it is given, so they are always its own.
 */
export const OPA_WASM_BUILTINS: readonly string[] = [
  "json.is_valid",
  "regex.split",
  "sprintf",
  "yaml.is_valid",
  "yaml.marshal",
  "yaml.unmarshal",
];

/**
 * Built-ins the embedded engine refuses outright, whatever implements them, and why. Each would make an
 * embedded decision differ from OPA's for the same revision and input, or hand the policy what it must not
 * see: a bundle that needs one is refused at build and at start-up, never half-served.
 */
export const REFUSED_BUILTINS: Readonly<Record<string, string>> = Object.assign(Object.create(null), {
  "http.send":
    "opa-wasm calls built-ins synchronously, so a request would block the app's thread, and OPA's cache and TLS settings could not be matched",
  "net.lookup_ip_addr": "Node has no synchronous DNS lookup, and the app's resolver is not OPA's",
  "opa.runtime": "the app is no OPA runtime: its own config and environment, secrets included, would answer",
});
