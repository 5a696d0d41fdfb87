// biome-ignore-all lint/suspicious/noTemplateCurlyInString: OPA's ${VAR} substitution is what these tests are about
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.ts";
import { createRepo } from "../helpers/git-repo.ts";
import { type RunningOpa, startOpaServer } from "../helpers/opa-server.ts";
import { awsEnv, createBucket, minio } from "../helpers/s3.ts";

const SECRET = "SENTINEL-hs256-shared-secret-4e8d";
const servers: RunningOpa[] = [];
afterAll(() => Promise.all(servers.map((server) => server.stop())));

describe("an HMAC verification key is an OPA environment reference, never the secret", () => {
  it("renders ${OPA_VERIFICATION_KEY}; OPA activates the bundle with that variable and refuses a wrong one", async () => {
    const repo = await createRepo({ examplePolicies: true });
    const bucket = await createBucket();
    const scratch = await mkdtemp(path.join(os.tmpdir(), "policyship-hmac-"));
    const keyFile = path.join(scratch, "hmac.key");
    await writeFile(keyFile, SECRET);
    const summary = path.join(scratch, "summary");
    const outputs = path.join(scratch, "outputs");
    await Promise.all([writeFile(summary, ""), writeFile(outputs, "")]);
    const env = {
      ...awsEnv(),
      POLICYSHIP_SIGNING_KEY: SECRET,
      GITHUB_ACTIONS: "true",
      GITHUB_STEP_SUMMARY: summary,
      GITHUB_OUTPUT: outputs,
    };
    const args = [
      "release",
      "--bucket",
      bucket,
      "--endpoint",
      minio().endpoint,
      "--signing-alg",
      "HS256",
      "--verification-key",
      keyFile,
      "--key-id",
      "release",
      "--json",
    ];
    const released = await runCli(args, { cwd: repo.dir, env });
    expect(released.exitCode, released.stderr).toBe(0);
    const configFile = path.join(repo.dir, JSON.parse(released.stdout).config);
    const config = await readFile(configFile, "utf8");
    expect(config).toContain("key: ${OPA_VERIFICATION_KEY}");
    const written = [
      released.stdout,
      released.stderr,
      config,
      await readFile(summary, "utf8"),
      await readFile(outputs, "utf8"),
    ];
    for (const text of written) expect(text).not.toContain(SECRET);

    const revision = repo.git("rev-parse", "HEAD");
    const good = await startOpaServer(["--config-file", configFile], {
      env: { ...awsEnv(), OPA_VERIFICATION_KEY: SECRET },
      waitForBundles: true,
    });
    servers.push(good);
    const status = (await (await fetch(`${good.url}/v1/status`)).json()) as {
      result: { bundles: { authz: { active_revision?: string } } };
    };
    expect(status.result.bundles.authz.active_revision).toBe(revision);

    const wrong = await startOpaServer(["--config-file", configFile], {
      env: { ...awsEnv(), OPA_VERIFICATION_KEY: "another-secret" },
    });
    servers.push(wrong);
    await new Promise((resolve) => setTimeout(resolve, 3000));
    expect((await fetch(`${wrong.url}/health?bundles=true`)).status).toBe(500);
  });
});

describe('"${" never reaches a rendered config', () => {
  const base = ["config", "--bucket", "acme-policies", "--region", "eu-west-1", "--revision", "a".repeat(40)];
  for (const [flag, value] of [
    ["--prefix", "authz/${AWS_SECRET_ACCESS_KEY}"],
    ["--key-id", "${HOME}"],
    ["--role-arn", "arn:aws:iam::123456789012:role/${GITHUB_TOKEN}"],
    ["--profile", "x${AWS_SESSION_TOKEN}"],
    ["--iam-role", "${AWS_SECRET_ACCESS_KEY}"],
    ["--service-url", "https://bundles.example.com/${AWS_SECRET_ACCESS_KEY}"],
  ] as const) {
    it(`refuses ${flag} holding \${…}, with one line and exit 2`, async () => {
      const extra = flag === "--role-arn" ? ["--credentials", "assume-role"] : [];
      const result = await runCli([...base, ...extra, flag, value], { cwd: os.tmpdir() });
      expect(result.exitCode).toBe(2);
      expect(result.stdout).toBe("");
      expect(result.stderr.trim()).toMatch(new RegExp(`^policyship: ${flag} contains "\\$\\{"`));
    });
  }
});
