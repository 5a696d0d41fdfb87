import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { UserError } from "../errors.ts";
import { parseJson } from "../safe-json.ts";
import type { Opa } from "./commands.ts";
import { runOpa } from "./run.ts";

/** A capabilities file for `opa eval` and `opa test` that lets no policy reach the network. */
export interface OfflineCapabilities {
  /** Path of the file, for `--capabilities`. */
  file: string;
  /** Removes the file and its private directory. */
  dispose: () => Promise<void>;
}

/**
 * This opa's own capabilities (`opa capabilities --current`: every built-in and feature, so nothing compiles
 * differently) with `allow_net: []`. An empty list denies every host to `http.send` and `net.lookup_ip_addr`,
 * where no list at all allows every one
 * (https://www.openpolicyagent.org/docs/deployments#capabilities). Without it a policy under review could
 * send the inputs it is evaluated over (impact's recorded production requests) or anything else it sees to
 * any host; policyship's own opa calls never need the network. Written once per run into a 0700 directory.
 */
export async function offlineCapabilities(opa: Opa): Promise<OfflineCapabilities> {
  const result = await runOpa(opa.path, ["capabilities", "--current"], { timeoutMs: 15_000, env: opa.env });
  let capabilities: Record<string, unknown> | undefined;
  try {
    const parsed: unknown = parseJson(result.stdout);
    if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)) {
      capabilities = parsed as Record<string, unknown>;
    }
  } catch {
    capabilities = undefined;
  }
  if (result.exitCode !== 0 || !capabilities || !Array.isArray(capabilities.builtins)) {
    throw new UserError(
      `${opa.path} cannot list its capabilities (\`opa capabilities --current\` failed)`,
      "use OPA >= 1.0 (pass --opa <path>)",
    );
  }
  capabilities.allow_net = [];
  const dir = await mkdtemp(path.join(os.tmpdir(), "policyship-capabilities-"));
  const dispose = () => rm(dir, { recursive: true, force: true });
  try {
    const file = path.join(dir, "capabilities.json");
    await writeFile(file, JSON.stringify(capabilities), { mode: 0o600 });
    return { file, dispose };
  } catch (error) {
    await dispose();
    throw error;
  }
}

/** Runs `work` with an offline capabilities file that is removed afterwards, however `work` ends. */
export async function withOfflineCapabilities<T>(opa: Opa, work: (file: string) => Promise<T>): Promise<T> {
  const capabilities = await offlineCapabilities(opa);
  try {
    return await work(capabilities.file);
  } finally {
    await capabilities.dispose();
  }
}
