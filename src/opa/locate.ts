import { constants } from "node:fs";
import { access, stat } from "node:fs/promises";
import path from "node:path";
import { UserError } from "../errors.ts";
import { runOpa } from "./run.ts";

export const MINIMUM_OPA_MAJOR = 1;

export interface OpaBinary {
  path: string;
  version: string;
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
  const version = await readOpaVersion(binary);
  const major = Number(version.split(".")[0]);
  if (!(major >= MINIMUM_OPA_MAJOR)) {
    throw new UserError(
      `opa ${version} at ${binary} is too old; policyship needs OPA >= ${MINIMUM_OPA_MAJOR}.0`,
      `upgrade it: ${INSTALL_HINT}`,
    );
  }
  return { path: binary, version };
}

export async function readOpaVersion(binary: string): Promise<string> {
  const result = await runOpa(binary, ["version"], { timeoutMs: 15_000 });
  const match = /^Version:\s*v?(\S+)/m.exec(result.stdout);
  if (result.exitCode !== 0 || !match?.[1]) {
    throw new UserError(`${binary} does not behave like opa (\`opa version\` failed)`, INSTALL_HINT);
  }
  return match[1];
}
