import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The installed package's root: the nearest directory above this module whose package.json is
 * policyship's. Modules live at different depths in dist/ (tsc) and dist/cli-bundle/chunks/ (bundle).
 */
export function packageRoot(): { dir: string; version: string } {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, "package.json"), "utf8")) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === "policyship") return { dir, version: pkg.version ?? "unknown" };
    } catch {
      // not here; one level up
    }
    dir = path.dirname(dir);
  }
  return { dir, version: "unknown" };
}
