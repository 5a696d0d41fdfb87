// CommonJS declarations for "policyship/enforcer": a copy of every dist/enforcer/**/*.d.ts as .d.cts,
// relative imports pointing at the .cjs twins. TypeScript reads a .d.ts in this "type": "module" package
// as an ES module, and under `module: node16` a CommonJS file may not import one, not even its types
// (TS1479, TS1541). The package's exports hand the .d.cts to `require`; at run time require() of the ES
// module works on Node 22.12 and later (https://nodejs.org/api/modules.html#loading-ecmascript-modules-using-require).
import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";

const ROOT = "dist/enforcer";
// `from "./x.ts"`, `from "../x.js"`, `import("./x.ts")`: the relative specifiers tsc leaves in declarations.
const RELATIVE = /((?:from|import\()\s*)(["'])(\.\.?\/[^"']+?)\.(?:ts|js)\2/g;

for (const entry of await readdir(ROOT, { recursive: true, withFileTypes: true })) {
  if (!entry.isFile()) continue;
  const file = path.join(entry.parentPath, entry.name);
  if (entry.name.endsWith(".d.cts")) await rm(file);
  else if (entry.name.endsWith(".d.ts")) {
    const text = await readFile(file, "utf8");
    await writeFile(file.replace(/\.d\.ts$/, ".d.cts"), text.replace(RELATIVE, "$1$2$3.cjs$2"));
  }
}
