import { mkdtemp, readFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectOneLineError, runCli } from "../helpers/cli.ts";
import { createRepo, type TempRepo } from "../helpers/git-repo.ts";
import { type RunningOpa, startOpaServer } from "../helpers/opa-server.ts";
import { type RunningRegistry, startRegistry } from "../helpers/registry.ts";

/**
 * On an OCI registry the rendered config names the manifest digest, so what OPA runs is the bytes that were
 * verified even if the tag is moved later. config for a revision publish did not record here verifies it first.
 */

const servers: RunningOpa[] = [];
let registry: RunningRegistry;
let repo: TempRepo;
let store: string;
let revisionA: string;
let revisionB: string;

const cli = (args: string[], cwd = repo.dir) =>
  runCli(args, { cwd, env: { DOCKER_CONFIG: path.join(repo.dir, "no-docker") } });

async function manifestOf(tag: string) {
  const response = await fetch(`http://${registry.host}/v2/acme/policies/manifests/${tag}`, {
    headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
  });
  return { digest: response.headers.get("docker-content-digest") as string, bytes: await response.text() };
}

async function runningRevision(configFile: string): Promise<string | undefined> {
  const opa = await startOpaServer(["--config-file", configFile], { waitForBundles: true });
  servers.push(opa);
  const body = (await (await fetch(`${opa.url}/v1/status`)).json()) as {
    result?: { bundles?: Record<string, { active_revision?: string }> };
  };
  return body.result?.bundles?.authz?.active_revision;
}

beforeAll(async () => {
  registry = await startRegistry();
  repo = await createRepo({ examplePolicies: true });
  store = `oci://${registry.host}/acme/policies`;
  revisionA = repo.git("rev-parse", "HEAD");
  const first = await cli(["release", "--store", store]);
  expect(first.exitCode, first.stderr).toBe(0);
  await repo.write("policies/extra.rego", "package extra\n\nanswer := 42\n");
  revisionB = repo.commit("add extra");
  const second = await cli(["release", "--store", store]);
  expect(second.exitCode, second.stderr).toBe(0);
}, 120_000);

afterAll(async () => {
  await Promise.all(servers.map((server) => server.stop()));
  await registry?.stop();
});

describe("OCI configs pin the manifest digest", () => {
  it("config for a revision with no publish record here verifies it, then pins its manifest digest", async () => {
    const elsewhere = await mkdtemp(path.join(os.tmpdir(), "policyship-oci-pin-"));
    const rendered = await cli(
      ["config", "--store", store, "--revision", revisionA, "-o", "opa-a.yaml", "--json"],
      elsewhere,
    );
    expect(rendered.exitCode, rendered.stderr).toBe(0);
    const { digest } = await manifestOf(revisionA);
    expect(JSON.parse(rendered.stdout)).toMatchObject({ revision: revisionA, pin: digest });
    const text = await readFile(path.join(elsewhere, "opa-a.yaml"), "utf8");
    expect(text).toContain(`resource: ${registry.host}/acme/policies@${digest}`);
    expect(await runningRevision(path.join(elsewhere, "opa-a.yaml"))).toBe(revisionA);

    const missing = await cli(["config", "--store", store, "--revision", "f".repeat(40)], elsewhere);
    expect(missing.exitCode).toBe(1);
    expect(expectOneLineError(missing)).toMatch(/revision f{40} is not published in oci:\/\//);
  });

  it("a tag moved after publish changes nothing for OPA, and config --verify and verify refuse it", async () => {
    const b = await manifestOf(revisionB);
    const configB = path.join(repo.dir, "opa-b.yaml");
    const rendered = await cli(["config", "--store", store, "--revision", revisionB, "-o", configB]);
    expect(rendered.exitCode, rendered.stderr).toBe(0);
    expect(await readFile(configB, "utf8")).toContain(`@${b.digest}`);

    // Someone with push rights points B's tag at A's manifest.
    const a = await manifestOf(revisionA);
    const moved = await fetch(`http://${registry.host}/v2/acme/policies/manifests/${revisionB}`, {
      method: "PUT",
      headers: { "content-type": "application/vnd.oci.image.manifest.v1+json" },
      body: a.bytes,
    });
    expect(moved.status).toBe(201);
    expect((await manifestOf(revisionB)).digest).toBe(a.digest);

    // A fresh OPA with the config rendered before the move still downloads and runs B.
    expect(await runningRevision(configB)).toBe(revisionB);

    const checked = await cli(["config", "--store", store, "--revision", revisionB, "--verify"]);
    expect(checked.exitCode).toBe(1);
    expect(expectOneLineError(checked)).toContain(
      `names manifest ${a.digest}, but publish recorded ${b.digest}`,
    );
    const verified = await cli(["verify", revisionB, "--store", store]);
    expect(verified.exitCode).toBe(1);
    // Checked against the digest publish recorded here, before a byte is downloaded.
    expect(expectOneLineError(verified)).toContain(
      `names ${a.digest}, but ${revisionB}.json here recorded ${b.digest}`,
    );
  });
});
