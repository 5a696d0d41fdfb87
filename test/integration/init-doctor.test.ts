import { mkdtemp, readdir, readFile, writeFile } from "node:fs/promises";
import os from "node:os";
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
        ".github/workflows/policy-release.yml",
        ".github/workflows/policy-rollback.yml",
        ".github/workflows/policy-impact.yml",
        "policies/authz.rego",
        "policies/authz_test.rego",
        "policies/data.json",
      ],
      skipped: [],
      updated: [".gitignore"],
    });
    // A new user's first `git add -A` commits neither the build output nor the installed packages.
    expect(await readFile(path.join(repo.dir, ".gitignore"), "utf8")).toBe(
      "# policyship's build output\ndist/\n# installed packages\nnode_modules/\n",
    );
    for (const [created, source] of [
      [".github/workflows/policy-release.yml", ".github/workflows/policy-release.yml"],
      [".github/workflows/policy-rollback.yml", ".github/workflows/policy-rollback.yml"],
      [".github/workflows/policy-impact.yml", ".github/workflows/policy-impact.yml"],
      ["policies/authz.rego", "policies/authz.rego"],
    ] as const) {
      expect(await readFile(path.join(repo.dir, created), "utf8")).toBe(
        await readFile(path.join(repoRoot, source), "utf8"),
      );
    }
    // The example policy's credential is masked by what init writes, not by the user remembering to.
    expect(await readFile(path.join(repo.dir, "policyship.yaml"), "utf8")).toMatch(
      /^mask: \["\/input\/request\/http\/headers\/x-api-key"\]$/m,
    );
    repo.commit("policyship init");
    const dry = await runCli(["release", "--dry-run"], { cwd: repo.dir });
    expect(dry.exitCode, dry.stderr).toBe(0);
    expect(dry.stdout).toContain("13 passed, 0 failed");
  });

  it("adds node_modules/ beside a listed out dir, and its closing hint names endpoint for MinIO", async () => {
    const repo = await createRepo();
    await repo.write(".gitignore", "/dist");
    const result = await runCli(["init"], { cwd: repo.dir });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toContain("updated .gitignore");
    expect(result.stdout).toMatch(
      /set bucket and region \(and endpoint, for MinIO or another S3-compatible store\)/,
    );
    expect(await readFile(path.join(repo.dir, ".gitignore"), "utf8")).toBe(
      "/dist\n# installed packages\nnode_modules/\n",
    );
    expect(await readFile(path.join(repo.dir, "policyship.yaml"), "utf8")).toMatch(/^# endpoint: /m);
    // Listed in any of the usual forms, node_modules is not added twice.
    const other = await createRepo();
    await other.write(".gitignore", "**/node_modules\ndist/\n");
    const again = await runCli(["init", "--json"], { cwd: other.dir });
    expect(again.exitCode, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout).updated).toEqual([]);
    expect(await readFile(path.join(other.dir, ".gitignore"), "utf8")).toBe("**/node_modules\ndist/\n");
  });

  it("--registry scaffolds the registry and the OCI release workflow; release --dry-run renders no config (it pins a digest publish creates)", async () => {
    const repo = await createRepo();
    const result = await runCli(["init", "--registry", "ghcr.io/acme/policies"], { cwd: repo.dir });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toContain("GITHUB_TOKEN on ghcr.io");
    const settings = await readFile(path.join(repo.dir, "policyship.yaml"), "utf8");
    expect(settings).toMatch(/^registry: ghcr\.io\/acme\/policies /m);
    expect(settings).not.toMatch(/^prefix:/m);
    expect(settings).toMatch(/^mask: \["\/input\/request\/http\/headers\/x-api-key"\]$/m);
    for (const workflow of ["release", "rollback"]) {
      expect(await readFile(path.join(repo.dir, `.github/workflows/policy-${workflow}.yml`), "utf8")).toBe(
        await readFile(path.join(repoRoot, `examples/github/policy-${workflow}-oci.yml`), "utf8"),
      );
    }
    repo.commit("policyship init --registry");
    const dry = await runCli(["release", "--dry-run", "--json"], { cwd: repo.dir });
    expect(dry.exitCode, dry.stderr).toBe(0);
    expect(JSON.parse(dry.stdout).config).toBeNull();
    const bad = await runCli(["init", "--registry", "ghcr.io/Acme"], { cwd: (await createRepo()).dir });
    expect(bad.exitCode).toBe(2);
    expect(expectOneLineError(bad)).toMatch(/is not a valid repository name/);
  });

  it("never overwrites, and puts no example (nor its demo keys) into an existing policies directory", async () => {
    const repo = await createRepo();
    await repo.write("policyship.yaml", "out: build\n");
    await repo.write("policies/authz.rego", "package mine\n");
    await repo.write(".gitignore", "node_modules/\n/build");
    const result = await runCli(["init"], { cwd: repo.dir });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toContain("skipped policyship.yaml (already exists)");
    expect(result.stdout).toContain(
      "skipped policies/ (has files; the examples go only into a new directory)",
    );
    expect(result.stdout).not.toMatch(/created policies\//);
    expect(await readdir(path.join(repo.dir, "policies"))).toEqual(["authz.rego"]);
    expect(await readFile(path.join(repo.dir, "policyship.yaml"), "utf8")).toBe("out: build\n");
    expect(await readFile(path.join(repo.dir, "policies/authz.rego"), "utf8")).toBe("package mine\n");
    // The out dir (build, from policyship.yaml) is listed already: .gitignore is left as it was.
    expect(await readFile(path.join(repo.dir, ".gitignore"), "utf8")).toBe("node_modules/\n/build");
  });

  it("--policies opa writes a project whose every path is opa/, and whose build passes", async () => {
    const repo = await createRepo();
    await repo.write(".gitignore", "node_modules/");
    const result = await runCli(["init", "--policies", "opa"], { cwd: repo.dir });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toContain("created opa/authz.rego");
    expect(await readFile(path.join(repo.dir, "policyship.yaml"), "utf8")).toMatch(/^policies: opa$/m);
    const release = await readFile(path.join(repo.dir, ".github/workflows/policy-release.yml"), "utf8");
    expect(release).toContain("inputs.policies || 'opa'");
    expect(release).not.toMatch(/\bpolicies\/|'policies'|default: policies\n/);
    const impact = await readFile(path.join(repo.dir, ".github/workflows/policy-impact.yml"), "utf8");
    expect(impact).toContain('"opa/**"');
    expect(impact).not.toContain('"policies/**"');
    expect(await readFile(path.join(repo.dir, ".gitignore"), "utf8")).toBe(
      "node_modules/\n# policyship's build output\ndist/\n",
    );
    repo.commit("policyship init --policies opa");
    // As the workflow runs it: its POLICYSHIP_POLICIES default and the settings agree.
    const build = await runCli(["build", "--json"], { cwd: repo.dir, env: { POLICYSHIP_POLICIES: "opa" } });
    expect(build.exitCode, build.stderr).toBe(0);
    const plain = await runCli(["release", "--dry-run"], { cwd: repo.dir });
    expect(plain.exitCode, plain.stderr).toBe(0);
    expect(plain.stdout).toContain("13 passed, 0 failed");
  });

  it("warns outside a git repository, and refuses a policies path that would climb out or quote", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "policyship-init-nogit-"));
    const result = await runCli(["init"], { cwd: dir });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stderr).toMatch(
      /is not a git repository: policyship builds each bundle at a commit — run git init/,
    );
    for (const bad of ["../elsewhere", "/etc", "a'b", "x: y"]) {
      const refused = await runCli(["init", "--policies", bad], { cwd: (await createRepo()).dir });
      expect(refused.exitCode, bad).toBe(2);
      expect(expectOneLineError(refused)).toMatch(/--policies .* must be a directory inside the repository/);
    }
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
      // An unversioned bucket works; doctor says a config cannot pin the bytes there.
      "! pinning",
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
