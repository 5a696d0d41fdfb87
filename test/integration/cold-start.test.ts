import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.ts";
import { repoRoot } from "../helpers/tools.ts";

/**
 * What a cold start loads (bench row P2, docs/perf/P2.md): the built CLI runs with a module hook that
 * records every file it loads, and each file of dist/cli-bundle/ is traced back through its source map to
 * the sources bundled into it. `--version` needs no command and no settings; `--help` every command's
 * definition but no settings schema; `config` its own command, zod and yaml, and no other command's code,
 * no AWS SDK, no HTTP client, no tar.
 */

let scratch: string;
let hook: string;

beforeAll(async () => {
  scratch = await mkdtemp(path.join(os.tmpdir(), "policyship-cold-start-"));
  hook = path.join(scratch, "record-loads.mjs");
  await writeFile(
    hook,
    `import { appendFileSync } from "node:fs";
import { registerHooks } from "node:module";
registerHooks({
  load(url, context, nextLoad) {
    appendFileSync(process.env.RECORD_LOADS_TO, url + "\\n");
    return nextLoad(url, context);
  },
});
`,
  );
});

afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

const bundle = path.join(repoRoot, "dist/cli-bundle");

/** Runs the built CLI and returns its result and the sources (repository-relative) of everything it loaded. */
async function loadedBy(args: string[]) {
  const record = path.join(scratch, `${args.join("_").replace(/[^a-z0-9_-]/gi, "")}.loads`);
  const result = await runCli(args, {
    cwd: scratch,
    env: { NODE_OPTIONS: `--import=${pathToFileURL(hook).href}`, RECORD_LOADS_TO: record },
  });
  const urls = (await readFile(record, "utf8")).trim().split("\n");
  const chunks = urls
    .filter((url) => url.startsWith("file:"))
    .map((url) => fileURLToPath(url))
    .filter((file) => file.startsWith(`${bundle}${path.sep}`));
  const sources = new Set<string>();
  for (const chunk of chunks) {
    const map = JSON.parse(await readFile(`${chunk}.map`, "utf8")) as { sources: string[] };
    for (const source of map.sources) {
      sources.add(path.relative(repoRoot, path.resolve(path.dirname(chunk), source)));
    }
  }
  return { result, chunks, sources: [...sources] };
}

/** The packages each start-up path must not load, and the command modules besides `allowed`. */
function offending(sources: string[], packages: string[], allowedCommands: string[]) {
  return sources.filter(
    (source) =>
      packages.some((name) => source.startsWith(`node_modules/${name}/`)) ||
      (source.startsWith("src/commands/") && !allowedCommands.includes(source)),
  );
}

const NETWORK_AND_ARCHIVES = ["@aws-sdk", "@smithy", "undici", "tar", "minizlib"];

describe("cold start", () => {
  it("--version loads no command, no settings schema and no network client", async () => {
    const { result, chunks, sources } = await loadedBy(["--version"]);
    expect(result.exitCode).toBe(0);
    expect(result.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    expect(chunks.length).toBeGreaterThan(0);
    expect(sources).toContain("src/cli.ts");
    expect(offending(sources, [...NETWORK_AND_ARCHIVES, "zod", "yaml", "safe-stable-stringify"], [])).toEqual(
      [],
    );
  });

  it("config loads its own command and no other, and no AWS SDK, HTTP client or tar", async () => {
    const { result, sources } = await loadedBy([
      "config",
      "--revision",
      "a".repeat(40),
      "--bucket",
      "acme-policies",
      "--region",
      "eu-west-1",
    ]);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain(`policyship-revision: ${"a".repeat(40)}`);
    expect(sources).toContain("src/commands/config.ts");
    expect(offending(sources, NETWORK_AND_ARCHIVES, ["src/commands/config.ts"])).toEqual([]);
  });

  it("--help lists every command from their definitions, without zod, the AWS SDK, an HTTP client or tar", async () => {
    const { result, sources } = await loadedBy(["--help"]);
    expect(result.exitCode).toBe(0);
    for (const name of ["build", "test", "publish", "config", "rollback", "impact", "explain", "doctor"]) {
      expect(result.stdout).toMatch(new RegExp(`^  ${name} `, "m"));
    }
    expect(sources).toContain("src/commands/impact.ts");
    expect(
      offending(sources, [...NETWORK_AND_ARCHIVES, "zod", "yaml", "safe-stable-stringify"], sources),
    ).toEqual([]);
  });
});

describe("reading argv before loading the commands", () => {
  it("a misspelt command still gets commander's suggestion, which needs every command", async () => {
    const result = await runCli(["confg"], { cwd: scratch });
    expect(result.exitCode).toBe(2);
    expect(result.stderr.trim()).toBe(
      "policyship: unknown command 'confg'; (Did you mean config?) — see policyship --help",
    );
  });

  it("a global flag's value is not taken for the command: `--cwd config` names a directory", async () => {
    const result = await runCli(["--cwd", "config"], { cwd: scratch });
    expect(result.exitCode).toBe(2);
    // No command, so commander shows the whole list, not config's help.
    expect(result.stderr).toMatch(/^ {2}doctor /m);
    expect(result.stderr).toMatch(/^ {2}config /m);
  });

  it("--version after a command, or after a flag and its value, prints the version", async () => {
    for (const args of [
      ["config", "--version"],
      ["--cwd=.", "-V"],
      ["--opa", "opa", "--version"],
    ]) {
      const result = await runCli(args, { cwd: scratch });
      expect(result.exitCode).toBe(0);
      expect(result.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    }
  });
});
