import path from "node:path";
import type { Context } from "./context.ts";
import { UserError } from "./errors.ts";
import { type CommitMetadata, commitMetadata, describeHead, dirtyPaths, gitErrorLine } from "./git.ts";
import { REVISION_PATTERN } from "./settings-access.ts";
import { WASM_SUFFIX } from "./store/store.ts";
import { treeDifferences } from "./tree-check.ts";

export interface ResolvedRevision {
  revision: string;
  dirty: boolean;
  git?: CommitMetadata;
}

export function assertRevision(revision: string, what = "revision"): string {
  if (!REVISION_PATTERN.test(revision)) {
    throw new UserError(
      `${what} ${JSON.stringify(revision)} is not safe in an object key`,
      "use 1–128 characters of A-Z a-z 0-9 . _ -",
    );
  }
  if (revision.endsWith(WASM_SUFFIX)) {
    throw new UserError(
      `${what} ${JSON.stringify(revision)} ends with "${WASM_SUFFIX}", which names the wasm artifact of a revision`,
      `drop the "${WASM_SUFFIX}" suffix; build with --target wasm for the wasm artifact`,
    );
  }
  return revision;
}

/**
 * The revision of what goes into the bundle: --revision, or the full SHA of HEAD. Uncommitted changes
 * under the policies (and the config file) refuse the build unless --allow-dirty, which appends -dirty.
 * The git calls run in parallel; `metadata` adds HEAD's subject, author and branch.
 */
export async function resolveBuildRevision(
  context: Context,
  options: { metadata?: boolean } = {},
): Promise<ResolvedRevision> {
  const { settings, cwd } = context;
  const policiesDir = path.resolve(cwd, settings.policies);
  const outDir = path.resolve(cwd, settings.out);
  const watched = [relativeSpec(cwd, policiesDir)];
  if (context.configFile) watched.push(relativeSpec(cwd, context.configFile));
  // An --out outside the working directory cannot hold watched files, and git refuses a pathspec outside
  // the repository: it is only excluded when inside.
  const outSpec = relativeSpec(cwd, outDir);
  const excluded = outSpec.startsWith("..") || path.isAbsolute(outSpec) ? [] : [outSpec];
  const headPromise = describeHead(cwd);
  const [head, dirty, tree, git] = await Promise.all([
    headPromise,
    dirtyPaths(cwd, watched, excluded).then(
      (paths) => ({ paths }),
      (error: unknown) => ({ error }),
    ),
    headPromise.then((found) =>
      found?.sha
        ? treeDifferences({ root: found.root, policiesDir, ignore: settings.ignore, exclude: outDir }).then(
            (paths) => ({ paths }),
            (error: unknown) =>
              (error as NodeJS.ErrnoException).code === "ENOENT" ? { paths: [] as string[] } : { error },
          )
        : { paths: [] as string[] },
    ),
    options.metadata ? commitMetadata(cwd, context.env).catch(() => undefined) : undefined,
  ]);
  if (!head) {
    if (!settings.revision) {
      throw new UserError(
        `${cwd} is not a git repository, so there is no commit to name the bundle after`,
        "run inside your repository, or pass --revision <id>",
      );
    }
    return { revision: assertRevision(settings.revision), dirty: false };
  }
  const sha = settings.revision ?? head.sha;
  if (!sha)
    throw new UserError(
      "the repository has no commits yet",
      "commit your policies first, or pass --revision",
    );
  const configFile = context.configFile ? toPosix(path.relative(head.root, context.configFile)) : undefined;
  const changed = describeChanges(pathsOrThrow(dirty), pathsOrThrow(tree), configFile);
  if (changed.length > 0 && !settings.allowDirty) throw dirtyError(changed, configFile);
  const revision = changed.length > 0 ? `${sha}-dirty` : sha;
  return { revision: assertRevision(revision), dirty: changed.length > 0, git };
}

/**
 * The revision a command names: --revision, or HEAD's full SHA. No dirty check: publish and config refer to
 * what build already wrote, whose revision carries -dirty if it was dirty.
 */
export async function revisionOrHead(context: Context, purpose: string): Promise<string> {
  if (context.settings.revision) return assertRevision(context.settings.revision);
  const head = await describeHead(context.cwd);
  if (!head?.sha)
    throw new UserError(`no revision to ${purpose}`, "run inside your git repository, or pass --revision");
  return head.sha;
}

/** A git command that fails says nothing about cleanliness: it is never taken for "clean". */
function pathsOrThrow(outcome: { paths: string[] } | { error: unknown }): string[] {
  if ("paths" in outcome) return outcome.paths;
  throw new UserError(
    `git could not tell whether the policies are committed: ${gitErrorLine(outcome.error)}`,
    "fix the repository (git status must succeed), then build again",
  );
}

/**
 * Each changed path once, with why: the tree check's reasons (not committed, differs, deleted) for the bundle's
 * files, and git status for the rest; the settings file last. Both name paths from the repository's root.
 */
function describeChanges(status: string[], tree: string[], configFile: string | undefined): string[] {
  const reasons = new Map<string, string>();
  for (const entry of tree) reasons.set(entry.replace(/ \([^()]*\)$/, ""), entry);
  for (const file of status) {
    if (file !== configFile && !reasons.has(file)) reasons.set(file, `${file} (uncommitted)`);
  }
  const changed = [...reasons.values()].sort();
  if (configFile && status.includes(configFile)) changed.push(`${configFile} (uncommitted settings)`);
  return changed;
}

function dirtyError(changed: string[], configFile: string | undefined): UserError {
  const files = changed.filter((entry) => !configFile || !entry.startsWith(`${configFile} (`));
  const shown = files.slice(0, 3).join(", ") + (files.length > 3 ? ` and ${files.length - 3} more` : "");
  const settings = files.length < changed.length;
  const what = [
    files.length > 0 ? `uncommitted changes in what goes into the bundle: ${shown}` : "",
    settings ? `${configFile}, whose settings decide how the bundle is built, has uncommitted changes` : "",
  ]
    .filter(Boolean)
    .join("; ");
  return new UserError(
    what,
    `commit ${files.length > 0 ? "them" : configFile}${files.length > 0 ? ", add them to --ignore," : ""} or pass --allow-dirty to build a <sha>-dirty revision that publish refuses`,
  );
}

function toPosix(relative: string): string {
  return relative.split(path.sep).join("/");
}

function relativeSpec(cwd: string, absolute: string): string {
  const relative = path.relative(cwd, absolute);
  return relative === "" ? "." : relative;
}
