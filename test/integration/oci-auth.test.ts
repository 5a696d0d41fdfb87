import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectOneLineError, runCli } from "../helpers/cli.ts";
import { createRepo, type TempRepo } from "../helpers/git-repo.ts";
import { type RunningOpa, startOpaServer } from "../helpers/opa-server.ts";
import { type RunningRegistry, startRegistry } from "../helpers/registry.ts";

/**
 * A registry that wants bearer tokens (CNCF Distribution with token auth): the CLI answers its challenge
 * with credentials from docker's config.json, a credential helper or the environment, never prints them,
 * and OPA pulls with the token file the rendered config names.
 */

const PASSWORD = "s3cret-registry-password";
let registry: RunningRegistry;
let repo: TempRepo;
let store: string;
let revision: string;
let opa: RunningOpa | undefined;

beforeAll(async () => {
  registry = await startRegistry({
    users: { ci: PASSWORD },
    refreshTokens: { "refresh-for-robot": "robot" },
  });
  repo = await createRepo({ examplePolicies: true });
  revision = repo.git("rev-parse", "HEAD");
  store = `oci://${registry.host}/acme/policies`;
  const built = await runCli(["build"], { cwd: repo.dir });
  expect(built.exitCode, built.stderr).toBe(0);
}, 60_000);

afterAll(async () => {
  await opa?.stop();
  await registry?.stop();
});

const publish = (env: Record<string, string | undefined>) =>
  runCli(["publish", "--store", store], {
    cwd: repo.dir,
    env: { POLICYSHIP_REGISTRY_PASSWORD: undefined, ...env },
  });

async function dockerConfig(name: string, config: unknown): Promise<string> {
  const dir = path.join(repo.dir, "..", `${path.basename(repo.dir)}-${name}`);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, "config.json"), JSON.stringify(config));
  return dir;
}

describe("registry authentication", () => {
  it("without credentials: one line naming what to do, exit 2", async () => {
    const result = await publish({ DOCKER_CONFIG: await dockerConfig("none", {}) });
    expect(result.exitCode).toBe(2);
    expect(expectOneLineError(result)).toMatch(
      new RegExp(`${registry.host} requires credentials for acme/policies — docker login`),
    );
  });

  it("wrong credentials are named by their source, never shown", async () => {
    const wrong = "wrong-password-do-not-print";
    const result = await publish({
      DOCKER_CONFIG: await dockerConfig("none2", {}),
      POLICYSHIP_REGISTRY_USERNAME: "ci",
      POLICYSHIP_REGISTRY_PASSWORD: wrong,
    });
    expect(result.exitCode).toBe(2);
    expect(expectOneLineError(result)).toMatch(/rejected the credentials from POLICYSHIP_REGISTRY_PASSWORD/);
    expect(result.stderr + result.stdout).not.toContain(wrong);
  });

  it("docker's config.json auths: the token service sees the user and the push scope", async () => {
    const auth = Buffer.from(`ci:${PASSWORD}`).toString("base64");
    const dir = await dockerConfig("auths", { auths: { [registry.host]: { auth } } });
    const result = await publish({ DOCKER_CONFIG: dir });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toContain(`published ${registry.host}/acme/policies:${revision}`);
    expect(registry.issued).toContainEqual({ user: "ci", scope: "repository:acme/policies:pull,push" });
    expect(result.stderr + result.stdout).not.toContain(PASSWORD);
  });

  it("an identity token in docker's config.json is exchanged at the realm (OAuth2 refresh grant)", async () => {
    const dir = await dockerConfig("identity", {
      auths: { [registry.host]: { identitytoken: "refresh-for-robot" } },
    });
    const result = await publish({ DOCKER_CONFIG: dir });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(registry.issued).toContainEqual({ user: "robot", scope: "repository:acme/policies:pull" });
    const wrong = await dockerConfig("identity-wrong", {
      auths: { [registry.host]: { identitytoken: "stale" } },
    });
    const refused = await publish({ DOCKER_CONFIG: wrong });
    expect(refused.exitCode).toBe(2);
    expect(expectOneLineError(refused)).toMatch(/rejected the credentials from .*config\.json \(auths\./);
  });

  it("a credential helper named in credHelpers", async () => {
    const bin = path.join(repo.dir, "..", `${path.basename(repo.dir)}-bin`);
    await mkdir(bin, { recursive: true });
    const helper = path.join(bin, "docker-credential-pstest");
    // Answers only for the registry it is asked about (the server arrives on stdin).
    await writeFile(
      helper,
      `#!/bin/sh\nenv > "$0.env"\nread server\n[ "$1" = get ] && [ "$server" = "${registry.host}" ] || { echo "credentials not found in native keychain"; exit 1; }\necho '{"ServerURL":"${registry.host}","Username":"ci","Secret":"${PASSWORD}"}'\n`,
    );
    await chmod(helper, 0o755);
    const dir = await dockerConfig("helper", { credHelpers: { [registry.host]: "pstest" } });
    const before = registry.issued.length;
    const result = await publish({
      DOCKER_CONFIG: dir,
      PATH: `${bin}${path.delimiter}${process.env.PATH}`,
      GITHUB_TOKEN: "ghs_job_token_not_for_helpers",
      AWS_PROFILE: "for-ecr-login",
    });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toContain("already published");
    expect(registry.issued.length).toBeGreaterThan(before);
    // The helper gets what helpers need (cloud credentials for ECR/GCR/ACR helpers), not the job's secrets.
    const helperEnv = await readFile(`${helper}.env`, "utf8");
    expect(helperEnv).toContain("AWS_PROFILE=for-ecr-login");
    expect(helperEnv).not.toContain("ghs_job_token_not_for_helpers");
  });

  it("doctor asks the registry once and names where the credentials came from, or what is missing", async () => {
    const doctor = (env: Record<string, string | undefined>) =>
      runCli(["doctor", "--store", store], {
        cwd: repo.dir,
        env: {
          POLICYSHIP_REGISTRY_PASSWORD: undefined,
          DOCKER_CONFIG: path.join(repo.dir, "no-docker"),
          ...env,
        },
      });
    const good = await doctor({ POLICYSHIP_REGISTRY_USERNAME: "ci", POLICYSHIP_REGISTRY_PASSWORD: PASSWORD });
    expect(good.exitCode, good.stdout + good.stderr).toBe(0);
    expect(good.stdout).toContain(`✓ store    ${store} answers (credentials: POLICYSHIP_REGISTRY_PASSWORD)`);
    const none = await doctor({});
    expect(none.exitCode).toBe(1);
    expect(none.stdout).toMatch(
      new RegExp(`✗ store +${registry.host} requires credentials for acme/policies`),
    );
    const wrong = await doctor({
      POLICYSHIP_REGISTRY_USERNAME: "ci",
      POLICYSHIP_REGISTRY_PASSWORD: "not-it-1234",
    });
    expect(wrong.exitCode).toBe(1);
    expect(wrong.stdout).toContain("rejected the credentials from POLICYSHIP_REGISTRY_PASSWORD");
    expect(wrong.stdout + wrong.stderr).not.toContain("not-it-1234");
  });

  it("OPA pulls with the credentials file the rendered config names, through the same token service", async () => {
    // OPA's OCI downloader sends `<scheme> base64(<file contents>)` and answers the registry's challenge with
    // it, so a user:password registry takes scheme Basic (as ECR does); the config holds only the path.
    const tokenFile = path.join(repo.dir, "registry-credentials");
    await writeFile(tokenFile, `ci:${PASSWORD}`);
    const configFile = path.join(repo.dir, "opa.yaml");
    const rendered = await runCli(
      [
        "config",
        "--store",
        store,
        "--registry-token-path",
        tokenFile,
        "--registry-token-scheme",
        "Basic",
        "-o",
        configFile,
      ],
      { cwd: repo.dir },
    );
    expect(rendered.exitCode, rendered.stderr).toBe(0);
    const text = await readFile(configFile, "utf8");
    expect(text).toContain("type: oci");
    expect(text).toMatch(/bearer:\s+scheme: Basic\s+token_path: \S+registry-credentials/);
    expect(text).not.toContain(PASSWORD);
    const before = registry.issued.length;
    opa = await startOpaServer(["--config-file", configFile], { waitForBundles: true });
    const status = (await (await fetch(`${opa.url}/v1/status`)).json()) as {
      result: { bundles: { authz: { active_revision: string } } };
    };
    expect(status.result.bundles.authz.active_revision).toBe(revision);
    expect(registry.issued.slice(before)).toContainEqual({
      user: "ci",
      scope: "repository:acme/policies:pull",
    });
  });
});
