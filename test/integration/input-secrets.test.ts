import { generateKeyPairSync } from "node:crypto";
import { readdir } from "node:fs/promises";
import path from "node:path";
import { ListObjectsV2Command } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectOneLineError, runCli } from "../helpers/cli.ts";
import { createRepo, type TempRepo } from "../helpers/git-repo.ts";
import { type RunningRegistry, startRegistry } from "../helpers/registry.ts";
import { awsEnv, createBucket, minio, s3Client } from "../helpers/s3.ts";

/**
 * What reaches an error or the output from the settings that hold keys and URLs: no key material, no
 * password; and release refuses the settings its OPA config cannot be rendered from before it publishes.
 */

const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
/** The common mistake: base64 of DER, which holds '/' and '+' and so looks like a path. */
const DER_PRIVATE = privateKey.export({ type: "pkcs8", format: "der" }).toString("base64");
const DER_PUBLIC = publicKey.export({ type: "spki", format: "der" }).toString("base64");

let repo: TempRepo;
let registry: RunningRegistry;

beforeAll(async () => {
  repo = await createRepo({ examplePolicies: true });
  registry = await startRegistry();
});

afterAll(async () => {
  await registry?.stop();
});

/** The key's base64 in any piece of 16 characters, so a truncated echo is caught too. */
function expectNoPieceOf(text: string, key: string) {
  for (let start = 0; start + 16 <= key.length; start += 16) {
    expect(text).not.toContain(key.slice(start, start + 16));
  }
}

const KEYS = [
  {
    name: "signing key",
    args: ["build"],
    flag: "--signing-key",
    variable: "POLICYSHIP_SIGNING_KEY",
    yamlKey: "signingKey",
    value: DER_PRIVATE,
  },
  {
    name: "verification key",
    args: ["config", "--revision", "r1", "--bucket", "acme", "--region", "eu-west-1", "--key-id", "k"],
    flag: "--verification-key",
    variable: "POLICYSHIP_VERIFICATION_KEY",
    yamlKey: "verificationKey",
    value: DER_PUBLIC,
  },
] as const;

describe("a key that is not PEM is never printed, and the message names where it came from", () => {
  for (const key of KEYS) {
    for (const source of ["flag", "environment", "policyship.yaml"] as const) {
      for (const json of [false, true]) {
        it(`${key.name} as base64 DER from the ${source}${json ? " under --json" : ""}`, async () => {
          const target = source === "policyship.yaml" ? await createRepo({ examplePolicies: true }) : repo;
          if (source === "policyship.yaml") {
            await target.write("policyship.yaml", `${key.yamlKey}: ${key.value}\n`);
            target.commit("add policyship.yaml");
          }
          const named =
            source === "flag"
              ? key.flag
              : source === "environment"
                ? key.variable
                : `${key.yamlKey} in policyship.yaml`;
          const result = await runCli(
            [...(json ? ["--json"] : []), ...key.args, ...(source === "flag" ? [key.flag, key.value] : [])],
            {
              cwd: target.dir,
              env: { ...awsEnv(), ...(source === "environment" ? { [key.variable]: key.value } : {}) },
            },
          );
          expect(result.exitCode, result.stderr).toBe(2);
          expectNoPieceOf(result.stdout + result.stderr, key.value);
          const line = json
            ? `policyship: ${(JSON.parse(result.stdout) as { error: { message: string } }).error.message}`
            : expectOneLineError(result);
          expect(line.startsWith(`policyship: ${named} (the value, not shown) cannot be read`), line).toBe(
            true,
          );
          expect(await readdir(path.join(target.dir, "dist")).catch(() => [])).toEqual([]);
        });
      }
    }
  }

  it("a key file that exists is named by its path", async () => {
    const target = await createRepo({ examplePolicies: true });
    await target.write("keys/release.key", "not a key\n");
    target.commit("add a key file");
    const result = await runCli(["build"], {
      cwd: target.dir,
      env: { POLICYSHIP_SIGNING_KEY: "keys/release.key" },
    });
    expect(result.exitCode, result.stderr).toBe(2);
    expect(expectOneLineError(result)).toMatch(
      /^policyship: POLICYSHIP_SIGNING_KEY keys\/release\.key is not a PEM private key for RS256 — /,
    );
  });
});

const PASSWORD = "hunter2-Sup3rSecret";

describe("URL settings refuse a password, a query and a fragment, without repeating the password", () => {
  const cases = [
    {
      name: "--service-url with user:password (flag)",
      args: ["--service-url", `https://opa:${PASSWORD}@bundles.example.com`],
      env: {},
      line: /--service-url: must not carry user:password/,
    },
    {
      name: "POLICYSHIP_SERVICE_URL with user:password",
      args: [],
      env: { POLICYSHIP_SERVICE_URL: `https://opa:${PASSWORD}@bundles.example.com` },
      line: /POLICYSHIP_SERVICE_URL: must not carry user:password/,
    },
    {
      name: "--endpoint with user:password",
      args: ["--bucket", "acme", "--endpoint", `http://minio:${PASSWORD}@127.0.0.1:9000`],
      env: {},
      line: /--endpoint: must not carry user:password/,
    },
    {
      name: "AWS_ENDPOINT_URL with user:password",
      args: ["--bucket", "acme"],
      env: { AWS_ENDPOINT_URL: `http://minio:${PASSWORD}@127.0.0.1:9000` },
      line: /AWS_ENDPOINT_URL: must not carry user:password/,
    },
    {
      name: "--store oci:// with user:password",
      args: ["--store", `oci://ci:${PASSWORD}@ghcr.io/acme/policies`],
      env: {},
      line: /--store: must not carry user:password/,
    },
    {
      name: "--registry with a password-only userinfo",
      args: ["--registry", `${PASSWORD}@ghcr.io/acme/policies`],
      env: {},
      line: /--registry: must not carry user:password/,
    },
    {
      name: "--service-url with a query",
      args: ["--service-url", `https://bundles.example.com/b?token=${PASSWORD}`],
      env: {},
      line: /--service-url: must not carry a query or a fragment/,
    },
    {
      name: "--service-url with a fragment",
      args: ["--service-url", `https://bundles.example.com/b#${PASSWORD}`],
      env: {},
      line: /--service-url: must not carry a query or a fragment/,
    },
  ];
  for (const testCase of cases) {
    for (const command of [
      ["config", "--revision", "r1"],
      ["release", "--to", "bundles"],
    ]) {
      it(`${command[0]}: ${testCase.name}`, async () => {
        const result = await runCli([...command, ...testCase.args], {
          cwd: repo.dir,
          env: { ...awsEnv(), ...testCase.env },
        });
        expect(result.exitCode, result.stderr).toBe(2);
        expect(expectOneLineError(result)).toMatch(testCase.line);
        expect(result.stdout + result.stderr).not.toContain(PASSWORD);
        expect(await readdir(path.join(repo.dir, "bundles")).catch(() => [])).toEqual([]);
      });
    }
  }

  it("a plain URL with a path and a trailing slash is still accepted", async () => {
    const result = await runCli(
      ["config", "--revision", "r1", "--to", "bundles", "--service-url", "https://bundles.example.com/b/"],
      { cwd: repo.dir },
    );
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toContain("url: https://bundles.example.com/b");
  });
});

describe("release checks what its OPA config needs before it builds or publishes", () => {
  it("--to <dir> without --service-url: exit 2, nothing built or published", async () => {
    const target = await createRepo({ examplePolicies: true });
    const result = await runCli(["release", "--to", "bundles"], { cwd: target.dir });
    expect(result.exitCode, result.stderr).toBe(2);
    expect(expectOneLineError(result)).toMatch(
      /^policyship: no bucket \(or --service-url\) to point OPA at — /,
    );
    expect(await readdir(path.join(target.dir, "bundles")).catch(() => [])).toEqual([]);
    expect(await readdir(path.join(target.dir, "dist")).catch(() => [])).toEqual([]);
  });

  it("a bucket with --credentials assume-role and no --role-arn: exit 2, the bucket stays empty", async () => {
    const bucket = await createBucket();
    const target = await createRepo({ examplePolicies: true });
    const result = await runCli(
      ["release", "--bucket", bucket, "--endpoint", minio().endpoint, "--credentials", "assume-role"],
      { cwd: target.dir, env: awsEnv() },
    );
    expect(result.exitCode, result.stderr).toBe(2);
    expect(expectOneLineError(result)).toMatch(/--credentials assume-role needs --role-arn/);
    const listed = await s3Client().send(new ListObjectsV2Command({ Bucket: bucket }));
    expect(listed.Contents ?? []).toEqual([]);
    expect(await readdir(path.join(target.dir, "dist")).catch(() => [])).toEqual([]);
  });

  it("an OCI registry with both OPA token settings: exit 2, nothing pushed", async () => {
    const target = await createRepo({ examplePolicies: true });
    const store = `oci://${registry.host}/acme/refused`;
    const result = await runCli(
      ["release", "--store", store, "--registry-token-path", "/run/token", "--registry-token-env", "TOKEN"],
      { cwd: target.dir },
    );
    expect(result.exitCode, result.stderr).toBe(2);
    expect(expectOneLineError(result)).toMatch(/--registry-token-path and --registry-token-env both/);
    // The registry knows a repository once anything is pushed to it.
    const tags = await fetch(`http://${registry.host}/v2/acme/refused/tags/list`);
    expect(tags.status).toBe(404);
    expect(await readdir(path.join(target.dir, "dist")).catch(() => [])).toEqual([]);
  });

  it("a verification key without --key-id: exit 2, nothing published", async () => {
    const target = await createRepo({ examplePolicies: true });
    await target.write("keys/public.pem", publicKey.export({ type: "spki", format: "pem" }).toString());
    target.commit("add the public key");
    const result = await runCli(
      [
        "release",
        "--to",
        "bundles",
        "--service-url",
        "https://bundles.example.com",
        "--verification-key",
        "keys/public.pem",
      ],
      { cwd: target.dir },
    );
    expect(result.exitCode, result.stderr).toBe(2);
    expect(expectOneLineError(result)).toMatch(/--verification-key needs --key-id/);
    expect(await readdir(path.join(target.dir, "bundles")).catch(() => [])).toEqual([]);
  });
});
