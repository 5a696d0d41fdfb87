import { execFileSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectOneLineError, runCli } from "../helpers/cli.ts";
import { createRepo, type TempRepo } from "../helpers/git-repo.ts";
import { type RunningOpa, startOpaServer } from "../helpers/opa-server.ts";
import { awsEnv, createBucket, minio, s3Client } from "../helpers/s3.ts";

/**
 * The mission's promise, end to end on a real MinIO and real OPA servers: OPA started with the rendered
 * config runs exactly the released revision, and rollback pins it back.
 */

const servers: RunningOpa[] = [];
afterAll(async () => {
  await Promise.all(servers.map((server) => server.stop()));
});

// Revision B adds dave as a reader, so this request flips from 401 (unknown key) to allowed.
const daveReadsOrders = {
  request: { http: { method: "GET", path: "/orders", headers: { "x-api-key": "dave-key" } } },
};

async function startOpaWith(configFile: string): Promise<RunningOpa> {
  const server = await startOpaServer(["--config-file", configFile], {
    env: awsEnv(),
    waitForBundles: true,
    timeoutMs: 20_000,
  });
  servers.push(server);
  return server;
}

async function activeRevision(opa: RunningOpa): Promise<string | undefined> {
  const response = await fetch(`${opa.url}/v1/status`);
  const body = (await response.json()) as {
    result?: { bundles?: Record<string, { active_revision?: string }> };
  };
  return body.result?.bundles?.authz?.active_revision;
}

async function decide(opa: RunningOpa, input: unknown): Promise<{ allow: boolean; status?: number }> {
  const response = await fetch(`${opa.url}/v1/data/authz/allow`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ input }),
  });
  return ((await response.json()) as { result: { allow: boolean; status?: number } }).result;
}

describe("release, rollback and a real OPA pinned to the revision", () => {
  let repo: TempRepo;
  let bucket: string;
  let storeArgs: string[];
  let revisionA: string;
  let revisionB: string;

  beforeAll(async () => {
    bucket = await createBucket();
    repo = await createRepo({ examplePolicies: true });
    revisionA = repo.git("rev-parse", "HEAD");
    storeArgs = [
      "--bucket",
      bucket,
      "--endpoint",
      minio().endpoint,
      "--prefix",
      "authz",
      "--polling-min",
      "1",
      "--polling-max",
      "2",
    ];
  });

  const cli = (args: string[], env: Record<string, string | undefined> = {}) =>
    runCli(args, { cwd: repo.dir, env: { ...awsEnv(), ...env } });

  it("1. releases A and OPA activates exactly A", async () => {
    const released = await cli(["release", ...storeArgs, "--json"]);
    expect(released.exitCode, released.stderr).toBe(0);
    const result = JSON.parse(released.stdout);
    expect(result).toMatchObject({
      revision: revisionA,
      tests: { passed: 13, failed: 0 },
      published: { key: `authz/${revisionA}.tar.gz`, created: true },
      config: `dist/${revisionA}.opa-config.yaml`,
    });
    const opa = await startOpaWith(path.join(repo.dir, result.config));
    expect(await activeRevision(opa)).toBe(revisionA);
    expect(await decide(opa, daveReadsOrders)).toMatchObject({ allow: false, status: 401 });
  });

  it("2. releases B, which flips a decision, and OPA with B's config serves B", async () => {
    const data = JSON.parse(await readFile(path.join(repo.dir, "policies/data.json"), "utf8"));
    data.users.dave = { key: "dave-key", roles: ["reader"] };
    await repo.write("policies/data.json", `${JSON.stringify(data, null, 2)}\n`);
    revisionB = repo.commit("dave joins as a reader");
    const released = await cli(["release", ...storeArgs, "-o", "opa-b.yaml"]);
    expect(released.exitCode, released.stderr).toBe(0);
    expect(released.stdout).toContain(`released ${revisionB}`);
    const opa = await startOpaWith(path.join(repo.dir, "opa-b.yaml"));
    expect(await activeRevision(opa)).toBe(revisionB);
    expect(await decide(opa, daveReadsOrders)).toMatchObject({ allow: true });
  });

  it("3. rollback to A (by short SHA) pins OPA to A again", async () => {
    const rolled = await cli(["rollback", revisionA.slice(0, 8), ...storeArgs, "-o", "opa-rollback.yaml"]);
    expect(rolled.exitCode, rolled.stderr).toBe(0);
    expect(rolled.stdout).toContain(`rollback to ${revisionA}`);
    const opa = await startOpaWith(path.join(repo.dir, "opa-rollback.yaml"));
    expect(await activeRevision(opa)).toBe(revisionA);
    expect(await decide(opa, daveReadsOrders)).toMatchObject({ allow: false, status: 401 });
  });

  it("4. a re-run is harmless, and other content under B's revision is refused", async () => {
    const key = `authz/${revisionB}.tar.gz`;
    const before = await s3Client().send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    const beforeBytes = Buffer.from((await before.Body?.transformToByteArray()) ?? []);
    expect(before.ContentType).toBe("application/gzip");
    expect(before.Metadata).toMatchObject({ revision: revisionB, "git-ref": "main" });

    const again = await cli(["release", ...storeArgs]);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.stdout).toContain("(already published)");

    // Other content built under B's revision name, from another checkout.
    const other = await createRepo({ examplePolicies: true });
    await other.write("policies/extra.rego", "package extra\n\nx := 1\n");
    other.commit("different content");
    const built = await runCli(["build", "--revision", revisionB], { cwd: other.dir });
    expect(built.exitCode, built.stderr).toBe(0);
    const forced = await runCli(["publish", "--revision", revisionB, ...storeArgs], {
      cwd: other.dir,
      env: awsEnv(),
    });
    expect(forced.exitCode).toBe(1);
    expect(expectOneLineError(forced)).toMatch(
      /already holds other content for revision [0-9a-f]{40} \(published sha256 [0-9a-f]{64}, local [0-9a-f]{64}\); left untouched/,
    );
    const after = await s3Client().send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    expect(Buffer.from((await after.Body?.transformToByteArray()) ?? []).equals(beforeBytes)).toBe(true);
  });

  it("5. rollback to an unknown revision exits 1 and lists the newest published", async () => {
    const unknown = await cli(["rollback", "0".repeat(40), ...storeArgs]);
    expect(unknown.exitCode).toBe(1);
    const line = expectOneLineError(unknown);
    expect(line).toContain(`revision ${"0".repeat(40)} is not published`);
    expect(line).toContain(revisionA);
    expect(line).toContain(revisionB);
  });

  it("lists published revisions newest first with their commit subjects", async () => {
    const listed = await cli(["list", ...storeArgs.slice(0, 6), "--json"]);
    expect(listed.exitCode, listed.stderr).toBe(0);
    const revisions = JSON.parse(listed.stdout);
    expect(revisions.map((r: { revision: string }) => r.revision)).toEqual([revisionB, revisionA]);
    expect(revisions[0].subject).toBe("dave joins as a reader");
  });

  it("verify passes on a published object and fails once it is tampered with; rollback refuses it", async () => {
    const ok = await cli(["verify", revisionB, ...storeArgs.slice(0, 6)]);
    expect(ok.exitCode, ok.stderr).toBe(0);
    expect(ok.stdout).toContain("sha256");
    const key = `authz/${revisionA}.tar.gz`;
    const original = await s3Client().send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    const bytes = Buffer.from((await original.Body?.transformToByteArray()) ?? []);
    // Same key and metadata, different bytes: what an attacker with write access could do.
    const tampered = execFileSync("gzip", ["-9c"], {
      input: execFileSync("gzip", ["-dc"], { input: bytes }),
    });
    await s3Client().send(
      new PutObjectCommand({ Bucket: bucket, Key: key, Body: tampered, Metadata: original.Metadata }),
    );
    const verified = await cli(["verify", revisionA, ...storeArgs.slice(0, 6)]);
    expect(verified.exitCode).toBe(1);
    expect(expectOneLineError(verified)).toMatch(/was changed after publishing/);
    const rolled = await cli(["rollback", revisionA, ...storeArgs, "-o", "opa-tampered.yaml"]);
    expect(rolled.exitCode).toBe(1);
    expect(expectOneLineError(rolled)).toMatch(/was changed after publishing/);
  });
});

describe("a signed release verified by OPA", () => {
  it("activates with the right key and not with another", async () => {
    const bucket = await createBucket();
    const repo = await createRepo({ examplePolicies: true });
    const keys = path.join(repo.dir, "..", `${path.basename(repo.dir)}-keys`);
    const write = async (name: string, text: string) => {
      await execFileSync("mkdir", ["-p", keys]);
      await writeFile(path.join(keys, name), text);
      return path.join(keys, name);
    };
    const signing = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const other = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const privateKey = await write(
      "private.pem",
      signing.privateKey.export({ type: "pkcs8", format: "pem" }) as string,
    );
    const publicKey = await write(
      "public.pem",
      signing.publicKey.export({ type: "spki", format: "pem" }) as string,
    );
    const wrongKey = await write(
      "wrong.pem",
      other.publicKey.export({ type: "spki", format: "pem" }) as string,
    );
    const storeArgs = [
      "--bucket",
      bucket,
      "--endpoint",
      minio().endpoint,
      "--polling-min",
      "1",
      "--polling-max",
      "2",
    ];
    const env = awsEnv();

    const released = await runCli(
      [
        "release",
        ...storeArgs,
        "--signing-key",
        privateKey,
        "--verification-key",
        publicKey,
        "--key-id",
        "release",
        "--json",
      ],
      { cwd: repo.dir, env },
    );
    expect(released.exitCode, released.stderr).toBe(0);
    const { revision, config } = JSON.parse(released.stdout);
    const rendered = await readFile(path.join(repo.dir, config), "utf8");
    expect(rendered).toContain("keyid: release");

    const opa = await startOpaWith(path.join(repo.dir, config));
    expect(await activeRevision(opa)).toBe(revision);

    const verified = await runCli(
      ["verify", revision, ...storeArgs.slice(0, 4), "--verification-key", publicKey, "--key-id", "release"],
      {
        cwd: repo.dir,
        env,
      },
    );
    expect(verified.exitCode, verified.stderr).toBe(0);
    expect(verified.stdout).toContain("signature  verified");

    const wrong = await runCli(
      [
        "config",
        "--revision",
        revision,
        ...storeArgs,
        "--verification-key",
        wrongKey,
        "--key-id",
        "release",
        "-o",
        "opa-wrong.yaml",
      ],
      { cwd: repo.dir, env },
    );
    expect(wrong.exitCode, wrong.stderr).toBe(0);
    const refused = await startOpaServer(["--config-file", path.join(repo.dir, "opa-wrong.yaml")], { env });
    servers.push(refused);
    // Give OPA several download attempts; the bundle must never activate.
    await new Promise((resolve) => setTimeout(resolve, 4000));
    const health = await fetch(`${refused.url}/health?bundles=true`);
    expect(health.status).toBe(500);
    const status = (await (await fetch(`${refused.url}/v1/status`)).json()) as {
      result: { bundles: { authz: { active_revision?: string; code?: string; message?: string } } };
    };
    expect(status.result.bundles.authz.active_revision).toBeFalsy();
    expect(status.result.bundles.authz.message ?? "").toMatch(/verif|signature/i);

    const wrongVerify = await runCli(
      ["verify", revision, ...storeArgs.slice(0, 4), "--verification-key", wrongKey, "--key-id", "release"],
      {
        cwd: repo.dir,
        env,
      },
    );
    expect(wrongVerify.exitCode).toBe(1);
    expect(expectOneLineError(wrongVerify)).toMatch(/signature does not verify/);
  });
});
