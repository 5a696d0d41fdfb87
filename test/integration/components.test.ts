import { execFileSync } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningOpa, startOpaServer } from "../helpers/opa-server.ts";
import { createBucket, minio, s3Client } from "../helpers/s3.ts";
import { pinnedOpaVersion, toolPath } from "../helpers/tools.ts";

describe("real components", () => {
  it("opa on the test PATH is the pinned release", () => {
    const output = execFileSync(toolPath("opa"), ["version"], { encoding: "utf8" });
    expect(output).toMatch(new RegExp(`^Version: ${pinnedOpaVersion().replaceAll(".", "\\.")}$`, "m"));
    // A stub printing a version would not evaluate Rego.
    const evaluated = execFileSync(toolPath("opa"), ["eval", "--format", "raw", "sum([1, 2, 39])"], {
      encoding: "utf8",
    });
    expect(evaluated.trim()).toBe("42");
  });

  it("MinIO stores and returns an object through @aws-sdk/client-s3", async () => {
    const client = s3Client();
    const bucket = await createBucket(client);
    const body = `round trip ${Date.now()}`;
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: "a/b.txt", Body: body }));
    const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: "a/b.txt" }));
    expect(await got.Body?.transformToString()).toBe(body);
  });

  it("MinIO verifies SigV4 signatures and refuses a wrong secret", async () => {
    const { endpoint, accessKeyId, region } = minio();
    const bucket = await createBucket();
    const impostor = new S3Client({
      endpoint,
      region,
      forcePathStyle: true,
      credentials: { accessKeyId, secretAccessKey: "not-the-secret" },
    });
    await expect(
      impostor.send(new PutObjectCommand({ Bucket: bucket, Key: "x", Body: "x" })),
    ).rejects.toMatchObject({ name: "SignatureDoesNotMatch" });
  });

  describe("an OPA server", () => {
    let opa: RunningOpa;
    beforeAll(async () => {
      const dir = await mkdtemp(path.join(os.tmpdir(), "policyship-opa-"));
      await writeFile(
        path.join(dir, "example.rego"),
        'package example\n\ngreeting := sprintf("hello, %s", [input.name])\n',
      );
      opa = await startOpaServer([dir]);
    });
    afterAll(() => opa?.stop());

    it("answers a query with the policy's result", async () => {
      const response = await fetch(`${opa.url}/v1/data/example/greeting`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ input: { name: "policyship" } }),
      });
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ result: "hello, policyship" });
    });
  });
});
