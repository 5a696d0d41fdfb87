import { createHash } from "node:crypto";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectOneLineError, runCli } from "../helpers/cli.ts";
import { createRepo, type TempRepo } from "../helpers/git-repo.ts";
import { type RunningOpa, startOpaServer } from "../helpers/opa-server.ts";
import { type RunningRegistry, startRegistry } from "../helpers/registry.ts";

/**
 * The OCI store on CNCF Distribution's registry: release pushes the tag <sha> in the layout OPA's OCI
 * downloader pulls, a real OPA started with the rendered config runs that revision, a tag is never moved,
 * rollback pins the old tag, and prune deletes by manifest digest.
 */

const servers: RunningOpa[] = [];
let registry: RunningRegistry;
let repo: TempRepo;
let store: string;
let revisionA: string;
let revisionB: string;

const cli = (args: string[], env: Record<string, string | undefined> = {}) =>
  runCli(args, { cwd: repo.dir, env: { DOCKER_CONFIG: path.join(repo.dir, "no-docker"), ...env } });

async function manifestOf(host: string, repository: string, tag: string) {
  const response = await fetch(`http://${host}/v2/${repository}/manifests/${tag}`, {
    headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
  });
  if (response.status === 404) return undefined;
  const bytes = Buffer.from(await response.arrayBuffer());
  return {
    digest: response.headers.get("docker-content-digest"),
    contentType: response.headers.get("content-type"),
    computed: `sha256:${createHash("sha256").update(bytes).digest("hex")}`,
    manifest: JSON.parse(bytes.toString("utf8")),
  };
}

async function startOpaWith(configFile: string): Promise<RunningOpa> {
  const server = await startOpaServer(["--config-file", configFile], {
    waitForBundles: true,
    timeoutMs: 20_000,
  });
  servers.push(server);
  return server;
}

async function activeRevision(opa: RunningOpa): Promise<string | undefined> {
  const body = (await (await fetch(`${opa.url}/v1/status`)).json()) as {
    result?: { bundles?: Record<string, { active_revision?: string }> };
  };
  return body.result?.bundles?.authz?.active_revision;
}

beforeAll(async () => {
  registry = await startRegistry();
  repo = await createRepo({ examplePolicies: true });
  revisionA = repo.git("rev-parse", "HEAD");
  store = `oci://${registry.host}/acme/policies`;
}, 60_000);

afterAll(async () => {
  await Promise.all(servers.map((server) => server.stop()));
  await registry?.stop();
});

describe("an OCI registry as the store", () => {
  it("releases A as the tag <sha> in OPA's layout, and a real OPA pulls and activates A", async () => {
    const released = await cli([
      "release",
      "--store",
      store,
      "--polling-min",
      "1",
      "--polling-max",
      "2",
      "--json",
    ]);
    expect(released.exitCode, released.stderr).toBe(0);
    const result = JSON.parse(released.stdout);
    expect(result.published).toMatchObject({
      url: `${registry.host}/acme/policies:${revisionA}`,
      created: true,
    });

    const pushed = await manifestOf(registry.host, "acme/policies", revisionA);
    expect(pushed?.contentType).toBe("application/vnd.oci.image.manifest.v1+json");
    expect(pushed?.digest).toBe(pushed?.computed);
    const bundle = await readFile(path.join(repo.dir, `dist/${revisionA}.tar.gz`));
    const sha256 = createHash("sha256").update(bundle).digest("hex");
    expect(pushed?.manifest).toMatchObject({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", size: 2 },
      layers: [
        {
          mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
          digest: `sha256:${sha256}`,
          size: bundle.length,
        },
      ],
      annotations: {
        "org.opencontainers.image.revision": revisionA,
        "org.opencontainers.image.created": expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        "dev.policyship.bundle.sha256": sha256,
      },
    });

    // The config pins the manifest digest, not the tag; publish recorded it beside build's record.
    expect(result.published.pin).toBe(pushed?.digest);
    const record = JSON.parse(await readFile(path.join(repo.dir, `dist/${revisionA}.json`), "utf8"));
    expect(record.published[store]).toMatchObject({ url: result.published.url, pin: pushed?.digest });
    const config = await readFile(path.join(repo.dir, result.config), "utf8");
    expect(config).toContain("type: oci");
    expect(config).toContain(`url: http://${registry.host}`);
    expect(config).toContain(`resource: ${registry.host}/acme/policies@${pushed?.digest}`);
    expect(config).toContain(`policyship-revision: ${revisionA}`);
    const opa = await startOpaWith(path.join(repo.dir, result.config));
    expect(await activeRevision(opa)).toBe(revisionA);
  });

  it("releases B; list, verify and diff read the registry", async () => {
    await repo.write("policies/extra.rego", "package extra\n\nanswer := 42\n");
    revisionB = repo.commit("add extra");
    const released = await cli(["release", "--store", store, "-o", "opa-b.yaml"]);
    expect(released.exitCode, released.stderr).toBe(0);
    const opa = await startOpaWith(path.join(repo.dir, "opa-b.yaml"));
    expect(await activeRevision(opa)).toBe(revisionB);

    const listed = await cli(["list", "--store", store, "--json"]);
    expect(listed.exitCode, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout).map((entry: { revision: string }) => entry.revision)).toEqual([
      revisionB,
      revisionA,
    ]);
    // list --json shows the manifest digest each revision is pinned by.
    expect(JSON.parse(listed.stdout).map((entry: { pin: string }) => entry.pin)).toEqual([
      (await manifestOf(registry.host, "acme/policies", revisionB))?.digest,
      (await manifestOf(registry.host, "acme/policies", revisionA))?.digest,
    ]);
    const verified = await cli(["verify", revisionB.slice(0, 10), "--store", store, "--json"]);
    expect(verified.exitCode, verified.stderr).toBe(0);
    expect(JSON.parse(verified.stdout)).toMatchObject({
      revision: revisionB,
      metadata: { revision: revisionB },
    });
    // From a directory that is no repository and has no dist/: the registry is the only place to find them.
    const elsewhere = await mkdtemp(path.join(os.tmpdir(), "policyship-oci-diff-"));
    const diff = await runCli(["diff", revisionA, revisionB, "--store", store, "--json"], { cwd: elsewhere });
    expect(diff.exitCode, diff.stderr).toBe(0);
    expect(diff.stdout).toContain("extra");
    // impact replays a decision A made against B, both pulled from the registry.
    const decision = {
      decision_id: "d1",
      path: "authz/allow",
      input: { request: { http: { method: "GET", path: "/orders", headers: {} } } },
      result: { allow: false, status: 401 },
      bundles: { authz: { revision: revisionA } },
    };
    await writeFile(path.join(elsewhere, "decisions.ndjson"), `${JSON.stringify(decision)}\n`);
    const impact = await runCli(
      ["impact", "--decisions", "decisions.ndjson", "--candidate", revisionB, "--store", store, "--json"],
      { cwd: elsewhere },
    );
    expect(impact.exitCode, impact.stderr).toBe(0);
    expect(JSON.parse(impact.stdout)).toMatchObject({ replayed: 1 });
  });

  it("rolls back to A by short SHA, and OPA runs A again", async () => {
    const rolled = await cli([
      "rollback",
      revisionA.slice(0, 8),
      "--store",
      store,
      "-o",
      "opa-rollback.yaml",
    ]);
    expect(rolled.exitCode, rolled.stderr).toBe(0);
    const digestA = (await manifestOf(registry.host, "acme/policies", revisionA))?.digest;
    const rolledConfig = await readFile(path.join(repo.dir, "opa-rollback.yaml"), "utf8");
    expect(rolledConfig).toContain(`resource: ${registry.host}/acme/policies@${digestA}`);
    const opa = await startOpaWith(path.join(repo.dir, "opa-rollback.yaml"));
    expect(await activeRevision(opa)).toBe(revisionA);

    // status --expect: an OPA pinned to a manifest that was never pushed is named with its download error.
    const missing = `sha256:${"f".repeat(64)}`;
    await writeFile(
      path.join(repo.dir, "opa-missing.yaml"),
      rolledConfig.replace(`@${digestA}`, `@${missing}`),
    );
    const broken = await startOpaServer(["--config-file", path.join(repo.dir, "opa-missing.yaml")]);
    servers.push(broken);
    const status = await cli([
      "status",
      "--opa",
      opa.url,
      "--opa",
      broken.url,
      "--expect",
      revisionA,
      "--wait",
      "3s",
    ]);
    expect(status.exitCode).toBe(1);
    expect(status.stdout).toContain(`✓ ${opa.url}`);
    expect(status.stdout).toMatch(
      new RegExp(`✗ ${broken.url}.*${missing.slice(7)}.*(404|not found|MANIFEST_UNKNOWN)`, "is"),
    );
    expect(expectOneLineError(status)).toContain(broken.url);
  });

  it("a re-push of the same bytes is 'already published'; other content under A's tag is refused and untouched", async () => {
    const before = await manifestOf(registry.host, "acme/policies", revisionA);
    const again = await cli(["publish", "--store", store, "--revision", revisionA, "--out", "dist"]);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.stdout).toContain("already published");

    const other = await createRepo({ examplePolicies: true });
    await other.write("policies/other.rego", "package other\n\nx := 1\n");
    other.commit("different content");
    const built = await runCli(["build", "--revision", revisionA], { cwd: other.dir });
    expect(built.exitCode, built.stderr).toBe(0);
    const forced = await runCli(["publish", "--revision", revisionA, "--store", store], { cwd: other.dir });
    expect(forced.exitCode).toBe(1);
    expect(expectOneLineError(forced)).toMatch(
      /already holds other content for revision [0-9a-f]{40} \(published sha256 [0-9a-f]{64}, local [0-9a-f]{64}\); left untouched/,
    );
    expect((await manifestOf(registry.host, "acme/policies", revisionA))?.digest).toBe(before?.digest);
  });

  it("a bundle changed after build is refused on its way up, and no tag appears", async () => {
    repo.commit("an empty commit to publish");
    const revision = repo.git("rev-parse", "HEAD");
    const built = await cli(["build"]);
    expect(built.exitCode, built.stderr).toBe(0);
    const file = path.join(repo.dir, `dist/${revision}.tar.gz`);
    const bytes = await readFile(file);
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 0xff, bytes.length - 1);
    await writeFile(file, bytes);
    const published = await cli(["publish", "--store", store]);
    expect(published.exitCode).toBe(1);
    expect(expectOneLineError(published)).toMatch(
      /^policyship: \S+\.tar\.gz changed after it was built \(sha256/,
    );
    expect(await manifestOf(registry.host, "acme/policies", revision)).toBeUndefined();
  });

  it("verify refuses a tag whose layer is not the bundle its annotation names", async () => {
    const pushed = await manifestOf(registry.host, "acme/policies", revisionA);
    const manifest = structuredClone(pushed?.manifest);
    manifest.annotations["dev.policyship.bundle.sha256"] = "0".repeat(64);
    const tampered = await fetch(`http://${registry.host}/v2/acme/tampered/manifests/${revisionA}`, {
      method: "PUT",
      headers: { "content-type": "application/vnd.oci.image.manifest.v1+json" },
      body: JSON.stringify(manifest),
    });
    // The blobs live in acme/policies; mount them into acme/tampered first if the registry asks.
    if (tampered.status !== 201) {
      for (const digest of [manifest.config.digest, manifest.layers[0].digest]) {
        await fetch(
          `http://${registry.host}/v2/acme/tampered/blobs/uploads/?mount=${digest}&from=acme/policies`,
          {
            method: "POST",
          },
        );
      }
      const retried = await fetch(`http://${registry.host}/v2/acme/tampered/manifests/${revisionA}`, {
        method: "PUT",
        headers: { "content-type": "application/vnd.oci.image.manifest.v1+json" },
        body: JSON.stringify(manifest),
      });
      expect(retried.status).toBe(201);
    }
    const verified = await cli(["verify", revisionA, "--store", `oci://${registry.host}/acme/tampered`]);
    expect(verified.exitCode).toBe(1);
    expect(expectOneLineError(verified)).toMatch(/was changed after publishing/);
  });

  it("prune --yes deletes by manifest digest and keeps the newest", async () => {
    const plan = await cli(["prune", "--keep", "1", "--store", store, "--json"]);
    expect(plan.exitCode, plan.stderr).toBe(0);
    expect(JSON.parse(plan.stdout).delete.map((entry: { revision: string }) => entry.revision)).toEqual([
      revisionA,
    ]);
    const pruned = await cli(["prune", "--keep", "1", "--store", store, "--yes"]);
    expect(pruned.exitCode, pruned.stderr).toBe(0);
    expect(await manifestOf(registry.host, "acme/policies", revisionA)).toBeUndefined();
    expect(await manifestOf(registry.host, "acme/policies", revisionB)).toBeDefined();
  });

  it("a registry that refuses deletes is named, and the revision stays", async () => {
    const locked = await startRegistry({ deletes: false });
    try {
      const lockedStore = `oci://${locked.host}/acme/policies`;
      for (const revision of [revisionA, revisionB]) {
        const pushed = await cli([
          "publish",
          "--store",
          lockedStore,
          "--revision",
          revision,
          "--out",
          "dist",
        ]);
        expect(pushed.exitCode, pushed.stderr).toBe(0);
      }
      const pruned = await cli(["prune", "--keep", "1", "--store", lockedStore, "--yes"]);
      expect(pruned.exitCode).toBe(1);
      expect(expectOneLineError(pruned)).toMatch(
        /does not allow deleting manifests .*storage\.delete\.enabled/,
      );
      expect(await manifestOf(locked.host, "acme/policies", revisionA)).toBeDefined();
    } finally {
      await locked.stop();
    }
  });
});
