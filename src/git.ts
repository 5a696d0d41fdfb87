import { execFile } from "node:child_process";

/**
 * git, one call per function. Direct execFile rather than simple-git: simple-git's import costs ~35 ms and
 * it ran our calls one after another (~55 ms); these run in parallel, and every command pays this on start.
 */

export interface CommitMetadata {
  sha: string;
  branch?: string;
  subject: string;
  author: string;
  committedAt: string;
}

const GIT_TIMEOUT_MS = 30_000;

function git(cwd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      "git",
      args,
      { cwd, timeout: GIT_TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error) reject(Object.assign(error, { stderr }));
        else resolve(stdout);
      },
    );
  });
}

/** The repository's top-level directory and HEAD's SHA in one git call; undefined outside a repository. */
export async function describeHead(cwd: string): Promise<{ root: string; sha?: string } | undefined> {
  try {
    const [root = "", sha] = (await git(cwd, ["rev-parse", "--show-toplevel", "HEAD"])).trim().split("\n");
    return { root, sha };
  } catch {
    // No commits yet makes `rev-parse HEAD` fail; outside a repository (or without git) everything does.
    try {
      return { root: (await git(cwd, ["rev-parse", "--show-toplevel"])).trim() };
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
  const specs = [...paths, ...exclude.map((dir) => `:(exclude)${dir}`)];
  const output = await git(cwd, ["status", "--porcelain=v1", "-z", "--untracked-files=all", "--", ...specs]);
  return output
    .split("\0")
    .filter((entry) => entry.length > 3)
    .map((entry) => entry.slice(3));
}

/** HEAD's subject, author, commit time and branch in one git call. */
export async function commitMetadata(cwd: string, env: NodeJS.ProcessEnv): Promise<CommitMetadata> {
  const log = await git(cwd, ["log", "-1", "--format=%H%x00%s%x00%an <%ae>%x00%cI%x00%D", "HEAD"]);
  const [sha = "", subject = "", author = "", committedAt = "", refs = ""] = log.trim().split("\0");
  const branch = /HEAD -> ([^,]+)/.exec(refs)?.[1];
  // Actions checks out a detached HEAD; GITHUB_REF_NAME still names the branch.
  return { sha, branch: branch ?? (env.GITHUB_REF_NAME || undefined), subject, author, committedAt };
}

/** A full SHA for a short SHA, tag or branch, or undefined when git does not know it. */
export async function resolveCommit(cwd: string, ref: string): Promise<string | undefined> {
  try {
    return (
      (await git(cwd, ["rev-parse", "--verify", "--quiet", "--end-of-options", `${ref}^{commit}`])).trim() ||
      undefined
    );
  } catch {
    return undefined;
  }
}

/** Commit subjects by full SHA for the given SHAs that the local repository knows. */
export async function commitSubjects(cwd: string, shas: string[]): Promise<Map<string, string>> {
  const subjects = new Map<string, string>();
  const wanted = new Set(shas.filter((sha) => /^[0-9a-f]{40}$/.test(sha)));
  if (wanted.size === 0) return subjects;
  try {
    const output = await git(cwd, ["log", "--all", "--max-count=10000", "--format=%H%x00%s"]);
    for (const line of output.split("\n")) {
      const [sha = "", subject = ""] = line.split("\0");
      if (wanted.has(sha)) subjects.set(sha, subject);
    }
  } catch {
    // Outside a repository there are simply no subjects to show.
  }
  return subjects;
}

export interface TreeBlob {
  mode: string;
  sha: string;
}

/** HEAD's blobs under `dirFromRoot` (a path from the top level), by path from the top level. */
export async function headBlobs(root: string, dirFromRoot: string): Promise<Map<string, TreeBlob>> {
  const output = await git(root, ["ls-tree", "-r", "-z", "--full-name", "HEAD", "--", dirFromRoot || "."]);
  const blobs = new Map<string, TreeBlob>();
  for (const entry of output.split("\0")) {
    // <mode> SP <type> SP <object> TAB <path>
    const match = /^(\d{6}) (\w+) ([0-9a-f]{40,64})\t(.+)$/s.exec(entry);
    if (match?.[2] === "blob")
      blobs.set(match[4] as string, { mode: match[1] as string, sha: match[3] as string });
  }
  return blobs;
}

/** The first line git printed on stderr, for one-line errors. */
export function gitErrorLine(error: unknown): string {
  const stderr = String((error as { stderr?: string }).stderr ?? "").trim();
  const line =
    stderr.split("\n").find((text) => text.trim() !== "") ?? (error as Error).message ?? String(error);
  return line.replace(/^(fatal|error):\s*/i, "").trim();
}
