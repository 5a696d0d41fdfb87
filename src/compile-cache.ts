import { chmodSync, lstatSync, mkdirSync } from "node:fs";
import os from "node:os";
import path from "node:path";

/**
 * Where bin/policyship.js keeps V8's code cache (Node >= 22.1: later runs skip compiling the CLI bundle).
 * Node's default is <tmpdir>/node-compile-cache, one path for every user of the machine: whoever creates it
 * first decides what compiled code the others load. So the cache lives in the user's own cache dir
 * (XDG_CACHE_HOME, else ~/.cache) under policyship/compile-cache, mode 0700, and is not used at all when it
 * or its parent is not a real directory of this user, or others may write to the parent.
 * Undefined means: run without a compile cache.
 */
export function compileCacheDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const base = env.XDG_CACHE_HOME || path.join(env.HOME || os.homedir(), ".cache");
  // The XDG base directory spec: a relative path is invalid and ignored.
  if (!path.isAbsolute(base)) return undefined;
  const dir = path.join(base, "policyship", "compile-cache");
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const uid = process.getuid?.();
    for (const checked of [path.dirname(dir), dir]) {
      const info = lstatSync(checked);
      if (!info.isDirectory() || (uid !== undefined && info.uid !== uid)) return undefined;
    }
    if ((lstatSync(path.dirname(dir)).mode & 0o002) !== 0) return undefined;
    chmodSync(dir, 0o700);
    return dir;
  } catch {
    // A read-only or unusual home only costs compiling the CLI on each run.
    return undefined;
  }
}
