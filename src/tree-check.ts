import { createHash } from "node:crypto";
import { readdir, readFile, readlink } from "node:fs/promises";
import path from "node:path";
import { headBlobs } from "./git.ts";

/**
 * What `git status` cannot see: the bytes opa bundles against HEAD's tree. Every file under the policies
 * directory, ignored ones included, must be in HEAD with the same blob; anything else (modified, untracked,
 * gitignored, deleted) makes the build dirty. `ignore` patterns (opa build --ignore) leave files out of both.
 */
export async function treeDifferences(options: {
  root: string;
  policiesDir: string;
  ignore: readonly string[];
  /** A directory under the policies not to look at (policyship's own output). */
  exclude?: string;
}): Promise<string[]> {
  const { root, policiesDir } = options;
  const fromRoot = toPosix(path.relative(root, policiesDir));
  const ignored = options.ignore.map(globToRegExp);
  const skip = (relative: string) =>
    relative.split("/").some((segment) => ignored.some((pattern) => pattern.test(segment)));
  const [blobs, entries] = await Promise.all([
    headBlobs(root, fromRoot),
    readdir(policiesDir, { recursive: true, withFileTypes: true }),
  ]);
  const differences: string[] = [];
  const seen = new Set<string>();
  await Promise.all(
    entries.map(async (entry) => {
      if (entry.isDirectory()) return;
      const absolute = path.join(entry.parentPath, entry.name);
      if (options.exclude && isInside(options.exclude, absolute)) return;
      const relative = toPosix(path.relative(policiesDir, absolute));
      if (skip(relative)) return;
      const key = fromRoot ? `${fromRoot}/${relative}` : relative;
      seen.add(key);
      const blob = blobs.get(key);
      if (!blob) {
        differences.push(`${key} (not committed)`);
        return;
      }
      const content = entry.isSymbolicLink()
        ? Buffer.from(await readlink(absolute))
        : await readFile(absolute);
      if (blobSha(content, blob.sha.length) !== blob.sha) differences.push(`${key} (differs from HEAD)`);
    }),
  );
  for (const key of blobs.keys()) {
    const relative = fromRoot ? key.slice(fromRoot.length + 1) : key;
    if (!seen.has(key) && !skip(relative)) differences.push(`${key} (deleted)`);
  }
  return differences.sort();
}

/** git's object id of a blob: sha1 (40 hex) or sha256 (64 hex) over "blob <size>\0<content>". */
function blobSha(content: Buffer, hexLength: number): string {
  const hash = createHash(hexLength === 64 ? "sha256" : "sha1");
  hash.update(`blob ${content.length}\0`);
  hash.update(content);
  return hash.digest("hex");
}

/** opa's --ignore patterns match file and directory names; * and ? are the wildcards. */
function globToRegExp(pattern: string): RegExp {
  const escaped = pattern
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replaceAll("*", ".*")
    .replaceAll("?", ".");
  return new RegExp(`^${escaped}$`);
}

function toPosix(relative: string): string {
  return relative.split(path.sep).join("/");
}

function isInside(dir: string, file: string): boolean {
  const relative = path.relative(dir, file);
  return relative === "" || (!relative.startsWith("..") && !path.isAbsolute(relative));
}
