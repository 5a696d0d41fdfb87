import { createReadStream } from "node:fs";
import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { runCli } from "../helpers/cli.ts";
import { createRepo, type TempRepo } from "../helpers/git-repo.ts";
import { type RunningOpa, startOpaServer } from "../helpers/opa-server.ts";
import { type Listening, listen } from "../helpers/serve.ts";

/** prune keeps the active revision of every bundle an instance runs from the store, not only --bundle-name's. */

let repo: TempRepo;
let served: Listening;
let opa: RunningOpa | undefined;
const cli = (args: string[]) => runCli(args, { cwd: repo.dir });
const storeArgs = ["--to", "bundles"];

/** Commits policies of one package (and root), builds and publishes them; returns the revision. */
async function publishPackage(name: string, allow: boolean): Promise<string> {
  await rm(path.join(repo.dir, "policies"), { recursive: true, force: true });
  await repo.write("policies/.manifest", JSON.stringify({ roots: [name] }));
  await repo.write(`policies/${name}.rego`, `package ${name}\n\nallow := ${allow}\n`);
  repo.commit(`${name} allow ${allow}`);
  for (const step of [["build"], ["publish", ...storeArgs]]) {
    const result = await cli(step);
    expect(result.exitCode, result.stderr).toBe(0);
  }
  await new Promise((resolve) => setTimeout(resolve, 20));
  return repo.git("rev-parse", "HEAD");
}

beforeAll(async () => {
  repo = await createRepo();
  served = await listen(
    http.createServer((request, response) => {
      const name = path.basename(new URL(request.url ?? "/", "http://x").pathname);
      createReadStream(path.join(repo.dir, "bundles", name))
        .on("error", () => response.writeHead(404).end())
        .on("open", () => response.writeHead(200, { "content-type": "application/gzip" }))
        .pipe(response);
    }),
  );
}, 60_000);

afterAll(async () => {
  await opa?.stop();
  await served?.close();
});

describe("prune with an instance running two bundles of the store", () => {
  it("keeps the second bundle's active revision, reported as active", async () => {
    const canary = await publishPackage("canary", true);
    const middle = await publishPackage("authz", true);
    const newest = await publishPackage("authz", false);
    const config = [
      "config",
      "--revision",
      newest,
      ...storeArgs,
      "--service-url",
      served.url,
      "-o",
      "opa.yaml",
    ];
    const rendered = await cli(config);
    expect(rendered.exitCode, rendered.stderr).toBe(0);
    const document = parse(await readFile(path.join(repo.dir, "opa.yaml"), "utf8"));
    const [authz] = Object.values(document.bundles) as { resource: string }[];
    document.bundles.canary = {
      ...authz,
      resource: (authz as { resource: string }).resource.replace(newest, canary),
    };
    await writeFile(path.join(repo.dir, "opa.yaml"), stringify(document));
    opa = await startOpaServer(["--config-file", path.join(repo.dir, "opa.yaml")], { waitForBundles: true });
    const status = (await (await fetch(`${opa.url}/v1/status`)).json()) as {
      result: { bundles: Record<string, { active_revision: string }> };
    };
    expect(status.result.bundles.canary?.active_revision).toBe(canary);

    const result = await cli([
      "prune",
      "--keep",
      "1",
      "--instance",
      opa.url,
      ...storeArgs,
      "--yes",
      "--json",
    ]);
    expect(result.exitCode, result.stderr).toBe(0);
    const plan = JSON.parse(result.stdout) as {
      delete: { revision: string }[];
      keep: { revision: string; reason: string }[];
    };
    expect(plan.delete.map((entry) => entry.revision)).toEqual([middle]);
    expect(plan.keep).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ revision: newest, reason: "newest" }),
        expect.objectContaining({ revision: canary, reason: "active" }),
      ]),
    );
    const files = await readdir(path.join(repo.dir, "bundles"));
    expect(files).toContain(`${canary}.tar.gz`);
    expect(files).not.toContain(`${middle}.tar.gz`);
  });
});
