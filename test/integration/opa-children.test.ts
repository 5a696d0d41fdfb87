import { chmod, mkdtemp, readdir, readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.ts";
import { createRepo } from "../helpers/git-repo.ts";
import { toolPath } from "../helpers/tools.ts";

const SECRETS = {
  AWS_SECRET_ACCESS_KEY: "SENTINEL-aws-secret-0c1d",
  GITHUB_TOKEN: "SENTINEL-github-token-7e2a",
  ACTIONS_ID_TOKEN_REQUEST_TOKEN: "SENTINEL-oidc-request-9b4f",
};

/** A test that fails on purpose, printing every variable it can read, through opa's own runtime. */
const LEAKY_TEST = `package leak_test

import rego.v1

test_reads_the_environment if {
\tenv := opa.runtime().env
\tprint("leak:", env.AWS_SECRET_ACCESS_KEY, env.GITHUB_TOKEN, env.ACTIONS_ID_TOKEN_REQUEST_TOKEN, env.EXTRA_ALLOWED)
\tenv.AWS_SECRET_ACCESS_KEY == "never"
}
`;

/** Runs the real opa, recording each invocation's argv and environment to a log first. */
async function recordingOpa(): Promise<{ binary: string; log: string }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "policyship-opa-spy-"));
  const log = path.join(dir, "calls.log");
  const binary = path.join(dir, "opa");
  await writeFile(
    binary,
    `#!/bin/sh\n{ echo "ARGV $*"; env | sed 's/^/ENV /'; } >> "${log}"\nexec "${toolPath("opa")}" "$@"\n`,
  );
  await chmod(binary, 0o755);
  return { binary, log };
}

describe("opa children never see the pipeline's secrets", () => {
  it("a failing test policy prints nothing of the environment into output, annotations or the summary", async () => {
    const repo = await createRepo({ examplePolicies: true });
    await repo.write("policies/leak_test.rego", LEAKY_TEST);
    repo.commit("a test that tries to leak");
    const scratch = await mkdtemp(path.join(os.tmpdir(), "policyship-leak-"));
    const summary = path.join(scratch, "summary");
    await writeFile(summary, "");
    const spy = await recordingOpa();
    const env = {
      ...SECRETS,
      EXTRA_ALLOWED: "visible-by-setting",
      POLICYSHIP_OPA_ENV: "EXTRA_ALLOWED",
      GITHUB_ACTIONS: "true",
      GITHUB_STEP_SUMMARY: summary,
    };
    const result = await runCli(["release", "--dry-run", "--opa", spy.binary, "--verbose"], {
      cwd: repo.dir,
      env,
    });
    expect(result.exitCode).toBe(1);
    const written = `${result.stdout}${result.stderr}${await readFile(summary, "utf8")}`;
    expect(written).toContain("::error");
    expect(written).toContain("test_reads_the_environment");
    for (const secret of Object.values(SECRETS)) expect(written).not.toContain(secret);
    // What opa itself was given: no secret in any child's environment, the allowed extra one present.
    const calls = await readFile(spy.log, "utf8");
    expect(calls).toMatch(/^ARGV test /m);
    for (const secret of Object.values(SECRETS)) expect(calls).not.toContain(secret);
    expect(calls).toContain("ENV EXTRA_ALLOWED=visible-by-setting");
    expect(calls).toMatch(/^ENV PATH=/m);
  });

  it("an HMAC signing secret reaches opa through a private file, never its argv, and the file is removed", async () => {
    const repo = await createRepo({ examplePolicies: true });
    const spy = await recordingOpa();
    const secret = "SENTINEL-hmac-argv-5a9c";
    const before = new Set(await readdir(os.tmpdir()));
    const result = await runCli(["build", "--signing-alg", "HS256", "--opa", spy.binary, "--json"], {
      cwd: repo.dir,
      env: { POLICYSHIP_SIGNING_KEY: secret },
    });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout).files).toContain(".signatures.json");
    const calls = await readFile(spy.log, "utf8");
    const build = calls.split("\n").find((line) => line.startsWith("ARGV build")) ?? "";
    expect(build).toMatch(/--signing-key \S*policyship-key-\S*\/signing-key/);
    expect(calls).not.toContain(secret);
    const leftover = (await readdir(os.tmpdir())).filter(
      (name) => !before.has(name) && name.startsWith("policyship-key-"),
    );
    expect(leftover).toEqual([]);
    // The bundle really is signed with that secret: opa verifies it with the same secret.
    const { execFileSync } = await import("node:child_process");
    const keyFile = path.join(repo.dir, "hmac.key");
    await writeFile(keyFile, secret);
    const bundle = path.join(repo.dir, JSON.parse(result.stdout).bundle);
    execFileSync(toolPath("opa"), [
      "build",
      "--bundle",
      bundle,
      "--verification-key",
      keyFile,
      "--signing-alg",
      "HS256",
      "--output",
      path.join(repo.dir, "verified.tar.gz"),
    ]);
  });

  it("a signing key given as PEM text that is not a key is refused without echoing it", async () => {
    const repo = await createRepo({ examplePolicies: true });
    const material =
      "-----BEGIN RSA PRIVATE KEY-----\nSENTINELKEYMATERIAL0123456789abcdef\n-----END RSA PRIVATE KEY-----\n";
    for (const env of [
      { POLICYSHIP_SIGNING_KEY: material },
      { POLICYSHIP_SIGNING_KEY: "SENTINELKEYMATERIAL-not-a-path" },
    ]) {
      const result = await runCli(["build"], { cwd: repo.dir, env });
      expect(result.exitCode).toBe(2);
      expect(result.stderr).toMatch(/policyship: POLICYSHIP_SIGNING_KEY /);
      expect(result.stderr).not.toContain("SENTINELKEYMATERIAL");
    }
    await repo.write("bad.pem", material);
    const fromFile = await runCli(["build", "--signing-key", "bad.pem"], { cwd: repo.dir });
    expect(fromFile.exitCode).toBe(2);
    expect(fromFile.stderr).toContain("--signing-key bad.pem is not a PEM private key for RS256");
    expect(fromFile.stderr).not.toContain("SENTINELKEYMATERIAL");
  });
});
