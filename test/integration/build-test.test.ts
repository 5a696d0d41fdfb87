import { execFileSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { readdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { expectOneLineError, runCli } from "../helpers/cli.ts";
import { createRepo } from "../helpers/git-repo.ts";

function tarList(file: string): string[] {
  return execFileSync("tar", ["-tzf", file], { encoding: "utf8" })
    .split("\n")
    .filter(Boolean)
    .map((name) => name.replace(/^\//, ""));
}

function tarRead(file: string, member: string): string {
  return execFileSync("tar", ["-xzOf", file, member], { encoding: "utf8" });
}

async function outFiles(dir: string): Promise<string[]> {
  return readdir(path.join(dir, "dist")).catch(() => []);
}

describe("policyship build and test", () => {
  it("builds the bundle at HEAD's SHA and tests that artifact", async () => {
    const repo = await createRepo({ examplePolicies: true });
    const head = repo.git("rev-parse", "HEAD");

    const built = await runCli(["build", "--json"], { cwd: repo.dir });
    expect(built.exitCode, built.stderr).toBe(0);
    const result = JSON.parse(built.stdout);
    expect(result.revision).toBe(head);
    expect(result.bundle).toBe(`dist/${head}.tar.gz`);
    expect(result.opaVersion).toMatch(/^1\./);

    const bundle = path.join(repo.dir, "dist", `${head}.tar.gz`);
    expect(JSON.parse(tarRead(bundle, "/.manifest")).revision).toBe(head);
    expect(tarList(bundle)).toEqual(expect.arrayContaining(["authz.rego", "authz_test.rego", "data.json"]));
    const metadata = JSON.parse(await readFile(path.join(repo.dir, "dist", `${head}.json`), "utf8"));
    expect(metadata).toMatchObject({ revision: head, sha256: result.sha256, regoVersion: 1 });
    expect(metadata.git).toMatchObject({ sha: head, subject: "add example policies", branch: "main" });

    const tested = await runCli(["test", "--coverage-threshold", "90"], { cwd: repo.dir });
    expect(tested.exitCode, tested.stderr).toBe(0);
    expect(tested.stdout).toMatch(/^13 passed, 0 failed$/m);
    expect(tested.stderr).toContain(`dist/${head}.tar.gz`);

    // A second build in the same checkout is not blocked by its own output.
    const again = await runCli(["build"], { cwd: repo.dir });
    expect(again.exitCode, again.stderr).toBe(0);
  });

  it("runs only the tests --run selects", async () => {
    const repo = await createRepo({ examplePolicies: true });
    const tested = await runCli(["test", "--policies", "policies", "--run", "test_writer_.*", "--json"], {
      cwd: repo.dir,
    });
    expect(tested.exitCode, tested.stderr).toBe(0);
    expect(JSON.parse(tested.stdout)).toMatchObject({ passed: 2, failed: 0 });
  });

  it("reports a failing test with its file:row and exits 1", async () => {
    const repo = await createRepo({ examplePolicies: true });
    await repo.write(
      "policies/extra_test.rego",
      'package extra_test\n\nimport data.authz\n\ntest_bob_may_delete if {\n\tauthz.allow.allow with input as {"request": {"http": {"method": "DELETE", "path": "/orders", "headers": {"x-api-key": "bob-key"}}}}\n}\n',
    );
    repo.commit("add a failing test");
    expect((await runCli(["build"], { cwd: repo.dir })).exitCode).toBe(0);
    const tested = await runCli(["test"], { cwd: repo.dir });
    expect(tested.exitCode).toBe(1);
    expect(tested.stdout).toContain("FAIL policies/extra_test.rego:5 extra_test.test_bob_may_delete");
    expect(tested.stdout).toMatch(/^13 passed, 1 failed$/m);
    expect(expectOneLineError(tested)).toBe("policyship: 1 policy test failed");

    const json = await runCli(["test", "--json"], { cwd: repo.dir });
    expect(json.exitCode).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({
      passed: 13,
      failed: 1,
      skipped: 0,
      coverage: null,
      failures: [
        { name: "test_bob_may_delete", package: "extra_test", file: "policies/extra_test.rego", row: 5 },
      ],
    });
  });

  it("writes GitHub annotations and a step summary inside Actions", async () => {
    const repo = await createRepo({ examplePolicies: true });
    await repo.write("policies/extra_test.rego", "package extra_test\n\ntest_fails if false\n");
    repo.commit("failing");
    const summary = path.join(repo.dir, "..", `${path.basename(repo.dir)}-summary.md`);
    await writeFile(summary, "");
    const tested = await runCli(["test", "--policies", "policies"], {
      cwd: repo.dir,
      env: { GITHUB_ACTIONS: "true", GITHUB_STEP_SUMMARY: summary },
    });
    expect(tested.exitCode).toBe(1);
    expect(tested.stdout).toContain(
      "::error file=policies/extra_test.rego,line=3,title=extra_test.test_fails::",
    );
    const markdown = await readFile(summary, "utf8");
    expect(markdown).toContain("| failed | 1 |");
    expect(markdown).toContain("extra_test.test_fails");
  });

  it("fails when coverage is below the threshold", async () => {
    const repo = await createRepo({ examplePolicies: true });
    await repo.write(
      "policies/authz_test.rego",
      "package authz_test\n\nimport data.authz\n\ntest_only_one if authz.public_paths\n",
    );
    repo.commit("fewer tests");
    const tested = await runCli(["test", "--policies", "policies", "--coverage-threshold", "90"], {
      cwd: repo.dir,
    });
    expect(tested.exitCode).toBe(1);
    expect(expectOneLineError(tested)).toMatch(
      /^policyship: coverage \d+\.\d% is below the threshold of 90%/,
    );
  });

  it("builds and tests policies written before OPA 1.0 with --v0-compatible", async () => {
    const repo = await createRepo();
    await repo.write(
      "policies/legacy.rego",
      'package legacy\n\ndefault allow = false\n\nallow {\n\tinput.user == "admin"\n}\n\ntest_admin {\n\tallow with input as {"user": "admin"}\n}\n',
    );
    repo.commit("v0 policy");
    const strict = await runCli(["build"], { cwd: repo.dir });
    expect(strict.exitCode).toBe(1);
    expect(expectOneLineError(strict)).toMatch(
      /policies\/legacy\.rego:\d+.*rego_parse_error.*--v0-compatible/,
    );
    expect(await outFiles(repo.dir)).toEqual([]);

    const built = await runCli(["build", "--v0-compatible", "--json"], { cwd: repo.dir });
    expect(built.exitCode, built.stderr).toBe(0);
    expect(JSON.parse(built.stdout).regoVersion).toBe(0);
    const tested = await runCli(["test", "--v0-compatible"], { cwd: repo.dir });
    expect(tested.exitCode, tested.stderr).toBe(0);
    expect(tested.stdout).toMatch(/^1 passed, 0 failed$/m);
  });

  it("builds a wasm bundle with policy.wasm for an entrypoint", async () => {
    const repo = await createRepo({ examplePolicies: true });
    const built = await runCli(["build", "--target", "wasm", "--entrypoint", "authz/allow", "--json"], {
      cwd: repo.dir,
    });
    expect(built.exitCode, built.stderr).toBe(0);
    const { files, bundle } = JSON.parse(built.stdout);
    expect(files).toContain("policy.wasm");
    const manifest = JSON.parse(tarRead(path.join(repo.dir, bundle), "/.manifest"));
    expect(manifest.wasm).toEqual(
      expect.arrayContaining([{ entrypoint: "authz/allow", module: "/policy.wasm" }]),
    );
  });

  it("signs the bundle with --signing-key", async () => {
    const repo = await createRepo({ examplePolicies: true });
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    await writeFile(
      path.join(repo.dir, "..", `${path.basename(repo.dir)}-key.pem`),
      privateKey.export({ type: "pkcs8", format: "pem" }),
    );
    const built = await runCli(
      ["build", "--signing-key", `../${path.basename(repo.dir)}-key.pem`, "--json"],
      { cwd: repo.dir },
    );
    expect(built.exitCode, built.stderr).toBe(0);
    const bundle = path.join(repo.dir, JSON.parse(built.stdout).bundle);
    expect(tarList(bundle)).toContain(".signatures.json");
    const signatures = JSON.parse(tarRead(bundle, "/.signatures.json"));
    expect(signatures.signatures).toHaveLength(1);
  });

  it("check names each unformatted file and each strict error", async () => {
    const repo = await createRepo({ examplePolicies: true });
    await repo.write("policies/ugly.rego", "package ugly\nallow    if input.a==1\n");
    repo.commit("ugly");
    const checked = await runCli(["check"], { cwd: repo.dir });
    expect(checked.exitCode).toBe(1);
    expect(checked.stdout).toContain("UNFORMATTED policies/ugly.rego");
    expect(expectOneLineError(checked)).toContain("not formatted: policies/ugly.rego");

    await repo.write("policies/ugly.rego", "package ugly\n\nallow if {\n\tx := 1\n\tinput.a == 1\n}\n");
    repo.commit("unused variable");
    const strict = await runCli(["check", "--json"], { cwd: repo.dir });
    expect(strict.exitCode).toBe(1);
    expect(JSON.parse(strict.stdout).errors[0]).toMatchObject({ file: "policies/ugly.rego", row: 4 });
  });
});
