import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { GetObjectCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import { describe, expect, it } from "vitest";
import { expectOneLineError, runCli } from "../helpers/cli.ts";
import { awsEnv, createBucket, minio, s3Client } from "../helpers/s3.ts";

const REVISION = "c".repeat(40);

/** An out dir holding `<rev>.tar.gz` with the given bytes, as build would leave it (publish only hashes it). */
async function outWith(bytes: Buffer): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "policyship-concurrent-"));
  await mkdir(path.join(dir, "dist"));
  await writeFile(path.join(dir, "dist", `${REVISION}.tar.gz`), bytes);
  return dir;
}

const publish = (cwd: string, bucket: string) =>
  runCli(["publish", "--revision", REVISION, "--bucket", bucket, "--endpoint", minio().endpoint], {
    cwd,
    env: awsEnv(),
  });

async function objects(bucket: string) {
  return (await s3Client().send(new ListObjectsV2Command({ Bucket: bucket }))).Contents ?? [];
}

describe("concurrent publishes of one revision", () => {
  it("with the same content: all exit 0 and there is exactly one object", async () => {
    const bucket = await createBucket();
    const dir = await outWith(randomBytes(64 * 1024));
    const results = await Promise.all(Array.from({ length: 10 }, () => publish(dir, bucket)));
    for (const result of results) expect(result.exitCode, result.stderr).toBe(0);
    expect(results.filter((r) => r.stdout.startsWith("published")).length).toBeGreaterThanOrEqual(1);
    expect(await objects(bucket)).toHaveLength(1);
  });

  it("with different contents: exactly one wins, the rest exit 1, and the object is the winner's bytes", async () => {
    const bucket = await createBucket();
    const contents = Array.from({ length: 10 }, () => randomBytes(64 * 1024));
    const dirs = await Promise.all(contents.map(outWith));
    const results = await Promise.all(dirs.map((dir) => publish(dir, bucket)));
    const winners = results.map((r, i) => ({ r, i })).filter(({ r }) => r.exitCode === 0);
    expect(winners).toHaveLength(1);
    for (const result of results.filter((r) => r.exitCode !== 0)) {
      expect(result.exitCode).toBe(1);
      expect(expectOneLineError(result)).toMatch(/already holds other content .* left untouched/);
    }
    const stored = await s3Client().send(new GetObjectCommand({ Bucket: bucket, Key: `${REVISION}.tar.gz` }));
    const bytes = Buffer.from((await stored.Body?.transformToByteArray()) ?? []);
    expect(bytes.equals(contents[winners[0]?.i ?? -1] as Buffer)).toBe(true);
  });
});
