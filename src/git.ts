import type { SimpleGit } from "simple-git";

export interface CommitMetadata {
  sha: string;
  branch?: string;
  subject: string;
  author: string;
  committedAt: string;
}

const GIT_TIMEOUT_MS = 30_000;

async function open(cwd: string): Promise<SimpleGit> {
  const { simpleGit } = await import("simple-git");
  return simpleGit({ baseDir: cwd, timeout: { block: GIT_TIMEOUT_MS } });
}

/** The repository's top-level directory and HEAD's SHA in one git call; undefined outside a repository. */
export async function describeHead(cwd: string): Promise<{ root: string; sha?: string } | undefined> {
  let git: SimpleGit;
  try {
    git = await open(cwd);
  } catch {
    return undefined; // cwd missing, or no git binary
  }
  try {
    const [root = "", sha] = (await git.raw(["rev-parse", "--show-toplevel", "HEAD"])).trim().split("\n");
    return { root, sha };
  } catch {
    // No commits yet makes `rev-parse HEAD` fail; outside a repository --show-toplevel fails too.
    try {
      return { root: (await git.revparse(["--show-toplevel"])).trim() };
    } catch {
      return undefined;
    }
  }
}

/**
 * Paths with uncommitted changes among `paths` (tracked changes and untracked files that are not
 * ignored), leaving out `exclude` (policyship's own output). Pathspecs are relative to cwd.
 */
export async function dirtyPaths(cwd: string, paths: string[], exclude: string[]): Promise<string[]> {
  const git = await open(cwd);
  const specs = [...paths, ...exclude.map((dir) => `:(exclude)${dir}`)];
  const output = await git.raw(["status", "--porcelain=v1", "-z", "--untracked-files=all", "--", ...specs]);
  return output
    .split("\0")
    .filter((entry) => entry.length > 3)
    .map((entry) => entry.slice(3));
}

/** HEAD's subject, author, commit time and branch in one git call. */
export async function commitMetadata(cwd: string, env: NodeJS.ProcessEnv): Promise<CommitMetadata> {
  const git = await open(cwd);
  const log = await git.raw(["log", "-1", "--format=%H%x00%s%x00%an <%ae>%x00%cI%x00%D", "HEAD"]);
  const [sha = "", subject = "", author = "", committedAt = "", refs = ""] = log.trim().split("\0");
  const branch = /HEAD -> ([^,]+)/.exec(refs)?.[1];
  // Actions checks out a detached HEAD; GITHUB_REF_NAME still names the branch.
  return { sha, branch: branch ?? (env.GITHUB_REF_NAME || undefined), subject, author, committedAt };
}

/** A full SHA for a short SHA, tag or branch, or undefined when git does not know it. */
export async function resolveCommit(cwd: string, ref: string): Promise<string | undefined> {
  try {
    const git = await open(cwd);
    return (await git.raw(["rev-parse", "--verify", "--quiet", `${ref}^{commit}`])).trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Commit subjects by full SHA for the given SHAs that the local repository knows. */
export async function commitSubjects(cwd: string, shas: string[]): Promise<Map<string, string>> {
  const subjects = new Map<string, string>();
  const wanted = shas.filter((sha) => /^[0-9a-f]{40}$/.test(sha));
  if (wanted.length === 0) return subjects;
  try {
    const git = await open(cwd);
    const output = await git.raw(["log", "--all", "--max-count=10000", "--format=%H%x00%s"]);
    const set = new Set(wanted);
    for (const line of output.split("\n")) {
      const [sha = "", subject = ""] = line.split("\0");
      if (set.has(sha)) subjects.set(sha, subject);
    }
  } catch {
    // Outside a repository there are simply no subjects to show.
  }
  return subjects;
}
