import { execFile } from "node:child_process";
import { childEnvironment } from "./environment.ts";

export interface OpaResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export const OPA_TIMEOUT_MS = 10 * 60 * 1000;
const MAX_OUTPUT_BYTES = 256 * 1024 * 1024;

/**
 * Runs the opa binary with an argument array; never throws on a non-zero exit, the caller reads it.
 * node:child_process rather than execa: execa's import alone costs ~100 ms, more than every opa call
 * of a build, and this needs nothing beyond an argument array, a timeout and the exit code.
 */
export function runOpa(
  binary: string,
  args: string[],
  options: { cwd?: string; timeoutMs?: number; env: NodeJS.ProcessEnv },
): Promise<OpaResult> {
  return new Promise((resolve, reject) => {
    execFile(
      binary,
      args,
      {
        cwd: options.cwd,
        // Never the caller's whole environment: see opa/environment.ts.
        env: childEnvironment(options.env),
        timeout: options.timeoutMs ?? OPA_TIMEOUT_MS,
        maxBuffer: MAX_OUTPUT_BYTES,
        encoding: "utf8",
      },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== "number") {
          const reason = error.killed
            ? `timed out after ${options.timeoutMs ?? OPA_TIMEOUT_MS} ms`
            : error.message;
          reject(new Error(`could not run ${binary} ${args[0] ?? ""}: ${reason}`));
          return;
        }
        resolve({ exitCode: error ? Number(error.code) : 0, stdout, stderr });
      },
    );
  });
}
