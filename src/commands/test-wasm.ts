import { randomBytes } from "node:crypto";
import { rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { readBundle } from "../bundle/read.ts";
import type { Context } from "../context.ts";
import type { WasmTest, WasmTestOutcome } from "../enforcer/wasm-tests.ts";
import { FailureError, UserError } from "../errors.ts";
import { type Opa, type OpaTestCase, opaBuild } from "../opa/commands.ts";
import { bundleLimits } from "../settings-access.ts";
import { WASM_SUFFIX } from "../store/store.ts";

/**
 * A wasm bundle is tested twice, from the sources it was built from: by `opa test` (rego), and by the
 * embedded engine's own code on policy.wasm. `opa test` on the wasm bundle itself would not do: opa build
 * moves every rule it compiles out of the bundle's rego files, so OPA drops the tests that reach them.
 */

/** What `policyship test` treats as a wasm bundle: --target wasm, or a file named as build names one. */
export function isWasmBundle(context: Context, file: string): boolean {
  return context.settings.target === "wasm" || file.endsWith(`${WASM_SUFFIX}.tar.gz`);
}

export interface WasmSources {
  /** The policies directory the bundle was built from, as a directory bundle (as build reads it). */
  policiesDir: string;
  revision: string;
  /** The shipped module, its data, and the entrypoints its manifest names. */
  module: Buffer;
  data: Buffer;
  entrypoints: Set<string>;
}

/**
 * The shipped module and the sources it came from. Without `revision` (a bundle named on the command line,
 * or the one built for HEAD), the policies directory must be at the bundle's revision: its tree is checked
 * as build checks it, and the bundle's manifest must name the same revision.
 */
export async function wasmSources(context: Context, bundle: string, revision?: string): Promise<WasmSources> {
  const shown = path.relative(context.cwd, bundle) || bundle;
  const contents = await readBundle(bundle, ["policy.wasm", "data.json"], bundleLimits(context.settings));
  const module = contents.kept.get("policy.wasm");
  if (!module) {
    throw new UserError(
      `${shown} has no policy.wasm`,
      "build it with --target wasm --entrypoint <package/rule>, or test it without --target wasm",
    );
  }
  let sourcesRevision = revision;
  if (sourcesRevision === undefined) {
    const { resolveBuildRevision } = await import("../revision.ts");
    sourcesRevision = (await resolveBuildRevision(context)).revision;
  }
  if (contents.manifest.revision !== sourcesRevision) {
    throw new UserError(
      `${shown} was built at revision ${JSON.stringify(contents.manifest.revision)}, the policies are at ${sourcesRevision}`,
      "build it again (policyship build --target wasm), or check out the revision it was built from",
    );
  }
  return {
    policiesDir: path.resolve(context.cwd, context.settings.policies),
    revision: sourcesRevision,
    module,
    data: contents.kept.get("data.json") ?? Buffer.alloc(0),
    entrypoints: new Set((contents.manifest.wasm ?? []).map((entry) => entry.entrypoint)),
  };
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The wasm entrypoint of a test case (authz_test/test_admin), or why it cannot have one. */
function entrypointOf(test: OpaTestCase, names: Set<string>): { entrypoint: string } | { refused: string } {
  const segments = test.package.replace(/^data\./, "").split(".");
  const base = test.name.replace(/#\d+$/, "");
  const shown = `${test.package.replace(/^data\./, "")}.${base}`;
  // OPA's tester runs each definition of test_x on its own (test_x, test_x#01 …); wasm compiles one rule.
  if (test.name !== base || names.has(`${test.package}\0${base}#01`)) {
    return { refused: `${shown} is defined more than once; wasm compiles its definitions into one rule` };
  }
  if (!segments.every((segment) => IDENTIFIER.test(segment)) || !IDENTIFIER.test(test.name)) {
    return { refused: `${shown} is not a plain package and rule name, so it cannot be a wasm entrypoint` };
  }
  return { entrypoint: [...segments, test.name].join("/") };
}

/**
 * Evaluates every test rule with the embedded engine: on the shipped policy.wasm when it holds them all
 * (opa build compiles test rules as entrypoints of their own), otherwise on a policy.wasm compiled from the
 * same sources with the test rules as extra entrypoints.
 */
export async function testOnEmbeddedEngine(
  context: Context,
  options: { opa: Opa; sources: WasmSources; cases: OpaTestCase[] },
): Promise<Map<OpaTestCase, WasmTestOutcome>> {
  const runnable = options.cases.filter((test) => !test.skip);
  const names = new Set(runnable.map((test) => `${test.package}\0${test.name}`));
  const entrypoints = new Map<OpaTestCase, string>();
  const refused: string[] = [];
  for (const test of runnable) {
    const found = entrypointOf(test, names);
    if ("refused" in found) refused.push(found.refused);
    else entrypoints.set(test, found.entrypoint);
  }
  if (refused.length > 0) {
    throw new FailureError(
      `the tests cannot run on the embedded engine: ${[...new Set(refused)].slice(0, 3).join("; ")}`,
      "give each test rule its own plain name (test_<what it checks>)",
    );
  }
  const tests: WasmTest[] = [...entrypoints].map(([test, entrypoint]) => ({
    entrypoint,
    partialObject: test.sub_results !== undefined,
  }));
  const shipped = tests.every((test) => options.sources.entrypoints.has(test.entrypoint));
  const compiled = shipped
    ? { module: options.sources.module, data: options.sources.data }
    : await compileTests(context, options.opa, options.sources, tests);
  const { runWasmTests } = await import("../enforcer/wasm-tests.ts");
  const outcomes = await runWasmTests(compiled.module, compiled.data, tests);
  const byCase = new Map<OpaTestCase, WasmTestOutcome>();
  for (const [test, entrypoint] of entrypoints) {
    byCase.set(test, outcomes.get(entrypoint) ?? { pass: false, message: "not evaluated in wasm" });
  }
  return byCase;
}

/** `opa build --target wasm` of the sources with the shipped entrypoints and every test rule. */
async function compileTests(context: Context, opa: Opa, sources: WasmSources, tests: WasmTest[]) {
  const { settings } = context;
  const output = path.join(os.tmpdir(), `policyship-wasm-tests-${randomBytes(6).toString("hex")}.tar.gz`);
  try {
    const result = await opaBuild(opa, {
      policiesDir: sources.policiesDir,
      output,
      revision: sources.revision,
      optimize: settings.optimize,
      target: "wasm",
      entrypoints: [...new Set([...sources.entrypoints, ...tests.map((test) => test.entrypoint)])],
      v0Compatible: settings.v0Compatible,
      ignore: settings.ignore,
    });
    if (result.exitCode !== 0) {
      const detail = `${result.stdout}\n${result.stderr}`.trim().split("\n").slice(0, 3).join("; ");
      throw new FailureError(
        `opa could not compile the tests for wasm: ${detail}`,
        "the embedded engine can only run tests the wasm compiler accepts; rewrite the test",
      );
    }
    const contents = await readBundle(output, ["policy.wasm", "data.json"], bundleLimits(settings));
    return {
      module: contents.kept.get("policy.wasm") ?? Buffer.alloc(0),
      data: contents.kept.get("data.json") ?? Buffer.alloc(0),
    };
  } finally {
    await rm(output, { force: true });
  }
}

/** Each engine's outcome of one test: it fails unless it passes in both; the message shows both. */
export function bothOutcomes(
  regoPass: boolean,
  regoMessage: string,
  wasm: WasmTestOutcome | undefined,
): { message: string; rego: "pass" | "fail"; wasm: "pass" | "fail" } | undefined {
  const wasmPass = wasm?.pass === true;
  if (regoPass && wasmPass) return undefined;
  const wasmDetail = wasm && !wasm.pass ? ` (${wasm.message})` : "";
  const message = regoPass
    ? `passes in rego, fails in wasm${wasmDetail}`
    : `fails in rego: ${regoMessage}; ${wasmPass ? "passes in wasm" : `fails in wasm${wasmDetail}`}`;
  return { message, rego: regoPass ? "pass" : "fail", wasm: wasmPass ? "pass" : "fail" };
}
