import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.ts";
import { createRepo, type TempRepo } from "../helpers/git-repo.ts";

/**
 * Adopting policyship on an existing repository: policies that pass opa check but neither opa fmt nor
 * strict mode can still be released with --no-fmt / --no-strict (or fmt: false / strict: false), and the
 * release says what it did not check. The default stays strict.
 */

// Unformatted (a one-line body, no blank line after the package), with an unused import: strict refuses it.
const LEGACY = `package legacy
import data.unused
default allow := false
allow if { input.user == "alice" }
`;
const LEGACY_TEST = `package legacy_test
import data.legacy
test_alice if { legacy.allow with input as {"user": "alice"} }
`;

async function legacyRepo(settings?: string): Promise<TempRepo> {
  const repo = await createRepo();
  await repo.write("policies/legacy.rego", LEGACY);
  await repo.write("policies/legacy_test.rego", LEGACY_TEST);
  if (settings) await repo.write("policyship.yaml", settings);
  repo.commit("legacy policies");
  return repo;
}

describe("checks on a repository that is not yet formatted or strict", () => {
  it("are strict by default: check and release refuse it", async () => {
    const repo = await legacyRepo();
    const checked = await runCli(["check", "--json"], { cwd: repo.dir });
    expect(checked.exitCode).toBe(1);
    const result = JSON.parse(checked.stdout);
    expect(result.skipped).toEqual([]);
    expect(result.unformatted.length + result.errors.length).toBeGreaterThan(0);
    expect(result.errors.map((error: { message: string }) => error.message).join()).toMatch(/unused/);
    const released = await runCli(["release", "--dry-run"], { cwd: repo.dir });
    expect(released.exitCode).toBe(1);
  });

  it("--no-fmt and --no-strict let release pass, and the release says what it did not check", async () => {
    const repo = await legacyRepo();
    const checked = await runCli(["check", "--no-fmt", "--no-strict"], { cwd: repo.dir });
    expect(checked.exitCode, checked.stderr + checked.stdout).toBe(0);
    expect(checked.stdout).toContain("policies: opa check (not strict), opa fmt skipped: pass");
    const summary = path.join(await mkdtemp(path.join(os.tmpdir(), "policyship-summary-")), "summary.md");
    await writeFile(summary, "");
    const released = await runCli(["release", "--dry-run", "--no-fmt", "--no-strict"], {
      cwd: repo.dir,
      env: { GITHUB_ACTIONS: "true", GITHUB_STEP_SUMMARY: summary },
    });
    expect(released.exitCode, released.stderr).toBe(0);
    expect(released.stdout).toContain("  checks   opa check (not strict), opa fmt skipped");
    expect(released.stdout).toContain("1 passed, 0 failed");
    expect(released.stderr).toMatch(/warning: not checked: opa check \(not strict\), opa fmt skipped/);
    expect(await readFile(summary, "utf8")).toContain(
      "- **Checks**: opa check (not strict), opa fmt skipped",
    );
  });

  it("fmt: false and strict: false in policyship.yaml, or POLICYSHIP_FMT, do the same; a flag turns fmt back on", async () => {
    const repo = await legacyRepo("fmt: false\nstrict: false\n");
    const released = await runCli(["release", "--dry-run", "--json"], { cwd: repo.dir });
    expect(released.exitCode, released.stderr).toBe(0);
    expect(JSON.parse(released.stdout).checksSkipped).toEqual(["fmt", "strict"]);
    const onlyFmt = await runCli(["check", "--json", "--no-strict"], {
      cwd: (await legacyRepo()).dir,
      env: { POLICYSHIP_FMT: "false" },
    });
    expect(onlyFmt.exitCode, onlyFmt.stdout).toBe(0);
    expect(JSON.parse(onlyFmt.stdout).skipped).toEqual(["fmt", "strict"]);
    const fmtAgain = await runCli(["check", "--json", "--fmt"], { cwd: repo.dir });
    expect(fmtAgain.exitCode).toBe(1);
    expect(JSON.parse(fmtAgain.stdout).unformatted).toContain("policies/legacy.rego");
  });
});
