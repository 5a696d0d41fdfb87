import { chmod, mkdtemp, readdir, readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.ts";
import { createRepo } from "../helpers/git-repo.ts";
import { awsEnv, createBucket, minio } from "../helpers/s3.ts";
import { repoRoot, toolPath } from "../helpers/tools.ts";

const SECRET = "SENTINEL-hs256-verification-secret-7a2f";

/**
 * An `opa` first on PATH that writes each argv to a log, and the files it was pointed at, before running
 * the real one: what any user of the machine could read in /proc/<pid>/cmdline.
 */
async function recordingOpa(): Promise<{ dir: string; log: string; path: string }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "policyship-opa-argv-"));
  const log = path.join(dir, "argv.log");
  const script = path.join(dir, "opa");
  await writeFile(script, `#!/bin/sh\nprintf '%s\\n' "$*" >> '${log}'\nexec '${toolPath("opa")}' "$@"\n`);
  await chmod(script, 0o755);
  await writeFile(log, "");
  const toolsBin = path.join(repoRoot, ".tools/bin");
  return { dir, log, path: `${dir}${path.delimiter}${toolsBin}${path.delimiter}${process.env.PATH ?? ""}` };
}

async function releasedWithHmac() {
  const repo = await createRepo({ examplePolicies: true });
  const bucket = await createBucket();
  const store = ["--bucket", bucket, "--endpoint", minio().endpoint];
  const built = await runCli(["build", "--signing-alg", "HS256"], {
    cwd: repo.dir,
    env: { ...awsEnv(), POLICYSHIP_SIGNING_KEY: SECRET },
  });
  expect(built.exitCode, built.stderr).toBe(0);
  const published = await runCli(["publish", ...store], { cwd: repo.dir, env: awsEnv() });
  expect(published.exitCode, published.stderr).toBe(0);
  return { repo, store, revision: repo.git("rev-parse", "HEAD") };
}

describe("an HMAC verification key never reaches opa's argv or an error", () => {
  it("verify and rollback hand it to opa as a file, and check the signature with it", async () => {
    const { repo, store, revision } = await releasedWithHmac();
    const opa = await recordingOpa();
    const env = {
      ...awsEnv(),
      PATH: opa.path,
      POLICYSHIP_SIGNING_ALG: "HS256",
      POLICYSHIP_VERIFICATION_KEY: SECRET,
    };
    const flags = ["--key-id", "release"];
    const verified = await runCli(["verify", revision, ...store, ...flags, "--json"], { cwd: repo.dir, env });
    expect(verified.exitCode, verified.stderr).toBe(0);
    expect(JSON.parse(verified.stdout).signatureVerified).toBe(true);
    const rolledBack = await runCli(["rollback", revision, ...store, ...flags], { cwd: repo.dir, env });
    expect(rolledBack.exitCode, rolledBack.stderr).toBe(0);
    // Given as a flag it still reaches opa as a file, with one warning that the flag itself is readable.
    const { POLICYSHIP_VERIFICATION_KEY: _key, ...flagEnv } = env;
    const flagged = await runCli(["rollback", revision, ...store, ...flags, "--verification-key", SECRET], {
      cwd: repo.dir,
      env: flagEnv,
    });
    expect(flagged.exitCode, flagged.stderr).toBe(0);
    expect(flagged.stderr.match(/the verification key was given on the command line/g)).toHaveLength(1);
    const argv = await readFile(opa.log, "utf8");
    expect(argv).toContain("--verification-key");
    expect(argv).not.toContain(SECRET);
    for (const text of [
      verified.stdout,
      verified.stderr,
      rolledBack.stdout,
      rolledBack.stderr,
      flagged.stderr,
    ]) {
      expect(text).not.toContain(SECRET);
    }
    // The file opa read is gone once the command is done.
    const leftover = (await readdir(os.tmpdir())).filter((name) => name.startsWith("policyship-key-"));
    for (const name of leftover) {
      const files = await readdir(path.join(os.tmpdir(), name)).catch(() => []);
      expect(files).not.toContain("verification-key");
    }
  });

  it("a wrong secret fails verify with one line that shows no key", async () => {
    const { repo, store, revision } = await releasedWithHmac();
    const opa = await recordingOpa();
    const wrong = `${SECRET}-wrong`;
    const result = await runCli(["verify", revision, ...store, "--key-id", "release"], {
      cwd: repo.dir,
      env: {
        ...awsEnv(),
        PATH: opa.path,
        POLICYSHIP_SIGNING_ALG: "HS256",
        POLICYSHIP_VERIFICATION_KEY: wrong,
      },
    });
    expect(result.exitCode, result.stderr).toBe(1);
    expect(result.stderr).toMatch(/policyship: the bundle's signature does not verify/);
    expect(result.stderr).not.toContain(SECRET);
    expect(await readFile(opa.log, "utf8")).not.toContain(SECRET);
  });

  it("config and verify never echo key material they cannot use", async () => {
    const repo = await createRepo({ examplePolicies: true });
    const env = { ...awsEnv(), POLICYSHIP_VERIFICATION_KEY: SECRET };
    const store = ["--bucket", "acme", "--region", "eu-west-1"];
    const results = [
      await runCli(["config", "--revision", "r1", ...store, "--key-id", "k"], { cwd: repo.dir, env }),
      await runCli(["rollback", "0".repeat(40), ...store, "--key-id", "k"], { cwd: repo.dir, env }),
      await runCli(["config", "--revision", "r1", ...store, "--key-id", "k", "--verification-key", SECRET], {
        cwd: repo.dir,
        env: awsEnv(),
      }),
    ];
    for (const result of results) {
      expect(result.exitCode).toBe(2);
      expect(result.stderr).toMatch(
        /policyship: (--verification-key|POLICYSHIP_VERIFICATION_KEY) \(the value, not shown\) cannot be read/,
      );
      expect(result.stderr).not.toContain(SECRET);
    }
  });
});
