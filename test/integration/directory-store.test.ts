import { readdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { expectOneLineError, runCli } from "../helpers/cli.ts";
import { createRepo } from "../helpers/git-repo.ts";

/** A published revision in a directory store, whose metadata each case then damages. */
async function published() {
  const repo = await createRepo({ examplePolicies: true });
  const sha = repo.git("rev-parse", "HEAD");
  const release = await runCli(
    ["release", "--to", "bundles", "--service-url", "https://bundles.example.com"],
    {
      cwd: repo.dir,
    },
  );
  expect(release.exitCode, release.stderr).toBe(0);
  const meta = path.join(repo.dir, "bundles", `${sha}.tar.gz.meta.json`);
  return { repo, sha, meta };
}

describe("the directory store says what it does not know", () => {
  it("a missing .meta.json fails verify instead of passing on a digest made up from the object", async () => {
    const { repo, sha, meta } = await published();
    expect((await runCli(["verify", sha, "--to", "bundles"], { cwd: repo.dir })).exitCode).toBe(0);
    await rm(meta);
    const result = await runCli(["verify", sha, "--to", "bundles"], { cwd: repo.dir });
    expect(result.exitCode).toBe(1);
    expect(expectOneLineError(result)).toMatch(/has no sha256 metadata/);
    const rollback = await runCli(["rollback", sha, "--to", "bundles"], { cwd: repo.dir });
    expect(rollback.exitCode).toBe(1);
  });

  for (const [name, text] of [
    ["null", "null"],
    ["an array", '["sha256"]'],
    ["a number for the digest", '{"sha256": 5, "revision": "x"}'],
    ["broken JSON", '{"sha256": '],
  ] as const) {
    it(`a .meta.json holding ${name} is exit 1 with one line`, async () => {
      const { repo, sha, meta } = await published();
      await writeFile(meta, text);
      for (const command of [["verify", sha], ["rollback", sha], ["publish"]]) {
        const result = await runCli([...command, "--to", "bundles"], { cwd: repo.dir });
        expect(result.exitCode, `${command[0]}: ${result.stderr}`).toBe(1);
        expect(expectOneLineError(result)).toMatch(/metadata of .* is not an object of strings/);
      }
      expect((await readdir(path.join(repo.dir, "bundles"))).sort()).toEqual([
        `${sha}.tar.gz`,
        `${sha}.tar.gz.meta.json`,
      ]);
    });
  }
});
