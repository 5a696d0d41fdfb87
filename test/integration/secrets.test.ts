import { mkdtemp, readdir, readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { type CliResult, runCli } from "../helpers/cli.ts";
import { createRepo } from "../helpers/git-repo.ts";
import { awsEnv, createBucket, minio } from "../helpers/s3.ts";

const SENTINEL_SECRET = "SENTINEL-secret-3f9a1c7e5b2d";
const SENTINEL_TOKEN = "SENTINEL-session-token-8c4e2a6f";
const SENTINEL_HMAC = "SENTINEL-hmac-signing-secret-51d7";

async function everythingWritten(dir: string, results: CliResult[], files: string[]): Promise<string> {
  const texts = results.map((r) => r.stdout + r.stderr);
  for (const file of files) texts.push(await readFile(file, "utf8").catch(() => ""));
  const dist = path.join(dir, "dist");
  for (const name of await readdir(dist).catch(() => [] as string[])) {
    if (!name.endsWith(".tar.gz")) texts.push(await readFile(path.join(dist, name), "utf8"));
  }
  return texts.join("\n");
}

describe("secrets never appear in output", () => {
  it("not MinIO's real secret, through a verbose release in Actions with its summary, outputs and config", async () => {
    const repo = await createRepo({ examplePolicies: true });
    const bucket = await createBucket();
    const scratch = await mkdtemp(path.join(os.tmpdir(), "policyship-secrets-"));
    const summary = path.join(scratch, "summary");
    const outputs = path.join(scratch, "outputs");
    await writeFile(summary, "");
    await writeFile(outputs, "");
    const env = { ...awsEnv(), GITHUB_ACTIONS: "true", GITHUB_STEP_SUMMARY: summary, GITHUB_OUTPUT: outputs };
    const store = ["--bucket", bucket, "--endpoint", minio().endpoint, "--verbose"];
    const results = [
      await runCli(["release", ...store], { cwd: repo.dir, env }),
      await runCli(["release", ...store, "--json"], { cwd: repo.dir, env }),
      await runCli(["list", ...store], { cwd: repo.dir, env }),
      await runCli(["doctor", ...store], { cwd: repo.dir, env }),
      await runCli(["rollback", repo.git("rev-parse", "HEAD"), ...store], { cwd: repo.dir, env }),
    ];
    for (const result of results) expect(result.exitCode, result.stderr).toBe(0);
    const written = await everythingWritten(repo.dir, results, [summary, outputs]);
    expect(written).toContain("policyship release");
    expect(written).not.toContain(minio().secretAccessKey);
  });

  it("not sentinel credentials that S3 rejects, with --verbose stack traces", async () => {
    const repo = await createRepo({ examplePolicies: true });
    const bucket = await createBucket();
    const env = { ...awsEnv(), AWS_SECRET_ACCESS_KEY: SENTINEL_SECRET, AWS_SESSION_TOKEN: SENTINEL_TOKEN };
    const store = ["--bucket", bucket, "--endpoint", minio().endpoint, "--verbose"];
    const results = [
      await runCli(["release", ...store], { cwd: repo.dir, env }),
      await runCli(["list", ...store, "--json"], { cwd: repo.dir, env }),
      await runCli(["verify", "0".repeat(40), ...store], { cwd: repo.dir, env }),
      await runCli(["doctor", ...store], { cwd: repo.dir, env }),
    ];
    for (const result of results) expect(result.exitCode).not.toBe(0);
    const written = await everythingWritten(repo.dir, results, []);
    expect(written).toMatch(/rejected|denied|InvalidToken|credentials/i);
    expect(written).not.toContain(SENTINEL_SECRET);
    expect(written).not.toContain(SENTINEL_TOKEN);
  });

  it("not an HMAC signing secret given as a flag, nor in the build metadata", async () => {
    const repo = await createRepo({ examplePolicies: true });
    const result = await runCli(
      ["build", "--signing-alg", "HS256", "--signing-key", SENTINEL_HMAC, "--verbose", "--json"],
      {
        cwd: repo.dir,
      },
    );
    expect(result.exitCode, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout).files).toContain(".signatures.json");
    const written = await everythingWritten(repo.dir, [result], []);
    expect(written).not.toContain(SENTINEL_HMAC);
  });

  it("not in the rendered OPA config, which names the credential provider only", async () => {
    const repo = await createRepo({ examplePolicies: true });
    const result = await runCli(
      ["config", "--bucket", "acme-policies", "--region", "eu-west-1", "--format", "json"],
      {
        cwd: repo.dir,
        env: { AWS_ACCESS_KEY_ID: "AKIASENTINEL", AWS_SECRET_ACCESS_KEY: SENTINEL_SECRET },
      },
    );
    expect(result.exitCode, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout).services.bundles.credentials).toEqual({
      s3_signing: { environment_credentials: {} },
    });
    expect(result.stdout).not.toContain(SENTINEL_SECRET);
    expect(result.stdout).not.toContain("AKIASENTINEL");
  });
});
