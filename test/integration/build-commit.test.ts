import { mkdtemp, readdir, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { expectOneLineError, runCli } from "../helpers/cli.ts";
import { createRepo } from "../helpers/git-repo.ts";

/** The bundle is exactly the commit: whatever git status misses, build compares bytes with HEAD's tree. */
describe("what is built is what the commit holds", () => {
  it("an --out outside the repository does not make an edited policy look clean", async () => {
    const repo = await createRepo({ examplePolicies: true });
    const { readFile } = await import("node:fs/promises");
    const original = await readFile(path.join(repo.dir, "policies/authz.rego"), "utf8");
    await repo.write("policies/authz.rego", `${original}\n# an edit that was never committed\n`);
    const outside = await mkdtemp(path.join(os.tmpdir(), "policyship-out-"));
    const result = await runCli(["build", "--out", outside], { cwd: repo.dir });
    expect(result.exitCode).toBe(2);
    expect(expectOneLineError(result)).toMatch(
      /uncommitted changes in what goes into the bundle: policies\/authz\.rego/,
    );
    expect(await readdir(outside)).toEqual([]);
    const dirty = await runCli(["build", "--out", outside, "--allow-dirty", "--json"], { cwd: repo.dir });
    expect(dirty.exitCode, dirty.stderr).toBe(0);
    expect(JSON.parse(dirty.stdout).revision).toMatch(/-dirty$/);
  });

  it("a git failure is exit 2 with git's own error, never clean", async () => {
    const repo = await createRepo({ examplePolicies: true });
    await writeFile(path.join(repo.dir, ".git/index"), "not an index");
    const result = await runCli(["build"], { cwd: repo.dir });
    expect(result.exitCode).toBe(2);
    expect(expectOneLineError(result)).toMatch(
      /git could not tell whether the policies are committed: .*index/,
    );
    expect(await readdir(repo.dir)).not.toContain("dist");
  });

  it("an edit git status does not report (assume-unchanged) makes the build dirty", async () => {
    const repo = await createRepo({ examplePolicies: true });
    repo.git("update-index", "--assume-unchanged", "policies/data.json");
    await repo.write("policies/data.json", '{"users": {"mallory": {"key": "m", "roles": ["admin"]}}}\n');
    expect(repo.git("status", "--porcelain")).toBe("");
    const result = await runCli(["build"], { cwd: repo.dir });
    expect(result.exitCode).toBe(2);
    expect(expectOneLineError(result)).toContain("policies/data.json (differs from HEAD)");
  });

  it("a gitignored file under policies/ makes the build dirty unless --ignore leaves it out", async () => {
    const repo = await createRepo({ examplePolicies: true });
    await repo.write(".gitignore", "policies/local/\n");
    repo.commit("ignore local overrides");
    await repo.write("policies/local/data.json", '{"override": true}\n');
    expect(repo.git("status", "--porcelain")).toBe("");
    const result = await runCli(["build"], { cwd: repo.dir });
    expect(result.exitCode).toBe(2);
    expect(expectOneLineError(result)).toContain("policies/local/data.json (not committed)");
    const ignored = await runCli(["build", "--ignore", "local", "--json"], { cwd: repo.dir });
    expect(ignored.exitCode, ignored.stderr).toBe(0);
    expect(JSON.parse(ignored.stdout).files).not.toContain("local/data.json");
  });

  it("a committed tree builds clean, from the repository root or a subdirectory", async () => {
    const repo = await createRepo({ examplePolicies: true });
    const sha = repo.git("rev-parse", "HEAD");
    const atRoot = await runCli(["build", "--json"], { cwd: repo.dir });
    expect(atRoot.exitCode, atRoot.stderr).toBe(0);
    expect(JSON.parse(atRoot.stdout).revision).toBe(sha);
    const inside = await runCli(["build", "--policies", ".", "--out", "../dist-sub", "--json"], {
      cwd: path.join(repo.dir, "policies"),
    });
    expect(inside.exitCode, inside.stderr).toBe(0);
    expect(JSON.parse(inside.stdout).revision).toBe(sha);
  });
});
