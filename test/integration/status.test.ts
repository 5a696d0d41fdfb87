import { writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectOneLineError, runCli } from "../helpers/cli.ts";
import { createRepo, type TempRepo } from "../helpers/git-repo.ts";
import { type RunningOpa, startOpaServer } from "../helpers/opa-server.ts";
import { awsEnv, createBucket, minio } from "../helpers/s3.ts";

let repo: TempRepo;
let revisionA: string;
let store: string[];
const servers: RunningOpa[] = [];
let healthy: RunningOpa;
let broken: RunningOpa;

/** An OPA on the config policyship renders for `revision` (published or not). */
async function opaPinnedTo(revision: string, name: string, wait: boolean, args: string[] = []) {
  const file = path.join(repo.dir, `${name}.yaml`);
  const rendered = await runCli(
    ["config", "--revision", revision, ...store, "--polling-min", "1", "--polling-max", "2", "-o", file],
    {
      cwd: repo.dir,
      env: awsEnv(),
    },
  );
  expect(rendered.exitCode, rendered.stderr).toBe(0);
  const server = await startOpaServer(["--config-file", file, ...args], {
    env: awsEnv(),
    waitForBundles: wait,
  });
  servers.push(server);
  return server;
}

beforeAll(async () => {
  repo = await createRepo({ examplePolicies: true });
  revisionA = repo.git("rev-parse", "HEAD");
  store = ["--bucket", await createBucket(), "--endpoint", minio().endpoint];
  const released = await runCli(["release", ...store], { cwd: repo.dir, env: awsEnv() });
  expect(released.exitCode, released.stderr).toBe(0);
  healthy = await opaPinnedTo(revisionA, "healthy", true);
  broken = await opaPinnedTo("f".repeat(40), "broken", false);
}, 120_000);
afterAll(() => Promise.all(servers.map((server) => server.stop())));

describe("policyship status: did the rollout land?", () => {
  it("one line per instance: active revision, activation, and the download error of a broken one", async () => {
    const result = await runCli(["status", "--opa", healthy.url, "--opa", broken.url, "--json"], {
      cwd: repo.dir,
    });
    // The broken instance runs no bundle: the report is printed whole, and the run fails.
    expect(result.exitCode, result.stderr).toBe(1);
    const report = JSON.parse(result.stdout);
    expect(report.instances[0]).toMatchObject({ url: healthy.url, revision: revisionA, error: null });
    expect(report.instances[0].lastActivation).toMatch(/^\d{4}-/);
    expect(report.instances[1]).toMatchObject({ url: broken.url, revision: null });
    expect(report.instances[1].error).toMatch(/bundle_error|404|not found/i);
  });

  it("--expect names each laggard and its error, exit 1 once --wait runs out; a short SHA resolves", async () => {
    const summary = path.join(repo.dir, "summary.md");
    await writeFile(summary, "");
    const started = Date.now();
    const result = await runCli(
      [
        "status",
        "--opa",
        healthy.url,
        "--opa",
        broken.url,
        "--expect",
        revisionA.slice(0, 8),
        "--wait",
        "2s",
      ],
      {
        cwd: repo.dir,
        env: { GITHUB_ACTIONS: "true", GITHUB_STEP_SUMMARY: summary },
      },
    );
    expect(result.exitCode).toBe(1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2000);
    const line = expectOneLineError(result);
    expect(line).toContain(`1 of 2 OPA instances do not run ${revisionA}`);
    expect(line).toContain(`${broken.url} runs no revision`);
    expect(line).not.toContain(healthy.url);
    const { readFile } = await import("node:fs/promises");
    expect(await readFile(summary, "utf8")).toContain(`rollout of \`${revisionA}\``);
  });

  it("after the broken instance is redeployed on the right config, --expect exits 0", async () => {
    const fixed = await opaPinnedTo(revisionA, "fixed", false);
    const result = await runCli(
      ["status", "--opa", healthy.url, "--opa", fixed.url, "--expect", revisionA, "--wait", "30s"],
      {
        cwd: repo.dir,
      },
    );
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout.split("\n").filter((line) => line.startsWith("✓"))).toHaveLength(2);
  });

  it("an unreachable instance, no instance, and a bad duration are one line each", async () => {
    const down = await runCli(["status", "--opa", "http://127.0.0.1:9", "--expect", revisionA], {
      cwd: repo.dir,
    });
    expect(down.exitCode).toBe(1);
    expect(expectOneLineError(down)).toMatch(/http:\/\/127\.0\.0\.1:9 runs no revision \(unreachable/);
    // Without --expect too: an instance that cannot be read is a failure, not a table and exit 0.
    const plainDown = await runCli(["status", "--opa", healthy.url, "--opa", "http://127.0.0.1:9"], {
      cwd: repo.dir,
    });
    expect(plainDown.exitCode).toBe(1);
    expect(plainDown.stdout).toContain(healthy.url);
    expect(expectOneLineError(plainDown)).toMatch(
      /^policyship: 1 of 2 OPA instances report no active revision: http:\/\/127\.0\.0\.1:9: .*unreachable/,
    );
    const plainUp = await runCli(["status", "--opa", healthy.url], { cwd: repo.dir });
    expect(plainUp.exitCode, plainUp.stderr).toBe(0);
    const none = await runCli(["status"], { cwd: repo.dir });
    expect(none.exitCode).toBe(2);
    expect(expectOneLineError(none)).toContain("no OPA instance given");
    const bad = await runCli(["status", "--opa", healthy.url, "--wait", "soon"], { cwd: repo.dir });
    expect(bad.exitCode).toBe(2);
    expect(expectOneLineError(bad)).toMatch(/--wait: must be a duration/);
  });
});

describe("status against an OPA that asks for a token", () => {
  const TOKEN = "rollout-reader-7f3a";
  let guarded: RunningOpa;

  let revisionB: string;

  beforeAll(async () => {
    // OPA's own authorization travels in the bundle (a bundle owning every root replaces local files): /health
    // for anyone, so the test can wait for it, and the rest for TOKEN only.
    await repo.write(
      "policies/system/authz.rego",
      `package system.authz\n\ndefault allow := false\n\nallow if input.path == ["health"]\n\nallow if input.identity == "${TOKEN}"\n`,
    );
    repo.commit("OPA's API only for the rollout token");
    revisionB = repo.git("rev-parse", "HEAD");
    const released = await runCli(["release", ...store], { cwd: repo.dir, env: awsEnv() });
    expect(released.exitCode, released.stderr).toBe(0);
    guarded = await opaPinnedTo(revisionB, "guarded", false, [
      "--authentication=token",
      "--authorization=basic",
    ]);
  }, 120_000);

  const status = (env: NodeJS.ProcessEnv, url = guarded.url) =>
    runCli(["status", "--opa", url, "--expect", revisionB, "--wait", "20s", "--json"], {
      cwd: repo.dir,
      env,
    });

  it("POLICYSHIP_OPA_TOKEN is sent as a bearer token, and the revision is read", async () => {
    const result = await status({ POLICYSHIP_OPA_TOKEN: TOKEN });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout).instances[0]).toMatchObject({ revision: revisionB, error: null });
  });

  it("without the token, or with another, the laggard's error says so; the token is never printed", async () => {
    const missing = await runCli(["status", "--opa", guarded.url, "--expect", revisionB], { cwd: repo.dir });
    expect(missing.exitCode).toBe(1);
    expect(expectOneLineError(missing)).toContain(
      "OPA asks for a token (HTTP 401): set POLICYSHIP_OPA_TOKEN",
    );
    const wrong = await runCli(["status", "--opa", guarded.url, "--expect", revisionB], {
      cwd: repo.dir,
      env: { POLICYSHIP_OPA_TOKEN: "guessed-token" },
    });
    expect(wrong.exitCode).toBe(1);
    expect(expectOneLineError(wrong)).toContain("OPA refused POLICYSHIP_OPA_TOKEN (HTTP 401)");
    expect(`${wrong.stdout}${wrong.stderr}`).not.toContain("guessed-token");
  });

  it("the token never goes over plain HTTP to another machine, and must be one token", async () => {
    const plain = await status({ POLICYSHIP_OPA_TOKEN: TOKEN }, "http://opa-0.internal:8181");
    expect(plain.exitCode).toBe(2);
    expect(expectOneLineError(plain)).toContain(
      "POLICYSHIP_OPA_TOKEN would cross the network in plain text to opa-0.internal:8181",
    );
    const spaced = await status({ POLICYSHIP_OPA_TOKEN: `Bearer ${TOKEN}` });
    expect(spaced.exitCode).toBe(2);
    expect(expectOneLineError(spaced)).toContain("POLICYSHIP_OPA_TOKEN holds spaces");
    expect(`${spaced.stdout}${spaced.stderr}`).not.toContain(TOKEN);
  });
});
