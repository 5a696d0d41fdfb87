import { execFileSync } from "node:child_process";
import { cp, mkdir, mkdtemp, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { repoRoot } from "./tools.ts";

/** Pinned identity and dates so that commits are reproducible and never read the user's git config. */
export const gitEnv = {
  GIT_AUTHOR_NAME: "Policy Tester",
  GIT_AUTHOR_EMAIL: "tester@example.com",
  GIT_COMMITTER_NAME: "Policy Tester",
  GIT_COMMITTER_EMAIL: "tester@example.com",
  GIT_CONFIG_NOSYSTEM: "1",
  GIT_CONFIG_GLOBAL: "/dev/null",
};

export interface TempRepo {
  dir: string;
  git: (...args: string[]) => string;
  write: (file: string, content: string) => Promise<void>;
  commit: (message: string) => string;
}

/** A new git repository in a temp dir, optionally holding a copy of the example policies. */
export async function createRepo(options: { examplePolicies?: boolean } = {}): Promise<TempRepo> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "policyship-repo-"));
  const git = (...args: string[]) =>
    execFileSync("git", args, { cwd: dir, env: { ...process.env, ...gitEnv }, encoding: "utf8" }).trim();
  git("init", "--quiet", "--initial-branch=main");
  const repo: TempRepo = {
    dir,
    git,
    write: async (file, content) => {
      await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
      await writeFile(path.join(dir, file), content);
    },
    commit: (message) => {
      git("add", "--all");
      git("commit", "--quiet", "--allow-empty", "-m", message);
      return git("rev-parse", "HEAD");
    },
  };
  if (options.examplePolicies) {
    await cp(path.join(repoRoot, "policies"), path.join(dir, "policies"), { recursive: true });
    repo.commit("add example policies");
  }
  return repo;
}
