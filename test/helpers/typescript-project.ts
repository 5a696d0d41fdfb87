import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { repoRoot } from "./tools.ts";

/**
 * TypeScript 5.9, the compiler most apps build with today (7.x, the repository's own, has dropped
 * `moduleResolution: node10`). Installed from the npm registry, or its cache, into each project.
 */
export const APP_TYPESCRIPT = "typescript@5.9.3";

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(command: string, args: string[], cwd: string): Promise<Ran> {
  const toolsBin = path.join(repoRoot, ".tools/bin");
  const env = { ...process.env, PATH: `${toolsBin}${path.delimiter}${process.env.PATH}` };
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      { cwd, env, timeout: 240_000, maxBuffer: 32 * 1024 * 1024 },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** The package as npm publishes it (the built dist/, so run `npm run build` first). */
export async function packPackage(): Promise<string> {
  const packDir = await mkdtemp(path.join(os.tmpdir(), "policyship-pack-"));
  const packed = await run("npm", ["pack", "--json", "--pack-destination", packDir], repoRoot);
  if (packed.code !== 0) throw new Error(`npm pack failed: ${packed.stderr}`);
  const [info] = JSON.parse(packed.stdout) as [{ filename: string }];
  return path.join(packDir, info.filename);
}

/** The version the repository itself tests against, so the install comes from npm's cache. */
export async function devVersion(name: string): Promise<string> {
  const manifest = JSON.parse(
    await readFile(path.join(repoRoot, "node_modules", name, "package.json"), "utf8"),
  );
  return `${name}@${manifest.version as string}`;
}

/** An empty app with the packed tarball and `packages` installed as an app installs them (no dev deps). */
export async function createApp(tarball: string, packages: string[]): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "policyship-types-"));
  await writeFile(path.join(dir, "package.json"), '{ "name": "types-user", "private": true }\n');
  const installed = await run(
    "npm",
    [
      "install",
      "--omit=dev",
      "--prefer-offline",
      "--no-audit",
      "--no-fund",
      "--loglevel=error",
      tarball,
      ...packages,
    ],
    dir,
  );
  if (installed.code !== 0) throw new Error(`npm install failed: ${installed.stderr}`);
  return dir;
}

export interface Project {
  /** "module" or "commonjs": the project's package.json type. */
  type: "module" | "commonjs";
  compilerOptions: Record<string, unknown>;
  files: Record<string, string>;
}

/**
 * Writes a project into a folder of the app and runs the app's tsc on it, strict and with skipLibCheck
 * false, so every declaration file of the package is checked as the app's own build would check it.
 */
export async function compile(app: string, name: string, project: Project): Promise<Ran> {
  const dir = path.join(app, name);
  await mkdir(dir, { recursive: true });
  await writeFile(
    path.join(dir, "package.json"),
    JSON.stringify({ name, private: true, type: project.type }),
  );
  const compilerOptions = {
    strict: true,
    skipLibCheck: false,
    types: ["node"],
    outDir: "out",
    ...project.compilerOptions,
  };
  const tsconfig = { compilerOptions, files: Object.keys(project.files) };
  await writeFile(path.join(dir, "tsconfig.json"), JSON.stringify(tsconfig, null, 2));
  for (const [file, text] of Object.entries(project.files)) await writeFile(path.join(dir, file), text);
  return run(process.execPath, [path.join(app, "node_modules/typescript/bin/tsc"), "-p", dir], dir);
}
