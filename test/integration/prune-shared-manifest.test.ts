import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectOneLineError, runCli } from "../helpers/cli.ts";
import { createRepo, type TempRepo } from "../helpers/git-repo.ts";
import { startLoopbackProxy } from "../helpers/loopback-proxy.ts";
import { type RunningRegistry, startRegistry } from "../helpers/registry.ts";

/**
 * On a registry, deleting a manifest by digest removes every tag that resolves to it. prune never deletes a
 * manifest that a kept or protected tag still names: it removes the tag alone, or refuses.
 */

const MANIFEST = "application/vnd.oci.image.manifest.v1+json";

let repo: TempRepo;
const revisions: string[] = [];
const cli = (args: string[]) => runCli(args, { cwd: repo.dir });

beforeAll(async () => {
  repo = await createRepo({ examplePolicies: true });
  for (let i = 0; i < 3; i++) {
    if (i > 0) repo.commit(`revision ${i}`);
    const built = await cli(["build"]);
    expect(built.exitCode, built.stderr).toBe(0);
    revisions.push(repo.git("rev-parse", "HEAD"));
  }
});

/** The oldest revision published, then the others, then its manifest tagged again as `v1` (a release name). */
async function publishSharing(registry: Pick<RunningRegistry, "host">): Promise<string[]> {
  const store = ["--store", `oci://${registry.host}/acme/policies`];
  for (const revision of revisions) {
    const published = await cli(["publish", "--revision", revision, ...store]);
    expect(published.exitCode, published.stderr).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const base = `http://${registry.host}/v2/acme/policies/manifests`;
  const oldest = await fetch(`${base}/${revisions[0]}`, { headers: { accept: MANIFEST } });
  expect(oldest.status).toBe(200);
  const retagged = await fetch(`${base}/v1`, {
    method: "PUT",
    headers: { "content-type": MANIFEST },
    body: Buffer.from(await oldest.arrayBuffer()),
  });
  expect(retagged.status).toBe(201);
  return store;
}

const resolves = async (registry: Pick<RunningRegistry, "host">, tag: string) =>
  (
    await fetch(`http://${registry.host}/v2/acme/policies/manifests/${tag}`, {
      headers: { accept: MANIFEST },
    })
  ).status;

describe("prune on an OCI registry with two tags on one manifest", () => {
  const registries: { stop: () => Promise<void> }[] = [];
  afterAll(async () => {
    await Promise.all(registries.map((registry) => registry.stop()));
  });

  it("deletes the old tag alone and the protected tag still resolves", async () => {
    const registry = await startRegistry();
    registries.push(registry);
    const store = await publishSharing(registry);
    const plan = await cli(["prune", "--keep", "1", "--protect", "v1", ...store, "--json"]);
    expect(plan.exitCode, plan.stderr).toBe(0);
    const planned = JSON.parse(plan.stdout);
    expect(planned.delete).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ revision: revisions[0], sharesManifestWith: ["v1"] }),
        expect.objectContaining({ revision: revisions[1] }),
      ]),
    );
    const pruned = await cli(["prune", "--keep", "1", "--protect", "v1", ...store, "--yes"]);
    expect(pruned.exitCode, pruned.stderr).toBe(0);
    expect(pruned.stdout).toMatch(/the tag only: its manifest stays for v1/);
    expect(await resolves(registry, "v1")).toBe(200);
    expect(await resolves(registry, revisions[0] as string)).toBe(404);
    expect(await resolves(registry, revisions[1] as string)).toBe(404);
    const listed = await cli(["list", ...store, "--json"]);
    expect(listed.exitCode, listed.stderr).toBe(0);
    expect(
      JSON.parse(listed.stdout)
        .map((entry: { revision: string }) => entry.revision)
        .sort(),
    ).toEqual([revisions[2], "v1"].sort());
  });

  it("refuses, naming the tag that shares it, where the registry cannot delete a tag alone", async () => {
    const registry = await startRegistry();
    registries.push(registry);
    // CNCF Distribution 3 deletes a tag; in front of it, the answer of a registry that does not (405
    // UNSUPPORTED, as Distribution 2 gives). Everything else reaches the real registry.
    const proxy = await startLoopbackProxy(`http://${registry.host}`, ({ req, res, forward }) => {
      if (req.method === "DELETE" && /\/manifests\/(?!sha256:)[^/]+$/.test(req.url ?? "")) {
        res
          .writeHead(405, { "content-type": "application/json" })
          .end('{"errors":[{"code":"UNSUPPORTED","message":"The operation is unsupported."}]}');
        return;
      }
      forward({ host: "keep" });
    });
    registries.push({ stop: proxy.close });
    const front = { host: new URL(proxy.url).host };
    const store = await publishSharing(front);
    const pruned = await cli(["prune", "--keep", "1", "--protect", "v1", ...store, "--yes"]);
    expect(pruned.exitCode, pruned.stderr).toBe(1);
    expect(expectOneLineError(pruned)).toMatch(
      new RegExp(
        `${revisions[0]}\\S* resolves to the same manifest as v1, which stays, and the registry cannot delete a tag alone; nothing deleted — --protect ${revisions[0]} too`,
      ),
    );
    for (const tag of [...revisions, "v1"]) expect(await resolves(registry, tag)).toBe(200);
  });
});
