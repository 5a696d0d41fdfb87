import { mkdir, mkdtemp, readdir, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { expectOneLineError, runCli } from "../helpers/cli.ts";
import { createRepo } from "../helpers/git-repo.ts";

/** How build names a bundle; the refusals are in the bad-input catalogue. */
describe("the bundle revision", () => {
  it("outside a git repository is whatever --revision says", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "policyship-nogit-"));
    await mkdir(path.join(dir, "policies"));
    await writeFile(path.join(dir, "policies/a.rego"), "package a\n\nx := 1\n");
    const named = await runCli(["build", "--revision", "v1.2.3", "--json"], { cwd: dir });
    expect(named.exitCode, named.stderr).toBe(0);
    expect(JSON.parse(named.stdout)).toMatchObject({ revision: "v1.2.3", bundle: "dist/v1.2.3.tar.gz" });
    expect(JSON.parse(named.stdout)).not.toHaveProperty("git");
  });

  it("with uncommitted changes and --allow-dirty is <sha>-dirty", async () => {
    const dirty = await createRepo({ examplePolicies: true });
    await dirty.write("policies/new.rego", "package new\n\nx := 1\n");
    const allowed = await runCli(["build", "--allow-dirty", "--json"], { cwd: dirty.dir });
    expect(allowed.exitCode, allowed.stderr).toBe(0);
    expect(JSON.parse(allowed.stdout).revision).toBe(`${dirty.git("rev-parse", "HEAD")}-dirty`);
  });

  it("ignores changes outside the policies and the config file", async () => {
    const other = await createRepo({ examplePolicies: true });
    await other.write("src/app.js", "console.log('not policy')\n");
    const result = await runCli(["build", "--json"], { cwd: other.dir });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout).revision).toBe(other.git("rev-parse", "HEAD"));
    expect(await readdir(path.join(other.dir, "dist"))).toHaveLength(2);
  });

  it("counts a changed policyship.yaml as dirty", async () => {
    const repo = await createRepo({ examplePolicies: true });
    await repo.write("policyship.yaml", "out: dist\n");
    repo.commit("settings");
    await repo.write("policyship.yaml", "out: dist\noptimize: 0\n");
    const result = await runCli(["build"], { cwd: repo.dir });
    expect(result.exitCode).toBe(2);
    expect(expectOneLineError(result)).toBe(
      "policyship: policyship.yaml, whose settings decide how the bundle is built, has uncommitted changes — commit policyship.yaml or pass --allow-dirty to build a <sha>-dirty revision that publish refuses",
    );
  });

  it("names each changed policy file once, with why, and the settings apart from the bundle", async () => {
    const repo = await createRepo({ examplePolicies: true });
    await repo.write("policyship.yaml", "out: dist\n");
    repo.commit("settings");
    await repo.write("policyship.yaml", "out: dist\noptimize: 0\n");
    await repo.write("policies/wip.rego", "package wip\n\nx := 1\n");
    await repo.write("policies/authz.rego", "package authz\n\nallow := true\n");
    const result = await runCli(["build"], { cwd: repo.dir });
    expect(result.exitCode).toBe(2);
    expect(expectOneLineError(result)).toBe(
      "policyship: uncommitted changes in what goes into the bundle: policies/authz.rego (differs from HEAD), policies/wip.rego (not committed); policyship.yaml, whose settings decide how the bundle is built, has uncommitted changes — commit them, add them to --ignore, or pass --allow-dirty to build a <sha>-dirty revision that publish refuses",
    );
  });
});

describe("the bundle test picks by default", () => {
  it("is HEAD's build, even with uncommitted changes since", async () => {
    const repo = await createRepo({ examplePolicies: true });
    expect((await runCli(["build"], { cwd: repo.dir })).exitCode).toBe(0);
    await repo.write("policies/wip.rego", "package wip\n\nx := 1\n");
    const tested = await runCli(["test"], { cwd: repo.dir });
    expect(tested.exitCode, tested.stderr).toBe(0);
    expect(tested.stderr).toContain(`testing dist/${repo.git("rev-parse", "HEAD")}.tar.gz`);
    const dirty = await runCli(["test", "--allow-dirty"], { cwd: repo.dir });
    expect(dirty.exitCode).toBe(2);
    expect(dirty.stderr).toMatch(/no bundle built for revision [0-9a-f]{40}-dirty/);
  });
});
