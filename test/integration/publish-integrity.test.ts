import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { describe, expect, it } from "vitest";
import { expectOneLineError, runCli } from "../helpers/cli.ts";
import { createRepo, type TempRepo } from "../helpers/git-repo.ts";
import { awsEnv, createBucket, minio, s3Client } from "../helpers/s3.ts";

/**
 * publish decides "already published" from the bytes the store holds, never from the metadata beside them:
 * whoever can overwrite an object can write its metadata too. publish, verify and rollback then agree
 * about such an object, word for word.
 */

/** Other bytes built as the same revision, from another checkout. */
async function otherBytes(revision: string): Promise<Buffer> {
  const other = await createRepo({ examplePolicies: true });
  await other.write("policies/extra.rego", "package extra\n\nx := 1\n");
  other.commit("other content");
  const built = await runCli(["build", "--revision", revision], { cwd: other.dir });
  expect(built.exitCode, built.stderr).toBe(0);
  return readFile(path.join(other.dir, "dist", `${revision}.tar.gz`));
}

interface Tampering {
  args: (repo: TempRepo) => Promise<string[]>;
  /** Overwrites the published object with other bytes and keeps (forges) its recorded sha256. */
  overwrite: (repo: TempRepo, args: string[], revision: string, bytes: Buffer) => Promise<void>;
}

const STORES: { name: string; store: Tampering }[] = [
  {
    name: "S3",
    store: {
      args: async () => ["--bucket", await createBucket(), "--endpoint", minio().endpoint],
      overwrite: async (_repo, args, revision, bytes) => {
        const bucket = args[1] as string;
        const key = `${revision}.tar.gz`;
        const head = await s3Client().send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
        await s3Client().send(
          new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes, Metadata: head.Metadata }),
        );
        const after = await s3Client().send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        expect(Buffer.from((await after.Body?.transformToByteArray()) ?? []).equals(bytes)).toBe(true);
      },
    },
  },
  {
    name: "a directory",
    store: {
      args: async () => ["--to", "bundles"],
      // .meta.json stays as publish wrote it: its sha256 now lies about the file beside it.
      overwrite: async (repo, _args, revision, bytes) => {
        await writeFile(path.join(repo.dir, "bundles", `${revision}.tar.gz`), bytes);
      },
    },
  },
];

const hintOf = (line: string) => line.slice(line.indexOf(" — ") + 3);

describe.each(STORES)("on $name, an object overwritten with forged metadata", ({ store }) => {
  it("is other content to publish (exit 1), and publish, verify and rollback give the same hint", async () => {
    const repo = await createRepo({ examplePolicies: true });
    const revision = repo.git("rev-parse", "HEAD");
    const args = await store.args(repo);
    const env = awsEnv();
    const cli = (command: string[]) => runCli(command, { cwd: repo.dir, env });
    for (const step of [["build"], ["publish", ...args]]) {
      const result = await cli(step);
      expect(result.exitCode, result.stderr).toBe(0);
    }
    const again = await cli(["publish", ...args]);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.stdout).toContain("already published");

    await store.overwrite(repo, args, revision, await otherBytes(revision));

    const published = await cli(["publish", ...args]);
    expect(published.exitCode, published.stdout).toBe(1);
    const publishLine = expectOneLineError(published);
    expect(publishLine).toMatch(
      /was changed after publishing, it holds other content: its sha256 is [0-9a-f]{64}, publish recorded [0-9a-f]{64}/,
    );
    const verified = await cli(["verify", revision, ...args]);
    expect(verified.exitCode).toBe(1);
    const rolled = await cli(["rollback", revision, ...args]);
    expect(rolled.exitCode).toBe(1);
    const lines = [publishLine, expectOneLineError(verified), expectOneLineError(rolled)];
    expect(new Set(lines.map(hintOf)).size, lines.join("\n")).toBe(1);
    expect(hintOf(publishLine)).toBe(
      "do not deploy it; restore the published object, or delete it and publish the revision again from its commit",
    );
  });
});

describe("the server's full-object checksum", () => {
  it("MinIO keeps a FULL_OBJECT SHA-256 for what publish uploads, so publish need not download it", async () => {
    const repo = await createRepo({ examplePolicies: true });
    const revision = repo.git("rev-parse", "HEAD");
    const bucket = await createBucket();
    for (const step of [
      ["build"],
      ["publish", "--bucket", bucket, "--endpoint", minio().endpoint, "--json"],
    ]) {
      const result = await runCli(step, { cwd: repo.dir, env: awsEnv() });
      expect(result.exitCode, result.stderr).toBe(0);
    }
    const head = await s3Client().send(
      new HeadObjectCommand({ Bucket: bucket, Key: `${revision}.tar.gz`, ChecksumMode: "ENABLED" }),
    );
    expect(head.ChecksumType).toBe("FULL_OBJECT");
    expect(Buffer.from(head.ChecksumSHA256 ?? "", "base64").toString("hex")).toBe(head.Metadata?.sha256);
  });
});

describe("an object too large for one request (multipart, over 16 MiB)", () => {
  it("is hashed from its bytes: a re-run is already published, an overwrite with forged metadata is refused", async () => {
    const bucket = await createBucket();
    const dir = await mkdtemp(path.join(os.tmpdir(), "policyship-multipart-"));
    await mkdir(path.join(dir, "dist"));
    const revision = "large-1";
    await writeFile(path.join(dir, "dist", `${revision}.tar.gz`), randomBytes(17 * 1024 * 1024));
    const args = ["publish", "--revision", revision, "--bucket", bucket, "--endpoint", minio().endpoint];
    const publish = () => runCli(args, { cwd: dir, env: awsEnv() });
    expect((await publish()).exitCode).toBe(0);
    const key = `${revision}.tar.gz`;
    const head = await s3Client().send(
      new HeadObjectCommand({ Bucket: bucket, Key: key, ChecksumMode: "ENABLED" }),
    );
    // A checksum of part checksums, not of the bytes: never compared with a file's SHA-256.
    expect(head.ChecksumType).not.toBe("FULL_OBJECT");
    const again = await publish();
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.stdout).toContain("already published");

    await s3Client().send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: key,
        Body: randomBytes(17 * 1024 * 1024),
        Metadata: head.Metadata,
      }),
    );
    const refused = await publish();
    expect(refused.exitCode, refused.stdout).toBe(1);
    expect(expectOneLineError(refused)).toMatch(/was changed after publishing, it holds other content/);
  });
});
