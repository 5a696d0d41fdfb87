import { createHash } from "node:crypto";
import { mkdtemp, readFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { HeadObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectOneLineError, runCli } from "../helpers/cli.ts";
import { createRepo, type TempRepo } from "../helpers/git-repo.ts";
import { type RunningRegistry, startRegistry } from "../helpers/registry.ts";
import { awsEnv, createBucket, minio, s3Client } from "../helpers/s3.ts";

/**
 * Whoever can overwrite a published object can write the metadata beside it too, so "verified" may only rest
 * on that metadata when nothing better is at hand. With the local build and publish record of the revision,
 * verify and rollback check the store against it; without one, they say what "verified" rests on.
 */

const HINT =
  "do not deploy it; restore the published object, or delete it and publish the revision again from its commit";

/** A checkout with other content, built as `revision`: what an attacker would put in its place. */
async function impostor(revision: string): Promise<TempRepo> {
  const other = await createRepo({ examplePolicies: true });
  await other.write("policies/extra.rego", "package extra\n\nx := 1\n");
  other.commit("other content");
  const built = await runCli(["build", "--revision", revision], { cwd: other.dir });
  expect(built.exitCode, built.stderr).toBe(0);
  return other;
}

describe("on S3, an object overwritten together with forged metadata", () => {
  it("verify and rollback check it against the local build record and refuse it (exit 1)", async () => {
    const repo = await createRepo({ examplePolicies: true });
    const revision = repo.git("rev-parse", "HEAD");
    const env = awsEnv();
    const args = ["--bucket", await createBucket(), "--endpoint", minio().endpoint];
    const cli = (command: string[], cwd = repo.dir) => runCli(command, { cwd, env });
    for (const step of [["build"], ["publish", ...args]]) {
      const result = await cli(step);
      expect(result.exitCode, result.stderr).toBe(0);
    }
    const recorded = JSON.parse(await readFile(path.join(repo.dir, "dist", `${revision}.json`), "utf8"))
      .sha256 as string;

    // Other bytes, and metadata that tells the truth about them: the store alone cannot tell.
    const other = await impostor(revision);
    const bytes = await readFile(path.join(other.dir, "dist", `${revision}.tar.gz`));
    const forged = createHash("sha256").update(bytes).digest("hex");
    const key = `${revision}.tar.gz`;
    const head = await s3Client().send(new HeadObjectCommand({ Bucket: args[1], Key: key }));
    await s3Client().send(
      new PutObjectCommand({
        Bucket: args[1],
        Key: key,
        Body: bytes,
        Metadata: { ...head.Metadata, sha256: forged },
      }),
    );

    for (const command of [
      ["verify", revision, ...args],
      ["rollback", revision, ...args],
    ]) {
      const result = await cli(command);
      expect(result.exitCode, result.stdout).toBe(1);
      const line = expectOneLineError(result);
      expect(line).toContain(`holds sha256 ${forged}, but ${revision}.json here recorded ${recorded}`);
      expect(line).toContain(` — ${HINT}`);
    }

    // Elsewhere, with no record, the same object verifies, and says that is all it rests on.
    const elsewhere = await mkdtemp(path.join(os.tmpdir(), "policyship-no-record-"));
    const text = await cli(["verify", revision, ...args], elsewhere);
    expect(text.exitCode, text.stderr).toBe(0);
    expect(text.stdout).toContain(
      "rests on   matches the store's own metadata only; sign bundles (or keep the build record) to verify against tampering",
    );
    const json = await cli(["verify", revision, ...args, "--json"], elsewhere);
    expect(json.exitCode, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({
      sha256: forged,
      localRecord: null,
      restsOn:
        "matches the store's own metadata only; sign bundles (or keep the build record) to verify against tampering",
    });
    const rolled = await cli(["rollback", revision, ...args, "--json"], elsewhere);
    expect(rolled.exitCode, rolled.stderr).toBe(0);
    expect(JSON.parse(rolled.stdout)).toMatchObject({ localRecord: null });
    expect(JSON.parse(rolled.stdout).restsOn).toMatch(/^matches the store's own metadata only/);
  });

  it("an untouched object verifies against the local record, and says so", async () => {
    const repo = await createRepo({ examplePolicies: true });
    const revision = repo.git("rev-parse", "HEAD");
    const env = awsEnv();
    const args = ["--bucket", await createBucket(), "--endpoint", minio().endpoint];
    for (const step of [["build"], ["publish", ...args]]) {
      const result = await runCli(step, { cwd: repo.dir, env });
      expect(result.exitCode, result.stderr).toBe(0);
    }
    const json = await runCli(["verify", revision, ...args, "--json"], { cwd: repo.dir, env });
    expect(json.exitCode, json.stderr).toBe(0);
    const record = path.join("dist", `${revision}.json`);
    expect(JSON.parse(json.stdout)).toMatchObject({
      localRecord: record,
      restsOn: `matches the local record ${record}`,
    });
    const rolled = await runCli(["rollback", revision, ...args], { cwd: repo.dir, env });
    expect(rolled.exitCode, rolled.stderr).toBe(0);
    expect(rolled.stdout).toContain(`# verified: matches the local record ${record}`);
  });
});

describe("on an OCI registry, a new manifest under the same tag with a forged sha256 annotation", () => {
  let registry: RunningRegistry;
  beforeAll(async () => {
    registry = await startRegistry();
  }, 60_000);
  afterAll(async () => {
    await registry?.stop();
  });

  it("verify and rollback refuse it against the recorded manifest digest; rollback never renders it", async () => {
    const repo = await createRepo({ examplePolicies: true });
    const revision = repo.git("rev-parse", "HEAD");
    const store = `oci://${registry.host}/acme/policies`;
    const env = { DOCKER_CONFIG: path.join(repo.dir, "no-docker") };
    const cli = (command: string[], cwd = repo.dir) => runCli(command, { cwd, env });
    const released = await cli(["release", "--store", store]);
    expect(released.exitCode, released.stderr).toBe(0);
    const manifestUrl = `http://${registry.host}/v2/acme/policies/manifests/${revision}`;
    const accept = { accept: "application/vnd.oci.image.manifest.v1+json" };
    const published = (await fetch(manifestUrl, { headers: accept })).headers.get(
      "docker-content-digest",
    ) as string;

    // The tag is deleted and the revision published again with other content: a manifest whose annotation
    // names its own (new) blob, which is all the registry can say.
    const removed = await fetch(`http://${registry.host}/v2/acme/policies/manifests/${published}`, {
      method: "DELETE",
    });
    expect(removed.status).toBe(202);
    const other = await impostor(revision);
    const pushed = await cli(["publish", "--revision", revision, "--store", store], other.dir);
    expect(pushed.exitCode, pushed.stderr).toBe(0);
    const forged = (await fetch(manifestUrl, { headers: accept })).headers.get(
      "docker-content-digest",
    ) as string;
    expect(forged).not.toBe(published);

    for (const command of [
      ["verify", revision, "--store", store],
      ["rollback", revision, "--store", store],
    ]) {
      const result = await cli(command);
      expect(result.exitCode, result.stdout).toBe(1);
      expect(result.stdout).not.toContain(forged);
      const line = expectOneLineError(result);
      expect(line).toContain(`names ${forged}, but ${revision}.json here recorded ${published}`);
      expect(line).toContain(` — ${HINT}`);
    }
  });
});
