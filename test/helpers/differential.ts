import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { EmbeddedEngine } from "../../src/enforcer/embedded.ts";
import { toolPath } from "./tools.ts";

const run = promisify(execFile);

/** opa-wasm slows down as one evaluation's heap grows, so the embedded side decides a corpus in chunks. */
const CHUNK = 200;

function opaEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = Object.create(null);
  env.PATH = process.env.PATH ?? "/usr/bin:/bin";
  env.HOME = os.tmpdir();
  return env;
}

export interface Disagreement {
  index: number;
  input: unknown;
  opa: unknown;
  embedded: unknown;
}

/**
 * Built-in calls decided by the real OPA (`opa eval`, which like `opa run --server` evaluates without
 * strict built-in errors) and by the embedded engine on a wasm bundle that `opa build -t wasm` compiled from
 * the same policy. Each named call is a Rego expression of `c`, one case of its corpus; a corpus goes to opa
 * whole, in one process.
 */
export interface Differential {
  /** Per call name, the cases on which the two engines differ (a missing entry is an undefined call). */
  compare(corpus: Record<string, unknown[]>): Promise<Record<string, Disagreement[]>>;
  /** One corpus through both engines as is: each side's value, or the Error it failed with. */
  evaluateBoth(corpus: Record<string, unknown[]>): Promise<{ opa: unknown; embedded: unknown }>;
  /** Per call name, OPA's results by case index. */
  lastOpaResults(): Record<string, Record<string, unknown>>;
  close(): Promise<void>;
}

export function policyFor(calls: Record<string, string>): string {
  const names = Object.keys(calls);
  return [
    "package diff",
    "",
    ...names.map((name) => `${name} := {i: r | c := input.${name}[i]; r := ${calls[name]}}`),
    "",
    `results := {${names.map((name) => `"${name}": ${name}`).join(", ")}}`,
    "",
  ].join("\n");
}

export async function evaluateWithOpa(
  dir: string,
  policies: string,
  input: unknown,
  query: string,
  flags: string[] = [],
) {
  const inputFile = path.join(dir, "input.json");
  await writeFile(inputFile, JSON.stringify(input));
  const { stdout } = await run(
    toolPath("opa"),
    ["eval", ...flags, "--format", "json", "--input", inputFile, "--data", policies, query],
    { env: opaEnv(), maxBuffer: 256 * 1024 * 1024 },
  );
  const answer = JSON.parse(stdout) as { result?: { expressions: { value: unknown }[] }[] };
  return answer.result?.[0]?.expressions[0]?.value;
}

/** A policy directory compiled by `opa build -t wasm` and loaded by the embedded engine. */
export async function embeddedEngineFor(
  dir: string,
  files: Record<string, string>,
  entrypoint: string,
  inThread = true,
  flags: string[] = [],
) {
  const policies = path.join(dir, "policies");
  for (const [name, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(policies, name)), { recursive: true });
    await writeFile(path.join(policies, name), text);
  }
  const bundle = path.join(dir, "bundle.tar.gz");
  await run(toolPath("opa"), ["build", ...flags, "-t", "wasm", "-e", entrypoint, "-o", bundle, policies], {
    env: opaEnv(),
  }).catch((error: { stderr?: string; message: string; stdout?: string }) => {
    throw new Error(`opa build failed: ${error.stderr || error.stdout || error.message}`);
  });
  const engine = new EmbeddedEngine({ bundle, entrypoint, inThread, workers: 1 });
  await engine.ready();
  return { engine, policies };
}

/**
 * `files` are more policies beside the generated one (a call may be `data.x.allow with input as c`);
 * `v0Compatible` builds and evaluates them as policies written before OPA 1.0.
 */
export async function startDifferential(
  calls: Record<string, string>,
  options: { files?: Record<string, string>; v0Compatible?: boolean } = {},
): Promise<Differential> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "policyship-builtins-"));
  const flags = options.v0Compatible ? ["--v0-compatible"] : [];
  const files = { ...options.files, "diff.rego": policyFor(calls) };
  const { engine, policies } = await embeddedEngineFor(dir, files, "diff/results", true, flags);
  let last: Record<string, Record<string, unknown>> = {};
  const signal = new AbortController().signal;
  return {
    async compare(corpus) {
      const opa = ((await evaluateWithOpa(dir, policies, corpus, "data.diff.results", flags)) ??
        {}) as Record<string, Record<string, unknown>>;
      last = opa;
      const report: Record<string, Disagreement[]> = {};
      for (const [name, cases] of Object.entries(corpus)) {
        const embedded: Record<string, unknown> = {};
        for (let offset = 0; offset < cases.length; offset += CHUNK) {
          const evaluation = await engine.evaluate(
            JSON.stringify({ [name]: cases.slice(offset, offset + CHUNK) }),
            signal,
          );
          const chunk = (evaluation.result as Record<string, Record<string, unknown>>)[name] ?? {};
          for (const [index, value] of Object.entries(chunk))
            embedded[String(offset + Number(index))] = value;
        }
        const wrong = disagreements(cases, opa[name], embedded);
        if (wrong.length > 0) report[name] = wrong;
      }
      return report;
    },
    async evaluateBoth(corpus) {
      const settle = (promise: Promise<unknown>) => promise.catch((error: unknown) => error);
      const opa = await settle(evaluateWithOpa(dir, policies, corpus, "data.diff.results", flags));
      const embedded = await settle(
        engine.evaluate(JSON.stringify(corpus), signal).then((evaluation) => evaluation.result),
      );
      return { opa, embedded };
    },
    lastOpaResults: () => last,
    async close() {
      await engine.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The cases on which two `{case index: result}` objects differ. */
export function disagreements(cases: readonly unknown[], opa: unknown, embedded: unknown): Disagreement[] {
  const left = (opa ?? {}) as Record<string, unknown>;
  const right = (embedded ?? {}) as Record<string, unknown>;
  const out: Disagreement[] = [];
  cases.forEach((input, index) => {
    const a = left[String(index)];
    const b = right[String(index)];
    if (JSON.stringify(canonical(a)) !== JSON.stringify(canonical(b)))
      out.push({ index, input, opa: a, embedded: b });
  });
  return out;
}

/** Key order aside (json.marshal aside, no Rego value depends on it), the same JSON. */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((key) => [key, canonical((value as Record<string, unknown>)[key])]),
    );
  }
  return value;
}

/** A short report of the first disagreements per call, for a failing assertion. */
export function summarize(report: Record<string, Disagreement[]>, limit = 3): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, wrong] of Object.entries(report)) {
    out[name] = { count: wrong.length, first: wrong.slice(0, limit) };
  }
  return out;
}
