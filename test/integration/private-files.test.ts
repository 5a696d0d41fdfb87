import { chown, mkdir, mkdtemp, readdir, stat, symlink } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.ts";
import { createRepo } from "../helpers/git-repo.ts";

/** What only this user may read or write: the CLI's compile cache and the directory store's files. */

const modeOf = async (file: string) => (await stat(file)).mode & 0o777;

/** A fresh cache home and TMPDIR, with Node's own compile cache variable unset. */
async function homes() {
  const root = await mkdtemp(path.join(os.tmpdir(), "policyship-private-"));
  const cache = path.join(root, "cache");
  const tmp = path.join(root, "tmp");
  await mkdir(tmp);
  return { root, cache, tmp, env: { XDG_CACHE_HOME: cache, TMPDIR: tmp, NODE_COMPILE_CACHE: undefined } };
}

describe("the compile cache is the user's own", () => {
  it("goes to $XDG_CACHE_HOME/policyship/compile-cache, mode 0700, and never to the shared tmpdir", async () => {
    const { cache, tmp, env } = await homes();
    const result = await runCli(["--version"], { cwd: tmp, env });
    expect(result.exitCode, result.stderr).toBe(0);
    const dir = path.join(cache, "policyship", "compile-cache");
    expect(await modeOf(dir)).toBe(0o700);
    expect((await readdir(dir)).length).toBeGreaterThan(0);
    expect(await readdir(tmp)).not.toContain("node-compile-cache");
  });

  it("falls back to ~/.cache without XDG_CACHE_HOME", async () => {
    const { root, tmp, env } = await homes();
    const result = await runCli(["--version"], {
      cwd: tmp,
      env: { ...env, XDG_CACHE_HOME: undefined, HOME: root },
    });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(await modeOf(path.join(root, ".cache", "policyship", "compile-cache"))).toBe(0o700);
    expect(await readdir(tmp)).not.toContain("node-compile-cache");
  });

  it("is not used when its directory is another user's or a link elsewhere, and the CLI still runs", async () => {
    const { cache, tmp, env } = await homes();
    const shared = path.join(tmp, "shared-cache");
    await mkdir(shared, { mode: 0o777 });
    await mkdir(path.join(cache, "policyship"), { recursive: true });
    await symlink(shared, path.join(cache, "policyship", "compile-cache"));
    const linked = await runCli(["--version"], { cwd: tmp, env });
    expect(linked.exitCode, linked.stderr).toBe(0);
    expect(await readdir(shared)).toEqual([]);
    if (process.getuid?.() === 0) {
      // As root the test can hand the directory to another account, as another user would create it first.
      const other = await homes();
      const dir = path.join(other.cache, "policyship", "compile-cache");
      await mkdir(dir, { recursive: true, mode: 0o777 });
      await chown(dir, 65534, 65534);
      const foreign = await runCli(["--version"], { cwd: other.tmp, env: other.env });
      expect(foreign.exitCode, foreign.stderr).toBe(0);
      expect(await readdir(dir)).toEqual([]);
    }
  });
});

describe("the directory store writes for its user only", () => {
  it("publish creates its directories 0700 and the bundle and its .meta.json 0600", async () => {
    const repo = await createRepo({ examplePolicies: true });
    const sha = repo.git("rev-parse", "HEAD");
    for (const args of [["build"], ["publish", "--to", "store/nested", "--prefix", "team/"]]) {
      const result = await runCli(args, { cwd: repo.dir });
      expect(result.exitCode, result.stderr).toBe(0);
    }
    const store = path.join(repo.dir, "store");
    for (const dir of [store, path.join(store, "nested"), path.join(store, "nested", "team")])
      expect(await modeOf(dir)).toBe(0o700);
    const object = path.join(store, "nested", "team", `${sha}.tar.gz`);
    expect(await modeOf(object)).toBe(0o600);
    expect(await modeOf(`${object}.meta.json`)).toBe(0o600);
  });
});
