import { lstat, readdir } from "node:fs/promises";
import path from "node:path";
import type { Context } from "../context.ts";
import { UserError } from "../errors.ts";

/** The name a candidate built from --candidate-dir carries: it is no commit of this repository. */
export const CANDIDATE_REVISION = "candidate";

/**
 * The policies of another checkout (a pull request's head), as the candidate: `<dir>/<policies>` with this
 * checkout's settings. Nothing else of that checkout is read (no policyship.yaml, no opa, no node_modules),
 * and no link or special file may stand in the directory, since opa would read what it points at (a file
 * of the runner's, another checkout's) into the bundle the policies then evaluate.
 */
export async function candidatePolicies(context: Context, dir: string): Promise<string> {
  const root = path.resolve(context.cwd, dir);
  const info = await lstat(root).catch(() => undefined);
  if (!info?.isDirectory()) {
    throw new UserError(`--candidate-dir ${dir} is not a directory`, "pass the checkout of the candidate");
  }
  const policies = path.resolve(root, context.settings.policies);
  const relative = path.relative(root, policies);
  if (relative.startsWith("..") || path.isAbsolute(relative)) {
    throw new UserError(
      `policies ${context.settings.policies} is outside --candidate-dir ${dir}`,
      "set policies to a directory inside the repository",
    );
  }
  // Each step from the checkout down to the policies must be a real directory too.
  let current = root;
  for (const segment of relative.split(path.sep).filter(Boolean)) {
    current = path.join(current, segment);
    const step = await lstat(current).catch(() => undefined);
    if (!step) {
      throw new UserError(
        `--candidate-dir ${dir} has no ${context.settings.policies} directory`,
        "the candidate's policies must be where this checkout's settings say",
      );
    }
    if (!step.isDirectory()) throw linkError(dir, path.relative(root, current));
  }
  for (const entry of await readdir(policies, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() && !entry.isDirectory()) {
      throw linkError(dir, path.relative(root, path.join(entry.parentPath, entry.name)));
    }
  }
  return policies;
}

function linkError(dir: string, name: string): UserError {
  return new UserError(
    `--candidate-dir ${dir}: ${name} is a link or special file, which opa would follow`,
    "commit the file itself, not a link to it",
  );
}
