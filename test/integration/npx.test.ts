import { execFile } from "node:child_process";
import { cp, mkdtemp, readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { createRepo } from "../helpers/git-repo.ts";
import { awsEnv, createBucket, minio } from "../helpers/s3.ts";
import { repoRoot } from "../helpers/tools.ts";

interface Workflow {
  jobs: Record<string, { steps: { name?: string; run?: string; env?: Record<string, string> }[] }>;
}

async function installStep(file: string) {
  const YAML = await import("yaml");
  const workflow = YAML.parse(await readFile(path.join(repoRoot, file), "utf8")) as Workflow;
  const steps = Object.values(workflow.jobs).flatMap((job) => job.steps);
  const install = steps.find((step) => step.name === "install the pinned policyship");
  if (!install?.run) throw new Error(`${file} has no install step`);
  return { install, steps };
}

function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}) {
  const toolsBin = path.join(repoRoot, ".tools/bin");
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      command,
      args,
      {
        cwd,
        env: { ...process.env, PATH: `${toolsBin}${path.delimiter}${process.env.PATH}`, ...env },
        timeout: 240_000,
        maxBuffer: 32 * 1024 * 1024,
      },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const npmCommand = "npm";
const toolPathNode = () => path.join(repoRoot, ".tools/bin/node");

describe("the npm package, as a user gets it", () => {
  let tarball: string;
  let files: string[];
  let installDir: string;

  beforeAll(async () => {
    const packDir = await mkdtemp(path.join(os.tmpdir(), "policyship-pack-"));
    const packed = await run(npmCommand, ["pack", "--json", "--pack-destination", packDir], repoRoot);
    expect(packed.code, packed.stderr).toBe(0);
    const [info] = JSON.parse(packed.stdout) as [{ filename: string; files: { path: string }[] }];
    tarball = path.join(packDir, info.filename);
    files = info.files.map((file) => file.path);
    installDir = await mkdtemp(path.join(os.tmpdir(), "policyship-npx-"));
    await writeFile(path.join(installDir, "package.json"), '{ "name": "npx-user", "private": true }\n');
    const installed = await run(
      npmCommand,
      ["install", "--omit=dev", "--no-audit", "--no-fund", "--loglevel=error", tarball],
      installDir,
    );
    expect(installed.code, installed.stderr).toBe(0);
  }, 300_000);

  it("holds only dist, bin, README, LICENSE and package.json", () => {
    const tops = new Set(files.map((file) => file.split("/")[0]));
    expect([...tops].sort()).toEqual(["LICENSE", "README.md", "bin", "dist", "package.json"]);
    expect(files.filter((file) => /^test\/|fixtures|\.map$|(?<!\.d)\.ts$/.test(file))).toEqual([]);
    expect(files).toContain("bin/policyship.js");
    expect(files).toContain("dist/cli-bundle/cli.js");
    expect(files).toContain("dist/enforcer/index.js");
    expect(files).toContain("dist/templates/policy-release.yml");
  });

  it("the workflows install policyship from the repository's lockfile, before any credentials", async () => {
    const version = JSON.parse(await readFile(path.join(repoRoot, "package.json"), "utf8")).version as string;
    for (const file of [
      ".github/workflows/policy-release.yml",
      ".github/workflows/policy-rollback.yml",
      ".github/workflows/policy-impact.yml",
      "dist/templates/policy-release.yml",
      "dist/templates/policy-impact.yml",
    ]) {
      const { install, steps } = await installStep(file);
      const text = await readFile(path.join(repoRoot, file), "utf8");
      expect(text).not.toMatch(/npx\s+(--yes|-y)\b/);
      // The fallback pins this package's exact version; credentials come only after the install.
      expect(install.env?.POLICYSHIP_VERSION).toContain(`'${version}'`);
      const credentials = steps.findIndex((step) =>
        JSON.stringify(step).includes("configure-aws-credentials"),
      );
      expect(steps.indexOf(install)).toBeLessThan(credentials);
      // Run the step itself in a repository whose lockfile pins the packed policyship.
      const repo = await mkdtemp(path.join(os.tmpdir(), "policyship-ci-"));
      await cp(path.join(installDir, "package.json"), path.join(repo, "package.json"));
      await cp(path.join(installDir, "package-lock.json"), path.join(repo, "package-lock.json"));
      const githubPath = path.join(repo, "github-path");
      await writeFile(githubPath, "");
      const ran = await run("bash", ["-euo", "pipefail", "-c", install.run as string], repo, {
        GITHUB_PATH: githubPath,
        RUNNER_TEMP: repo,
        POLICYSHIP_VERSION: version,
      });
      expect(ran.code, ran.stderr).toBe(0);
      const bin = (await readFile(githubPath, "utf8")).trim();
      expect(bin).toBe(path.join(repo, "node_modules/.bin"));
      const versionRun = await run(path.join(bin, "policyship"), ["--version"], repo);
      expect(versionRun.stdout.trim()).toBe(version);
    }
  });

  it("an app that only enforces installs the enforcer's dependencies and no AWS SDK, commander or zod", async () => {
    const { readdir, stat } = await import("node:fs/promises");
    const packages: string[] = [];
    let bytes = 0;
    const walk = async (dir: string): Promise<void> => {
      for (const entry of await readdir(dir, { withFileTypes: true })) {
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) await walk(full);
        else if (entry.isFile()) {
          bytes += (await stat(full)).size;
          if (entry.name === "package.json" && /node_modules\/(@[^/]+\/)?[^/@.][^/]*$/.test(dir)) {
            packages.push(path.relative(path.join(installDir, "node_modules"), dir));
          }
        }
      }
    };
    await walk(path.join(installDir, "node_modules"));
    const megabytes = bytes / 1024 / 1024;
    console.log(`npm install <tarball> --omit=dev: ${packages.length} packages, ${megabytes.toFixed(1)} MB`);
    expect(
      packages.filter((name) => /^(@aws-sdk|@smithy|@aws-crypto|commander|zod)(\/|$)/.test(name)),
    ).toEqual([]);
    // 56 packages and 49 MB when the CLI's dependencies were the package's too.
    expect(packages.length).toBeLessThanOrEqual(25);
    expect(megabytes).toBeLessThan(25);
    // Both entries load from the installed package with nothing else installed.
    const loaded = await run(
      toolPathNode(),
      [
        "--input-type=module",
        "-e",
        'const lib = await import("policyship"); const enforcer = await import("policyship/enforcer"); console.log(typeof lib.build, typeof enforcer.createEnforcer);',
      ],
      installDir,
    );
    expect(loaded.code, loaded.stderr).toBe(0);
    expect(loaded.stdout.trim()).toBe("function function");
  });

  it("npx policyship --version prints the package version", async () => {
    const result = await run("npx", ["--no-install", "policyship", "--version"], installDir);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it("npx policyship release publishes from a git repository to MinIO", async () => {
    const repo = await createRepo({ examplePolicies: true });
    const bucket = await createBucket();
    const sha = repo.git("rev-parse", "HEAD");
    // npx resolves the installed package from installDir; the repository is named with --cwd.
    const result = await run(
      "npx",
      [
        "--no-install",
        "policyship",
        "release",
        "--cwd",
        repo.dir,
        "--bucket",
        bucket,
        "--endpoint",
        minio().endpoint,
        "--json",
      ],
      installDir,
      awsEnv(),
    );
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ revision: sha, published: { created: true } });
  });
});
