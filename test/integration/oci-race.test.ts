import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectOneLineError, runCli } from "../helpers/cli.ts";
import { createRepo, type TempRepo } from "../helpers/git-repo.ts";
import { type RunningRegistry, startRegistry } from "../helpers/registry.ts";

/**
 * Two publishes of different bytes under one revision, started together against a real registry, many
 * times: each time exactly one exits 0, the other exits 1 naming both digests, and the tag names the
 * winner's bundle. Registries have no conditional tag write, so this is what the claim protocol is for.
 */

const ROUNDS = 12;
let registry: RunningRegistry;
let first: TempRepo;
let second: TempRepo;
let revision: string;
const sha256 = new Map<TempRepo, string>();

beforeAll(async () => {
  registry = await startRegistry();
  first = await createRepo({ examplePolicies: true });
  revision = first.git("rev-parse", "HEAD");
  second = await createRepo({ examplePolicies: true });
  await second.write("policies/other.rego", "package other\n\nx := 1\n");
  second.commit("other content");
  for (const repo of [first, second]) {
    const built = await runCli(["build", "--revision", revision], { cwd: repo.dir });
    expect(built.exitCode, built.stderr).toBe(0);
    const bytes = await readFile(path.join(repo.dir, `dist/${revision}.tar.gz`));
    sha256.set(repo, createHash("sha256").update(bytes).digest("hex"));
  }
}, 60_000);

afterAll(async () => {
  await registry?.stop();
});

describe("concurrent OCI publishes of one revision", () => {
  it(`of different bytes: exactly one wins, the other names both digests (${ROUNDS} rounds)`, async () => {
    const wins = new Map<TempRepo, number>();
    for (let round = 0; round < ROUNDS; round++) {
      const repository = `acme/race-${round}`;
      const racers = [first, second];
      const results = await Promise.all(
        racers.map((repo) =>
          runCli(["publish", "--revision", revision, "--store", `oci://${registry.host}/${repository}`], {
            cwd: repo.dir,
            env: { DOCKER_CONFIG: path.join(repo.dir, "no-docker") },
            timeoutMs: 60_000,
          }),
        ),
      );
      const codes = results.map((result) => result.exitCode);
      expect([...codes].sort(), `round ${round}: ${results.map((r) => r.stderr.trim()).join(" | ")}`).toEqual(
        [0, 1],
      );
      const winner = racers[codes.indexOf(0)] as TempRepo;
      const loser = racers[codes.indexOf(1)] as TempRepo;
      wins.set(winner, (wins.get(winner) ?? 0) + 1);
      expect(expectOneLineError(results[codes.indexOf(1)] as never)).toContain(
        `(published sha256 ${sha256.get(winner)}, local ${sha256.get(loser)}); left untouched`,
      );
      const manifest = await fetch(`http://${registry.host}/v2/${repository}/manifests/${revision}`, {
        headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
      });
      const annotations = ((await manifest.json()) as { annotations: Record<string, string> }).annotations;
      expect(annotations["dev.policyship.bundle.sha256"], `round ${round}`).toBe(sha256.get(winner));
      // Only the revision's tag is left for list and prune to see.
      const listed = await runCli(["list", "--store", `oci://${registry.host}/${repository}`, "--json"], {
        cwd: winner.dir,
      });
      expect(JSON.parse(listed.stdout).map((entry: { revision: string }) => entry.revision)).toEqual([
        revision,
      ]);
    }
    expect([...wins.values()].reduce((a, b) => a + b, 0)).toBe(ROUNDS);
  }, 600_000);
});
