export interface OpaResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs the opa binary with an argument array; never throws on a non-zero exit, the caller reads it. */
export async function runOpa(
  binary: string,
  args: string[],
  options: { cwd?: string; timeoutMs?: number } = {},
): Promise<OpaResult> {
  const { execa } = await import("execa");
  const result = await execa(binary, args, {
    cwd: options.cwd,
    reject: false,
    timeout: options.timeoutMs ?? OPA_TIMEOUT_MS,
    stripFinalNewline: false,
    maxBuffer: 256 * 1024 * 1024,
  });
  if (result.failed && result.exitCode === undefined) {
    throw new Error(`could not run ${binary}: ${result.shortMessage}`);
  }
  return { exitCode: result.exitCode ?? 1, stdout: String(result.stdout), stderr: String(result.stderr) };
}

export const OPA_TIMEOUT_MS = 10 * 60 * 1000;
