import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { expectOneLineError, runCli } from "../helpers/cli.ts";
import { createRepo } from "../helpers/git-repo.ts";
import { awsEnv, createBucket, minio } from "../helpers/s3.ts";
import { repoRoot } from "../helpers/tools.ts";

describe("policyship init", () => {
  it("scaffolds a repository in which release --dry-run passes", async () => {
    const repo = await createRepo();
    const result = await runCli(["init", "--json"], { cwd: repo.dir });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({
      created: [
        "policyship.yaml",
        "policies/authz.rego",
        "policies/authz_test.rego",
        "policies/data.json",
        ".github/workflows/policy-release.yml",
        ".github/workflows/policy-impact.yml",
      ],
      skipped: [],
    });
    for (const [created, source] of [
      [".github/workflows/policy-release.yml", ".github/workflows/policy-release.yml"],
      [".github/workflows/policy-impact.yml", ".github/workflows/policy-impact.yml"],
      ["policies/authz.rego", "policies/authz.rego"],
    ] as const) {
      expect(await readFile(path.join(repo.dir, created), "utf8")).toBe(
        await readFile(path.join(repoRoot, source), "utf8"),
      );
    }
    repo.commit("policyship init");
    const dry = await runCli(["release", "--dry-run"], { cwd: repo.dir });
    expect(dry.exitCode, dry.stderr).toBe(0);
    expect(dry.stdout).toContain("13 passed, 0 failed");
  });

  it("--registry scaffolds the registry and the OCI release workflow; release --dry-run renders no config (it pins a digest publish creates)", async () => {
    const repo = await createRepo();
    const result = await runCli(["init", "--registry", "ghcr.io/acme/policies"], { cwd: repo.dir });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toContain("GITHUB_TOKEN on ghcr.io");
    const settings = await readFile(path.join(repo.dir, "policyship.yaml"), "utf8");
    expect(settings).toMatch(/^registry: ghcr\.io\/acme\/policies /m);
    expect(settings).not.toMatch(/^prefix:/m);
    expect(await readFile(path.join(repo.dir, ".github/workflows/policy-release.yml"), "utf8")).toBe(
      await readFile(path.join(repoRoot, "examples/github/policy-release-oci.yml"), "utf8"),
    );
    repo.commit("policyship init --registry");
    const dry = await runCli(["release", "--dry-run", "--json"], { cwd: repo.dir });
    expect(dry.exitCode, dry.stderr).toBe(0);
    expect(JSON.parse(dry.stdout).config).toBeNull();
    const bad = await runCli(["init", "--registry", "ghcr.io/Acme"], { cwd: (await createRepo()).dir });
    expect(bad.exitCode).toBe(2);
    expect(expectOneLineError(bad)).toMatch(/is not a valid repository name/);
  });

  it("never overwrites and reports what it skipped", async () => {
    const repo = await createRepo();
    await repo.write("policyship.yaml", "out: build\n");
    await repo.write("policies/authz.rego", "package mine\n");
    const result = await runCli(["init"], { cwd: repo.dir });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toContain("skipped policyship.yaml (already exists)");
    expect(result.stdout).toContain("skipped policies/authz.rego (already exists)");
    expect(result.stdout).toContain("created policies/data.json");
    expect(await readFile(path.join(repo.dir, "policyship.yaml"), "utf8")).toBe("out: build\n");
    expect(await readFile(path.join(repo.dir, "policies/authz.rego"), "utf8")).toBe("package mine\n");
  });
});

describe("policyship doctor", () => {
  it("passes every check with a reachable store", async () => {
    const repo = await createRepo({ examplePolicies: true });
    const bucket = await createBucket();
    const result = await runCli(["doctor", "--bucket", bucket, "--endpoint", minio().endpoint], {
      cwd: repo.dir,
      env: awsEnv(),
    });
    expect(result.exitCode, result.stdout + result.stderr).toBe(0);
    const lines = result.stdout.trim().split("\n");
    expect(lines.map((line) => line.split(/\s+/).slice(0, 2).join(" "))).toEqual([
      "✓ node",
      "✓ git",
      "✓ opa",
      "✓ policies",
      "✓ config",
      "✓ store",
    ]);
  });

  it("marks each problem with ✗ and exits non-zero", async () => {
    const repo = await createRepo();
    await writeFile(path.join(repo.dir, "policyship.yaml"), "bucket: no-such-bucket-doctor\n");
    const result = await runCli(["doctor", "--opa", "/nonexistent/opa", "--endpoint", "http://127.0.0.1:9"], {
      cwd: repo.dir,
      env: awsEnv(),
    });
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toMatch(/^✗ opa\s+opa not found at \/nonexistent\/opa/m);
    expect(result.stdout).toMatch(/^✗ policies\s+policies is not a directory/m);
    expect(result.stdout).toMatch(/^✓ config\s+policyship\.yaml is valid/m);
    expect(result.stdout).toMatch(/^✗ store\s+cannot reach http:\/\/127\.0\.0\.1:9/m);
    expect(expectOneLineError(result)).toBe("policyship: 3 checks failed: opa, policies, store");
  });
});
