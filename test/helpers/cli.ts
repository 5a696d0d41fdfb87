import { execFile } from "node:child_process";
import path from "node:path";
import { gitEnv } from "./git-repo.ts";
import { repoRoot, toolPath } from "./tools.ts";

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

const bin = path.join(repoRoot, "bin/policyship.js");

/** Runs the built CLI as a user would: a separate node process, with .tools/bin first on PATH. */
export function runCli(
  args: string[],
  options: { cwd: string; env?: Record<string, string | undefined>; timeoutMs?: number },
): Promise<CliResult> {
  const toolsBin = path.join(repoRoot, ".tools/bin");
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...gitEnv,
    PATH: `${toolsBin}${path.delimiter}${process.env.PATH ?? ""}`,
    GITHUB_ACTIONS: "",
    ...options.env,
  };
  for (const key of Object.keys(env)) {
    if (env[key] === undefined) delete env[key];
  }
  return new Promise((resolve) => {
    execFile(
      toolPath("node"),
      [bin, ...args],
      { cwd: options.cwd, env, timeout: options.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
        resolve({ exitCode: code, stdout, stderr });
      },
    );
  });
}

/** The contract for every error: one line on stderr starting `policyship:`, and no stack trace. */
export function expectOneLineError(result: CliResult): string {
  const lines = result.stderr.trim().split("\n");
  const last = lines.at(-1) ?? "";
  if (!last.startsWith("policyship: "))
    throw new Error(`stderr does not end with a policyship: line:\n${result.stderr}`);
  if (/\n\s+at .+:\d+:\d+/.test(result.stderr))
    throw new Error(`stderr has a stack trace:\n${result.stderr}`);
  return last;
}
