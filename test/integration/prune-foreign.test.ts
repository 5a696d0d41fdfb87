import { mkdtemp, readdir, utimes, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectOneLineError, runCli } from "../helpers/cli.ts";
import { createRepo, type TempRepo } from "../helpers/git-repo.ts";
import { startLoopbackProxy } from "../helpers/loopback-proxy.ts";
import { type RunningRegistry, startRegistry } from "../helpers/registry.ts";
import { awsEnv, createBucket, minio, s3Client } from "../helpers/s3.ts";

/** prune counts, plans and deletes only what policyship published; anything else under the prefix stays. */

let repo: TempRepo;
const cli = (args: string[]) => runCli(args, { cwd: repo.dir, env: awsEnv() });

/** Builds and publishes a new commit to the store; returns its revision. */
async function publishRevision(store: string[], message: string) {
  repo.commit(message);
  for (const args of [["build"], ["publish", ...store]]) {
    const step = await cli(args);
    expect(step.exitCode, step.stderr).toBe(0);
  }
  return repo.git("rev-parse", "HEAD");
}

interface Plan {
  delete: { revision: string }[];
  keep: { revision: string; reason: string }[];
  notPublished: { revision: string; key: string; url: string }[];
}

beforeAll(async () => {
  repo = await createRepo({ examplePolicies: true });
}, 60_000);

describe("prune on a directory", () => {
  it("leaves a customer's old .tar.gz alone, says so, and never counts it toward --keep", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "policyship-prune-foreign-"));
    const store = ["--to", dir];
    const older = await publishRevision(store, "older");
    await new Promise((resolve) => setTimeout(resolve, 20));
    const newer = await publishRevision(store, "newer");
    const backup = path.join(dir, "customer-backup-2025.tar.gz");
    await writeFile(backup, "precious\n");
    await utimes(backup, new Date("2025-01-01"), new Date("2025-01-01"));
    // Named like a revision, with metadata that names another: not this revision's publish either.
    const forged = path.join(dir, "cafe.tar.gz");
    await writeFile(forged, "not a bundle\n");
    await writeFile(`${forged}.meta.json`, JSON.stringify({ revision: "beef", sha256: "a".repeat(64) }));
    await utimes(forged, new Date("2025-01-01"), new Date("2025-01-01"));

    const planned = await cli(["prune", ...store, "--keep", "1", "--older-than", "30d"]);
    expect(planned.exitCode, planned.stderr).toBe(0);
    expect(planned.stdout).toContain(`left alone    ${backup}  (not published by policyship`);
    expect(planned.stdout).toContain(`left alone    ${forged}  (not published by policyship`);
    expect(planned.stdout).not.toMatch(/would delete\s+customer-backup-2025/);

    const result = await cli(["prune", ...store, "--keep", "1", "--yes", "--json"]);
    expect(result.exitCode, result.stderr).toBe(0);
    const plan = JSON.parse(result.stdout) as Plan;
    expect(plan.keep).toEqual([expect.objectContaining({ revision: newer, reason: "newest" })]);
    expect(plan.delete.map((entry) => entry.revision)).toEqual([older]);
    expect(plan.notPublished.map((entry) => entry.key).sort()).toEqual([
      "cafe.tar.gz",
      "customer-backup-2025.tar.gz",
    ]);
    const files = await readdir(dir);
    expect(files).toEqual(
      expect.arrayContaining(["customer-backup-2025.tar.gz", "cafe.tar.gz", `${newer}.tar.gz`]),
    );
    expect(files).not.toContain(`${older}.tar.gz`);
  });
});

describe("prune on S3 (MinIO)", () => {
  it("an object without policyship's metadata is neither the newest kept nor deleted", async () => {
    const bucket = await createBucket();
    const store = ["--bucket", bucket, "--endpoint", minio().endpoint];
    const older = await publishRevision(store, "older on S3");
    // S3 listings carry whole seconds.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const newer = await publishRevision(store, "newer on S3");
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const s3 = s3Client();
    await s3.send(
      new PutObjectCommand({ Bucket: bucket, Key: "customer-backup-2025.tar.gz", Body: "precious\n" }),
    );
    await s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: "cafe.tar.gz",
        Body: "x",
        Metadata: { revision: "cafe" }, // no sha256: not what publish writes
      }),
    );

    const result = await cli(["prune", ...store, "--keep", "1", "--yes", "--json"]);
    expect(result.exitCode, result.stderr).toBe(0);
    const plan = JSON.parse(result.stdout) as Plan;
    expect(plan.keep).toEqual([expect.objectContaining({ revision: newer, reason: "newest" })]);
    expect(plan.delete.map((entry) => entry.revision)).toEqual([older]);
    expect(plan.notPublished.map((entry) => entry.url).sort()).toEqual([
      `s3://${bucket}/cafe.tar.gz`,
      `s3://${bucket}/customer-backup-2025.tar.gz`,
    ]);
    const kept = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: "customer-backup-2025.tar.gz" }));
    expect(await kept.Body?.transformToString()).toBe("precious\n");
    const listed = await cli(["list", ...store, "--json"]);
    expect(listed.stdout).toContain(newer);
    expect(listed.stdout).not.toContain(older);
  });
});

describe("prune reads each object again right before deleting it", () => {
  it("an object whose metadata is gone by then stays, and prune stops saying so", async () => {
    const bucket = await createBucket();
    const direct = ["--bucket", bucket, "--endpoint", minio().endpoint];
    const older = await publishRevision(direct, "older, rewritten during the prune");
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await publishRevision(direct, "newer, kept");
    // In front of MinIO: from the second look at the older object on, it answers without publish's metadata,
    // as if someone had replaced it after prune planned.
    let looks = 0;
    const proxy = await startLoopbackProxy(minio().endpoint, ({ req, res, forward }) => {
      const rewritten = req.method === "HEAD" && req.url?.includes(`${older}.tar.gz`) && ++looks >= 2;
      if (!rewritten) return forward({ host: "keep" });
      forward({
        host: "keep",
        onAnswer: (answer) => {
          const headers = Object.fromEntries(
            Object.entries(answer.headers).filter(([name]) => !name.startsWith("x-amz-meta-")),
          );
          res.writeHead(answer.statusCode ?? 502, headers).end();
          answer.resume();
        },
      });
    });
    try {
      const result = await cli([
        "prune",
        "--bucket",
        bucket,
        "--endpoint",
        proxy.url,
        "--keep",
        "1",
        "--yes",
      ]);
      expect(result.exitCode, result.stderr).toBe(1);
      expect(expectOneLineError(result)).toMatch(
        new RegExp(
          `${older}\\.tar\\.gz no longer carries the metadata policyship publishes for ${older}, so it stays; nothing deleted`,
        ),
      );
    } finally {
      await proxy.close();
    }
    const listed = await cli(["list", ...direct, "--json"]);
    expect(listed.stdout).toContain(older);
  });
});

describe("prune on an OCI registry", () => {
  const MANIFEST = "application/vnd.oci.image.manifest.v1+json";
  let registry: RunningRegistry | undefined;
  afterAll(async () => {
    await registry?.stop();
  });

  it("a tag whose manifest carries no policyship annotations is left alone", async () => {
    registry = await startRegistry();
    const store = ["--store", `oci://${registry.host}/acme/policies`];
    const older = await publishRevision(store, "older on OCI");
    await new Promise((resolve) => setTimeout(resolve, 20));
    const newer = await publishRevision(store, "newer on OCI");
    const base = `http://${registry.host}/v2/acme/policies/manifests`;
    const manifest = (await (await fetch(`${base}/${older}`, { headers: { accept: MANIFEST } })).json()) as {
      annotations?: unknown;
    };
    delete manifest.annotations;
    const pushed = await fetch(`${base}/customer-backup`, {
      method: "PUT",
      headers: { "content-type": MANIFEST },
      body: JSON.stringify(manifest),
    });
    expect(pushed.status).toBe(201);

    const result = await cli(["prune", ...store, "--keep", "1", "--yes", "--json"]);
    expect(result.exitCode, result.stderr).toBe(0);
    const plan = JSON.parse(result.stdout) as Plan;
    expect(plan.keep).toEqual([expect.objectContaining({ revision: newer, reason: "newest" })]);
    expect(plan.delete.map((entry) => entry.revision)).toEqual([older]);
    expect(plan.notPublished.map((entry) => entry.revision)).toEqual(["customer-backup"]);
    const backup = await fetch(`${base}/customer-backup`, { headers: { accept: MANIFEST } });
    expect(backup.status).toBe(200);
  });
});
