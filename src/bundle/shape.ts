/**
 * The shape OPA requires of what a bundle holds, checked after parsing and before any field is used.
 * OPA reads .manifest and .signatures.json into Go structs (bundle.Manifest, bundle.SignaturesConfig) and
 * refuses a value of the wrong type; a reader here that used it anyway would crash or see another bundle.
 * JSON null is accepted where Go leaves the field at its zero value.
 */
import { FailureError } from "../errors.ts";
import { tryParseJson } from "../safe-json.ts";

/**
 * encoding/json's nesting limit (maxNestingDepth in scanner.go): OPA fails to load a data.json that opens
 * more than 10,000 objects and arrays inside each other, so no reader here has to walk deeper.
 */
export const MAX_JSON_DEPTH = 10_000;

const HINT = "rebuild it with policyship build";

/** A bundle that opa would refuse to load. `reason` is kept so a caller can name the bundle it read. */
export class BundleShapeError extends FailureError {
  constructor(
    readonly reason: string,
    what = "the bundle",
  ) {
    super(`${what} is not a bundle OPA would load: ${reason}`, HINT);
  }
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);
const isAbsent = (value: unknown) => value === undefined || value === null;
const typeName = (value: unknown) => {
  if (value === null) return "null";
  const type = Array.isArray(value) ? "array" : typeof value;
  return `${/^[aeiou]/.test(type) ? "an" : "a"} ${type}`;
};

/** Refuses a parsed .manifest whose fields do not have the types of OPA's bundle.Manifest. */
export function assertManifestShape(manifest: Record<string, unknown>): void {
  const refuse = (field: string, wanted: string, value: unknown): never => {
    throw new BundleShapeError(`.manifest ${field} is ${typeName(value)}, not ${wanted}`);
  };
  const { revision, roots, rego_version, wasm, metadata } = manifest;
  if (!isAbsent(revision) && typeof revision !== "string") refuse("revision", "a string", revision);
  if (!isAbsent(roots)) {
    if (!Array.isArray(roots)) refuse("roots", "an array of strings", roots);
    for (const [index, root] of (roots as unknown[]).entries()) {
      if (typeof root !== "string") refuse(`roots[${index}]`, "a string", root);
    }
  }
  if (!isAbsent(rego_version) && !Number.isInteger(rego_version)) {
    refuse("rego_version", "an integer", rego_version);
  }
  if (!isAbsent(wasm)) {
    if (!Array.isArray(wasm)) refuse("wasm", "an array of objects", wasm);
    for (const [index, entry] of (wasm as unknown[]).entries()) {
      if (!isObject(entry)) refuse(`wasm[${index}]`, "an object", entry);
      for (const field of ["entrypoint", "module"]) {
        const value = (entry as Record<string, unknown>)[field];
        if (!isAbsent(value) && typeof value !== "string") {
          refuse(`wasm[${index}].${field}`, "a string", value);
        }
      }
    }
  }
  if (!isAbsent(metadata) && !isObject(metadata)) refuse("metadata", "an object", metadata);
  if (depthPasses(manifest))
    throw new BundleShapeError(`.manifest nests deeper than ${MAX_JSON_DEPTH} levels`);
}

/** The tokens of a .signatures.json, as OPA's SignaturesConfig reads it: `{"signatures": [string, …]}`. */
export function signaturesOf(text: string): string[] {
  const document = tryParseJson(text);
  if (document === undefined) throw new BundleShapeError(".signatures.json is not valid JSON");
  if (document === null) return [];
  if (!isObject(document))
    throw new BundleShapeError(`.signatures.json is ${typeName(document)}, not an object`);
  const { signatures } = document;
  if (isAbsent(signatures)) return [];
  if (!Array.isArray(signatures)) {
    throw new BundleShapeError(
      `.signatures.json signatures is ${typeName(signatures)}, not an array of strings`,
    );
  }
  for (const [index, token] of signatures.entries()) {
    if (typeof token !== "string") {
      throw new BundleShapeError(`.signatures.json signatures[${index}] is ${typeName(token)}, not a string`);
    }
  }
  return signatures as string[];
}

/**
 * The key id a signature names: its JWT payload's keyid, else its header's kid. A token whose header or
 * payload is not a JSON object, or whose key id is not a string, is one no verification would accept.
 */
export function keyIdOf(token: string, index: number): string | undefined {
  const parts = token.split(".");
  const where = `.signatures.json signatures[${index}]`;
  if (parts.length !== 3) throw new BundleShapeError(`${where} is not a JWT (${parts.length} parts, not 3)`);
  const decode = (part: string, name: string) => {
    const value = tryParseJson(Buffer.from(part, "base64url").toString("utf8"));
    if (!isObject(value))
      throw new BundleShapeError(`${where} is not a JWT: its ${name} is not a JSON object`);
    return value;
  };
  const header = decode(parts[0] as string, "header");
  const payload = decode(parts[1] as string, "payload");
  for (const [id, name] of [
    [payload.keyid, "payload's keyid"],
    [header.kid, "header's kid"],
  ] as const) {
    if (!isAbsent(id) && typeof id !== "string")
      throw new BundleShapeError(`${where}: its ${name} is not a string`);
  }
  const id = payload.keyid ?? header.kid;
  return typeof id === "string" ? id : undefined;
}

/**
 * How deep a parsed JSON value nests (each object and array is one level), counted without recursion and
 * stopping as soon as it passes `limit`.
 */
export function depthPasses(value: unknown, limit = MAX_JSON_DEPTH): boolean {
  const pending: [unknown, number][] = [[value, 0]];
  while (pending.length > 0) {
    const [node, depth] = pending.pop() as [unknown, number];
    if (typeof node !== "object" || node === null) continue;
    if (depth + 1 > limit) return true;
    for (const inner of Object.values(node)) {
      if (typeof inner === "object" && inner !== null) pending.push([inner, depth + 1]);
    }
  }
  return false;
}
