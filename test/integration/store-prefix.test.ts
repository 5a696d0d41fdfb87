import { mkdtemp } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.ts";
import { createRepo, type TempRepo } from "../helpers/git-repo.ts";
import { awsEnv, createBucket, minio } from "../helpers/s3.ts";

/** A prefix means the same with or without its trailing slash, for every store and every command. */

let repo: TempRepo;
const cli = (args: string[]) => runCli(args, { cwd: repo.dir, env: awsEnv() });

beforeAll(async () => {
  repo = await createRepo({ examplePolicies: true });
}, 60_000);

async function publishTwo(store: string[], prefix: string) {
  const revisions: string[] = [];
  for (const message of ["older", "newer"]) {
    repo.commit(message);
    for (const args of [["build"], ["publish", ...store, "--prefix", prefix]]) {
      const step = await cli(args);
      expect(step.exitCode, step.stderr).toBe(0);
    }
    revisions.push(repo.git("rev-parse", "HEAD"));
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return revisions as [string, string];
}

const stores: [string, () => Promise<string[]>][] = [
  ["a directory store", async () => ["--to", await mkdtemp(path.join(os.tmpdir(), "policyship-prefix-"))]],
  ["an S3 bucket", async () => ["--bucket", await createBucket(), "--endpoint", minio().endpoint]],
];

for (const [name, makeStore] of stores) {
  describe(`${name} with prefix "authz"`, () => {
    it("list and prune see the revisions published under authz/, whichever way the prefix is written", async () => {
      const store = await makeStore();
      const [older, newer] = await publishTwo(store, "authz");
      for (const prefix of ["authz", "authz/"]) {
        const listed = await cli(["list", ...store, "--prefix", prefix, "--json"]);
        expect(listed.exitCode, listed.stderr).toBe(0);
        const revisions = (JSON.parse(listed.stdout) as { revision: string }[]).map((r) => r.revision);
        expect(revisions, `list --prefix ${prefix}`).toEqual([newer, older]);
      }
      const pruned = await cli(["prune", ...store, "--prefix", "authz", "--keep", "1", "--yes", "--json"]);
      expect(pruned.exitCode, pruned.stderr).toBe(0);
      const plan = JSON.parse(pruned.stdout) as { delete: { revision: string }[] };
      expect(plan.delete.map((entry) => entry.revision)).toEqual([older]);
      const after = await cli(["list", ...store, "--prefix", "authz/", "--json"]);
      expect((JSON.parse(after.stdout) as { revision: string }[]).map((r) => r.revision)).toEqual([newer]);
    });
  });
}
