import { readFile } from "node:fs/promises";
import path from "node:path";
import { CreateBucketCommand, HeadObjectCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectOneLineError, runCli } from "../helpers/cli.ts";
import { createRepo, type TempRepo } from "../helpers/git-repo.ts";
import { type RunningMinio, startMinio } from "../helpers/minio.ts";
import { awsEnv, createBucket, minio, s3Client } from "../helpers/s3.ts";

/** The AWS SDK's own conventions (AWS_ENDPOINT_URL_S3), and a bucket asked for in the wrong region. */

let repo: TempRepo;
let elsewhere: RunningMinio;
beforeAll(async () => {
  repo = await createRepo({ examplePolicies: true });
  elsewhere = await startMinio({ region: "eu-west-1" });
}, 60_000);
afterAll(async () => {
  await elsewhere?.stop();
});

describe("AWS_ENDPOINT_URL_S3 and AWS_ENDPOINT_URL", () => {
  for (const variable of ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]) {
    it(`${variable}: release publishes to that endpoint and points OPA at it too`, async () => {
      const bucket = await createBucket();
      const result = await runCli(["release", "--bucket", bucket, "--json"], {
        cwd: repo.dir,
        env: { ...awsEnv(), [variable]: minio().endpoint },
      });
      expect(result.exitCode, result.stderr).toBe(0);
      const sha = repo.git("rev-parse", "HEAD");
      const head = await s3Client().send(new HeadObjectCommand({ Bucket: bucket, Key: `${sha}.tar.gz` }));
      expect(head.ContentLength).toBeGreaterThan(0);
      const config = await readFile(path.join(repo.dir, JSON.parse(result.stdout).config), "utf8");
      expect(config).toContain(`url: ${minio().endpoint}/${bucket}`);
      expect(config).not.toContain("amazonaws.com");
    });
  }

  it("--endpoint wins over the variable", async () => {
    const result = await runCli(["config", "--bucket", "acme", "--endpoint", "http://127.0.0.1:9"], {
      cwd: repo.dir,
      env: { ...awsEnv(), AWS_ENDPOINT_URL_S3: "http://127.0.0.1:1" },
    });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toContain("url: http://127.0.0.1:9/acme");
  });
});

describe("a bucket asked for in the wrong region", () => {
  it("names the bucket's real region from S3's answer, exit 2, and publishes nothing", async () => {
    const credentials = { accessKeyId: elsewhere.accessKeyId, secretAccessKey: elsewhere.secretAccessKey };
    const client = new S3Client({
      endpoint: elsewhere.endpoint,
      region: "eu-west-1",
      forcePathStyle: true,
      credentials,
    });
    await client.send(new CreateBucketCommand({ Bucket: "acme-eu" }));
    const env = {
      AWS_ACCESS_KEY_ID: elsewhere.accessKeyId,
      AWS_SECRET_ACCESS_KEY: elsewhere.secretAccessKey,
      AWS_REGION: "us-east-1",
    };
    for (const args of [
      ["list", "--bucket", "acme-eu", "--endpoint", elsewhere.endpoint],
      ["release", "--bucket", "acme-eu", "--endpoint", elsewhere.endpoint, "--region", "us-east-1"],
    ]) {
      const result = await runCli(args, { cwd: repo.dir, env });
      expect(result.exitCode, result.stderr).toBe(2);
      expect(expectOneLineError(result)).toBe(
        "policyship: bucket acme-eu is in eu-west-1, not us-east-1 — pass --region eu-west-1 (or set region: eu-west-1 in policyship.yaml)",
      );
    }
    const listed = await client.send(new ListObjectsV2Command({ Bucket: "acme-eu" }));
    expect(listed.Contents ?? []).toEqual([]);
    const right = await runCli(
      ["list", "--bucket", "acme-eu", "--endpoint", elsewhere.endpoint, "--region", "eu-west-1"],
      {
        cwd: repo.dir,
        env,
      },
    );
    expect(right.exitCode, right.stderr).toBe(0);
  });
});
