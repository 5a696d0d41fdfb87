import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Opa } from "../opa/commands.ts";
import { childEnvironment } from "../opa/environment.ts";
import { isExactNumber } from "./null-prototype-json.ts";

/**
 * The parts of `input` a set of policies can read, as a tree of static keys: `true` keeps the whole value
 * below that key. `true` at the top keeps the whole input (nothing could be proven unread).
 */
export type InputReads = true | { readonly [key: string]: InputReads };

/** Nothing is read: every input projects to the same value. */
export function noReads(): InputReads {
  return Object.create(null);
}

/** Adds one read path (static keys from input down) to a tree; an empty path keeps everything. */
function addRead(tree: InputReads, keys: readonly string[]): InputReads {
  if (tree === true || keys.length === 0) return true;
  const copy: Record<string, InputReads> = Object.assign(Object.create(null), tree);
  const [first, ...rest] = keys as [string, ...string[]];
  copy[first] = addRead(Object.hasOwn(copy, first) ? (copy[first] as InputReads) : noReads(), rest);
  return copy;
}

/** What either tree reads. */
export function mergeReads(a: InputReads, b: InputReads): InputReads {
  if (a === true || b === true) return true;
  const out: Record<string, InputReads> = Object.assign(Object.create(null), a);
  for (const [key, below] of Object.entries(b)) {
    out[key] = Object.hasOwn(out, key) ? mergeReads(out[key] as InputReads, below) : below;
  }
  return out;
}

type Node = { type?: unknown; value?: unknown };

function isInputVar(node: unknown): boolean {
  return (
    typeof node === "object" &&
    node !== null &&
    (node as Node).type === "var" &&
    (node as Node).value === "input"
  );
}

/**
 * The reads of one module, from `opa parse --format json` (OPA's own AST). Conservative: every reference
 * that starts at `input` keeps the subtree at its longest static prefix (`input.a[k].b` keeps `input.a`,
 * `input.a[0]` keeps `input.a`), so a reference passed whole to a function, walked or iterated keeps all of
 * it; `input` alone, or the name `input` anywhere but at the head of a reference, keeps everything. Imports
 * (`import input.x as y`) are references like any other; a `with` target is written, not read (what is
 * read under it is a reference of its own).
 */
export function readsOfModule(ast: unknown): InputReads {
  let reads = noReads();
  const visit = (node: unknown): void => {
    if (reads === true || typeof node !== "object" || node === null) return;
    if (Array.isArray(node)) {
      for (const item of node) visit(item);
      return;
    }
    const { type, value } = node as Node;
    const target = (node as { target?: Node }).target;
    if (Object.hasOwn(node, "target") && target?.type === "ref" && Array.isArray(target.value)) {
      // A `with` target is replaced, not read: `with input as x` reads nothing of the recorded input.
      // Its other parts (a dynamic key, the value) are visited like any term.
      const [head, ...rest] = target.value as unknown[];
      if (!isInputVar(head)) visit(head);
      visit(rest);
      for (const key of Object.keys(node))
        if (key !== "target") visit((node as Record<string, unknown>)[key]);
      return;
    }
    if (type === "ref" && Array.isArray(value) && isInputVar(value[0])) {
      const keys: string[] = [];
      for (const term of value.slice(1)) {
        if (typeof term !== "object" || term === null || (term as Node).type !== "string") break;
        const key = (term as Node).value;
        if (typeof key !== "string") break;
        keys.push(key);
      }
      reads = addRead(reads, keys);
      for (const term of value.slice(1)) visit(term);
      return;
    }
    if (isInputVar(node)) {
      reads = true;
      return;
    }
    for (const key of Object.keys(node)) visit((node as Record<string, unknown>)[key]);
  };
  visit(ast);
  return reads;
}

/** Bytes of policy source read from one bundle to find its reads; past this the whole input is kept. */
const MAX_SOURCE_BYTES = 64 * 1024 * 1024;

/**
 * What the policies of a bundle (a .tar.gz as build writes it) can read of `input`, from opa's parser. Any
 * doubt keeps the whole input: a module opa cannot parse (in either Rego version), a bundle that cannot be
 * read, one without Rego source (a wasm-only bundle), or more source than MAX_SOURCE_BYTES.
 */
export async function readsOfBundle(opa: Opa, bundle: string): Promise<InputReads> {
  const modules = await regoModules(bundle).catch(() => undefined);
  if (!modules || modules.length === 0) return true;
  const dir = await mkdtemp(path.join(os.tmpdir(), "policyship-reads-"));
  try {
    let reads = noReads();
    for (const [i, source] of modules.entries()) {
      const file = path.join(dir, `${i}.rego`);
      await writeFile(file, source);
      const ast = (await parse(opa, file, [])) ?? (await parse(opa, file, ["--v0-compatible"]));
      if (ast === undefined) return true;
      reads = mergeReads(reads, readsOfModule(ast));
      if (reads === true) return true;
    }
    return reads;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function regoModules(bundle: string): Promise<Buffer[] | undefined> {
  const { t } = await import("tar");
  const modules: Buffer[] = [];
  let total = 0;
  let tooLarge = false;
  let wasm = false;
  await t({
    file: bundle,
    onReadEntry: (entry) => {
      if (entry.path.endsWith(".wasm")) wasm = true;
      if (!entry.path.endsWith(".rego")) {
        entry.resume();
        return;
      }
      const parts: Buffer[] = [];
      entry.on("data", (chunk: Buffer) => {
        total += chunk.length;
        if (total > MAX_SOURCE_BYTES) tooLarge = true;
        else parts.push(chunk);
      });
      entry.on("end", () => modules.push(Buffer.concat(parts)));
    },
  });
  return tooLarge || wasm ? undefined : modules;
}

function parse(opa: Opa, file: string, extra: string[]): Promise<unknown> {
  return new Promise((resolve) => {
    execFile(
      opa.path,
      ["parse", ...extra, "--format", "json", file],
      { env: childEnvironment(opa.env), maxBuffer: 512 * 1024 * 1024 },
      (error, stdout) => {
        if (error) return resolve(undefined);
        try {
          const ast = JSON.parse(stdout) as { errors?: unknown };
          resolve(ast.errors ? undefined : ast);
        } catch {
          resolve(undefined);
        }
      },
    );
  });
}

/**
 * The part of `input` the reads can see, with keys in the tree's order (so inputs that differ only in what
 * the policies cannot read, or in key order, project to the same value). A value that is not an object where
 * the tree goes deeper is kept whole: the policies see exactly what they saw before.
 */
export function projectInput(input: unknown, reads: InputReads): unknown {
  if (reads === true) return input;
  if (typeof input !== "object" || input === null || Array.isArray(input) || isExactNumber(input))
    return input;
  const out: Record<string, unknown> = Object.create(null);
  for (const key of Object.keys(reads)) {
    if (Object.hasOwn(input, key))
      out[key] = projectInput((input as Record<string, unknown>)[key], reads[key] as InputReads);
  }
  return out;
}
