/**
 * Which built-ins the embedded engine can run: those OPA 1.22.2 compiles into policy.wasm itself, those the
 * wasm SDK (@open-policy-agent/opa-wasm 1.10) implements in JavaScript, and ours (customBuiltins). A bundle
 * whose policy.wasm imports any other built-in cannot be decided by the embedded engine.
 */

/**
 * Compiled into policy.wasm (OPA's internal/compiler/wasm builtinsFunctions, and what the planner does
 * itself): found by compiling a policy that calls every built-in of `opa capabilities --current` and reading
 * the module's `builtins` export, which lists only what it leaves to the host.
 */
export const NATIVE_IN_WASM: readonly string[] = [
  "abs",
  "all",
  "and",
  "any",
  "array.concat",
  "array.flatten",
  "array.reverse",
  "array.slice",
  "assign",
  "base64.decode",
  "base64.encode",
  "base64.is_valid",
  "base64url.decode",
  "base64url.encode",
  "bits.and",
  "bits.lsh",
  "bits.negate",
  "bits.or",
  "bits.rsh",
  "bits.xor",
  "ceil",
  "concat",
  "contains",
  "count",
  "div",
  "endswith",
  "eq",
  "equal",
  "floor",
  "format_int",
  "glob.match",
  "graph.reachable",
  "gt",
  "gte",
  "indexof",
  "internal.member_2",
  "internal.member_3",
  "internal.template_string",
  "intersection",
  "is_array",
  "is_boolean",
  "is_null",
  "is_number",
  "is_object",
  "is_set",
  "is_string",
  "json.filter",
  "json.is_valid",
  "json.marshal",
  "json.remove",
  "json.unmarshal",
  "lower",
  "lt",
  "lte",
  "max",
  "min",
  "minus",
  "mul",
  "neq",
  "net.cidr_contains",
  "net.cidr_intersects",
  "net.cidr_overlap",
  "numbers.range",
  "object.filter",
  "object.get",
  "object.keys",
  "object.remove",
  "object.union",
  "object.union_n",
  "or",
  "plus",
  "product",
  "re_match",
  "regex.find_all_string_submatch_n",
  "regex.is_valid",
  "regex.match",
  "rego.metadata.chain",
  "rego.metadata.rule",
  "rem",
  "replace",
  "round",
  "sort",
  "split",
  "startswith",
  "strings.replace_n",
  "strings.reverse",
  "substring",
  "sum",
  "to_number",
  "trim",
  "trim_left",
  "trim_prefix",
  "trim_right",
  "trim_space",
  "trim_suffix",
  "type_name",
  "union",
  "upper",
  "walk",
];

/** What opa-wasm implements in JavaScript (src/builtins/*.js); opa-wasm prefers these over ours. */
export const SDK_BUILTINS: readonly string[] = [
  "json.is_valid",
  "sprintf",
  "regex.split",
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
