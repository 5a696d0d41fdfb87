import { readdir, readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { ListObjectsV2Command } from "@aws-sdk/client-s3";
import { beforeAll, describe, expect, it } from "vitest";
import { expectOneLineError, runCli } from "../helpers/cli.ts";
import { createRepo, type TempRepo } from "../helpers/git-repo.ts";
import { awsEnv, createBucket, minio, s3Client } from "../helpers/s3.ts";

let repo: TempRepo;
let revision: string;
beforeAll(async () => {
  repo = await createRepo({ examplePolicies: true });
  revision = repo.git("rev-parse", "HEAD");
  const built = await runCli(["build"], { cwd: repo.dir });
  expect(built.exitCode, built.stderr).toBe(0);
});

async function keysIn(bucket: string): Promise<string[]> {
  const listed = await s3Client().send(new ListObjectsV2Command({ Bucket: bucket }));
  return (listed.Contents ?? []).map((o) => o.Key ?? "");
}

describe("publish", () => {
  it("to a directory store, idempotently, with metadata beside the object", async () => {
    const dir = path.join(os.tmpdir(), `policyship-store-${path.basename(repo.dir)}`);
    const first = await runCli(["publish", "--to", dir, "--prefix", "bundles"], { cwd: repo.dir });
    expect(first.exitCode, first.stderr).toBe(0);
    expect(first.stdout).toContain("published");
    expect(await readdir(path.join(dir, "bundles"))).toEqual([
      `${revision}.tar.gz`,
      `${revision}.tar.gz.meta.json`,
    ]);
    const meta = JSON.parse(
      await readFile(path.join(dir, "bundles", `${revision}.tar.gz.meta.json`), "utf8"),
    );
    expect(meta).toMatchObject({ revision, "git-ref": "main" });
    const again = await runCli(["publish", "--to", dir, "--prefix", "bundles", "--json"], { cwd: repo.dir });
    expect(again.exitCode, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ created: false, sha256: meta.sha256 });
    const verified = await runCli(["verify", revision, "--to", dir, "--prefix", "bundles"], {
      cwd: repo.dir,
    });
    expect(verified.exitCode, verified.stderr).toBe(0);
    const rendered = await runCli(
      [
        "config",
        "--to",
        dir,
        "--prefix",
        "bundles",
        "--service-url",
        "https://bundles.example.com",
        "--verify",
        "--format",
        "json",
      ],
      { cwd: repo.dir },
    );
    expect(rendered.exitCode, rendered.stderr).toBe(0);
    const config = JSON.parse(rendered.stdout);
    expect(config.services.bundles).toEqual({ url: "https://bundles.example.com" });
    expect(config.bundles.authz.resource).toBe(`bundles/${revision}.tar.gz`);
  });

  it("refuses a -dirty revision (1) and writes nothing", async () => {
    const dirty = await createRepo({ examplePolicies: true });
    await dirty.write("policies/wip.rego", "package wip\n\nx := 1\n");
    const built = await runCli(["build", "--allow-dirty", "--json"], { cwd: dirty.dir });
    const { revision: dirtyRevision } = JSON.parse(built.stdout);
    const bucket = await createBucket();
    const result = await runCli(
      ["publish", "--revision", dirtyRevision, "--bucket", bucket, "--endpoint", minio().endpoint],
      {
        cwd: dirty.dir,
        env: awsEnv(),
      },
    );
    expect(result.exitCode).toBe(1);
    expect(expectOneLineError(result)).toMatch(/refusing to publish [0-9a-f]{40}-dirty/);
    expect(await keysIn(bucket)).toEqual([]);
  });

  it("names a missing bucket (2)", async () => {
    const result = await runCli(
      ["publish", "--bucket", "no-such-bucket-here", "--endpoint", minio().endpoint],
      {
        cwd: repo.dir,
        env: awsEnv(),
      },
    );
    expect(result.exitCode).toBe(2);
    expect(expectOneLineError(result)).toMatch(/bucket no-such-bucket-here does not exist/);
  });

  it("reports missing credentials (2) without touching the bucket", async () => {
    const bucket = await createBucket();
    const result = await runCli(["publish", "--bucket", bucket, "--endpoint", minio().endpoint], {
      cwd: repo.dir,
      env: {
        AWS_ACCESS_KEY_ID: undefined,
        AWS_SECRET_ACCESS_KEY: undefined,
        AWS_PROFILE: undefined,
        AWS_SHARED_CREDENTIALS_FILE: "/nonexistent",
        AWS_CONFIG_FILE: "/nonexistent",
        AWS_EC2_METADATA_DISABLED: "true",
        AWS_REGION: "us-east-1",
      },
    });
    expect(result.exitCode).toBe(2);
    expect(expectOneLineError(result)).toMatch(/no AWS credentials found/);
    expect(await keysIn(bucket)).toEqual([]);
  });

  it("reports rejected credentials (2) and never prints the secret", async () => {
    const bucket = await createBucket();
    const secret = "sentinel-SECRET-value-1234567890";
    const result = await runCli(
      ["publish", "--bucket", bucket, "--endpoint", minio().endpoint, "--verbose"],
      {
        cwd: repo.dir,
        env: { ...awsEnv(), AWS_SECRET_ACCESS_KEY: secret },
      },
    );
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(/credentials were rejected \(SignatureDoesNotMatch\)/);
    expect(result.stdout + result.stderr).not.toContain(secret);
    expect(await keysIn(bucket)).toEqual([]);
  });

  it("reports an unreachable endpoint after bounded retries (1)", async () => {
    const result = await runCli(["publish", "--bucket", "some-bucket", "--endpoint", "http://127.0.0.1:9"], {
      cwd: repo.dir,
      env: awsEnv(),
    });
    expect(result.exitCode).toBe(1);
    expect(expectOneLineError(result)).toMatch(/cannot reach http:\/\/127\.0\.0\.1:9 .* after 4 attempts/);
  });

  it("without a build names the command to run (2)", async () => {
    const fresh = await createRepo({ examplePolicies: true });
    const result = await runCli(["publish", "--bucket", "some-bucket", "--endpoint", minio().endpoint], {
      cwd: fresh.dir,
      env: awsEnv(),
    });
    expect(result.exitCode).toBe(2);
    expect(expectOneLineError(result)).toMatch(
      /no bundle for revision [0-9a-f]{40} .*run policyship build first/,
    );
  });
});

describe("release in GitHub Actions", () => {
  it("writes the outputs and a step summary", async () => {
    const bucket = await createBucket();
    const actions = await createRepo({ examplePolicies: true });
    const outputs = path.join(os.tmpdir(), `${path.basename(actions.dir)}-output`);
    const summary = path.join(os.tmpdir(), `${path.basename(actions.dir)}-summary`);
    await writeFile(outputs, "");
    await writeFile(summary, "");
    const sha = actions.git("rev-parse", "HEAD");
    const result = await runCli(["release", "--bucket", bucket, "--endpoint", minio().endpoint], {
      cwd: actions.dir,
      env: {
        ...awsEnv(),
        GITHUB_ACTIONS: "true",
        GITHUB_OUTPUT: outputs,
        GITHUB_STEP_SUMMARY: summary,
        GITHUB_SHA: sha,
      },
    });
    expect(result.exitCode, result.stderr).toBe(0);
    const written = await readFile(outputs, "utf8");
    expect(written).toContain(`revision=${sha}\n`);
    expect(written).toContain(`key=${sha}.tar.gz\n`);
    expect(written).toContain(`url=s3://${bucket}/${sha}.tar.gz\n`);
    expect(written).toMatch(/^sha256=[0-9a-f]{64}$/m);
    expect(written).toContain(`config=dist/${sha}.opa-config.yaml\n`);
    const markdown = await readFile(summary, "utf8");
    expect(markdown).toContain(`## policyship release ${sha}`);
    expect(markdown).toContain("**Commit**: add example policies");
    expect(markdown).toContain("**Tests**: 13 passed, 0 failed; coverage 100.0%");
    expect(markdown).toContain(`resource: ${sha}.tar.gz`);
  });
});

describe("release --dry-run", () => {
  it("builds, checks and tests without a bucket, and publishes nothing", async () => {
    const dry = await createRepo({ examplePolicies: true });
    const result = await runCli(["release", "--dry-run", "--json"], { cwd: dry.dir });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({
      published: null,
      config: null,
      tests: { passed: 13, failed: 0 },
    });
  });

  it("stops at a failing check before testing or publishing", async () => {
    const ugly = await createRepo({ examplePolicies: true });
    await ugly.write("policies/ugly.rego", "package ugly\nallow    if input.a==1\n");
    ugly.commit("unformatted");
    const bucket = await createBucket();
    const result = await runCli(["release", "--bucket", bucket, "--endpoint", minio().endpoint], {
      cwd: ugly.dir,
      env: awsEnv(),
    });
    expect(result.exitCode).toBe(1);
    expect(expectOneLineError(result)).toContain("not formatted: policies/ugly.rego");
    expect(result.stderr).not.toContain("testing ");
    expect(await keysIn(bucket)).toEqual([]);
  });
});
