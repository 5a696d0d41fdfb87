import { execFile } from "node:child_process";
import { cp, mkdtemp, readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.ts";
import { createRepo } from "../helpers/git-repo.ts";
import { awsEnv, createBucket, minio } from "../helpers/s3.ts";
import { repoRoot, toolPath } from "../helpers/tools.ts";

async function actionsFiles() {
  const dir = await mkdtemp(path.join(os.tmpdir(), "policyship-actions-"));
  const output = path.join(dir, "output");
  const summary = path.join(dir, "summary");
  await writeFile(output, "");
  await writeFile(summary, "");
  return { output, summary };
}

describe("a simulated GitHub Actions run", () => {
  it("release writes an ::error annotation with file and line for a failing policy test", async () => {
    const repo = await createRepo({ examplePolicies: true });
    await repo.write(
      "policies/regression_test.rego",
      'package regression_test\n\nimport data.authz\n\ntest_bob_may_delete_orders if {\n\tauthz.allow.allow with input as {"request": {"http": {"method": "DELETE", "path": "/orders/1", "headers": {"x-api-key": "bob-key"}}}}\n}\n',
    );
    const sha = repo.commit("a failing test");
    const files = await actionsFiles();
    const bucket = await createBucket();
    const result = await runCli(["release", "--bucket", bucket, "--endpoint", minio().endpoint], {
      cwd: repo.dir,
      env: {
        ...awsEnv(),
        GITHUB_ACTIONS: "true",
        GITHUB_OUTPUT: files.output,
        GITHUB_STEP_SUMMARY: files.summary,
        GITHUB_SHA: sha,
      },
    });
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toContain(
      "::error file=policies/regression_test.rego,line=5,title=regression_test.test_bob_may_delete_orders::",
    );
    expect(await readFile(files.summary, "utf8")).toContain("| failed | 1 |");
    // Nothing was published, so no outputs were written.
    expect(await readFile(files.output, "utf8")).toBe("");
  });

  it("rollback writes its outputs for the config artifact", async () => {
    const repo = await createRepo({ examplePolicies: true });
    const sha = repo.git("rev-parse", "HEAD");
    const bucket = await createBucket();
    const store = ["--bucket", bucket, "--endpoint", minio().endpoint];
    expect((await runCli(["release", ...store], { cwd: repo.dir, env: awsEnv() })).exitCode).toBe(0);
    const files = await actionsFiles();
    const result = await runCli(["rollback", sha.slice(0, 7), ...store, "--output", "opa-config.yaml"], {
      cwd: repo.dir,
      env: {
        ...awsEnv(),
        GITHUB_ACTIONS: "true",
        GITHUB_OUTPUT: files.output,
        GITHUB_STEP_SUMMARY: files.summary,
      },
    });
    expect(result.exitCode, result.stderr).toBe(0);
    const outputs = await readFile(files.output, "utf8");
    expect(outputs).toContain(`revision=${sha}\n`);
    expect(outputs).toContain("config=opa-config.yaml\n");
    expect(await readFile(files.summary, "utf8")).toContain(`policyship rollback to \`${sha}\``);
  });
});

function actionlint(args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(toolPath("actionlint"), args, { cwd: repoRoot }, (error, stdout, stderr) =>
      resolve({ code: error ? Number(error.code ?? 1) : 0, output: stdout + stderr }),
    );
  });
}

describe("the workflows", () => {
  it("are clean under actionlint", async () => {
    const result = await actionlint([
      ".github/workflows/ci.yml",
      ".github/workflows/policy-release.yml",
      ".github/workflows/policy-rollback.yml",
      "examples/github/policy-release-oci.yml",
      "examples/github/policy-rollback-oci.yml",
    ]);
    expect(result.output).toBe("");
    expect(result.code).toBe(0);
  });

  it("are checked by a real actionlint, which catches an undefined output", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "policyship-actionlint-"));
    await cp(path.join(repoRoot, ".github/workflows/policy-release.yml"), path.join(dir, "broken.yml"));
    const text = await readFile(path.join(dir, "broken.yml"), "utf8");
    await writeFile(
      path.join(dir, "broken.yml"),
      text.replace("steps.release.outputs.config", "steps.nosuchstep.outputs.config"),
    );
    const result = await actionlint([path.join(dir, "broken.yml")]);
    expect(result.code).not.toBe(0);
    expect(result.output).toMatch(/nosuchstep/);
  });

  it("pin every action to a commit and ask only for contents: read and id-token: write", async () => {
    for (const file of ["policy-release.yml", "policy-rollback.yml"]) {
      const text = await readFile(path.join(repoRoot, ".github/workflows", file), "utf8");
      const uses = [...text.matchAll(/^\s+(?:- )?uses: (\S+)/gm)].map((match) => match[1] as string);
      expect(uses.length).toBeGreaterThan(2);
      for (const action of uses) expect(action).toMatch(/@[0-9a-f]{40}$/);
      expect(text).toContain("permissions:\n  contents: read\n  id-token: write\n");
    }
  });

  it("the OCI release workflow pins every action, asks for packages: write only, and hands the token to one step", async () => {
    const text = await readFile(path.join(repoRoot, "examples/github/policy-release-oci.yml"), "utf8");
    const uses = [...text.matchAll(/^\s+(?:- )?uses: (\S+)/gm)].map((match) => match[1] as string);
    for (const action of uses) expect(action).toMatch(/@[0-9a-f]{40}$/);
    expect(text).toContain("permissions:\n  contents: read\n  packages: write\n\njobs:");
    expect(text.match(/secrets\.GITHUB_TOKEN/g)).toHaveLength(1);
    expect(text).toMatch(/GITHUB_TOKEN: \$\{\{ secrets\.GITHUB_TOKEN \}\}\n\s+run: policyship release\n/);
  });
});
