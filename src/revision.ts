import path from "node:path";
import type { Context } from "./context.ts";
import { UserError } from "./errors.ts";
import { type CommitMetadata, commitMetadata, dirtyPaths, findRepositoryRoot, headRevision } from "./git.ts";
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
 */
export async function resolveBuildRevision(context: Context): Promise<ResolvedRevision> {
  const { settings, cwd } = context;
  const root = await findRepositoryRoot(cwd);
  if (!root) {
    if (!settings.revision) {
      throw new UserError(
        `${cwd} is not a git repository, so there is no commit to name the bundle after`,
        "run inside your repository, or pass --revision <id>",
      );
    }
    return { revision: assertRevision(settings.revision), dirty: false };
  }
  const [sha, git] = await Promise.all([
    settings.revision ? Promise.resolve(settings.revision) : headRevision(cwd),
    commitMetadata(cwd, context.env).catch(() => undefined),
  ]);
  const watched = [path.resolve(cwd, settings.policies)];
  if (context.configFile) watched.push(context.configFile);
  const dirty = await dirtyPaths(root, watched.map(toPathspec(root)), [
    toPathspec(root)(path.resolve(cwd, settings.out)),
  ]);
  if (dirty.length > 0 && !settings.allowDirty) {
    const shown = dirty.slice(0, 3).join(", ") + (dirty.length > 3 ? ` and ${dirty.length - 3} more` : "");
    throw new UserError(
      `uncommitted changes in what goes into the bundle: ${shown}`,
      "commit them, or pass --allow-dirty to build a <sha>-dirty revision that publish refuses",
    );
  }
  const revision = dirty.length > 0 ? `${sha}-dirty` : sha;
  return { revision: assertRevision(revision), dirty: dirty.length > 0, git };
}

function toPathspec(root: string) {
  return (absolute: string) => {
    const relative = path.relative(root, absolute);
    return relative === "" ? "." : relative;
  };
}
