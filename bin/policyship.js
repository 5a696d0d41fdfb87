#!/usr/bin/env node
// Maps the CLI's outcome to an exit code: 0 ok, 1 the work failed, 2 it could not start, 70 a bug, 130/143
// interrupted by SIGINT/SIGTERM.
import module from "node:module";

// V8's code cache on disk, in a directory only this user can write (see src/compile-cache.ts).
const { compileCacheDir } = await import("../dist/compile-cache.js");
const cacheDir = compileCacheDir();
if (cacheDir) module.enableCompileCache?.(cacheDir);

const { formatError, run } = await import("../dist/cli-bundle/cli.js");

// `policyship list | head` closes stdout early; that is the reader's choice, not an error.
process.stdout.on("error", (error) => {
  if (error.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw error;
});

try {
  await run(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`${formatError(error)}\n`);
  if (process.argv.includes("--verbose") && error instanceof Error && error.stack) {
    process.stderr.write(`${error.stack}\n`);
  }
  process.exitCode = typeof error?.exitCode === "number" ? error.exitCode : 70;
}
