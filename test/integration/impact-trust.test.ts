import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { beforeAll, describe, expect, it } from "vitest";
import { expectOneLineError, runCli } from "../helpers/cli.ts";
import { createRepo, type TempRepo } from "../helpers/git-repo.ts";
import { startRegistry } from "../helpers/registry.ts";
import { awsEnv, createBucket, minio, s3Client } from "../helpers/s3.ts";

/**
 * What impact and diff evaluate as revision X is X: a bundle planted in the checkout (committed on a PR
 * branch, say) cannot stand in for the base, and a gate that replayed nothing has not passed.
 */

let repo: TempRepo;
/** The base: readers may GET and HEAD /orders. */
let revisionA: string;
/** The PR: readers may also POST /orders, and dist/<A>.tar.gz is B's policies under A's name. */
let revisionB: string;
let store: string;

const SKIPPED_NONE = {
  unparseable: 0,
  not_a_decision: 0,
  no_input: 0,
  no_path: 0,
  no_revision: 0,
  duplicate: 0,
};

function decision(id: string, method: string, key: string, revision: string | undefined, result: unknown) {
  return JSON.stringify({
    decision_id: id,
    path: "authz/allow",
    input: { request: { http: { method, path: "/orders", headers: { "x-api-key": key } } } },
    result,
    ...(revision ? { bundles: { authz: { revision } } } : {}),
  });
}

/** Recorded at A: bob (a reader) was refused a POST, alice (an admin) was allowed one. */
const recordedAt = (revision: string) =>
  [
    decision("bob-post", "POST", "bob-key", revision, {
      allow: false,
      status: 403,
      message: "bob may not POST /orders",
    }),
    decision("alice-post", "POST", "alice-key", revision, {
      allow: true,
      headers: { "x-user": "alice", "x-roles": "admin" },
    }),
  ].join("\n");

beforeAll(async () => {
  repo = await createRepo({ examplePolicies: true });
  revisionA = repo.git("rev-parse", "HEAD");
  store = path.join(repo.dir, "..", `${path.basename(repo.dir)}-store`);
  // A is built and published as the release pipeline does, to a store outside the checkout.
  for (const args of [["build"], ["publish", "--to", store]]) {
    const step = await runCli(args, { cwd: repo.dir });
    expect(step.exitCode, step.stderr).toBe(0);
  }
  await repo.write("decisions.ndjson", `${recordedAt(revisionA)}\n`);
  const data = JSON.parse(await readFile(path.join(repo.dir, "policies/data.json"), "utf8"));
  data.roles.reader[0].methods = ["GET", "HEAD", "POST"];
  await repo.write("policies/data.json", `${JSON.stringify(data, null, 2)}\n`);
  repo.commit("readers may create orders");
  // The plant: B's policies built under A's revision, where impact and diff used to look first.
  const planted = await runCli(["build", "--revision", revisionA], { cwd: repo.dir });
  expect(planted.exitCode, planted.stderr).toBe(0);
  revisionB = repo.commit("a dist/ bundle rides along");
  expect(repo.git("ls-files", "dist").split("\n")).toContain(`dist/${revisionA}.tar.gz`);
}, 120_000);

describe("a bundle planted in the checkout never stands in for the base", () => {
  it("impact rebuilds the recorded revision from git and sees the deny → allow flip", async () => {
    const result = await runCli(
      ["impact", "--decisions", "decisions.ndjson", "--fail-on", "deny-to-allow", "--json"],
      { cwd: repo.dir, timeoutMs: 120_000 },
    );
    expect(result.exitCode, result.stderr).toBe(1);
    expect(expectOneLineError(result)).toMatch(/the candidate changes recorded decisions: deny-to-allow 1/);
    const report = JSON.parse(result.stdout);
    expect(report).toMatchObject({ replayed: 2, changed: 1, drift: 0, flips: { deny_to_allow: 1 } });
    expect(report.examples[0]).toMatchObject({ decision_id: "bob-post", base_revision: revisionA });
  }, 180_000);

  it("with a store, the published digest decides: the planted copy is not used, a tampered object is refused", async () => {
    const result = await runCli(
      ["impact", "--decisions", "decisions.ndjson", "--to", store, "--fail-on", "deny-to-allow", "--json"],
      { cwd: repo.dir, timeoutMs: 120_000 },
    );
    expect(result.exitCode, result.stderr).toBe(1);
    expect(JSON.parse(result.stdout)).toMatchObject({ replayed: 2, drift: 0, flips: { deny_to_allow: 1 } });
    expect(result.stderr).toContain(`dist/${revisionA}.tar.gz differs from the published bundle: not used`);
    // The same store with its object swapped for the plant: refused, never evaluated.
    const tampered = path.join(repo.dir, "..", `${path.basename(repo.dir)}-tampered`);
    const { cp } = await import("node:fs/promises");
    await cp(store, tampered, { recursive: true });
    await cp(path.join(repo.dir, "dist", `${revisionA}.tar.gz`), path.join(tampered, `${revisionA}.tar.gz`));
    const refused = await runCli(
      ["impact", "--decisions", "decisions.ndjson", "--to", tampered, "--fail-on", "deny-to-allow"],
      { cwd: repo.dir, timeoutMs: 120_000 },
    );
    expect(refused.exitCode, refused.stderr).toBe(1);
    expect(expectOneLineError(refused)).toMatch(/was changed after publishing: its sha256 is [0-9a-f]{64}/);
  }, 180_000);

  it("diff compares the base as git or the store has it, not the planted copy", async () => {
    const result = await runCli(["diff", revisionA, "HEAD", "--exit-code", "--json"], { cwd: repo.dir });
    expect(result.exitCode, result.stderr).toBe(1);
    const report = JSON.parse(result.stdout);
    expect(report.from).toEqual({ revision: revisionA });
    expect(report.to).toEqual({ revision: revisionB });
    expect(report.data.added).toEqual(["/roles/reader/0/methods/2"]);
    const published = await runCli(["diff", revisionA.slice(0, 10), "HEAD", "--to", store, "--exit-code"], {
      cwd: repo.dir,
    });
    expect(published.exitCode, published.stderr).toBe(1);
    expect(published.stdout).toContain("+ data /roles/reader/0/methods/2");
  });

  it("a recorded revision that is not a full SHA is refused, never used as a path", async () => {
    // ../planted resolves to <repo>/planted.tar.gz from dist/: the plant, if it were used.
    await writeFile(
      path.join(repo.dir, "planted.tar.gz"),
      await readFile(path.join(repo.dir, "dist", `${revisionA}.tar.gz`)),
    );
    for (const revision of ["../planted", "--output=/tmp/x", revisionA.slice(0, 12)]) {
      await writeFile(path.join(repo.dir, "hostile.ndjson"), `${recordedAt(revision)}\n`);
      const result = await runCli(["impact", "--decisions", "hostile.ndjson", "--fail-on", "deny-to-allow"], {
        cwd: repo.dir,
        timeoutMs: 120_000,
      });
      expect(result.exitCode, result.stderr).toBe(2);
      expect(expectOneLineError(result)).toContain(
        `decision bob-post records revision ${JSON.stringify(revision)}, which is not a full commit SHA`,
      );
    }
  }, 240_000);
  it("a directory store committed in the checkout cannot vouch for the base either", async () => {
    repo.git("checkout", "--quiet", "-b", "store-in-checkout");
    try {
      // publish's own layout, bundle and digest, holding the plant: what a PR could commit with a
      // policyship.yaml saying `to: bundles`.
      const published = await runCli(["publish", "--revision", revisionA, "--to", "bundles"], {
        cwd: repo.dir,
      });
      expect(published.exitCode, published.stderr).toBe(0);
      repo.commit("a store rides along");
      const result = await runCli(
        [
          "impact",
          "--decisions",
          "decisions.ndjson",
          "--to",
          "bundles",
          "--fail-on",
          "deny-to-allow",
          "--json",
        ],
        { cwd: repo.dir, timeoutMs: 120_000 },
      );
      expect(result.exitCode, result.stderr).toBe(1);
      expect(JSON.parse(result.stdout)).toMatchObject({ replayed: 2, flips: { deny_to_allow: 1 } });
      expect(result.stderr).toMatch(
        /is committed in this repository, so it cannot vouch for [0-9a-f]{40}: not used/,
      );
    } finally {
      repo.git("checkout", "--quiet", "main");
    }
  }, 180_000);
});

describe("the impact gate never passes by not looking", () => {
  it("--fail-on with nothing replayed exits 1 with one line saying why", async () => {
    const noPath = decision("no-path", "GET", "bob-key", revisionA, true).replace(
      '"path":"authz/allow",',
      "",
    );
    const lines = [
      "not json",
      JSON.stringify({ level: "info", msg: "Starting server" }),
      noPath,
      decision("no-revision", "GET", "bob-key", undefined, true),
    ];
    await writeFile(path.join(repo.dir, "nothing.ndjson"), `${lines.join("\n")}\n`);
    const result = await runCli(["impact", "--decisions", "nothing.ndjson", "--fail-on", "deny-to-allow"], {
      cwd: repo.dir,
      timeoutMs: 120_000,
    });
    expect(result.exitCode, result.stderr).toBe(1);
    expect(expectOneLineError(result)).toMatch(
      /nothing was replayed from nothing\.ndjson: 1 file read, 4 skipped \(1 unparseable, 1 not a decision, 1 no path, 1 no revision\) — /,
    );
  }, 180_000);

  it("counts what it skips by reason in the text, JSON and markdown; a decision without a revision does not end the run", async () => {
    const logs = path.join(repo.dir, "logs");
    const lines = recordedAt(revisionA).split("\n");
    await repo.write(
      "logs/enforcer.ndjson",
      [
        lines[0],
        // An outage with failOpen: no bundle answered, so there is no revision to replay against.
        decision("outage", "GET", "bob-key", undefined, undefined),
        "{broken",
        "",
      ].join("\n"),
    );
    // OPA's upload body, saved under .json, and sent again because the first upload was not acknowledged.
    const upload = gzipSync(`[${lines[1]}]`);
    await writeFile(path.join(logs, "upload-1.json"), upload);
    await writeFile(path.join(logs, "upload-2.json"), upload);
    const markdown = path.join(repo.dir, "impact.md");
    const json = await runCli(["impact", "--decisions", "logs", "--json", "--markdown", markdown], {
      cwd: repo.dir,
      timeoutMs: 120_000,
    });
    expect(json.exitCode, json.stderr).toBe(0);
    const report = JSON.parse(json.stdout);
    expect(report).toMatchObject({ replayed: 2, files: 3, flips: { deny_to_allow: 1 } });
    expect(report.skipped).toEqual({ ...SKIPPED_NONE, unparseable: 1, no_revision: 1, duplicate: 1 });
    expect(await readFile(markdown, "utf8")).toContain(
      "Not replayed: 3 skipped (1 unparseable, 1 no revision, 1 duplicate).",
    );
    const text = await runCli(["impact", "--decisions", "logs"], { cwd: repo.dir, timeoutMs: 120_000 });
    expect(text.exitCode, text.stderr).toBe(0);
    expect(text.stdout).toContain("not replayed: 3 skipped (1 unparseable, 1 no revision, 1 duplicate)");
  }, 240_000);

  it("an empty directory of logs is an error, not 0 replayed", async () => {
    await repo.write("no-logs/.keep", "");
    const { rm } = await import("node:fs/promises");
    await rm(path.join(repo.dir, "no-logs/.keep"));
    const result = await runCli(["impact", "--decisions", "no-logs"], { cwd: repo.dir, timeoutMs: 120_000 });
    expect(result.exitCode, result.stderr).toBe(2);
    expect(expectOneLineError(result)).toMatch(/--decisions no-logs holds no files — /);
  }, 180_000);

  it("--decisions s3://… reads S3 when the bundles are in an OCI registry; a bucket that cannot be read is an error", async () => {
    const registry = await startRegistry();
    try {
      const store = `oci://${registry.host}/acme/policies`;
      repo.git("checkout", "--quiet", revisionA);
      for (const args of [["build"], ["publish", "--store", store]]) {
        const step = await runCli([...args, "--out", "dist-a"], { cwd: repo.dir });
        expect(step.exitCode, step.stderr).toBe(0);
      }
      repo.git("checkout", "--quiet", "main");
      const { PutObjectCommand } = await import("@aws-sdk/client-s3");
      const bucket = await createBucket();
      await s3Client().send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: "authz/upload.json",
          Body: gzipSync(`[${recordedAt(revisionA).split("\n").join(",")}]`),
        }),
      );
      const s3 = ["--endpoint", minio().endpoint];
      const result = await runCli(
        [
          "impact",
          "--decisions",
          `s3://${bucket}/authz/`,
          "--store",
          store,
          ...s3,
          "--fail-on",
          "deny-to-allow",
          "--json",
        ],
        { cwd: repo.dir, env: awsEnv(), timeoutMs: 120_000 },
      );
      expect(result.exitCode, result.stderr).toBe(1);
      expect(JSON.parse(result.stdout)).toMatchObject({
        replayed: 2,
        files: 1,
        drift: 0,
        flips: { deny_to_allow: 1 },
      });
      const missing = await runCli(
        [
          "impact",
          "--decisions",
          "s3://no-such-bucket-policyship/authz/",
          "--store",
          store,
          ...s3,
          "--fail-on",
          "deny-to-allow",
        ],
        { cwd: repo.dir, env: awsEnv(), timeoutMs: 120_000 },
      );
      expect(missing.exitCode, missing.stderr).toBe(2);
      expect(expectOneLineError(missing)).toMatch(/bucket no-such-bucket-policyship does not exist/);
    } finally {
      await registry.stop();
    }
  }, 240_000);
});
