import { execFile } from "node:child_process";
import os from "node:os";
import path from "node:path";
import { allowListed } from "./opa/environment.ts";

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

/**
 * What git needs to read the user's repository the way the user's own git does: where it is (GIT_DIR,
 * GIT_WORK_TREE, …), which configuration files apply (HOME, XDG_CONFIG_HOME, GIT_CONFIG_GLOBAL/SYSTEM/
 * NOSYSTEM), and the locale. Everything policyship asks git is a local read (rev-parse, status, log,
 * ls-tree, diff --no-index), so it needs no network, no credentials and no program of its own choosing.
 *
 * Left out on purpose, because each names a program for git to run or carries configuration inline
 * (which can name one: core.pager, core.fsmonitor, diff.external): GIT_EXTERNAL_DIFF, GIT_PAGER, PAGER,
 * GIT_EDITOR, EDITOR, GIT_SEQUENCE_EDITOR, GIT_SSH, GIT_SSH_COMMAND, GIT_ASKPASS, SSH_ASKPASS,
 * GIT_PROXY_COMMAND, GIT_EXEC_PATH (where git finds its sub-commands), GIT_TEMPLATE_DIR (hooks),
 * GIT_CONFIG_COUNT / GIT_CONFIG_KEY_<n> / GIT_CONFIG_VALUE_<n>, GIT_CONFIG_PARAMETERS and GIT_CONFIG; also
 * GIT_TRACE* (writes wherever it points) and every secret of the runner. A configuration *file* named by
 * GIT_CONFIG_GLOBAL is the user's own, like ~/.gitconfig, so it stays.
 */
export const GIT_ENV_ALLOWED = [
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
] as const;

/** The allow-listed, null-prototype environment of every git child. */
export function gitEnvironment(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return allowListed(env, GIT_ENV_ALLOWED, [/^LC_[A-Z_]+$/]);
}

function git(cwd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      "git",
      args,
      { cwd, env: gitEnvironment(process.env), timeout: GIT_TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024 },
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

/** `git --version`, for doctor. */
export function gitVersion(cwd: string): Promise<string> {
  return git(cwd, ["--version"]).then((stdout) => stdout.trim());
}

/**
 * A unified diff of two files outside any repository (`git diff --no-index`), for `diff --patch`. The
 * files hold bundle contents, which may be hostile, so this git reads no configuration at all (no system or
 * global file, HOME pointing at `dir`, cwd `dir` and no repository above it searched) and runs no program on
 * them: no external diff (`--no-ext-diff`), no textconv filter, no pager. Its environment is PATH and the
 * locale. Empty when the files are the same.
 */
export function diffFiles(dir: string, a: string, b: string): Promise<string> {
  const env = allowListed(process.env, ["PATH", "LANG", "LANGUAGE", "TZ"], [/^LC_[A-Z_]+$/]);
  Object.assign(env, {
    HOME: dir,
    GIT_CONFIG_NOSYSTEM: "1",
    GIT_CONFIG_GLOBAL: os.devNull,
    GIT_CEILING_DIRECTORIES: path.dirname(dir),
  });
  return new Promise((resolve, reject) => {
    execFile(
      "git",
      ["--no-pager", "diff", "--no-index", "--no-color", "--no-ext-diff", "--no-textconv", "--", a, b],
      { cwd: dir, env, timeout: GIT_TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        // --no-index exits 1 when the files differ, like diff(1).
        if (error && error.code !== 1) reject(Object.assign(error, { stderr }));
        else resolve(stdout);
      },
    );
  });
}
