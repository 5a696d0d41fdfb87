import { createReadStream } from "node:fs";
import { mkdtemp, writeFile } from "node:fs/promises";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliResult, expectOneLineError, runCli } from "../helpers/cli.ts";
import { createRepo, type TempRepo } from "../helpers/git-repo.ts";
import { type RunningOpa, startOpaServer } from "../helpers/opa-server.ts";
import { freePort } from "../helpers/ports.ts";
import { listen } from "../helpers/serve.ts";

/**
 * OPA instances are one setting, `instances`: --instance on status, prune and list, POLICYSHIP_INSTANCES, and
 * instances: in policyship.yaml, with the precedence of every other setting. --opa is the opa binary; an
 * --opa URL on status and prune still names an instance this version, with a notice on stderr only.
 */

const NOTICE = "policyship: --opa <url> is deprecated for instances — use --instance <url>";

let repo: TempRepo;
/** [older, newer], both published to the directory store `bundles`. */
const revisions: string[] = [];
const stoppers: (() => Promise<void>)[] = [];
/** runsOlder runs revisions[0], runsNewer revisions[1]. */
let runsOlder: RunningOpa;
let runsNewer: RunningOpa;
/** 127.0.0.1:<port> where nothing listens. */
let closed: string;
const storeArgs = ["--to", "bundles"];

const cli = (args: string[], env: Record<string, string | undefined> = {}, cwd = repo.dir) =>
  runCli(args, { cwd, env: { POLICYSHIP_INSTANCES: undefined, POLICYSHIP_OPA_TOKEN: undefined, ...env } });

/** The URLs status read, in order. */
function statusUrls(result: CliResult): string[] {
  expect(result.exitCode, result.stderr).toBe(0);
  return JSON.parse(result.stdout).instances.map((instance: { url: string }) => instance.url);
}

/** A directory holding only a policyship.yaml (or .json): status needs no repository without --expect. */
async function configured(name: string, text: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "policyship-instances-"));
  await writeFile(path.join(dir, name), text);
  return dir;
}

/** A real OPA downloading `revision` from the store, served over HTTP, with its status plugin on. */
async function opaRunning(revision: string, served: string): Promise<RunningOpa> {
  const file = `${revision}.opa.yaml`;
  const rendered = await cli([
    "config",
    "--revision",
    revision,
    ...storeArgs,
    "--service-url",
    served,
    "--polling-min",
    "1",
    "--polling-max",
    "2",
    "-o",
    file,
  ]);
  expect(rendered.exitCode, rendered.stderr).toBe(0);
  const opa = await startOpaServer(["--config-file", path.join(repo.dir, file)], { waitForBundles: true });
  stoppers.push(opa.stop);
  return opa;
}

beforeAll(async () => {
  repo = await createRepo({ examplePolicies: true });
  for (let i = 0; i < 2; i++) {
    if (i > 0) repo.commit(`revision ${i}`);
    for (const step of [["build"], ["publish", ...storeArgs]]) {
      const result = await cli(step);
      expect(result.exitCode, result.stderr).toBe(0);
    }
    revisions.push(repo.git("rev-parse", "HEAD"));
    // Distinct modification times, so that the listing's newest-first order is the publish order.
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const dir = path.join(repo.dir, "bundles");
  const served = await listen(
    http.createServer((request, response) => {
      const file = path.join(dir, path.basename(new URL(request.url ?? "/", "http://x").pathname));
      createReadStream(file)
        .on("error", () => response.writeHead(404).end())
        .on("open", () => response.writeHead(200, { "content-type": "application/gzip" }))
        .pipe(response);
    }),
  );
  stoppers.push(served.close);
  [runsOlder, runsNewer] = await Promise.all([
    opaRunning(revisions[0] as string, served.url),
    opaRunning(revisions[1] as string, served.url),
  ]);
  closed = `http://127.0.0.1:${await freePort()}`;
}, 180_000);

afterAll(() => Promise.all(stoppers.map((stop) => stop())));

describe("the instances setting, from each of its three places", () => {
  it("status --instance (repeatable) reads each instance, with no notice", async () => {
    const result = await cli(["status", "--instance", runsOlder.url, "--instance", runsNewer.url, "--json"]);
    expect(statusUrls(result)).toEqual([runsOlder.url, runsNewer.url]);
    expect(JSON.parse(result.stdout).instances.map((i: { revision: string }) => i.revision)).toEqual(
      revisions,
    );
    expect(result.stderr).toBe("");
  });

  it("POLICYSHIP_INSTANCES is a comma-separated list", async () => {
    const result = await cli(["status", "--json"], {
      POLICYSHIP_INSTANCES: `${runsNewer.url}, ${runsOlder.url}`,
    });
    expect(statusUrls(result)).toEqual([runsNewer.url, runsOlder.url]);
  });

  it("instances: in policyship.yaml, and in policyship.json", async () => {
    const yaml = await configured("policyship.yaml", `instances:\n  - ${runsOlder.url}\n`);
    expect(statusUrls(await cli(["status", "--json"], {}, yaml))).toEqual([runsOlder.url]);
    const json = await configured("policyship.json", JSON.stringify({ instances: [runsNewer.url] }));
    expect(statusUrls(await cli(["status", "--json"], {}, json))).toEqual([runsNewer.url]);
  });

  it("flags, then the environment, then the file: the first that names instances names all of them", async () => {
    const dir = await configured("policyship.yaml", `instances: [${closed}]\n`);
    const fromEnv = await cli(["status", "--json"], { POLICYSHIP_INSTANCES: runsOlder.url }, dir);
    expect(statusUrls(fromEnv)).toEqual([runsOlder.url]);
    const fromFlag = await cli(
      ["status", "--instance", runsNewer.url, "--json"],
      { POLICYSHIP_INSTANCES: runsOlder.url },
      dir,
    );
    expect(statusUrls(fromFlag)).toEqual([runsNewer.url]);
    // The file alone names the closed port: the setting really is read from there too.
    const fromFile = await cli(["status", "--json"], {}, dir);
    expect(fromFile.exitCode).toBe(1);
    expect(JSON.parse(fromFile.stdout).instances[0]).toMatchObject({ url: closed, revision: null });
  });

  it("prune keeps what the instances of the flag, the environment or the file run", async () => {
    const plan = async (env: Record<string, string>, args: string[] = []) => {
      const result = await cli(["prune", "--keep", "1", ...storeArgs, ...args, "--json"], env);
      expect(result.exitCode, result.stderr).toBe(0);
      return JSON.parse(result.stdout) as { delete: { revision: string }[]; keep: { reason: string }[] };
    };
    // Without an instance the older revision is deleted; run by one, it stays as active.
    expect((await plan({})).delete.map((entry) => entry.revision)).toEqual([revisions[0]]);
    const fromFlag = await plan({}, ["--instance", runsOlder.url]);
    expect(fromFlag.keep).toContainEqual(
      expect.objectContaining({ revision: revisions[0], reason: "active" }),
    );
    const fromEnv = await plan({ POLICYSHIP_INSTANCES: runsOlder.url });
    expect(fromEnv.delete).toEqual([]);
    expect(fromEnv.keep).toContainEqual(
      expect.objectContaining({ revision: revisions[0], reason: "active" }),
    );
    await writeFile(path.join(repo.dir, "instances.yaml"), `instances: [${runsOlder.url}]\n`);
    const fromFile = await plan({}, ["--config", "instances.yaml"]);
    expect(fromFile.keep).toContainEqual(
      expect.objectContaining({ revision: revisions[0], reason: "active" }),
    );
  });
});

describe("--opa <url> on status and prune, deprecated", () => {
  it("status still reads it; the notice is one line on stderr and stdout stays one JSON document", async () => {
    const result = await cli(["status", "--opa", runsOlder.url, "--instance", runsNewer.url, "--json"]);
    // An --opa URL comes after the --instance flags.
    expect(statusUrls(result)).toEqual([runsNewer.url, runsOlder.url]);
    expect(result.stderr).toBe(`${NOTICE}\n`);
    expect(result.stdout).not.toContain("deprecated");
  });

  it("prune still keeps what it runs, with the notice once however many are given", async () => {
    const result = await cli([
      "prune",
      "--keep",
      "1",
      ...storeArgs,
      "--opa",
      runsOlder.url,
      "--opa",
      runsNewer.url,
      "--json",
    ]);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stderr).toBe(`${NOTICE}\n`);
    expect(JSON.parse(result.stdout).keep).toContainEqual(
      expect.objectContaining({ revision: revisions[0], reason: "active" }),
    );
  });

  it("a bad --opa URL is refused as an instance, without repeating its password", async () => {
    const result = await cli(["status", "--opa", "http://ops:hunter2@127.0.0.1:8181"]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr.split("\n")[0]).toBe(NOTICE);
    expect(expectOneLineError(result)).toMatch(/--instance: must not carry user:password/);
    expect(`${result.stdout}${result.stderr}`).not.toContain("hunter2");
  });

  it("--opa <path> beside it is still the opa binary, and elsewhere a URL as --opa names --instance", async () => {
    const result = await cli(["status", "--opa", "/nonexistent/opa", "--opa", runsOlder.url, "--json"]);
    expect(statusUrls(result)).toEqual([runsOlder.url]);
    const build = await cli(["build", "--opa", "http://x"]);
    expect(build.exitCode).toBe(2);
    expect(expectOneLineError(build)).toBe(
      "policyship: invalid settings: flags: --opa: takes the path of the opa binary, not a URL: name OPA instances with --instance <url> (status, prune, list) — fix the values named above (see policyship --help)",
    );
  });
});

describe("list --instance", () => {
  it("--json: each revision names the instances that run it; one that cannot answer is a warning on stderr", async () => {
    const result = await cli([
      "list",
      ...storeArgs,
      "--instance",
      runsOlder.url,
      "--instance",
      runsNewer.url,
      "--instance",
      closed,
      "--json",
    ]);
    expect(result.exitCode, result.stderr).toBe(0);
    const listed = JSON.parse(result.stdout) as { revision: string; instances: string[] }[];
    expect(listed.map(({ revision, instances }) => ({ revision, instances }))).toEqual([
      { revision: revisions[1], instances: [runsNewer.url] },
      { revision: revisions[0], instances: [runsOlder.url] },
    ]);
    expect(result.stderr).toMatch(
      new RegExp(`^policyship: warning: ${closed}: unreachable \\(ECONNREFUSED\\)\\n$`),
    );
  });

  it("text: a ← column names them; unreachable and unlisted instances are lines of their own", async () => {
    const result = await cli(["list", ...storeArgs, "--limit", "1"], {
      POLICYSHIP_INSTANCES: `${runsNewer.url},${runsOlder.url},${closed}`,
    });
    expect(result.exitCode, result.stderr).toBe(0);
    const lines = result.stdout.trimEnd().split("\n");
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(new RegExp(`^${revisions[1]} .*← ${runsNewer.url}$`));
    expect(lines[1]).toBe(`! ${runsOlder.url} runs ${revisions[0]}, which is not among those listed`);
    expect(lines[2]).toBe(`! ${closed}: unreachable (ECONNREFUSED)`);
  });

  it("without instances the listing is what it always was", async () => {
    const result = await cli(["list", ...storeArgs, "--json"]);
    expect(result.exitCode, result.stderr).toBe(0);
    for (const entry of JSON.parse(result.stdout)) expect(entry).not.toHaveProperty("instances");
    expect((await cli(["list", ...storeArgs])).stdout).not.toContain("←");
  });
});

describe("an instance that asks for a token", () => {
  const TOKEN = "list-reader-5c1e";
  let guarded: RunningOpa;

  beforeAll(async () => {
    // OPA's own authorization: /health for anyone (so the helper can wait for it), nothing else for anyone.
    const policy = path.join(repo.dir, "system-authz.rego");
    await writeFile(
      policy,
      'package system.authz\n\ndefault allow := false\n\nallow if input.path == ["health"]\n',
    );
    guarded = await startOpaServer(["--authentication=token", "--authorization=basic", policy]);
    stoppers.push(guarded.stop);
  });

  it("list says the token was refused, and never prints it", async () => {
    for (const json of [[], ["--json"]]) {
      const result = await cli(["list", ...storeArgs, "--instance", guarded.url, ...json], {
        POLICYSHIP_OPA_TOKEN: TOKEN,
      });
      expect(result.exitCode, result.stderr).toBe(0);
      expect(`${result.stdout}${result.stderr}`).toContain(
        `${guarded.url}: OPA refused POLICYSHIP_OPA_TOKEN (HTTP 401)`,
      );
      expect(`${result.stdout}${result.stderr}`).not.toContain(TOKEN);
    }
  });

  it("without the token, the instance says it asks for one", async () => {
    const result = await cli(["list", ...storeArgs, "--instance", guarded.url]);
    expect(result.stdout).toContain(
      `! ${guarded.url}: OPA asks for a token (HTTP 401): set POLICYSHIP_OPA_TOKEN`,
    );
  });
});
