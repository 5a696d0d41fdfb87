/**
 * Which built-ins a compiled policy.wasm needs from its host, and which of those the embedded engine lacks.
 * Shared by `policyship build --target wasm` (refuses the bundle before it ships) and the embedded engine's
 * ready() (refuses a bundle built elsewhere at start-up, not on the request that reaches the built-in).
 */
import type { LoadedPolicy } from "@open-policy-agent/opa-wasm";
import { REFUSED_BUILTINS } from "./builtins/catalog.ts";
import { implementedBuiltins } from "./builtins/index.ts";

/** The parts of a loaded module read here; opa-wasm's types name them with lib types this project lacks. */
interface PolicyInternals {
  mem: { buffer: ArrayBuffer };
  wasmInstance: { exports: { builtins(): number; opa_json_dump(address: number): number } };
}

/** Names longer than this are no built-in: cut in messages. */
const MAX_NAME_LENGTH = 100;

/**
 * The built-ins the module calls on its host: the keys of its `builtins` export, a JSON object mapping each
 * name to the id the module passes to opa_builtinN. Those OPA compiles into the module are never listed.
 * https://www.openpolicyagent.org/docs/wasm#exports
 */
export function hostBuiltinsOf(policy: LoadedPolicy): string[] {
  const { mem, wasmInstance } = policy as unknown as PolicyInternals;
  const address = wasmInstance.exports.opa_json_dump(wasmInstance.exports.builtins());
  const bytes = new Uint8Array(mem.buffer);
  let end = address;
  while (end < bytes.length && bytes[end] !== 0) end++;
  const parsed: unknown = JSON.parse(new TextDecoder().decode(bytes.subarray(address, end)));
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new Error("policy.wasm's builtins export is not a JSON object");
  }
  return Object.keys(parsed).sort();
}

/** Loads policy.wasm with opa-wasm (no built-ins of ours: nothing is evaluated) and reads its host built-ins. */
export async function readHostBuiltins(wasm: Uint8Array): Promise<string[]> {
  const { loadPolicy } = await import("@open-policy-agent/opa-wasm");
  return hostBuiltinsOf(await loadPolicy(new Uint8Array(wasm).buffer));
}

/** The names the embedded engine cannot evaluate, sorted. */
export function unimplementedBuiltins(names: Iterable<string>): string[] {
  const implemented = implementedBuiltins();
  return [...new Set(names)].filter((name) => !implemented.has(name)).sort();
}

/** A name as it goes into a one-line message. */
export function shownBuiltin(name: string): string {
  const printable = name.replace(/[^\x21-\x7e]/g, "?");
  return printable.length > MAX_NAME_LENGTH ? `${printable.slice(0, MAX_NAME_LENGTH)}…` : printable;
}

/** Why each missing built-in is missing, and what to do instead. */
export function unimplementedHint(missing: string[]): string {
  const refused = missing.filter((name) => Object.hasOwn(REFUSED_BUILTINS, name));
  const others = missing.filter((name) => !Object.hasOwn(REFUSED_BUILTINS, name));
  const clauses = refused.map((name) => `${name} is refused (${REFUSED_BUILTINS[name]})`);
  if (others.length > 0) {
    clauses.push(
      `${others.map(shownBuiltin).join(", ")} ${others.length === 1 ? "has" : "have"} no wasm implementation`,
    );
  }
  return `${clauses.join("; ")}: pass what the policy needs as input or data, or serve the rego bundle with OPA`;
}

/** ready()'s check: the message names every built-in the module needs and the engine lacks, or is undefined. */
export function checkLoadedPolicy(policy: LoadedPolicy): string | undefined {
  const missing = unimplementedBuiltins(hostBuiltinsOf(policy));
  if (missing.length === 0) return undefined;
  return `policy.wasm needs built-ins the embedded engine does not implement: ${missing.map(shownBuiltin).join(", ")} (${unimplementedHint(missing)})`;
}
