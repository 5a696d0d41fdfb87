import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { type BundleContents, type BundleLimits, readBundle } from "../bundle/read.ts";
import { BundleShapeError, depthPasses, keyIdOf, MAX_JSON_DEPTH, signaturesOf } from "../bundle/shape.ts";
import { FailureError } from "../errors.ts";
import type { Opa } from "../opa/commands.ts";
import { runOpa } from "../opa/run.ts";
import { assignOwn, type JsonObject, nullObject, objectAt, parseJson } from "../safe-json.ts";

export interface Changes {
  added: string[];
  removed: string[];
  changed: string[];
}

export interface BundleView {
  revision: string;
  manifest: Record<string, unknown>;
  /** Bundle path → sha256-free content for comparison. */
  files: Map<string, Buffer>;
  /** "package.rule" → its definitions, normalized (no locations), sorted. */
  rules: Map<string, string[]>;
  /** The merged data tree, as OPA loads it. */
  data: unknown;
  keyIds: string[];
}

interface Term {
  type: string;
  value: unknown;
}

/** Literal JSON text in canonicalJson's work list; parsed values are never instances of it. */
class JsonText {
  constructor(readonly text: string) {}
}

/**
 * JSON with sorted keys and without `location` keys, written with its own stack: opa parse writes a rule's
 * AST nested as deep as the policy's terms, past what a recursive copy or stringify survives.
 */
export function canonicalJson(value: unknown): string {
  const out: string[] = [];
  const pending: unknown[] = [value];
  while (pending.length > 0) {
    const item = pending.pop();
    if (item instanceof JsonText) {
      out.push(item.text);
      continue;
    }
    const parts: unknown[] = [];
    if (Array.isArray(item)) {
      parts.push(new JsonText("["));
      for (const [index, inner] of item.entries()) {
        if (index > 0) parts.push(new JsonText(","));
        parts.push(inner);
      }
      parts.push(new JsonText("]"));
    } else if (item !== null && typeof item === "object") {
      const record = item as Record<string, unknown>;
      const keys = Object.keys(record)
        .filter((key) => key !== "location")
        .sort();
      parts.push(new JsonText("{"));
      for (const [index, key] of keys.entries()) {
        parts.push(new JsonText(`${index > 0 ? "," : ""}${JSON.stringify(key)}:`), record[key]);
      }
      parts.push(new JsonText("}"));
    } else {
      out.push(JSON.stringify(item) ?? "null");
      continue;
    }
    for (let index = parts.length - 1; index >= 0; index--) pending.push(parts[index]);
  }
  return out.join("");
}

const refName = (terms: Term[]) => terms.map((term) => String(term.value)).join(".");

/** Every rule of every module, by "package.rule", with opa's own parser (`opa parse --format json`). */
async function rulesOf(
  opa: Opa,
  contents: BundleContents,
  regoVersion: number,
): Promise<Map<string, string[]>> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "policyship-diff-"));
  const rules = new Map<string, string[]>();
  try {
    for (const file of contents.files.filter((name) => name.endsWith(".rego"))) {
      const target = path.join(dir, "module.rego");
      await writeFile(target, contents.kept.get(file) ?? "");
      const args = ["parse", "--format", "json"];
      if (regoVersion === 0) args.push("--v0-compatible");
      const parsed = await runOpa(opa.path, [...args, target], { env: opa.env });
      if (parsed.exitCode !== 0) {
        throw new FailureError(
          `opa cannot parse ${file}: ${parsed.stderr.trim().split("\n")[0]}`,
          "rebuild the bundle",
        );
      }
      const module = parseJson(parsed.stdout) as {
        package: { path: Term[] };
        rules?: { head: { ref: Term[] } }[];
      };
      const pkg = refName(module.package.path.slice(1));
      for (const rule of module.rules ?? []) {
        const name = `${pkg}.${refName(rule.head.ref)}`;
        rules.set(name, [...(rules.get(name) ?? []), canonicalJson(rule)]);
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  for (const definitions of rules.values()) definitions.sort();
  return rules;
}

/**
 * data.json files merged by their directory, as OPA loads a bundle. The directories and the documents come
 * from the bundle, so `__proto__/data.json` must be the key `__proto__` of the tree: the tree and every
 * document are null-prototype objects (safe-json.ts says why rather than refusing the name).
 */
export function dataOf(contents: Pick<BundleContents, "files" | "kept">): unknown {
  const root = nullObject();
  for (const file of contents.files
    .filter((name) => name === "data.json" || name.endsWith("/data.json"))
    .sort()) {
    let value: unknown;
    try {
      value = parseJson((contents.kept.get(file) ?? Buffer.from("{}")).toString("utf8"));
    } catch {
      throw new BundleShapeError(`${file} is not valid JSON`);
    }
    if (depthPasses(value)) throw new BundleShapeError(`${file} nests deeper than ${MAX_JSON_DEPTH} levels`);
    const segments = file.split("/").slice(0, -1);
    if (value !== null && typeof value === "object" && !Array.isArray(value)) {
      assignOwn(objectAt(root, segments), value as JsonObject);
    } else if (segments.length > 0) {
      // OPA puts any other value of a nested data.json at its path as it is.
      assignOwn(objectAt(root, segments.slice(0, -1)), { [segments.at(-1) as string]: value });
    }
  }
  return root;
}

/** The key ids in .signatures.json (the JWT payload's keyid, or the header's kid), each shape-checked. */
function keyIdsOf(contents: BundleContents): string[] {
  const text = contents.kept.get(".signatures.json");
  if (!text) return [];
  const ids = new Set<string>();
  signaturesOf(text.toString("utf8")).forEach((token, index) => {
    const id = keyIdOf(token, index);
    if (id !== undefined) ids.add(id);
  });
  return [...ids].sort();
}

/**
 * What diff compares of one bundle. Every field it reads is shape-checked first (readBundle, dataOf,
 * keyIdsOf); a bundle OPA would not load is refused, named as `label` (the argument it came from).
 */
export async function viewOf(
  opa: Opa,
  bundle: string,
  limits: BundleLimits,
  label = "the bundle",
): Promise<BundleView> {
  try {
    const contents = await readBundle(bundle, "all", limits);
    const manifest = contents.manifest as Record<string, unknown>;
    const data = dataOf(contents);
    const keyIds = keyIdsOf(contents);
    return {
      revision: typeof manifest.revision === "string" ? manifest.revision : "",
      manifest,
      files: new Map(contents.files.map((name) => [name, contents.kept.get(name) ?? Buffer.alloc(0)])),
      rules: await rulesOf(opa, contents, contents.manifest.rego_version ?? 1),
      data,
      keyIds,
    };
  } catch (error) {
    if (error instanceof BundleShapeError) throw new BundleShapeError(error.reason, label);
    throw error;
  }
}

export function compareKeys<T>(
  from: Map<string, T>,
  to: Map<string, T>,
  same: (a: T, b: T) => boolean,
): Changes {
  const changes: Changes = { added: [], removed: [], changed: [] };
  for (const [key, value] of to) {
    if (!from.has(key)) changes.added.push(key);
    else if (!same(from.get(key) as T, value)) changes.changed.push(key);
  }
  for (const key of from.keys()) if (!to.has(key)) changes.removed.push(key);
  for (const list of Object.values(changes)) list.sort();
  return changes;
}

const escapePointer = (key: string) => key.replaceAll("~", "~0").replaceAll("/", "~1");

/**
 * JSON Pointers of the leaves added, removed and changed between two data trees. A walk with its own stack:
 * data.json may nest as deep as OPA reads (MAX_JSON_DEPTH), past what recursion here would survive.
 */
export function compareData(from: unknown, to: unknown): Changes {
  const changes: Changes = { added: [], removed: [], changed: [] };
  const isTree = (value: unknown): value is Record<string, unknown> =>
    value !== null && typeof value === "object";
  const pending: [unknown, unknown, string][] = [[from, to, ""]];
  while (pending.length > 0) {
    const [a, b, pointer] = pending.pop() as [unknown, unknown, string];
    if (isTree(a) && isTree(b) && Array.isArray(a) === Array.isArray(b)) {
      for (const key of Object.keys(b)) {
        const inner = `${pointer}/${escapePointer(key)}`;
        if (!Object.hasOwn(a, key)) changes.added.push(inner);
        else pending.push([a[key], b[key], inner]);
      }
      for (const key of Object.keys(a))
        if (!Object.hasOwn(b, key)) changes.removed.push(`${pointer}/${escapePointer(key)}`);
    } else if (isTree(a) || isTree(b) || a !== b) {
      // Leaves are strings, numbers, booleans and null, equal exactly when ===; a tree against anything
      // else is a change. Nothing is serialized, so no depth reaches a recursive stringify.
      changes.changed.push(pointer || "/");
    }
  }
  for (const list of Object.values(changes)) list.sort();
  return changes;
}
