import { spawn } from "node:child_process";
import { UserError } from "../errors.ts";
import type { Opa } from "../opa/commands.ts";
import { childEnvironment } from "../opa/environment.ts";

export interface Replayed {
  defined: boolean;
  result: unknown;
  /** The evaluation failed for this input (e.g. conflicting rule outputs), as OPA's server answers 500. */
  error?: string;
}

/** data.<path> for a slash path, quoted segment by segment so any rule name works. */
export function dataRef(rulePath: string): string {
  const segments = rulePath
    .replace(/^\/+|\/+$/g, "")
    .split("/")
    .filter(Boolean);
  return `data${segments.map((segment) => `[${JSON.stringify(segment)}]`).join("")}`;
}

/** How every evaluation runs: with a capabilities file that lets no policy reach the network. */
export interface ReplayOptions {
  /** From opa/capabilities.ts: the recorded inputs are production requests, never to leave the runner. */
  capabilities: string;
}

/** Runs one `opa eval` with the batch as its input; each element is evaluated `with input as` itself. */
function evalBatch(
  opa: Opa,
  bundle: string,
  rulePath: string,
  batch: string,
  options: ReplayOptions,
): Promise<{ ok: true; values: Record<string, unknown> } | { ok: false; message: string }> {
  const query = `{i: r | some i; item := input.batch[i]; r := ${dataRef(rulePath)} with input as item}`;
  return new Promise((resolve, reject) => {
    const args = ["eval", "--capabilities", options.capabilities, "--bundle", bundle, "--stdin-input"];
    const child = spawn(opa.path, [...args, "--format", "json", query], {
      env: childEnvironment(opa.env),
      stdio: ["pipe", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (chunk: Buffer) => out.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => err.push(chunk));
    child.on("error", reject);
    // An opa that exits (or is stopped) before reading its whole batch closes the pipe: the write then
    // fails with EPIPE, which 'close' reports through the exit code or signal; unheard, it would crash.
    child.stdin.on("error", () => {});
    child.on("close", (code, signal) => {
      // A stopped opa (an interrupt, the OOM killer) decided nothing: not a failing batch to split and retry.
      if (signal) {
        reject(new Error(`opa eval was stopped by ${signal}`));
        return;
      }
      const text = Buffer.concat(out).toString("utf8");
      let parsed: {
        result?: { expressions?: { value?: Record<string, unknown> }[] }[];
        errors?: { message?: string }[];
      };
      try {
        parsed = JSON.parse(text);
      } catch {
        resolve({
          ok: false,
          message: Buffer.concat(err).toString("utf8").trim().split("\n")[0] || `opa eval exited ${code}`,
        });
        return;
      }
      if (code !== 0 || parsed.errors) {
        const first = (parsed.errors?.[0] ?? {}) as { message?: string; code?: string };
        // A compile error (rego_*) is the same for every input: splitting the batch cannot isolate it.
        if (first.code?.startsWith("rego_")) {
          reject(
            new UserError(
              `opa cannot evaluate ${rulePath} in ${bundle}: ${first.message}`,
              "check --path and the bundle",
            ),
          );
          return;
        }
        resolve({ ok: false, message: first.message ?? `opa eval exited ${code}` });
        return;
      }
      resolve({ ok: true, values: parsed.result?.[0]?.expressions?.[0]?.value ?? {} });
    });
    child.stdin.end(`{"batch":${batch}}`);
  });
}

/**
 * Evaluates every input against a bundle with the real opa (every built-in, OPA's own semantics), many
 * inputs per process. An evaluation error aborts a whole query, so a failing batch is split in halves
 * until the failing inputs stand alone and are reported as errors. A policy that calls `http.send` or
 * `net.lookup_ip_addr` is refused the host (options.capabilities), so that decision is undefined or an error.
 */
export async function replay(
  opa: Opa,
  bundle: string,
  rulePath: string,
  inputs: unknown[],
  options: ReplayOptions,
): Promise<Replayed[]> {
  const serialized = inputs.map((input) => JSON.stringify(input ?? null));
  const results: Replayed[] = new Array(inputs.length);
  const run = async (from: number, to: number): Promise<void> => {
    const outcome = await evalBatch(
      opa,
      bundle,
      rulePath,
      `[${serialized.slice(from, to).join(",")}]`,
      options,
    );
    if (outcome.ok) {
      for (let i = from; i < to; i++) {
        const key = String(i - from);
        results[i] = Object.hasOwn(outcome.values, key)
          ? { defined: true, result: outcome.values[key] }
          : { defined: false, result: undefined };
      }
      return;
    }
    if (to - from === 1) {
      results[from] = { defined: false, result: undefined, error: outcome.message };
      return;
    }
    const middle = from + Math.ceil((to - from) / 2);
    await run(from, middle);
    await run(middle, to);
  };
  await run(0, inputs.length);
  return results;
}
