import { execFile } from "node:child_process";
import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { readFile, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { beforeAll, describe, expect, it } from "vitest";
import { type CliResult, expectOneLineError } from "../helpers/cli.ts";
import { createRepo, gitEnv, type TempRepo } from "../helpers/git-repo.ts";
import { repoRoot, toolPath } from "../helpers/tools.ts";

/**
 * Reading decision logs is bounded: each limit is one line and exit 2, in bounded memory, never exit 70 or
 * gigabytes of RSS. The CLI runs under GNU time, which reports its peak RSS.
 */

let repo: TempRepo;
const MAX_RSS_KB = 512 * 1024;

beforeAll(async () => {
  repo = await createRepo({ examplePolicies: true });
});

async function runMeasured(args: string[]): Promise<CliResult & { rssKb: number }> {
  const rssFile = path.join(repo.dir, "rss.txt");
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...gitEnv,
    PATH: `${path.join(repoRoot, ".tools/bin")}${path.delimiter}${process.env.PATH ?? ""}`,
    GITHUB_ACTIONS: "",
  };
  const result = await new Promise<CliResult>((resolve) => {
    execFile(
      "/usr/bin/time",
      ["-f", "%M", "-o", rssFile, toolPath("node"), path.join(repoRoot, "bin/policyship.js"), ...args],
      { cwd: repo.dir, env, timeout: 120_000, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
        resolve({ exitCode: code, stdout, stderr });
      },
    );
  });
  const rssKb = Number((await readFile(rssFile, "utf8")).trim().split("\n").at(-1));
  return { ...result, rssKb };
}

describe("impact reads decision logs within bounds", () => {
  it("a 2 MB gzip that inflates to gigabytes is refused", async () => {
    // 64 MiB of blank-padded lines compresses ~1000:1; gzip members concatenated inflate one after another.
    const member = gzipSync(Buffer.from(`${" ".repeat(64 * 1024 - 1)}\n`.repeat(1024)), { level: 9 });
    const members = Math.ceil((2 * 1024 * 1024) / member.length);
    const file = path.join(repo.dir, "upload.json.gz");
    await writeFile(file, Buffer.concat(Array.from({ length: members }, () => member)));
    expect((await stat(file)).size).toBeLessThanOrEqual(2.2 * 1024 * 1024);
    expect(members * 64).toBeGreaterThanOrEqual(2 * 1024); // MiB inflated: gigabytes
    const result = await runMeasured([
      "impact",
      "--decisions",
      "upload.json.gz",
      "--fail-on",
      "deny-to-allow",
    ]);
    expect(result.exitCode, result.stderr).toBe(2);
    expect(expectOneLineError(result)).toMatch(
      /upload\.json\.gz is refused: it inflates past 1073741824 bytes/,
    );
    expect(result.rssKb).toBeLessThan(MAX_RSS_KB);
    await rm(file);
  }, 180_000);

  it("a 600 MB line is refused after its first 16 MiB, read in linear time", async () => {
    const file = path.join(repo.dir, "long.ndjson");
    // Written as a stream from one 1 MiB buffer: the test never holds the line either.
    const out = createWriteStream(file);
    out.write('{"decision_id":"long","path":"authz/allow","input":"');
    const chunk = Buffer.alloc(1024 * 1024, "a");
    for (let i = 0; i < 600; i++) if (!out.write(chunk)) await once(out, "drain");
    out.end('"}\n');
    await once(out, "finish");
    const started = Date.now();
    const result = await runMeasured(["impact", "--decisions", "long.ndjson"]);
    expect(result.exitCode, result.stderr).toBe(2);
    expect(expectOneLineError(result)).toMatch(
      /long\.ndjson is refused: line 1 is longer than 16777216 bytes/,
    );
    expect(result.rssKb).toBeLessThan(MAX_RSS_KB);
    expect(Date.now() - started).toBeLessThan(60_000);
    await rm(file);
  }, 180_000);

  it("a line nested 200,000 deep is refused before it is parsed", async () => {
    await writeFile(
      path.join(repo.dir, "deep.ndjson"),
      `{"decision_id":"deep","path":"authz/allow","bundles":{"authz":{"revision":"${repo.git("rev-parse", "HEAD")}"}},"input":${"[".repeat(200_000)}${"]".repeat(200_000)}}\n`,
    );
    const result = await runMeasured(["impact", "--decisions", "deep.ndjson", "--json"]);
    expect(result.exitCode, result.stderr).toBe(2);
    expect(expectOneLineError(result)).toMatch(
      /deep\.ndjson is refused: line 1 nests deeper than 1000 levels/,
    );
    expect(result.rssKb).toBeLessThan(MAX_RSS_KB);
  }, 120_000);
});
