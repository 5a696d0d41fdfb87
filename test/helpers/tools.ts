import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** A tool installed by `make setup` into .tools/bin, else whatever PATH has. */
export function toolPath(name: "opa" | "minio" | "actionlint" | "node" | "registry"): string {
  const local = path.join(repoRoot, ".tools/bin", name);
  return existsSync(local) ? local : name;
}

/** The OPA version that `make setup` pinned, e.g. "1.22.2". */
export function pinnedOpaVersion(): string {
  const file = path.join(repoRoot, ".tools/opa-version");
  return readFileSync(file, "utf8").trim().replace(/^v/, "");
}
