import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { GetObjectCommand, PutBucketVersioningCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.ts";
import { createRepo, type TempRepo } from "../helpers/git-repo.ts";
import { type RunningOpa, startOpaServer } from "../helpers/opa-server.ts";
import { awsEnv, createBucket, minio, s3Client } from "../helpers/s3.ts";

/**
 * A rendered config names exactly the bytes that were tested and verified. On a versioned bucket the
 * resource carries `?versionId=`, which a real OPA signs and S3 answers with that version only, so an
 * overwrite of the key changes nothing OPA loads. Where no pin exists, doctor and release say so.
 */

const servers: RunningOpa[] = [];
afterAll(async () => {
  await Promise.all(servers.map((server) => server.stop()));
});

// The overwrite adds dave as a reader: a decision that tells the two sets of bytes apart.
const daveReadsOrders = {
  request: { http: { method: "GET", path: "/orders", headers: { "x-api-key": "dave-key" } } },
};

async function decide(opa: RunningOpa): Promise<{ allow: boolean; status?: number }> {
  const response = await fetch(`${opa.url}/v1/data/authz/allow`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ input: daveReadsOrders }),
  });
  return ((await response.json()) as { result: { allow: boolean; status?: number } }).result;
}

async function versionedBucket(): Promise<string> {
  const bucket = await createBucket();
  await s3Client().send(
    new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: "Enabled" } }),
  );
  return bucket;
}

/**
 * What an attacker with write access to the bucket does: other bytes under the same key, built as the same
 * revision, with the original's metadata (so its recorded sha256 is a lie).
 */
async function overwrite(bucket: string, key: string, revision: string) {
  const other = await createRepo({ examplePolicies: true });
  const data = JSON.parse(await readFile(path.join(other.dir, "policies/data.json"), "utf8"));
  data.users.dave = { key: "dave-key", roles: ["reader"] };
  await other.write("policies/data.json", `${JSON.stringify(data, null, 2)}\n`);
  other.commit("dave sneaks in");
  const built = await runCli(["build", "--revision", revision], { cwd: other.dir });
  expect(built.exitCode, built.stderr).toBe(0);
  const original = await s3Client().send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  await original.Body?.transformToByteArray();
  await s3Client().send(
    new PutObjectCommand({
      Bucket: bucket,
      Key: key,
      Body: await readFile(path.join(other.dir, "dist", `${revision}.tar.gz`)),
      Metadata: original.Metadata,
    }),
  );
}

describe("a versioned bucket: the config names the object version that was verified", () => {
  let repo: TempRepo;
  let bucket: string;
  let storeArgs: string[];
  let revision: string;
  const cli = (args: string[]) => runCli(args, { cwd: repo.dir, env: awsEnv() });

  beforeAll(async () => {
    bucket = await versionedBucket();
    repo = await createRepo({ examplePolicies: true });
    revision = repo.git("rev-parse", "HEAD");
    storeArgs = [
      "--bucket",
      bucket,
      "--endpoint",
      minio().endpoint,
      "--polling-min",
      "1",
      "--polling-max",
      "2",
    ];
  });

  it("release and rollback pin ?versionId=, and OPA keeps the tested bytes after the key is overwritten", async () => {
    const released = await cli(["release", ...storeArgs, "--json"]);
    expect(released.exitCode, released.stderr).toBe(0);
    const result = JSON.parse(released.stdout);
    expect(result.unpinned).toBeNull();
    expect(released.stderr).not.toMatch(/warning/);
    const pin = result.published.pin as string;
    expect(pin).toMatch(/^[A-Za-z0-9._-]+$/);
    const releaseConfig = await readFile(path.join(repo.dir, result.config), "utf8");
    expect(releaseConfig).toContain(`resource: ${revision}.tar.gz?versionId=${pin}`);

    const rolled = await cli(["rollback", revision.slice(0, 8), ...storeArgs, "-o", "rollback.yaml"]);
    expect(rolled.exitCode, rolled.stderr).toBe(0);
    expect(await readFile(path.join(repo.dir, "rollback.yaml"), "utf8")).toContain(
      `resource: ${revision}.tar.gz?versionId=${pin}`,
    );

    await overwrite(bucket, `${revision}.tar.gz`, revision);
    const opa = await startOpaServer(["--config-file", path.join(repo.dir, result.config)], {
      env: awsEnv(),
      waitForBundles: true,
    });
    servers.push(opa);
    // The released bytes: dave is unknown.
    expect(await decide(opa)).toMatchObject({ allow: false, status: 401 });

    // The same config naming only the key loads the overwrite, where dave reads.
    const unpinned = path.join(repo.dir, "unpinned.yaml");
    await writeFile(unpinned, releaseConfig.replace(`?versionId=${pin}`, ""));
    const fooled = await startOpaServer(["--config-file", unpinned], { env: awsEnv(), waitForBundles: true });
    servers.push(fooled);
    expect(await decide(fooled)).toMatchObject({ allow: true });
  });

  it("doctor says the bucket pins", async () => {
    const doctor = await cli(["doctor", "--bucket", bucket, "--endpoint", minio().endpoint]);
    expect(doctor.exitCode, doctor.stdout + doctor.stderr).toBe(0);
    expect(doctor.stdout).toMatch(
      /^✓ pinning\s+s3:\/\/\S+\/ is versioned: rendered configs name the object version/m,
    );
  });
});

describe("where the bytes cannot be pinned, doctor and release say so in one line", () => {
  it("an unversioned bucket", async () => {
    const repo = await createRepo({ examplePolicies: true });
    const bucket = await createBucket();
    const store = ["--bucket", bucket, "--endpoint", minio().endpoint];
    const summary = path.join(repo.dir, "summary.md");
    const released = await runCli(["release", ...store, "--json"], {
      cwd: repo.dir,
      env: {
        ...awsEnv(),
        GITHUB_ACTIONS: "true",
        GITHUB_STEP_SUMMARY: summary,
        GITHUB_OUTPUT: path.join(repo.dir, "outputs"),
      },
    });
    expect(released.exitCode, released.stderr).toBe(0);
    expect(await readFile(summary, "utf8")).toMatch(
      /^- \*\*Pin\*\*: none: s3:\u2060?\/\/\S+\/ is not versioned/m,
    );
    const warnings = released.stderr.split("\n").filter((line) => line.startsWith("policyship:"));
    expect(warnings).toEqual([
      expect.stringMatching(
        /^policyship: warning: s3:\/\/\S+\/ is not versioned, so a config names only the key and an overwrite changes what OPA loads — enable versioning on the bucket/,
      ),
    ]);
    const result = JSON.parse(released.stdout);
    expect(result.unpinned).toMatch(/is not versioned/);
    expect(await readFile(path.join(repo.dir, result.config), "utf8")).not.toContain("versionId");

    const doctor = await runCli(["doctor", ...store], { cwd: repo.dir, env: awsEnv() });
    expect(doctor.exitCode, doctor.stdout + doctor.stderr).toBe(0);
    expect(doctor.stdout.split("\n").filter((line) => line.startsWith("! "))).toEqual([
      expect.stringMatching(/^! pinning\s+s3:\/\/\S+\/ is not versioned/),
    ]);
  });

  it("a directory store", async () => {
    const repo = await createRepo({ examplePolicies: true });
    const store = ["--to", "bundles", "--service-url", "http://127.0.0.1:1/bundles"];
    const released = await runCli(["release", ...store], { cwd: repo.dir });
    expect(released.exitCode, released.stderr).toBe(0);
    const warnings = released.stderr.split("\n").filter((line) => line.startsWith("policyship:"));
    expect(warnings).toEqual([expect.stringMatching(/^policyship: warning: \S+ is served by key/)]);
    const doctor = await runCli(["doctor", "--to", "bundles"], { cwd: repo.dir });
    expect(doctor.exitCode, doctor.stdout + doctor.stderr).toBe(0);
    expect(doctor.stdout).toMatch(/^! pinning\s+\S+ is served by key/m);
  });
});
