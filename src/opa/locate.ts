import { constants } from "node:fs";
import { access, mkdir, readFile, rename, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Context } from "../context.ts";
import { UserError } from "../errors.ts";
import { parseJson } from "../safe-json.ts";
import { opaEnvironment } from "./environment.ts";
import { runOpa } from "./run.ts";

export const MINIMUM_OPA_MAJOR = 1;

export interface OpaBinary {
  path: string;
  version: string;
  /** The allow-listed environment every run of this opa gets. */
  env: NodeJS.ProcessEnv;
}

const INSTALL_HINT =
  "install it with `brew install opa`, the open-policy-agent/setup-opa GitHub action, " +
  "or `go install github.com/open-policy-agent/opa@latest`, or pass --opa <path>";

async function isExecutable(file: string): Promise<boolean> {
  try {
    await access(file, constants.X_OK);
    return (await stat(file)).isFile();
  } catch {
    return false;
  }
}

async function searchPath(env: NodeJS.ProcessEnv): Promise<string | undefined> {
  for (const dir of (env.PATH ?? "").split(path.delimiter).filter(Boolean)) {
    const candidate = path.join(dir, "opa");
    if (await isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/** Finds opa via --opa, then $OPA_BIN, then PATH, and checks that it is OPA >= 1.0. */
export async function locateOpa(options: {
  flag?: string;
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Names added to the allow-listed environment of opa children. */
  allowEnv?: readonly string[];
}): Promise<OpaBinary> {
  const explicit = options.flag ?? options.env.OPA_BIN;
  const source = options.flag ? "--opa" : "$OPA_BIN";
  let binary: string | undefined;
  if (explicit) {
    binary = path.resolve(options.cwd, explicit);
    if (!(await isExecutable(binary))) {
      throw new UserError(`opa not found at ${explicit} (from ${source})`, INSTALL_HINT);
    }
  } else {
    binary = await searchPath(options.env);
    if (!binary) throw new UserError("opa not found on PATH", INSTALL_HINT);
  }
  const childEnv = opaEnvironment(options.env, options.allowEnv);
  const version = await cachedOpaVersion(binary, options.env, childEnv);
  const major = Number(version.split(".")[0]);
  if (!(major >= MINIMUM_OPA_MAJOR)) {
    throw new UserError(
      `opa ${version} at ${binary} is too old; policyship needs OPA >= ${MINIMUM_OPA_MAJOR}.0`,
      `upgrade it: ${INSTALL_HINT}`,
    );
  }
  return { path: binary, version, env: childEnv };
}

/** The opa a command runs: --opa, $OPA_BIN or PATH, with the allow-listed environment of its settings. */
export function locateOpaFor(context: Context): Promise<OpaBinary> {
  const { settings, env, cwd } = context;
  return locateOpa({ flag: settings.opa, env, cwd, allowEnv: settings.opaEnv });
}

/**
 * `opa version` costs a process start on every command; the answer only changes when the binary does,
 * so it is cached per path, size and mtime in $POLICYSHIP_CACHE (default ~/.cache/policyship).
 */
async function cachedOpaVersion(
  binary: string,
  env: NodeJS.ProcessEnv,
  childEnv: NodeJS.ProcessEnv,
): Promise<string> {
  const info = await stat(binary);
  const key = `${binary}:${info.size}:${info.mtimeMs}`;
  const dir =
    env.POLICYSHIP_CACHE || path.join(env.XDG_CACHE_HOME || path.join(os.homedir(), ".cache"), "policyship");
  const file = path.join(dir, "opa-versions.json");
  let cache: Record<string, string> = {};
  try {
    cache = parseJson(await readFile(file, "utf8")) as Record<string, string>;
    const cached = cache[key];
    if (typeof cached === "string") return cached;
  } catch {
    cache = {};
  }
  const version = await readOpaVersion(binary, childEnv);
  try {
    await mkdir(dir, { recursive: true });
    const temp = `${file}.${process.pid}`;
    await writeFile(temp, JSON.stringify({ ...cache, [key]: version }));
    await rename(temp, file);
  } catch {
    // A read-only home only costs the next run one `opa version`.
  }
  return version;
}

export async function readOpaVersion(binary: string, env: NodeJS.ProcessEnv): Promise<string> {
  const result = await runOpa(binary, ["version"], { timeoutMs: 15_000, env });
  const match = /^Version:\s*v?(\S+)/m.exec(result.stdout);
  if (result.exitCode !== 0 || !match?.[1]) {
    throw new UserError(`${binary} does not behave like opa (\`opa version\` failed)`, INSTALL_HINT);
  }
  return match[1];
}
