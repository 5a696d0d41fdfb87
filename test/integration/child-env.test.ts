import { execFileSync } from "node:child_process";
import { chmod, mkdtemp, readFile, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.ts";
import { createRepo, type TempRepo } from "../helpers/git-repo.ts";
import { tarball } from "../helpers/tarball.ts";
import { repoRoot, toolPath } from "../helpers/tools.ts";

/**
 * Children (git, opa) get an environment built from an allow-list, and `diff --patch` runs nothing a
 * bundle or the environment names. Each spy below is the real program behind a script that first records
 * the environment it was given.
 */

let scratch: string;
let marker: string;
let evil: string;
let good: string;
let hostile: string;

const fileExists = (file: string) =>
  stat(file).then(
    () => true,
    () => false,
  );

beforeAll(async () => {
  scratch = await mkdtemp(path.join(os.tmpdir(), "policyship-child-env-"));
  marker = path.join(scratch, "ran");
  // Whatever runs this writes the marker: the proof that a planted program was started.
  evil = path.join(scratch, "evil.sh");
  await writeFile(evil, `#!/bin/sh\necho "$0 $*" >> "${marker}"\n`);
  await chmod(evil, 0o755);
  const manifest = (revision: string) => ({
    name: ".manifest",
    body: JSON.stringify({ revision, roots: [""] }),
  });
  good = path.join(scratch, "good.tar.gz");
  await writeFile(
    good,
    tarball([manifest("good"), { name: "authz.rego", body: "package authz\n\nallow := false\n" }]),
  );
  hostile = path.join(scratch, "hostile.tar.gz");
  await writeFile(
    hostile,
    tarball([
      manifest("hostile"),
      { name: "authz.rego", body: "package authz\n\nallow := true\n" },
      // diff used to merge this onto Object.prototype, and git inherited it from there.
      { name: "__proto__/data.json", body: JSON.stringify({ GIT_EXTERNAL_DIFF: evil, GIT_PAGER: evil }) },
    ]),
  );
});

describe("diff --patch runs nothing a bundle or the environment names", () => {
  it("a bundle holding __proto__/data.json with GIT_EXTERNAL_DIFF does not reach git", async () => {
    const result = await runCli(["diff", good, hostile, "--patch", "--json"], { cwd: scratch });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(await fileExists(marker)).toBe(false);
    const report = JSON.parse(result.stdout);
    // The directory is a key of the data like any other, as OPA loads it.
    expect(report.data.added).toEqual(["/__proto__"]);
    const text = await runCli(["diff", good, hostile, "--patch"], { cwd: scratch });
    expect(text.stdout).toContain("-allow := false\n+allow := true");
    expect(await fileExists(marker)).toBe(false);
  });

  it("the user's GIT_EXTERNAL_DIFF, GIT_PAGER, diff.external and textconv drivers are not run either", async () => {
    const config = path.join(scratch, "gitconfig");
    await writeFile(
      config,
      `[diff]\n\texternal = ${evil}\n[core]\n\tpager = ${evil}\n\tattributesFile = ${path.join(scratch, "attributes")}\n[diff "rego"]\n\ttextconv = ${evil}\n`,
    );
    await writeFile(path.join(scratch, "attributes"), "*.rego diff=rego\n");
    const result = await runCli(["diff", good, hostile, "--patch"], {
      cwd: scratch,
      env: { GIT_EXTERNAL_DIFF: evil, GIT_PAGER: evil, PAGER: evil, GIT_CONFIG_GLOBAL: config },
    });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toContain("+allow := true");
    expect(await fileExists(marker)).toBe(false);
  });
});

/** git's and opa's allowed names (src/git.ts, src/opa/environment.ts), and what sh itself adds. */
const GIT_ALLOWED = new Set([
  "PATH",
  "HOME",
  "XDG_CONFIG_HOME",
  "TMPDIR",
  "LANG",
  "LANGUAGE",
  "TZ",
  "GIT_DIR",
  "GIT_WORK_TREE",
  "GIT_COMMON_DIR",
  "GIT_INDEX_FILE",
  "GIT_OBJECT_DIRECTORY",
  "GIT_ALTERNATE_OBJECT_DIRECTORIES",
  "GIT_CEILING_DIRECTORIES",
  "GIT_DISCOVERY_ACROSS_FILESYSTEM",
  "GIT_NAMESPACE",
  "GIT_CONFIG_GLOBAL",
  "GIT_CONFIG_SYSTEM",
  "GIT_CONFIG_NOSYSTEM",
]);
// No proxy variable: opa never uses the network, and a proxy URL can carry a password.
const OPA_ALLOWED = new Set([
  ...["PATH", "HOME", "TMPDIR", "TMP", "TEMP", "LANG", "LANGUAGE", "TZ", "SSL_CERT_FILE", "SSL_CERT_DIR"],
  ...["GOMAXPROCS", "GOMEMLIMIT"],
]);
const SHELL_ADDS = new Set(["PWD", "OLDPWD", "SHLVL", "_"]);

/** A directory holding `git` and `opa` scripts that record their environment, then run the real ones. */
async function spies(): Promise<{ dir: string; calls: (name: "git" | "opa") => Promise<string[][]> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "policyship-env-spy-"));
  const realGit = execFileSync("sh", ["-c", "command -v git"], { encoding: "utf8" }).trim();
  for (const [name, real] of [
    ["git", realGit],
    ["opa", path.resolve(toolPath("opa"))],
  ] as const) {
    await writeFile(
      path.join(dir, name),
      `#!/bin/sh\n/usr/bin/env -0 > "${dir}/${name}.$$.env"\nprintf '\\n' >> "${dir}/calls.${name}"\necho "$$" >> "${dir}/calls.${name}"\nexec "${real}" "$@"\n`,
    );
    await chmod(path.join(dir, name), 0o755);
  }
  return {
    dir,
    calls: async (name) => {
      const pids = (await readFile(path.join(dir, `calls.${name}`), "utf8").catch(() => ""))
        .split("\n")
        .filter(Boolean);
      return Promise.all(
        pids.map(async (pid) =>
          (await readFile(path.join(dir, `${name}.${pid}.env`), "utf8"))
            .split("\0")
            .filter(Boolean)
            .map((entry) => entry.slice(0, entry.indexOf("="))),
        ),
      );
    },
  };
}

describe("every git and opa child gets an allow-listed environment", () => {
  let repo: TempRepo;
  beforeAll(async () => {
    repo = await createRepo({ examplePolicies: true });
    const rego = await readFile(path.join(repo.dir, "policies/authz.rego"), "utf8");
    await repo.write("policies/authz.rego", `${rego}\nextra_rule := true\n`);
    repo.commit("a second revision");
  });

  it("build, diff of git refs and --patch: git and opa see nothing outside their lists", async () => {
    const spy = await spies();
    const planted = {
      GITHUB_TOKEN: "SENTINEL-github-token",
      HTTPS_PROXY: "http://user:SENTINEL-proxy-password@127.0.0.1:9",
      https_proxy: "http://user:SENTINEL-proxy-password@127.0.0.1:9",
      AWS_SECRET_ACCESS_KEY: "SENTINEL-aws-secret",
      POLICYSHIP_REGISTRY_PASSWORD: "SENTINEL-registry-password",
      GIT_EXTERNAL_DIFF: evil,
      GIT_PAGER: evil,
      GIT_SSH_COMMAND: evil,
      GIT_ASKPASS: evil,
      GIT_CONFIG_PARAMETERS: `'core.fsmonitor'='${evil}'`,
      // Inline configuration: `git status` would run this fsmonitor hook.
      GIT_CONFIG_COUNT: "1",
      GIT_CONFIG_KEY_0: "core.fsmonitor",
      GIT_CONFIG_VALUE_0: evil,
    };
    const env = {
      ...planted,
      PATH: `${spy.dir}${path.delimiter}${path.join(repoRoot, ".tools/bin")}${path.delimiter}${process.env.PATH}`,
    };
    for (const args of [["build"], ["diff", "HEAD~1", "HEAD", "--patch"]]) {
      const result = await runCli(args, { cwd: repo.dir, env });
      expect(result.exitCode, result.stderr).toBe(0);
    }
    expect(await fileExists(marker)).toBe(false);
    const gitCalls = await spy.calls("git");
    const opaCalls = await spy.calls("opa");
    // build asks git for HEAD, the tree's state and the commit; diff archives HEAD~1 and runs diff --no-index.
    expect(gitCalls.length).toBeGreaterThanOrEqual(4);
    expect(opaCalls.length).toBeGreaterThanOrEqual(2);
    for (const names of gitCalls) {
      expect(
        names.filter((name) => !GIT_ALLOWED.has(name) && !/^LC_/.test(name) && !SHELL_ADDS.has(name)),
      ).toEqual([]);
    }
    for (const names of opaCalls) {
      expect(
        names.filter((name) => !OPA_ALLOWED.has(name) && !/^LC_/.test(name) && !SHELL_ADDS.has(name)),
      ).toEqual([]);
    }
    for (const names of [...gitCalls, ...opaCalls])
      for (const name of Object.keys(planted)) expect(names).not.toContain(name);
  });
});
