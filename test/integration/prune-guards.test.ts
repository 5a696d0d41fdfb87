import { createReadStream } from "node:fs";
import { readdir } from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectOneLineError, runCli } from "../helpers/cli.ts";
import { createRepo, type TempRepo } from "../helpers/git-repo.ts";
import { type RunningOpa, startOpaServer } from "../helpers/opa-server.ts";
import { type Listening, listen } from "../helpers/serve.ts";

/**
 * prune deletes only what it knows is unused: an age in units nobody can misread, and the revisions OPA
 * instances run, named exactly. Anything it would have to guess stops it with nothing deleted.
 */

let repo: TempRepo;
const revisions: string[] = [];
const servers: { stop: () => Promise<void> }[] = [];
const cli = (args: string[]) => runCli(args, { cwd: repo.dir });
const storeArgs = ["--to", "bundles"];
const files = () => readdir(path.join(repo.dir, "bundles"));

beforeAll(async () => {
  repo = await createRepo({ examplePolicies: true });
  for (let i = 0; i < 3; i++) {
    if (i > 0) repo.commit(`revision ${i}`);
    for (const step of [["build"], ["publish", ...storeArgs]]) {
      const result = await cli(step);
      expect(result.exitCode, result.stderr).toBe(0);
    }
    revisions.push(repo.git("rev-parse", "HEAD"));
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}, 120_000);

afterAll(async () => {
  await Promise.all(servers.map((server) => server.stop()));
});

/**
 * A real OPA whose active revision is `revision`: the oldest published bundle rebuilt under that name and
 * served from a folder of its own, as a deploy that named a short SHA or a tag would run it.
 */
async function opaRunning(revision: string): Promise<RunningOpa> {
  const dir = path.join(repo.dir, `elsewhere-${revision}`);
  const served: Listening = await listen(
    http.createServer((request, response) => {
      const file = path.join(dir, path.basename(new URL(request.url ?? "/", "http://x").pathname));
      createReadStream(file)
        .on("error", () => response.writeHead(404).end())
        .on("open", () => response.writeHead(200, { "content-type": "application/gzip" }))
        .pipe(response);
    }),
  );
  servers.push({ stop: served.close });
  for (const step of [
    ["build", "--revision", revision, "--out", `dist-${revision}`],
    ["publish", "--revision", revision, "--out", `dist-${revision}`, "--to", dir],
    ["config", "--revision", revision, "--to", dir, "--service-url", served.url, "-o", `${revision}.yaml`],
  ]) {
    const result = await cli(step);
    expect(result.exitCode, result.stderr).toBe(0);
  }
  const opa = await startOpaServer(["--config-file", path.join(repo.dir, `${revision}.yaml`)], {
    waitForBundles: true,
  });
  servers.push(opa);
  return opa;
}

describe("prune --older-than", () => {
  it("refuses 6m (minutes or months?) and a bare number with exit 2 and a hint, deleting nothing", async () => {
    for (const age of ["6m", "90", "30s"]) {
      const result = await cli(["prune", "--keep", "1", "--older-than", age, ...storeArgs, "--yes"]);
      expect(result.exitCode, result.stderr).toBe(2);
      expect(expectOneLineError(result)).toMatch(
        /--older-than: must be hours, days or weeks, such as 12h, 90d or 26w \(6m could mean minutes or months\)/,
      );
    }
    expect((await files()).filter((name) => name.endsWith(".tar.gz"))).toHaveLength(3);
  });

  it("takes hours, days and weeks", async () => {
    for (const age of ["12h", "90d", "26w"]) {
      const result = await cli(["prune", "--keep", "1", "--older-than", age, ...storeArgs, "--json"]);
      expect(result.exitCode, result.stderr).toBe(0);
      expect(JSON.parse(result.stdout).delete).toEqual([]);
    }
  });
});

describe("prune --opa", () => {
  for (const [what, name] of [
    ["a short SHA", () => (revisions[0] as string).slice(0, 7)],
    ["a tag", () => "v1.4.2"],
  ] as const) {
    it(`refuses to delete when an instance runs ${what}, not a full published revision`, async () => {
      const running = name();
      const opa = await opaRunning(running);
      const result = await cli(["prune", "--keep", "1", "--opa", opa.url, ...storeArgs, "--yes"]);
      expect(result.exitCode, result.stdout).toBe(1);
      expect(expectOneLineError(result)).toMatch(
        new RegExp(
          `${opa.url} runs "${running}", which is not a full revision published in \\S+; nothing deleted — --protect the revision it runs`,
        ),
      );
      for (const revision of revisions) expect(await files()).toContain(`${revision}.tar.gz`);
    });
  }
});
