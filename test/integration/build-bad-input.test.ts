import { chmod, mkdir, readdir, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { expectOneLineError, runCli } from "../helpers/cli.ts";
import { createRepo, type TempRepo } from "../helpers/git-repo.ts";

let repo: TempRepo;
beforeAll(async () => {
  repo = await createRepo({ examplePolicies: true });
});

async function expectNothingWritten(dir: string) {
  expect(await readdir(path.join(dir, "dist")).catch(() => [])).toEqual([]);
}

describe("build and test refuse bad input with one line and the contract's exit code", () => {
  it("outside a git repository without --revision (2)", async () => {
    const dir = await import("node:fs/promises").then((fs) =>
      fs.mkdtemp(path.join(os.tmpdir(), "policyship-nogit-")),
    );
    await mkdir(path.join(dir, "policies"));
    await writeFile(path.join(dir, "policies/a.rego"), "package a\n\nx := 1\n");
    const result = await runCli(["build"], { cwd: dir });
    expect(result.exitCode).toBe(2);
    expect(expectOneLineError(result)).toMatch(/is not a git repository.*--revision/);
    await expectNothingWritten(dir);
    const named = await runCli(["build", "--revision", "v1.2.3"], { cwd: dir });
    expect(named.exitCode, named.stderr).toBe(0);
  });

  it("uncommitted changes (2), and --allow-dirty builds <sha>-dirty", async () => {
    const dirty = await createRepo({ examplePolicies: true });
    await dirty.write("policies/new.rego", "package new\n\nx := 1\n");
    const result = await runCli(["build"], { cwd: dirty.dir });
    expect(result.exitCode).toBe(2);
    expect(expectOneLineError(result)).toContain(
      "uncommitted changes in what goes into the bundle: policies/new.rego",
    );
    await expectNothingWritten(dirty.dir);
    const allowed = await runCli(["build", "--allow-dirty", "--json"], { cwd: dirty.dir });
    expect(allowed.exitCode, allowed.stderr).toBe(0);
    expect(JSON.parse(allowed.stdout).revision).toBe(`${dirty.git("rev-parse", "HEAD")}-dirty`);
  });

  it("changes outside the policies do not make the bundle dirty", async () => {
    const other = await createRepo({ examplePolicies: true });
    await other.write("src/app.js", "console.log('not policy')\n");
    const result = await runCli(["build"], { cwd: other.dir });
    expect(result.exitCode, result.stderr).toBe(0);
  });

  const cases: {
    name: string;
    args: string[];
    code: number;
    line: RegExp;
    setup?: (dir: string) => Promise<void>;
  }[] = [
    {
      name: "missing policies dir",
      args: ["build", "--policies", "nope"],
      code: 2,
      line: /policies directory nope does not exist/,
    },
    {
      name: "empty policies dir",
      args: ["build", "--policies", "empty"],
      code: 2,
      line: /has no \.rego or data files/,
      setup: (dir) => mkdir(path.join(dir, "empty"), { recursive: true }).then(() => undefined),
    },
    { name: "unknown flag", args: ["build", "--frobnicate"], code: 2, line: /unknown option '--frobnicate'/ },
    {
      name: "unsafe revision",
      args: ["build", "--revision", "a/b"],
      code: 2,
      line: /--revision: must be 1–128 characters/,
    },
    {
      name: "revision too long",
      args: ["build", "--revision", "x".repeat(129)],
      code: 2,
      line: /--revision/,
    },
    {
      name: "--optimize without entrypoint",
      args: ["build", "-O", "1"],
      code: 2,
      line: /--optimize 1 needs at least one entrypoint/,
    },
    {
      name: "missing signing key",
      args: ["build", "--signing-key", "missing.pem"],
      code: 2,
      line: /--signing-key missing\.pem cannot be read/,
    },
    {
      name: "opa missing",
      args: ["build", "--opa", "/nonexistent/opa"],
      code: 2,
      line: /opa not found.*brew.*setup-opa.*go install github\.com\/open-policy-agent\/opa@latest/,
    },
    {
      name: "opa older than 1.0",
      args: ["build", "--opa", "old-opa"],
      code: 2,
      line: /opa 0\.70\.0 .* is too old; policyship needs OPA >= 1\.0/,
      setup: async (dir) => {
        await writeFile(path.join(dir, "old-opa"), '#!/bin/sh\necho "Version: 0.70.0"\n');
        await chmod(path.join(dir, "old-opa"), 0o755);
      },
    },
    {
      name: "policyship.yaml with a YAML error",
      args: ["build", "--config", "bad-syntax.yaml"],
      code: 2,
      line: /bad-syntax\.yaml is not valid YAML: .*at line \d+, column \d+/,
      setup: (dir) => writeFile(path.join(dir, "bad-syntax.yaml"), "out: dist\npolicies: [oops\n"),
    },
    {
      name: "policyship.yaml with a schema error",
      args: ["build", "--config", "bad-schema.yaml"],
      code: 2,
      line: /bad-schema\.yaml: optimize: .*expected number/i,
      setup: (dir) => writeFile(path.join(dir, "bad-schema.yaml"), "optimize: high\n"),
    },
    {
      name: "test without a built bundle",
      args: ["test"],
      code: 2,
      line: /no bundle built for revision [0-9a-f]{40}.*policyship build/,
    },
  ];

  for (const testCase of cases) {
    it(`${testCase.name} (${testCase.code})`, async () => {
      await testCase.setup?.(repo.dir);
      const result = await runCli(testCase.args, { cwd: repo.dir });
      expect(result.exitCode, result.stderr).toBe(testCase.code);
      expect(expectOneLineError(result)).toMatch(testCase.line);
      expect(result.stdout).toBe("");
      await expectNothingWritten(repo.dir);
    });
  }

  it("a Rego syntax error names file:line and leaves nothing in --out (1)", async () => {
    const broken = await createRepo({ examplePolicies: true });
    await broken.write("policies/broken.rego", "package broken\n\nallow if {\n\tinput.a ==\n}\n");
    broken.commit("broken");
    const result = await runCli(["build"], { cwd: broken.dir });
    expect(result.exitCode).toBe(1);
    expect(expectOneLineError(result)).toMatch(/policies\/broken\.rego:5: rego_parse_error/);
    await expectNothingWritten(broken.dir);
  });
});
