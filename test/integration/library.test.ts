import path from "node:path";
import { describe, expect, it } from "vitest";
import { build, type Context, resolveSettings, silentLogger, test } from "../../src/index.ts";
import { createRepo } from "../helpers/git-repo.ts";
import { repoRoot } from "../helpers/tools.ts";

describe("policyship as a library", () => {
  it("builds and tests through functions that return data", async () => {
    const repo = await createRepo({ examplePolicies: true });
    const env = {
      ...process.env,
      PATH: `${path.join(repoRoot, ".tools/bin")}${path.delimiter}${process.env.PATH}`,
    };
    const { settings } = await resolveSettings({ cwd: repo.dir, env, flags: {} });
    const emitted: string[] = [];
    const context: Context = {
      cwd: repo.dir,
      env,
      settings,
      explicit: new Set(),
      json: false,
      verbose: false,
      log: silentLogger,
      emit: (line) => emitted.push(line),
    };
    const built = await build(context);
    expect(built).toMatchObject({ revision: repo.git("rev-parse", "HEAD"), regoVersion: 1 });
    const tested = await test(context);
    expect(tested).toMatchObject({ passed: 13, failed: 0, failures: [] });
    expect(emitted).toEqual([]);
  });
});
