import { createHash, randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { GetObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectOneLineError, runCli } from "../helpers/cli.ts";
import { awsEnv, createBucket, minio, s3Client } from "../helpers/s3.ts";
import { type S3FaultProxy, startS3FaultProxy } from "../helpers/s3-fault-proxy.ts";

let proxy: S3FaultProxy;
beforeAll(async () => {
  proxy = await startS3FaultProxy(minio().endpoint);
});
afterAll(() => proxy?.close());

let counter = 0;
/** An out dir with a bundle of `size` random bytes for a fresh revision (publish only hashes and uploads it). */
async function bundleOf(size: number) {
  const revision = `fault-${Date.now()}-${counter++}`;
  const dir = await mkdtemp(path.join(os.tmpdir(), "policyship-s3fault-"));
  await mkdir(path.join(dir, "dist"));
  const bytes = randomBytes(size);
  await writeFile(path.join(dir, "dist", `${revision}.tar.gz`), bytes);
  return { dir, revision, sha256: createHash("sha256").update(bytes).digest("hex") };
}

const publishThroughProxy = (dir: string, revision: string, bucket: string) =>
  runCli(["publish", "--revision", revision, "--bucket", bucket, "--endpoint", proxy.url], {
    cwd: dir,
    env: awsEnv(),
  });

async function storedSha(bucket: string, key: string): Promise<string | undefined> {
  try {
    const object = await s3Client().send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return createHash("sha256")
      .update(Buffer.from((await object.Body?.transformToByteArray()) ?? []))
      .digest("hex");
  } catch {
    return undefined;
  }
}

async function leftovers(bucket: string) {
  const [objects, uploads] = await Promise.all([
    s3Client().send(new ListObjectsV2Command({ Bucket: bucket })),
    s3Client().send(new ListMultipartUploadsCommand({ Bucket: bucket })),
  ]);
  return { objects: objects.Contents?.length ?? 0, uploads: uploads.Uploads?.length ?? 0 };
}

const SMALL = 256 * 1024;
const LARGE = 40 * 1024 * 1024; // three 16 MiB parts

describe("publish through S3 faults", () => {
  const survivable = [
    {
      name: "two 503 SlowDown answers",
      rule: (op: string, n: number) => (op === "PutObject" && n <= 2 ? "status-503" : undefined),
    },
    {
      name: "two 500 InternalError answers",
      rule: (op: string, n: number) => (op === "PutObject" && n <= 2 ? "status-500" : undefined),
    },
    {
      name: "two connection resets",
      rule: (op: string, n: number) => (op === "PutObject" && n <= 2 ? "reset" : undefined),
    },
    { name: "a slow answer", rule: (op: string) => (op === "PutObject" ? "delay" : undefined) },
    // MinIO stored the object but the answer was cut: the retry meets 412 and finds its own bytes.
    {
      name: "a truncated answer after the write",
      rule: (op: string, n: number) => (op === "PutObject" && n === 1 ? "truncate" : undefined),
    },
  ] as const;

  for (const fault of survivable) {
    it(`retries ${fault.name} and publishes the exact bytes`, async () => {
      const bucket = await createBucket();
      const bundle = await bundleOf(SMALL);
      proxy.rule = fault.rule;
      try {
        const result = await publishThroughProxy(bundle.dir, bundle.revision, bucket);
        expect(result.exitCode, result.stderr).toBe(0);
        expect(await storedSha(bucket, `${bundle.revision}.tar.gz`)).toBe(bundle.sha256);
      } finally {
        proxy.rule = () => undefined;
      }
    });
  }

  it("gives up after bounded retries with one clear line, leaves nothing, and a later publish succeeds", async () => {
    const bucket = await createBucket();
    const bundle = await bundleOf(SMALL);
    proxy.rule = (op) => (op === "PutObject" ? "status-500" : undefined);
    const started = performance.now();
    const failed = await publishThroughProxy(bundle.dir, bundle.revision, bucket);
    proxy.rule = () => undefined;
    expect(failed.exitCode).toBe(1);
    expect(expectOneLineError(failed)).toMatch(
      /^policyship: S3 refused to upload to s3:\/\/.* InternalError — run again/,
    );
    expect(performance.now() - started).toBeLessThan(30_000);
    expect(await leftovers(bucket)).toEqual({ objects: 0, uploads: 0 });
    const later = await publishThroughProxy(bundle.dir, bundle.revision, bucket);
    expect(later.exitCode, later.stderr).toBe(0);
    expect(await storedSha(bucket, `${bundle.revision}.tar.gz`)).toBe(bundle.sha256);
  });

  it("multipart: a completion that keeps failing is aborted, leaving no parts and no object", async () => {
    const bucket = await createBucket();
    const bundle = await bundleOf(LARGE);
    proxy.rule = (op) => (op === "CompleteMultipartUpload" ? "status-500" : undefined);
    const failed = await publishThroughProxy(bundle.dir, bundle.revision, bucket);
    proxy.rule = () => undefined;
    expect(failed.exitCode).toBe(1);
    expectOneLineError(failed);
    expect(proxy.seen).toContain("AbortMultipartUpload");
    expect(await leftovers(bucket)).toEqual({ objects: 0, uploads: 0 });
    const later = await publishThroughProxy(bundle.dir, bundle.revision, bucket);
    expect(later.exitCode, later.stderr).toBe(0);
    expect(await storedSha(bucket, `${bundle.revision}.tar.gz`)).toBe(bundle.sha256);
  });

  it("multipart: a reset part upload is retried and the object is whole", async () => {
    const bucket = await createBucket();
    const bundle = await bundleOf(LARGE);
    proxy.rule = (op, n) => (op === "UploadPart" && n <= 2 ? "reset" : undefined);
    try {
      const result = await publishThroughProxy(bundle.dir, bundle.revision, bucket);
      expect(result.exitCode, result.stderr).toBe(0);
      expect(await storedSha(bucket, `${bundle.revision}.tar.gz`)).toBe(bundle.sha256);
      expect(await leftovers(bucket)).toEqual({ objects: 1, uploads: 0 });
    } finally {
      proxy.rule = () => undefined;
    }
  });
});

describe("a bundle changed between build and publish", () => {
  async function tampered(size: number) {
    const bundle = await bundleOf(size);
    // Build's record names other bytes than the file now holds.
    await writeFile(
      path.join(bundle.dir, "dist", `${bundle.revision}.json`),
      JSON.stringify({ revision: bundle.revision, sha256: "0".repeat(64), size }),
    );
    return bundle;
  }

  for (const [name, size] of [
    ["in one PutObject", SMALL],
    ["in a multipart upload", LARGE],
  ] as const) {
    it(`is refused ${name}, leaving no object and no parts`, async () => {
      const bucket = await createBucket();
      const bundle = await tampered(size);
      const result = await runCli(
        ["publish", "--revision", bundle.revision, "--bucket", bucket, "--endpoint", minio().endpoint],
        {
          cwd: bundle.dir,
          env: awsEnv(),
        },
      );
      expect(result.exitCode).toBe(1);
      expect(expectOneLineError(result)).toMatch(
        /changed after it was built \(sha256 [0-9a-f]{64}, build recorded 0{64}\)/,
      );
      expect(await leftovers(bucket)).toEqual({ objects: 0, uploads: 0 });
    });
  }

  it("is refused by the directory store too, leaving nothing", async () => {
    const bundle = await tampered(SMALL);
    const store = path.join(bundle.dir, "store");
    const result = await runCli(["publish", "--revision", bundle.revision, "--to", store], {
      cwd: bundle.dir,
    });
    expect(result.exitCode).toBe(1);
    expect(expectOneLineError(result)).toMatch(/changed after it was built/);
    expect(await readdir(store).catch(() => [])).toEqual([]);
  });
});
