import { readdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { GetObjectCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEnforcer } from "../../src/enforcer/index.ts";
import { expectOneLineError, runCli } from "../helpers/cli.ts";
import { createRepo, type TempRepo } from "../helpers/git-repo.ts";
import { type RunningRegistry, startRegistry } from "../helpers/registry.ts";
import { awsEnv, createBucket, minio, s3Client } from "../helpers/s3.ts";

/**
 * A wasm bundle is tested as it ships and refused if the embedded engine cannot run it; one commit ships
 * a rego bundle for OPA and a wasm bundle for embedded apps under one revision. Real opa, real MinIO, a
 * real registry, and the enforcer's own embedded engine.
 */

const WASM = ["--target", "wasm", "--entrypoint", "authz/allow"];

/** Passes in OPA (Go's fmt) and fails in the embedded engine: opa-wasm's sprintf prints [object Object]. */
const DIVERGENT_TEST =
  'package fmt_test\n\ntest_object_format if {\n\tsprintf("%v", [{"a": 1}]) == `{"a": 1}`\n}\n';

const healthInput = { request: { http: { method: "GET", path: "/health", headers: {} } } };

async function objectKeys(bucket: string): Promise<string[]> {
  const listed = await s3Client().send(new ListObjectsV2Command({ Bucket: bucket }));
  return (listed.Contents ?? []).map((object) => object.Key ?? "").sort();
}

describe("a wasm bundle the embedded engine cannot run is refused before it ships", () => {
  it("build --target wasm names each missing built-in with its file:line and leaves nothing", async () => {
    const repo = await createRepo({ examplePolicies: true });
    await repo.write(
      "policies/remote.rego",
      [
        "package remote",
        "",
        "allowed if {",
        '\tresponse := http.send({"method": "GET", "url": "http://127.0.0.1:1/"})',
        "\tresponse.status_code == 200",
        "}",
        "",
        'role := opa.runtime().env.ROLE if input.user == "alice"',
        "",
      ].join("\n"),
    );
    repo.commit("a policy that calls out");
    const built = await runCli(["build", ...WASM, "--entrypoint", "remote/allowed", "-e", "remote/role"], {
      cwd: repo.dir,
    });
    expect(built.exitCode, built.stderr).toBe(1);
    const line = expectOneLineError(built);
    expect(line).toContain(
      "the wasm bundle needs built-ins the embedded engine does not implement: http.send (policies/remote.rego:4), opa.runtime (policies/remote.rego:8)",
    );
    expect(line).toMatch(/http\.send is refused \(opa-wasm calls built-ins synchronously/);
    expect(line).toMatch(/opa\.runtime is refused/);
    expect(await readdir(path.join(repo.dir, "dist")).catch(() => [])).toEqual([]);

    // The same policy's rego bundle is fine: OPA implements both.
    const rego = await runCli(["build"], { cwd: repo.dir });
    expect(rego.exitCode, rego.stderr).toBe(0);
  });
});

describe("the tests run on what ships, for the wasm target too", () => {
  it("test --target wasm runs every test on the embedded engine and fails one that only rego passes", async () => {
    const repo = await createRepo({ examplePolicies: true });
    await repo.write("policies/fmt_test.rego", DIVERGENT_TEST);
    repo.commit("a test whose outcome depends on the engine");
    expect((await runCli(["build", ...WASM], { cwd: repo.dir })).exitCode).toBe(0);

    const rego = await runCli(["test", "--policies", "policies"], { cwd: repo.dir });
    expect(rego.stdout).toMatch(/^14 passed, 0 failed$/m);

    const tested = await runCli(["test", "--target", "wasm"], { cwd: repo.dir });
    expect(tested.exitCode, tested.stderr).toBe(1);
    expect(tested.stdout).toContain(
      "FAIL policies/fmt_test.rego:3 fmt_test.test_object_format: passes in rego, fails in wasm",
    );
    expect(tested.stdout).toMatch(/^13 passed, 1 failed$/m);
    expect(expectOneLineError(tested)).toBe("policyship: 1 policy test failed");

    const json = await runCli(["test", "--target", "wasm", "--json"], { cwd: repo.dir });
    expect(JSON.parse(json.stdout).failures).toEqual([
      expect.objectContaining({ name: "test_object_format", rego: "pass", wasm: "fail" }),
    ]);
  });

  it("a failing test fails a wasm release before anything is published", async () => {
    const bucket = await createBucket();
    const repo = await createRepo({ examplePolicies: true });
    await repo.write("policies/fmt_test.rego", DIVERGENT_TEST);
    repo.commit("a test whose outcome depends on the engine");
    const released = await runCli(["release", ...WASM, "--bucket", bucket, "--endpoint", minio().endpoint], {
      cwd: repo.dir,
      env: awsEnv(),
    });
    expect(released.exitCode, released.stderr).toBe(1);
    expect(released.stderr).toContain("passes in rego, fails in wasm");
    expect(expectOneLineError(released)).toBe("policyship: 1 policy test failed");
    expect(await objectKeys(bucket)).toEqual([]);
  });

  it("a wasm release with no tests is refused, not published", async () => {
    const bucket = await createBucket();
    const repo = await createRepo({ examplePolicies: true });
    repo.git("rm", "--quiet", "policies/authz_test.rego");
    repo.commit("no tests");
    const released = await runCli(["release", ...WASM, "--bucket", bucket, "--endpoint", minio().endpoint], {
      cwd: repo.dir,
      env: awsEnv(),
    });
    expect(released.exitCode, released.stderr).toBe(1);
    expect(expectOneLineError(released)).toMatch(
      /^policyship: no tests found in dist\/[0-9a-f]{40}\.wasm\.tar\.gz/,
    );
    expect(released.stderr).not.toContain("published");
    expect(await objectKeys(bucket)).toEqual([]);
  });
});

describe("one commit ships both targets under one revision", () => {
  let repo: TempRepo;
  let bucket: string;
  let revision: string;
  const cli = (args: string[]) => runCli(args, { cwd: repo.dir, env: awsEnv() });
  const store = () => ["--bucket", bucket, "--endpoint", minio().endpoint, "--prefix", "authz"];

  beforeAll(async () => {
    bucket = await createBucket();
    repo = await createRepo({ examplePolicies: true });
    revision = repo.git("rev-parse", "HEAD");
  });

  it("releases the rego and the wasm bundle of one commit, each tested, under their own keys", async () => {
    const rego = await cli(["release", ...store(), "--json"]);
    expect(rego.exitCode, rego.stderr).toBe(0);
    expect(JSON.parse(rego.stdout)).toMatchObject({
      target: "rego",
      tests: { passed: 13, failed: 0 },
      published: { key: `authz/${revision}.tar.gz`, created: true },
    });
    const wasm = await cli(["release", ...WASM, ...store(), "--json"]);
    expect(wasm.exitCode, wasm.stderr).toBe(0);
    expect(JSON.parse(wasm.stdout)).toMatchObject({
      revision,
      target: "wasm",
      bundle: `dist/${revision}.wasm.tar.gz`,
      tests: { passed: 13, failed: 0 },
      published: { key: `authz/${revision}.wasm.tar.gz`, created: true },
      config: null,
    });
    expect(wasm.stderr).toContain("in rego and wasm");
    expect(await objectKeys(bucket)).toEqual([`authz/${revision}.tar.gz`, `authz/${revision}.wasm.tar.gz`]);
  });

  it("list, verify, config and rollback know which artifact is which", async () => {
    const listed = await cli(["list", ...store(), "--json"]);
    expect(listed.exitCode, listed.stderr).toBe(0);
    const rows = JSON.parse(listed.stdout) as { revision: string; target: string; key: string }[];
    expect(rows.map((row) => [row.revision, row.target, row.key]).sort()).toEqual([
      [revision, "rego", `authz/${revision}.tar.gz`],
      [revision, "wasm", `authz/${revision}.wasm.tar.gz`],
    ]);

    const verifiedWasm = await cli([
      "verify",
      revision.slice(0, 8),
      "--target",
      "wasm",
      ...store(),
      "--json",
    ]);
    expect(verifiedWasm.exitCode, verifiedWasm.stderr).toBe(0);
    expect(JSON.parse(verifiedWasm.stdout)).toMatchObject({
      key: `authz/${revision}.wasm.tar.gz`,
      target: "wasm",
    });
    const verifiedRego = await cli(["verify", revision, ...store(), "--json"]);
    expect(JSON.parse(verifiedRego.stdout)).toMatchObject({
      key: `authz/${revision}.tar.gz`,
      target: "rego",
    });

    // OPA is pinned to the rego bundle, by config and by rollback alike.
    const config = await cli(["config", "--revision", revision, ...store(), "--verify", "--format", "json"]);
    expect(config.exitCode, config.stderr).toBe(0);
    expect(JSON.parse(config.stdout).bundles.authz.resource).toBe(`authz/${revision}.tar.gz`);
    const rollback = await cli(["rollback", revision, ...store(), "--format", "json", "--json"]);
    expect(rollback.exitCode, rollback.stderr).toBe(0);
    expect(JSON.parse(rollback.stdout).key).toBe(`authz/${revision}.tar.gz`);
  });

  it("a changed wasm object fails verify --target wasm, and the rego one still verifies", async () => {
    const { PutObjectCommand } = await import("@aws-sdk/client-s3");
    const other = await createBucket();
    const read = async (key: string) => {
      const got = await s3Client().send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return { body: (await got.Body?.transformToByteArray()) as Uint8Array, metadata: got.Metadata };
    };
    const rego = await read(`authz/${revision}.tar.gz`);
    const wasm = await read(`authz/${revision}.wasm.tar.gz`);
    const put = (key: string, body: Uint8Array, metadata?: Record<string, string>) =>
      s3Client().send(new PutObjectCommand({ Bucket: other, Key: key, Body: body, Metadata: metadata }));
    await put(`authz/${revision}.tar.gz`, rego.body, rego.metadata);
    // The rego bytes under the wasm key, with the wasm object's recorded sha256.
    await put(`authz/${revision}.wasm.tar.gz`, rego.body, wasm.metadata);
    const args = ["--bucket", other, "--endpoint", minio().endpoint, "--prefix", "authz"];
    const changed = await cli(["verify", revision, "--target", "wasm", ...args]);
    expect(changed.exitCode).toBe(1);
    expect(expectOneLineError(changed)).toMatch(/was changed after publishing/);
    const intact = await cli(["verify", revision, ...args]);
    expect(intact.exitCode, intact.stderr).toBe(0);
  });

  it("the app loads the wasm artifact, and the revision guard accepts the one revision", async () => {
    const got = await s3Client().send(
      new GetObjectCommand({ Bucket: bucket, Key: `authz/${revision}.wasm.tar.gz` }),
    );
    const file = path.join(repo.dir, "downloaded.wasm.tar.gz");
    await writeFile(file, (await got.Body?.transformToByteArray()) as Uint8Array);
    const enforcer = createEnforcer({
      bundle: file,
      entrypoint: "authz/allow",
      expectedRevision: revision,
      inThread: true,
    });
    try {
      await enforcer.ready();
      expect(await enforcer.decide(healthInput)).toMatchObject({ allow: true, revision });
    } finally {
      await enforcer.close();
    }
  });
});

describe("both targets in an OCI registry", () => {
  let registry: RunningRegistry;
  beforeAll(async () => {
    registry = await startRegistry();
  }, 60_000);
  afterAll(async () => {
    await registry?.stop();
  });

  it("pushes the wasm bundle as the tag <sha>.wasm beside <sha>, and lists both", async () => {
    const repo = await createRepo({ examplePolicies: true });
    const revision = repo.git("rev-parse", "HEAD");
    const store = ["--store", `oci://${registry.host}/acme/policies`];
    const env = { DOCKER_CONFIG: path.join(repo.dir, "no-docker") };
    const rego = await runCli(["release", ...store, "--json"], { cwd: repo.dir, env });
    expect(rego.exitCode, rego.stderr).toBe(0);
    const wasm = await runCli(["release", ...WASM, ...store, "--json"], { cwd: repo.dir, env });
    expect(wasm.exitCode, wasm.stderr).toBe(0);
    expect(JSON.parse(wasm.stdout).published.url).toBe(`${registry.host}/acme/policies:${revision}.wasm`);
    const tags = (await (await fetch(`http://${registry.host}/v2/acme/policies/tags/list`)).json()) as {
      tags: string[];
    };
    expect(tags.tags.sort()).toEqual([revision, `${revision}.wasm`]);
    const listed = await runCli(["list", ...store, "--json"], { cwd: repo.dir, env });
    expect(
      (JSON.parse(listed.stdout) as { revision: string; target: string }[])
        .map((row) => `${row.revision} ${row.target}`)
        .sort(),
    ).toEqual([`${revision} rego`, `${revision} wasm`]);
    const verified = await runCli(["verify", revision, "--target", "wasm", ...store], { cwd: repo.dir, env });
    expect(verified.exitCode, verified.stderr).toBe(0);
  });
});
