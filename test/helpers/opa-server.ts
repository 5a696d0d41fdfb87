import { freePort, waitForHttpOk } from "./ports.ts";
import { startProcess } from "./processes.ts";
import { toolPath } from "./tools.ts";

export interface RunningOpa {
  url: string;
  /** The server's process id (to pause it with SIGSTOP, as a hung OPA). */
  pid: number | undefined;
  output: () => string;
  stop: () => Promise<void>;
}

/**
 * Starts `opa run --server` on a free loopback port with extra args (files, --config-file …)
 * and waits until /health answers. With `bundles: true`, waits for bundles to activate too.
 */
export async function startOpaServer(
  args: string[],
  options: { env?: NodeJS.ProcessEnv; waitForBundles?: boolean; timeoutMs?: number } = {},
): Promise<RunningOpa> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const server = startProcess(
    toolPath("opa"),
    ["run", "--server", "--addr", `127.0.0.1:${port}`, "--log-level", "error", ...args],
    { ...process.env, ...options.env },
  );
  const health = options.waitForBundles ? "/health?bundles=true" : "/health";
  try {
    await waitForHttpOk(`${url}${health}`, options.timeoutMs ?? 20_000, server.alive);
  } catch (error) {
    await server.stop();
    throw new Error(`opa server did not become healthy: ${(error as Error).message}\n${server.output()}`);
  }
  return { url, pid: server.process.pid, output: server.output, stop: server.stop };
}
