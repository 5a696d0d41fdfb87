import path from "node:path";
import { FailureError } from "../errors.ts";
import { type BuildArgs, type Opa, opaBuild } from "../opa/commands.ts";
import { type BundleLimits, readBundle } from "./read.ts";

/** Where a built-in is called: a policy file in the repository and its line. */
export interface BuiltinCall {
  name: string;
  file: string;
  row: number;
}

/** At most this many call sites per built-in in a message: one is enough to find the rule. */
const SITES_SHOWN = 3;

/**
 * Refuses a compiled policy.wasm that needs a built-in the embedded engine lacks, naming each with the
 * file:line of its calls. The names come from the module itself (its `builtins` export: what the engine
 * will be asked for); the lines from OPA's plan for the same sources and entrypoints, whose CallStmts carry
 * the location of the Rego call (https://www.openpolicyagent.org/docs/ir).
 */
export async function assertWasmBuiltins(
  wasm: Buffer,
  options: { opa: Opa; build: BuildArgs; policies: string; limits: BundleLimits },
): Promise<void> {
  // The enforcer's own list and reader: what the build accepts is exactly what the engine will load.
  const { readHostBuiltins, shownBuiltin, unimplementedBuiltins, unimplementedHint } = await import(
    "../enforcer/builtin-check.ts"
  );
  const missing = unimplementedBuiltins(await readHostBuiltins(wasm));
  if (missing.length === 0) return;
  const calls = await planCalls(missing, options);
  const named = missing.map((name) => {
    const sites = calls.filter((call) => call.name === name).map((call) => `${call.file}:${call.row}`);
    const shown = sites.slice(0, SITES_SHOWN).join(", ") + (sites.length > SITES_SHOWN ? ", …" : "");
    return sites.length > 0 ? `${shownBuiltin(name)} (${shown})` : shownBuiltin(name);
  });
  throw new FailureError(
    `the wasm bundle needs built-ins the embedded engine does not implement: ${named.join(", ")}`,
    unimplementedHint(missing),
    { unimplementedBuiltins: missing, calls },
  );
}

interface PlanStatement {
  type?: unknown;
  stmt?: { func?: unknown; file?: unknown; row?: unknown };
}

/** The plan's calls of the named built-ins, in the repository's file names. Empty if the plan cannot be had. */
async function planCalls(
  names: string[],
  options: { opa: Opa; build: BuildArgs; policies: string; limits: BundleLimits },
): Promise<BuiltinCall[]> {
  const output = options.build.output.replace(/\.tar\.gz$/, ".plan.tar.gz");
  const { rm } = await import("node:fs/promises");
  try {
    const result = await opaBuild(options.opa, {
      ...options.build,
      output,
      target: "plan",
      // The plan is read, never shipped: no signature.
      signingKey: undefined,
      claimsFile: undefined,
    });
    if (result.exitCode !== 0) return [];
    const plan = (await readBundle(output, ["plan.json"], options.limits)).kept.get("plan.json");
    return plan ? callsIn(JSON.parse(plan.toString("utf8")), new Set(names), options.policies) : [];
  } catch {
    // The names alone still refuse the bundle; the lines are a courtesy.
    return [];
  } finally {
    await rm(output, { force: true });
  }
}

function callsIn(plan: unknown, names: Set<string>, policies: string): BuiltinCall[] {
  const files = (plan as { static?: { files?: { value?: unknown }[] } }).static?.files ?? [];
  const seen = new Set<string>();
  const calls: BuiltinCall[] = [];
  // Plans nest blocks in statements in blocks; a stack, not recursion, so depth costs nothing.
  const stack: unknown[] = [(plan as { plans?: unknown }).plans, (plan as { funcs?: unknown }).funcs];
  while (stack.length > 0) {
    const node = stack.pop();
    if (Array.isArray(node)) {
      stack.push(...node);
      continue;
    }
    if (typeof node !== "object" || node === null) continue;
    const { type, stmt } = node as PlanStatement;
    if (type === "CallStmt" && typeof stmt?.func === "string" && names.has(stmt.func)) {
      const file = typeof stmt.file === "number" ? files[stmt.file]?.value : undefined;
      const row = typeof stmt.row === "number" ? stmt.row : 0;
      if (typeof file === "string" && row > 0) {
        const shown = path.join(policies, file.replace(/^\/+/, ""));
        const key = `${stmt.func}\0${shown}\0${row}`;
        if (!seen.has(key)) {
          seen.add(key);
          calls.push({ name: stmt.func, file: shown, row });
        }
      }
    }
    for (const value of Object.values(node)) if (typeof value === "object") stack.push(value);
  }
  return calls.sort((a, b) => a.file.localeCompare(b.file) || a.row - b.row);
}
