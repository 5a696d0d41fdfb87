import path from "node:path";
import type { Context } from "./context.ts";
import { UserError } from "./errors.ts";
import { type CommitMetadata, commitMetadata, describeHead, dirtyPaths } from "./git.ts";
import { REVISION_PATTERN } from "./settings.ts";

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
  const watched = [relativeSpec(cwd, path.resolve(cwd, settings.policies))];
  if (context.configFile) watched.push(relativeSpec(cwd, context.configFile));
  const excluded = [relativeSpec(cwd, path.resolve(cwd, settings.out))];
  const [head, dirty, git] = await Promise.all([
    describeHead(cwd),
    dirtyPaths(cwd, watched, excluded).catch(() => undefined),
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
  const changed = dirty ?? [];
  if (changed.length > 0 && !settings.allowDirty) {
    const shown =
      changed.slice(0, 3).join(", ") + (changed.length > 3 ? ` and ${changed.length - 3} more` : "");
    throw new UserError(
      `uncommitted changes in what goes into the bundle: ${shown}`,
      "commit them, or pass --allow-dirty to build a <sha>-dirty revision that publish refuses",
    );
  }
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

function relativeSpec(cwd: string, absolute: string): string {
  const relative = path.relative(cwd, absolute);
  return relative === "" ? "." : relative;
}
