import { execFileSync } from "node:child_process";
import { chmod, mkdir, mkdtemp, readdir, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { ListObjectsV2Command } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AMBIGUOUS, ambiguousStore, repoBesideAmbiguousRegistry } from "../helpers/ambiguous-registry.ts";
import { type CliResult, runCli } from "../helpers/cli.ts";
import { endlessListing } from "../helpers/endless-listing.ts";
import { createRepo, type TempRepo } from "../helpers/git-repo.ts";
import { freePort } from "../helpers/ports.ts";
import { awsEnv, createBucket, minio, s3Client } from "../helpers/s3.ts";
import { tarball } from "../helpers/tarball.ts";

/**
 * The catalogue of bad input, across every command. Each case must print exactly one `policyship:` line,
 * as the last line on stderr, with the contract's exit code (2: could not start, 1: ran and failed), no
 * stack trace, and must leave nothing in dist/ or in the bucket.
 */

let repo: TempRepo;
let scratch: string;
let bucket: string;
/** 127.0.0.1:<port> where nothing listens. */
let closedHost: string;
const noCredentials = {
  AWS_ACCESS_KEY_ID: undefined,
  AWS_SECRET_ACCESS_KEY: undefined,
  AWS_SESSION_TOKEN: undefined,
  AWS_PROFILE: undefined,
  AWS_SHARED_CREDENTIALS_FILE: "/nonexistent",
  AWS_CONFIG_FILE: "/nonexistent",
  AWS_EC2_METADATA_DISABLED: "true",
  AWS_REGION: "us-east-1",
};

beforeAll(async () => {
  repo = await createRepo({ examplePolicies: true });
  scratch = await mkdtemp(path.join(os.tmpdir(), "policyship-catalogue-"));
  bucket = await createBucket();
  closedHost = `127.0.0.1:${await freePort()}`;
  const file = (name: string, text: string) => writeFile(path.join(scratch, name), text);
  await Promise.all([
    file("broken.yaml", "bucket: acme\npolicies: [oops\n"),
    file("typed.yaml", "optimize: high\nallowDirty: sometimes\n"),
    file("list.yaml", "- bucket\n- acme\n"),
    file("unknown.yaml", "buckets: acme\n"),
    file("broken.json", '{"bucket": '),
    file("a-file", "not a directory\n"),
    file("not-a-key.pem", "hello\n"),
    file("old-opa", '#!/bin/sh\necho "Version: 0.69.0"\n'),
    mkdir(path.join(scratch, "empty-policies")),
    mkdir(path.join(scratch, "a-directory.pem")),
  ]);
  await chmod(path.join(scratch, "old-opa"), 0o755);
});

afterAll(async () => {
  const listed = await s3Client().send(new ListObjectsV2Command({ Bucket: bucket }));
  expect(listed.Contents ?? [], "the bucket must stay empty").toEqual([]);
});

interface Case {
  name: string;
  args: (context: { scratch: string; bucket: string; endpoint: string; closedHost: string }) => string[];
  code: 1 | 2;
  line: RegExp;
  env?: Record<string, string | undefined>;
  /** A repository of its own instead of the shared, clean one. */
  repo?: () => Promise<TempRepo>;
}

/** The example policies with one more file committed over them. */
async function repoCommitting(file: string, content: string): Promise<TempRepo> {
  const repo = await createRepo({ examplePolicies: true });
  await repo.write(file, content);
  repo.commit(`add ${file}`);
  return repo;
}

const store = (c: { bucket: string; endpoint: string }) => ["--bucket", c.bucket, "--endpoint", c.endpoint];

const CASES: Case[] = [
  // the command line
  { name: "unknown command", args: () => ["frobnicate"], code: 2, line: /unknown command 'frobnicate'/ },
  {
    name: "unknown flag on build",
    args: () => ["build", "--frobnicate"],
    code: 2,
    line: /unknown option '--frobnicate'/,
  },
  {
    name: "unknown flag on publish",
    args: () => ["publish", "--bukket", "x"],
    code: 2,
    line: /unknown option '--bukket'/,
  },
  {
    name: "rollback without a revision",
    args: () => ["rollback"],
    code: 2,
    line: /missing required argument 'revision'/,
  },
  {
    name: "verify without a revision",
    args: () => ["verify"],
    code: 2,
    line: /missing required argument 'revision'/,
  },
  {
    name: "an unknown --target",
    args: () => ["build", "--target", "exe"],
    code: 2,
    line: /option '--target <target>' argument 'exe' is invalid/,
  },
  {
    name: "an unknown --format",
    args: () => ["config", "--format", "toml"],
    code: 2,
    line: /argument 'toml' is invalid/,
  },
  {
    name: "an unknown --credentials",
    args: () => ["config", "--credentials", "root"],
    code: 2,
    line: /argument 'root' is invalid/,
  },
  {
    name: "a --limit that is not a number",
    args: () => ["list", "--limit", "abc"],
    code: 2,
    line: /option '--limit <n>' argument 'abc' is invalid\. expected a number — see policyship --help$/,
  },
  {
    name: "an --optimize that is not a number",
    args: () => ["build", "-O", "two"],
    code: 2,
    line: /option '-O, --optimize <level>' argument 'two' is invalid\. expected a number/,
  },
  {
    name: "--cwd that does not exist",
    args: () => ["build", "--cwd", "/nonexistent/dir"],
    code: 2,
    line: /--cwd \/nonexistent\/dir is not a directory/,
  },
  {
    name: "--cwd that is empty (--cwd=)",
    args: () => ["--cwd=", "check"],
    code: 2,
    line: /--cwd is empty/,
  },
  {
    name: "--cwd that is empty, after the command",
    args: () => ["check", "--cwd", ""],
    code: 2,
    line: /--cwd is empty/,
  },
  // settings files and environment
  {
    name: "--config that does not exist",
    args: () => ["build", "--config", "missing.yaml"],
    code: 2,
    line: /config file missing\.yaml not found/,
  },
  {
    name: "--config that is a directory",
    args: (c) => ["build", "--config", c.scratch],
    code: 2,
    line: /is a directory/,
  },
  {
    name: "malformed policyship.yaml",
    args: (c) => ["build", "--config", `${c.scratch}/broken.yaml`],
    code: 2,
    line: /broken\.yaml is not valid YAML: .*line \d+/,
  },
  {
    name: "wrongly typed policyship.yaml",
    args: (c) => ["build", "--config", `${c.scratch}/typed.yaml`],
    code: 2,
    line: /^(?=.*typed\.yaml: optimize: Expected number)(?=.*typed\.yaml: allowDirty: Expected boolean)/,
  },
  {
    name: "policyship.yaml that is a list",
    args: (c) => ["build", "--config", `${c.scratch}/list.yaml`],
    code: 2,
    line: /must hold a mapping of settings/,
  },
  {
    name: "an unknown key in policyship.yaml",
    args: (c) => ["build", "--config", `${c.scratch}/unknown.yaml`],
    code: 2,
    line: /unknown setting buckets/,
  },
  {
    name: "malformed policyship.json",
    args: (c) => ["build", "--config", `${c.scratch}/broken.json`],
    code: 2,
    line: /broken\.json is not valid JSON/,
  },
  {
    name: "POLICYSHIP_OPTIMIZE that is not a number",
    args: () => ["build"],
    env: { POLICYSHIP_OPTIMIZE: "lots" },
    code: 2,
    line: /environment: POLICYSHIP_OPTIMIZE: Expected number/,
  },
  {
    name: "POLICYSHIP_TARGET that is not a target",
    args: () => ["build"],
    env: { POLICYSHIP_TARGET: "exe" },
    code: 2,
    line: /environment: POLICYSHIP_TARGET:/,
  },
  // revisions
  {
    name: "a revision with a space",
    args: () => ["build", "--revision", "a b"],
    code: 2,
    line: /--revision: must be 1–128 characters/,
  },
  {
    name: "a revision with a slash",
    args: () => ["build", "--revision", "feature/x"],
    code: 2,
    line: /--revision: must be 1–128 characters/,
  },
  {
    name: "a revision climbing out of the prefix",
    args: (c) => ["publish", "--revision", "../x", ...store(c)],
    code: 2,
    line: /--revision: must be 1–128 characters/,
  },
  {
    name: "a revision over 128 characters",
    args: () => ["build", "--revision", "r".repeat(129)],
    code: 2,
    line: /--revision/,
  },
  {
    name: "rollback to a revision with a space",
    args: (c) => ["rollback", "a b", ...store(c)],
    code: 2,
    line: /revision "a b" is not safe in an object key/,
  },
  // the store
  {
    name: "an invalid bucket name",
    args: () => ["publish", "--bucket", "Bad_Bucket"],
    code: 2,
    line: /--bucket: must be 3–63 lower-case letters/,
  },
  {
    name: "a bucket name too short",
    args: () => ["list", "--bucket", "ab"],
    code: 2,
    line: /--bucket: must be 3–63/,
  },
  {
    name: "an invalid region",
    args: () => ["list", "--bucket", "acme", "--region", "mars"],
    code: 2,
    line: /--region: must look like us-east-1/,
  },
  {
    name: "prune without --keep",
    args: (c) => ["prune", ...store(c)],
    code: 2,
    line: /prune needs --keep <n>/,
  },
  {
    name: "prune --keep 0",
    args: (c) => ["prune", "--keep", "0", ...store(c)],
    code: 2,
    line: /--keep: Number must be greater than or equal to 1/,
  },
  {
    name: "prune --protect of a revision that is not published",
    args: (c) => ["prune", "--keep", "1", "--protect", "deadbeef", ...store(c)],
    code: 2,
    line: /--protect deadbeef is not a published revision/,
  },
  {
    name: "status --instance with user:password in the URL, which is not repeated",
    args: () => ["status", "--instance", "http://admin:hunter2@127.0.0.1:8181"],
    code: 2,
    line: /^(?!.*hunter2).*flags: --instance: must not carry user:password/,
  },
  {
    name: "status --instance that is not an http(s) URL",
    args: () => ["status", "--instance", "file:///etc/passwd"],
    code: 2,
    line: /flags: --instance: must be an http\(s\) URL/,
  },
  {
    name: "prune --instance with user:password in the URL, checked before the store is read",
    args: (c) => ["prune", "--keep", "1", "--instance", "https://u:hunter2@opa.example", ...store(c)],
    code: 2,
    line: /^(?!.*hunter2).*flags: --instance: must not carry user:password/,
  },
  {
    name: "a store URL of another scheme",
    args: () => ["list", "--store", "ftp://example.com/policies"],
    code: 2,
    line: /--store: must be oci:\/\/<registry>\/<repository> or s3:\/\/<bucket>/,
  },
  {
    name: "an OCI store without a repository",
    args: () => ["list", "--store", "oci://ghcr.io"],
    code: 2,
    line: /"oci:\/\/ghcr.io" does not start with a registry host/,
  },
  {
    name: "an OCI store that names a tag",
    args: () => ["list", "--store", "oci://ghcr.io/acme/policies:latest"],
    code: 2,
    line: /names a tag or digest; each revision is pushed as the tag <sha>/,
  },
  {
    name: "an OCI repository with upper-case letters",
    args: () => ["list", "--registry", "ghcr.io/Acme/Policies"],
    code: 2,
    line: /"Acme\/Policies" is not a valid repository name/,
  },
  {
    name: "an OCI store with a prefix",
    args: () => ["list", "--store", "oci://127.0.0.1:1/acme/policies", "--prefix", "authz"],
    code: 2,
    line: /prefix "authz" \(from --prefix\) has no meaning for an OCI registry — remove it from --prefix/,
  },
  {
    name: "both a bucket and a registry",
    args: () => ["list", "--bucket", "acme", "--registry", "ghcr.io/acme/policies"],
    code: 2,
    line: /both bucket and registry are set, so the store is ambiguous/,
  },
  {
    name: "an unreachable registry",
    args: (c) => ["list", "--store", `oci://${c.closedHost}/acme/policies`],
    code: 1,
    line: /cannot reach http:\/\/127\.0\.0\.1:\d+ \(GET\) after 4 attempts: ECONNREFUSED/,
  },
  {
    name: "a revision that cannot be an OCI tag",
    args: () => ["config", "--revision", "-r1", "--registry", "ghcr.io/acme/policies"],
    code: 2,
    line: /revision -r1 cannot be an OCI tag/,
  },
  {
    name: "two sources of OPA's registry token",
    args: () => [
      "config",
      "--revision",
      "r1",
      "--registry",
      "ghcr.io/acme/policies",
      "--registry-token-path",
      "/run/secrets/t",
      "--registry-token-env",
      "T",
    ],
    code: 2,
    line: /--registry-token-path and --registry-token-env both name OPA's registry token/,
  },
  {
    name: "a prefix with ..",
    args: (c) => ["list", ...store(c), "--prefix", "a/../b"],
    code: 2,
    line: /--prefix: must not contain '\.\.'/,
  },
  {
    name: "a prefix with a leading /",
    args: (c) => ["list", ...store(c), "--prefix", "/abs"],
    code: 2,
    line: /--prefix: must not start with '\/'/,
  },
  {
    name: "an endpoint that is not a URL",
    args: () => ["list", "--bucket", "acme", "--endpoint", "localhost:9000"],
    code: 2,
    line: /--endpoint: must be an http\(s\) URL/,
  },
  {
    name: "publish without a bucket",
    args: () => ["publish", "--revision", "r1"],
    code: 2,
    line: /no bundle for revision r1|no bucket given/,
  },
  { name: "list without a bucket", args: () => ["list"], code: 2, line: /no bucket given — pass --bucket/ },
  {
    name: "config without a bucket",
    args: () => ["config", "--revision", "r1"],
    code: 2,
    line: /no bucket \(or --service-url\)/,
  },
  {
    name: "config for AWS without a region",
    args: () => ["config", "--revision", "r1", "--bucket", "acme"],
    env: { AWS_REGION: undefined, AWS_DEFAULT_REGION: undefined },
    code: 2,
    line: /no AWS region for the bucket URL/,
  },
  {
    name: "missing credentials",
    args: (c) => ["list", ...store(c)],
    env: noCredentials,
    code: 2,
    line: /no AWS credentials found/,
  },
  {
    name: "a SHA that was never published (rollback)",
    args: (c) => ["rollback", "0".repeat(40), ...store(c)],
    code: 1,
    line: /revision 0{40} is not published .* newest published: none/,
  },
  {
    name: "a SHA that was never published (verify)",
    args: (c) => ["verify", "0".repeat(40), ...store(c)],
    code: 1,
    line: /revision 0{40} is not published/,
  },
  // policies and build inputs
  {
    name: "a policies path that is a file",
    args: (c) => ["build", "--policies", `${c.scratch}/a-file`],
    code: 2,
    line: /is a file, not a directory/,
  },
  {
    name: "a policies directory that is missing",
    args: () => ["build", "--policies", "nope"],
    code: 2,
    line: /policies directory nope does not exist/,
  },
  {
    name: "an empty policies directory",
    args: (c) => ["build", "--policies", `${c.scratch}/empty-policies`],
    code: 2,
    line: /has no \.rego or data files/,
  },
  {
    name: "a data file that is not valid JSON",
    args: () => ["build"],
    code: 1,
    line: /opa build failed: .*data\.json/,
    repo: () => repoCommitting("policies/data.json", '{"users": {'),
  },
  {
    name: "a Rego syntax error",
    args: () => ["build"],
    code: 1,
    line: /policies\/broken\.rego:5: rego_parse_error/,
    repo: () => repoCommitting("policies/broken.rego", "package broken\n\nallow if {\n\tinput.a ==\n}\n"),
  },
  {
    name: "two Rego errors: both named, with no empty entry for opa's header",
    args: () => ["build"],
    code: 1,
    line: /opa build failed: policies\/two\.rego:3: rego_unsafe_var_error: var x is unsafe; policies\/two\.rego:5: /,
    repo: () => repoCommitting("policies/two.rego", "package two\n\na if { x }\n\nb if { y }\n"),
  },
  {
    name: "an unreadable signing key",
    args: (c) => ["build", "--signing-key", `${c.scratch}/a-directory.pem`],
    code: 2,
    line: /--signing-key .* cannot be read/,
  },
  {
    name: "a missing signing key",
    args: () => ["build", "--signing-key", "missing.pem"],
    code: 2,
    line: /--signing-key \(the value, not shown\) cannot be read: it names no file and is not PEM text/,
  },
  {
    name: "a missing claims file",
    args: () => ["build", "--claims-file", "claims.json"],
    code: 2,
    line: /--claims-file claims\.json cannot be read/,
  },
  {
    name: "--optimize without an entrypoint",
    args: () => ["build", "-O", "2"],
    code: 2,
    line: /--optimize 2 needs at least one entrypoint/,
  },
  {
    name: "--target wasm without an entrypoint",
    args: () => ["build", "--target", "wasm"],
    code: 2,
    line: /--target wasm needs at least one entrypoint/,
  },
  {
    name: "an entrypoint that is not a path",
    args: () => ["build", "-e", "authz allow"],
    code: 2,
    line: /--entrypoints: must be a slash-separated path/,
  },
  // opa
  {
    name: "opa missing",
    args: () => ["build", "--opa", "/nonexistent/opa"],
    code: 2,
    line: /opa not found at \/nonexistent\/opa .*brew install opa.*setup-opa.*go install github\.com\/open-policy-agent\/opa@latest/,
  },
  {
    name: "an --opa that is not opa",
    args: () => ["build", "--opa", "/bin/true"],
    code: 2,
    line: /does not behave like opa/,
  },
  {
    name: "opa older than 1.0",
    args: (c) => ["check", "--opa", `${c.scratch}/old-opa`],
    code: 2,
    line: /opa 0\.69\.0 .* is too old/,
  },
  {
    name: "OPA_BIN that does not exist",
    args: () => ["test", "--policies", "policies"],
    env: { OPA_BIN: "/nonexistent/opa" },
    code: 2,
    line: /opa not found at \/nonexistent\/opa \(from \$OPA_BIN\)/,
  },
  // git
  {
    name: "outside a git repository without --revision",
    args: () => ["build"],
    code: 2,
    line: /is not a git repository.*--revision/,
    repo: async () => {
      const dir = await mkdtemp(path.join(os.tmpdir(), "policyship-nogit-"));
      await mkdir(path.join(dir, "policies"));
      await writeFile(path.join(dir, "policies/a.rego"), "package a\n\nx := 1\n");
      return { dir, git: () => "", write: async () => {}, commit: () => "" };
    },
  },
  {
    name: "uncommitted changes",
    args: () => ["build"],
    code: 2,
    line: /uncommitted changes in what goes into the bundle: policies\/wip\.rego/,
    repo: async () => {
      const dirty = await createRepo({ examplePolicies: true });
      await dirty.write("policies/wip.rego", "package wip\n\nx := 1\n");
      return dirty;
    },
  },
  // secrets and what reaches the rendered config
  // biome-ignore-start lint/suspicious/noTemplateCurlyInString: OPA's ${VAR} syntax, refused on purpose
  ...(
    [
      ["--prefix", "authz/${AWS_SECRET_ACCESS_KEY}"],
      ["--key-id", "${HOME}"],
      ["--profile", "p${GITHUB_TOKEN}"],
      ["--iam-role", "${AWS_SESSION_TOKEN}"],
    ] as const
  ).map(
    ([flag, value]): Case => ({
      name: `${flag} holding \${…} in config`,
      args: () => ["config", "--bucket", "acme-policies", "--region", "eu-west-1", flag, value],
      code: 2,
      line: new RegExp(`${flag} contains "\\$\\{", which OPA would replace`),
    }),
  ),
  // biome-ignore-end lint/suspicious/noTemplateCurlyInString: OPA's ${VAR} syntax, refused on purpose
  {
    name: "a signing key given as PEM text that is no key",
    args: () => ["build"],
    env: { POLICYSHIP_SIGNING_KEY: "-----BEGIN PRIVATE KEY-----\nnot-a-key\n-----END PRIVATE KEY-----\n" },
    code: 2,
    line: /POLICYSHIP_SIGNING_KEY \(PEM text\) is not a PEM private key for RS256/,
  },
  {
    name: "a signing key path that does not exist",
    args: () => ["build", "--signing-key", "keys/missing.pem"],
    code: 2,
    line: /--signing-key \(the value, not shown\) cannot be read: it names no file/,
  },
  {
    name: "an --opa-env that is not a variable name",
    args: () => ["build", "--opa-env", "A B"],
    code: 2,
    line: /--opa-env: must be environment variable names/,
  },
  {
    name: "a bundle limit of zero",
    args: () => ["build", "--bundle-max-entries", "0"],
    code: 2,
    line: /--bundle-max-entries: Number must be greater than or equal to 1/,
  },
  {
    name: "a git index that git cannot read",
    args: () => ["build"],
    code: 2,
    line: /git could not tell whether the policies are committed/,
    repo: async () => {
      const broken = await createRepo({ examplePolicies: true });
      await writeFile(path.join(broken.dir, ".git/index"), "not an index");
      return broken;
    },
  },
  {
    name: "an edit git status does not show (assume-unchanged)",
    args: () => ["build"],
    code: 2,
    line: /policies\/data\.json \(differs from HEAD\)/,
    repo: async () => {
      const hidden = await createRepo({ examplePolicies: true });
      hidden.git("update-index", "--assume-unchanged", "policies/data.json");
      await hidden.write("policies/data.json", "{}\n");
      return hidden;
    },
  },
  // test
  {
    name: "test of a bundle that does not exist",
    args: () => ["test", "--bundle", "nope.tar.gz"],
    code: 2,
    line: /bundle nope\.tar\.gz does not exist/,
  },
  {
    name: "a coverage threshold over 100",
    args: () => ["test", "--coverage-threshold", "150"],
    code: 2,
    line: /--coverage-threshold: Number must be less than or equal to 100/,
  },
  {
    name: "test before build",
    args: () => ["test"],
    code: 2,
    line: /no bundle built for revision [0-9a-f]{40}/,
  },
  // list and config details
  {
    name: "--limit 0",
    args: (c) => ["list", ...store(c), "--limit", "0"],
    code: 2,
    line: /--limit: Number must be greater than or equal to 1/,
  },
  {
    name: "--polling-min 0",
    args: () => ["config", "--revision", "r1", "--bucket", "acme", "--polling-min", "0"],
    code: 2,
    line: /--polling-min: Number must be greater/,
  },
  {
    name: "a polling max below its min",
    args: () => [
      "config",
      "--revision",
      "r1",
      "--bucket",
      "acme",
      "--polling-min",
      "30",
      "--polling-max",
      "10",
    ],
    code: 2,
    line: /pollingMax \(10\) is below pollingMin \(30\)/,
  },
  {
    name: "assume-role without --role-arn",
    args: () => [
      "config",
      "--revision",
      "r1",
      "--bucket",
      "acme",
      "--region",
      "eu-west-1",
      "--credentials",
      "assume-role",
    ],
    code: 2,
    line: /--credentials assume-role needs --role-arn/,
  },
  {
    name: "a role ARN that is not one",
    args: () => ["config", "--revision", "r1", "--bucket", "acme", "--role-arn", "opa"],
    code: 2,
    line: /--role-arn: must be an IAM role ARN/,
  },
  {
    name: "a verification key that is not a PEM key",
    args: (c) => [
      "config",
      "--revision",
      "r1",
      "--bucket",
      "acme",
      "--region",
      "eu-west-1",
      "--verification-key",
      `${c.scratch}/not-a-key.pem`,
      "--key-id",
      "k",
    ],
    code: 2,
    line: /is not a PEM public key/,
  },
  {
    name: "a verification key without --key-id",
    args: () => [
      "config",
      "--revision",
      "r1",
      "--bucket",
      "acme",
      "--region",
      "eu-west-1",
      "--verification-key",
      "../../../etc/hostname",
    ],
    code: 2,
    line: /is not a PEM public key|needs --key-id/,
  },
  {
    name: "config --verify of an unpublished revision",
    args: (c) => ["config", "--revision", "r1", ...store(c), "--verify"],
    code: 1,
    line: /r1\.tar\.gz does not exist — publish the revision first/,
  },
  // init
  {
    name: "init in a path that is a file",
    args: (c) => ["init", "--cwd", `${c.scratch}/a-file`],
    code: 2,
    line: /is not a directory/,
  },
  // secrets and the PR workflow's trust model: no credential for opa, no key material echoed
  {
    name: "an --opa-env that names a cloud credential",
    args: () => ["build", "--opa-env", "AWS_SECRET_ACCESS_KEY"],
    code: 2,
    line: /--opa-env: AWS_SECRET_ACCESS_KEY holds or leads to credentials/,
  },
  {
    name: "a POLICYSHIP_OPA_ENV that names the job's token",
    args: () => ["build"],
    env: { POLICYSHIP_OPA_ENV: "LANG,GITHUB_TOKEN" },
    code: 2,
    line: /POLICYSHIP_OPA_ENV: GITHUB_TOKEN holds or leads to credentials/,
  },
  {
    name: "a policyship.yaml whose opaEnv names the runner's OIDC token",
    args: () => ["build"],
    repo: () => repoCommitting("policyship.yaml", "opaEnv: [ACTIONS_ID_TOKEN_REQUEST_TOKEN]\n"),
    code: 2,
    line: /policyship\.yaml: opaEnv\.0: ACTIONS_ID_TOKEN_REQUEST_TOKEN holds or leads to credentials/,
  },
  {
    name: "a verification key that is neither a file nor PEM text, never echoed",
    args: () => ["config", "--revision", "r1", "--bucket", "acme", "--region", "eu-west-1", "--key-id", "k"],
    env: { POLICYSHIP_VERIFICATION_KEY: "not-a-file-but-a-secret" },
    code: 2,
    line: /^policyship: POLICYSHIP_VERIFICATION_KEY \(the value, not shown\) cannot be read: it names no file and is not PEM text — /,
  },
  {
    name: "impact --candidate-dir whose policies hold a link out of the checkout",
    args: () => ["impact", "--decisions", "decisions.ndjson", "--candidate-dir", "pr"],
    repo: async () => {
      const repo = await createRepo({ examplePolicies: true });
      await repo.write("decisions.ndjson", "");
      await repo.write("pr/policies/authz.rego", "package authz\n\nallow := true\n");
      await symlink("/etc/hostname", path.join(repo.dir, "pr/policies/stolen.json"));
      return repo;
    },
    code: 2,
    line: /--candidate-dir pr: policies\/stolen\.json is a link or special file, which opa would follow/,
  },
  {
    name: "impact with both --candidate and --candidate-dir",
    args: () => ["impact", "--decisions", "decisions.ndjson", "--candidate", "HEAD", "--candidate-dir", "."],
    repo: () => repoCommitting("decisions.ndjson", ""),
    code: 2,
    line: /--candidate and --candidate-dir both name the candidate — pass one of them/,
  },
  // init --policies goes into YAML and workflow text: a plain relative path or nothing
  {
    name: "init --policies outside the repository",
    args: () => ["init", "--policies", "../shared-policies"],
    code: 2,
    line: /--policies "\.\.\/shared-policies" must be a directory inside the repository — pass a relative path/,
    repo: () => createRepo(),
  },
  {
    name: "init --policies with a line break (it would add a line to the YAML and workflows)",
    args: () => ["init", "--policies", "policies\nmalicious: true"],
    code: 2,
    line: /--policies: must not hold a line break or another control character/,
    repo: () => createRepo(),
  },
  {
    name: "init with POLICYSHIP_OUT holding a line break (it would add a line to .gitignore)",
    args: () => ["init"],
    env: { POLICYSHIP_OUT: "dist\n!secrets" },
    code: 2,
    line: /POLICYSHIP_OUT: must not hold a line break or another control character/,
    repo: () => createRepo(),
  },
  // prune input (S3 pinning, publish idempotency and prune): an age nobody can misread
  {
    name: "prune --older-than 6m (minutes or months?)",
    args: (c) => ["prune", "--keep", "1", "--older-than", "6m", ...store(c), "--yes"],
    code: 2,
    line: /--older-than: must be hours, days or weeks, such as 12h, 90d or 26w \(6m could mean minutes or months\)/,
  },
  {
    name: "prune --older-than without a unit",
    args: (c) => ["prune", "--keep", "1", "--older-than", "90", ...store(c), "--yes"],
    code: 2,
    line: /--older-than: must be hours, days or weeks/,
  },
  {
    name: "POLICYSHIP_OLDER_THAN in seconds",
    args: (c) => ["prune", "--keep", "1", ...store(c), "--yes"],
    env: { POLICYSHIP_OLDER_THAN: "3600s" },
    code: 2,
    line: /POLICYSHIP_OLDER_THAN: must be hours, days or weeks/,
  },
  // untrusted JSON and YAML: __proto__ is a key like any other, so an unknown setting
  {
    name: "policyship.yaml whose __proto__ holds settings",
    repo: () => repoCommitting("policyship.yaml", "__proto__:\n  opa: /tmp/planted-opa\n"),
    args: () => ["build"],
    code: 2,
    line: /policyship\.yaml: unknown setting __proto__/,
  },
  {
    name: "policyship.json whose constructor holds settings",
    repo: () =>
      repoCommitting("policyship.json", '{"constructor": {"prototype": {"opa": "/tmp/planted-opa"}}}'),
    args: () => ["build"],
    code: 2,
    line: /policyship\.json: unknown setting constructor/,
  },
  // wasm: bundles the embedded engine cannot run, and the two-artifact layout
  {
    name: "build --target wasm of a policy that calls http.send",
    args: () => ["build", "--target", "wasm", "--entrypoint", "fetch/allowed"],
    code: 1,
    line: /needs built-ins the embedded engine does not implement: http\.send \(policies\/fetch\.rego:3\) — http\.send is refused/,
    repo: () =>
      repoCommitting(
        "policies/fetch.rego",
        'package fetch\n\nallowed if http.send({"method": "GET", "url": "http://127.0.0.1:1/"}).status_code == 200\n',
      ),
  },
  {
    name: "a --revision ending in .wasm, the wasm artifact's suffix",
    args: () => ["build", "--revision", "1.4.2.wasm"],
    code: 2,
    line: /ends with "\.wasm", which names the wasm artifact of a revision/,
  },
  {
    name: "test --target wasm before a wasm bundle is built",
    args: () => ["test", "--target", "wasm"],
    code: 2,
    line: /no bundle built for revision [0-9a-f]{40} \(dist\/[0-9a-f]{40}\.wasm\.tar\.gz\)/,
  },
  {
    name: "test --target wasm of a policies directory",
    args: () => ["test", "--target", "wasm", "--policies", "policies"],
    code: 2,
    line: /--target wasm tests a built wasm bundle, not a policies directory/,
  },
  {
    name: "verify --target wasm of an unpublished revision",
    args: (c) => ["verify", "r1", "--target", "wasm", ...store(c)],
    code: 1,
    line: /revision r1 is not published for wasm in/,
  },
  // OCI manifests that Go's JSON reader (OPA's) and JavaScript's read differently, in a real registry
  {
    name: "verify of a manifest with both layers and Layers",
    args: () => ["verify", AMBIGUOUS.foldedLayers, "--store", ambiguousStore()],
    repo: repoBesideAmbiguousRegistry,
    env: { DOCKER_CONFIG: "/nonexistent" },
    code: 1,
    line: /the manifest of \S+ is refused: the keys "layers" and "Layers" differ only in case, .* — do not deploy it/,
  },
  {
    name: "config pinning a manifest whose layer says Digest",
    args: () => ["config", "--revision", AMBIGUOUS.digestInCaps, "--store", ambiguousStore()],
    repo: repoBesideAmbiguousRegistry,
    env: { DOCKER_CONFIG: "/nonexistent" },
    code: 1,
    line: /is refused: the key "Digest" is not spelled "digest", yet Go's JSON reader \(OPA's\) reads it as that field/,
  },
  {
    name: "rollback to a tag that names an image index",
    args: () => ["rollback", AMBIGUOUS.index, "--store", ambiguousStore()],
    repo: repoBesideAmbiguousRegistry,
    env: { DOCKER_CONFIG: "/nonexistent" },
    code: 1,
    line: /is refused: it is "application\/vnd\.oci\.image\.index\.v1\+json", not an image manifest/,
  },
  {
    name: "list of a repository holding an ambiguous manifest",
    args: () => ["list", "--store", ambiguousStore()],
    repo: repoBesideAmbiguousRegistry,
    env: { DOCKER_CONFIG: "/nonexistent" },
    code: 1,
    line: /the manifest of \S+ is refused: /,
  },
  // build --out that cannot hold a bundle: a refusal, not an internal error
  {
    name: "build --out a file",
    args: (c) => ["build", "--out", `${c.scratch}/a-file`],
    code: 2,
    line: /--out \S+\/a-file is a file, not a directory — pass a directory you can write/,
  },
  {
    name: "build --out under a file",
    args: (c) => ["build", "--out", `${c.scratch}/a-file/dist`],
    code: 2,
    line: /--out \S+\/a-file\/dist is under a file, not a directory/,
  },
  // the AWS SDK's endpoint variables are settings too
  {
    name: "an AWS_ENDPOINT_URL_S3 that is not a URL",
    args: () => ["config", "--bucket", "acme"],
    env: { AWS_ENDPOINT_URL_S3: "minio:9000" },
    code: 2,
    line: /environment: AWS_ENDPOINT_URL_S3: must be an http\(s\) URL/,
  },
  // impact: decision logs it cannot trust or cannot read
  ...["../../x", "--foo", "3f2a9c1"].map(
    (revision): Case => ({
      name: `impact: a decision log recording revision ${revision}`,
      args: () => ["impact", "--decisions", "decisions.ndjson", "--fail-on", "deny-to-allow"],
      code: 2,
      line: /records revision ".+", which is not a full commit SHA — /,
      repo: () => repoCommitting("decisions.ndjson", `${recordedDecision({ authz: { revision } })}\n`),
    }),
  ),
  {
    name: "impact: decisions of which none names a revision",
    args: () => ["impact", "--decisions", "decisions.ndjson"],
    code: 2,
    line: /none of the 2 recorded decisions names a bundle revision — pass --base/,
    repo: () => repoCommitting("decisions.ndjson", `${recordedDecision()}\n${recordedDecision()}\n`),
  },
  {
    name: "impact: a decision log line nested 200,000 deep",
    args: () => ["impact", "--decisions", "decisions.ndjson"],
    code: 2,
    line: /decisions\.ndjson is refused: line 1 nests deeper than 1000 levels/,
    repo: () =>
      repoCommitting(
        "decisions.ndjson",
        `{"decision_id":"d","path":"authz/allow","input":${"[".repeat(200_000)}${"]".repeat(200_000)}}\n`,
      ),
  },
  {
    name: "impact: a directory of decision logs that holds no file",
    args: (c) => ["impact", "--decisions", `${c.scratch}/empty-policies`],
    code: 2,
    line: /empty-policies holds no files — /,
  },
  // Keys and URL settings: never a key or a password in the message; release checks its config before publishing.
  {
    name: "a signing key given as base64 DER, never echoed",
    args: () => ["build"],
    env: { POLICYSHIP_SIGNING_KEY: "MIIEvgIBADANBgkqhkiG9w0BAQEFAASC/+kwggSlAgEAAoIBAQC7" },
    code: 2,
    line: /^policyship: POLICYSHIP_SIGNING_KEY \(the value, not shown\) cannot be read: it names no file and is not PEM text — /,
  },
  {
    name: "a --service-url with user:password, never echoed",
    args: () => [
      "config",
      "--revision",
      "r1",
      "--to",
      "bundles",
      "--service-url",
      "https://u:s3cr3t@b.example.com",
    ],
    code: 2,
    line: /^policyship: invalid settings: flags: --service-url: must not carry user:password(?!.*s3cr3t)/,
  },
  {
    name: "an --endpoint with a query",
    args: () => [
      "config",
      "--revision",
      "r1",
      "--bucket",
      "acme",
      "--endpoint",
      "http://127.0.0.1:9000/?x=1",
    ],
    code: 2,
    line: /--endpoint: must not carry a query or a fragment/,
  },
  {
    name: "a --service-url with a fragment",
    args: () => [
      "config",
      "--revision",
      "r1",
      "--to",
      "bundles",
      "--service-url",
      "https://b.example.com/b#x",
    ],
    code: 2,
    line: /--service-url: must not carry a query or a fragment/,
  },
  {
    name: "an oci:// store with user:password, never echoed",
    args: () => ["config", "--revision", "r1", "--store", "oci://u:s3cr3t@ghcr.io/acme/policies"],
    code: 2,
    line: /^policyship: invalid settings: flags: --store: must not carry user:password(?!.*s3cr3t)/,
  },
  {
    name: "release --to <dir> without --service-url, refused before it builds or publishes",
    args: () => ["release", "--to", "bundles"],
    code: 2,
    line: /^policyship: no bucket \(or --service-url\) to point OPA at — /,
  },
  // opa offline: no proxy setting (which can carry a password) for opa, whatever opaEnv says
  {
    name: "an --opa-env that names the proxy",
    args: () => ["build", "--opa-env", "HTTPS_PROXY"],
    code: 2,
    line: /--opa-env: HTTPS_PROXY holds or leads to credentials/,
  },
  // diff: crafted bundles whose fields have a shape OPA would not load (test/integration/diff-crafted.test.ts has them all)
  ...(
    [
      [".signatures.json", '{"signatures":[123]}', /signatures\[0\] is a number, not a string/],
      [".signatures.json", "not json", /\.signatures\.json is not valid JSON/],
      [".signatures.json", '{"signatures":["a.bnVsbA.c"]}', /signatures\[0\] is not a JWT/],
      [
        "data.json",
        `{"a":${"[".repeat(200_000)}${"]".repeat(200_000)}}`,
        /data\.json nests deeper than 10000 levels/,
      ],
      [".manifest", '{"revision":"r","roots":"x"}', /\.manifest roots is a string, not an array of strings/],
    ] as const
  ).map(
    ([file, body, reason]): Case => ({
      name: `diff of a bundle whose ${file} is ${body.slice(0, 24)}`,
      args: () => ["diff", "crafted.tar.gz", "crafted.tar.gz"],
      code: 1,
      line: new RegExp(`^policyship: crafted\\.tar\\.gz is not a bundle OPA would load: .*${reason.source}`),
      repo: async () => {
        const repo = await createRepo({ examplePolicies: true });
        const entries = [
          { name: "/.manifest", body: '{"revision":"r","roots":[""]}' },
          { name: "/authz.rego", body: "package authz\n\nallow if true\n" },
        ].filter((entry) => entry.name !== `/${file}`);
        await writeFile(
          path.join(repo.dir, "crafted.tar.gz"),
          tarball([...entries, { name: `/${file}`, body }]),
        );
        return repo;
      },
    }),
  ),
  // listings: an S3 endpoint or registry that never stops saying there is more
  {
    name: "list on an S3 endpoint that hands back the same continuation token",
    args: () => ["list", "--bucket", "bkt", "--endpoint", endlessListing.url()],
    env: { AWS_ACCESS_KEY_ID: "test", AWS_SECRET_ACCESS_KEY: "test-secret" },
    code: 1,
    line: /s3:\/\/bkt\/ handed back a continuation it had already sent \(same\), so its listing never ends — /,
  },
  {
    name: "list on a registry whose next link is the page it came from",
    args: () => ["list", "--store", `oci://${new URL(endlessListing.url()).host}/acme/policies`],
    code: 1,
    line: /the tag list of 127\.0\.0\.1:\d+\/acme\/policies handed back a continuation it had already sent/,
  },
  // verify: bundle manifests OPA reads otherwise, and stores that disagree with the local record
  ...(() => {
    /** A repository with a hand-made bundle published in `bundles/` as `goodrev` (honest metadata). */
    const craftedStore = (manifest: string, record?: object) => async (): Promise<TempRepo> => {
      const { createHash } = await import("node:crypto");
      const { tarball } = await import("../helpers/tarball.ts");
      const crafted = await createRepo({ examplePolicies: true });
      const bytes = tarball([
        { name: "/.manifest", body: manifest },
        { name: "/authz/a.rego", body: "package authz\n\nallow := true\n" },
      ]);
      await mkdir(path.join(crafted.dir, "bundles"));
      await writeFile(path.join(crafted.dir, "bundles", "goodrev.tar.gz"), bytes);
      const sha256 = createHash("sha256").update(bytes).digest("hex");
      await writeFile(
        path.join(crafted.dir, "bundles", "goodrev.tar.gz.meta.json"),
        JSON.stringify({ revision: "goodrev", sha256 }),
      );
      if (record) {
        // Where build would have written it, kept out of dist/ by `out`.
        await writeFile(path.join(crafted.dir, "policyship.yaml"), "out: records\n");
        await mkdir(path.join(crafted.dir, "records"));
        await writeFile(path.join(crafted.dir, "records", "goodrev.json"), JSON.stringify(record));
      }
      return crafted;
    };
    return [
      {
        name: "verify of a bundle whose .manifest has revision and Revision",
        args: () => ["verify", "goodrev", "--to", "bundles"],
        repo: craftedStore('{"revision":"goodrev","Revision":"EVILREV","roots":["authz"],"Roots":[""]}'),
        code: 1,
        line: /the bundle's \.manifest can be read two ways: the keys "revision" and "Revision" differ only in case, .* — do not deploy it/,
      },
      {
        name: "verify of a bundle whose .manifest spells roots Roots",
        args: () => ["verify", "goodrev", "--to", "bundles"],
        repo: craftedStore('{"revision":"goodrev","Roots":["authz","other"]}'),
        code: 1,
        line: /the key "Roots" is not spelled "roots", yet Go's JSON reader \(OPA's\) reads it as that field — do not deploy it/,
      },
      {
        name: "verify of an object whose bytes are not the ones the local build record names",
        args: () => ["verify", "goodrev", "--to", "bundles"],
        repo: craftedStore('{"revision":"goodrev"}', { sha256: "0".repeat(64) }),
        code: 1,
        line: /holds sha256 [0-9a-f]{64}, but goodrev\.json here recorded 0{64} — do not deploy it/,
      },
    ] satisfies Case[];
  })(),
  // OPA instances: --instance, POLICYSHIP_INSTANCES and instances: are URL settings; --opa is the opa binary.
  {
    name: "list --instance with a query, which OPA's API paths would be appended to",
    args: (c) => ["list", ...store(c), "--instance", "http://127.0.0.1:8181/?token=hunter2"],
    code: 2,
    line: /^(?!.*hunter2).*flags: --instance: must not carry a query or a fragment/,
  },
  {
    name: "POLICYSHIP_INSTANCES holding a URL with user:password, which is not repeated",
    args: () => ["status"],
    env: { POLICYSHIP_INSTANCES: "http://127.0.0.1:8181,https://ops:hunter2@opa.example" },
    code: 2,
    line: /^(?!.*hunter2).*environment: POLICYSHIP_INSTANCES: must not carry user:password/,
  },
  {
    name: "POLICYSHIP_INSTANCES holding a URL with a fragment",
    args: (c) => ["prune", "--keep", "1", ...store(c)],
    env: { POLICYSHIP_INSTANCES: "http://127.0.0.1:8181/#x" },
    code: 2,
    line: /environment: POLICYSHIP_INSTANCES: must not carry a query or a fragment/,
  },
  {
    name: "POLICYSHIP_INSTANCES holding a tab, which URL parsing would drop and output would print",
    args: () => ["status"],
    env: { POLICYSHIP_INSTANCES: "http://127.0.0.1:8181/a\tb" },
    code: 2,
    line: /environment: POLICYSHIP_INSTANCES: must not hold spaces, line breaks or control characters/,
  },
  {
    name: "instances: in policyship.yaml holding a line break",
    args: () => ["status"],
    repo: () =>
      repoCommitting("policyship.yaml", 'instances:\n  - "http://127.0.0.1:8181/a\\n::warning::b"\n'),
    code: 2,
    line: /policyship\.yaml: instances\.0: must not hold spaces, line breaks or control characters/,
  },
  {
    name: "instances: in policyship.yaml that is not a list",
    args: () => ["status"],
    repo: () => repoCommitting("policyship.yaml", "instances: http://127.0.0.1:8181\n"),
    code: 2,
    line: /policyship\.yaml: instances: Expected array, received string/,
  },
  {
    name: "list --instance over plain HTTP to another machine with POLICYSHIP_OPA_TOKEN set, which stays unsent",
    args: (c) => ["list", ...store(c), "--instance", "http://opa-0.internal:8181"],
    env: { POLICYSHIP_OPA_TOKEN: "reader-hunter2" },
    code: 2,
    line: /^(?!.*hunter2).*POLICYSHIP_OPA_TOKEN would cross the network in plain text to opa-0\.internal:8181/,
  },
  {
    name: "build --opa with an OPA URL, where --opa is the opa binary",
    args: () => ["build", "--opa", "http://x"],
    code: 2,
    line: /flags: --opa: takes the path of the opa binary, not a URL: name OPA instances with --instance <url>/,
  },
  {
    name: "list --opa with an OPA URL, once silently ignored",
    args: (c) => ["list", ...store(c), "--opa", "https://opa-0.internal:8181"],
    code: 2,
    line: /flags: --opa: takes the path of the opa binary, not a URL: name OPA instances with --instance <url>/,
  },
  {
    name: "POLICYSHIP_OPA holding an OPA URL",
    args: () => ["check"],
    env: { POLICYSHIP_OPA: "http://127.0.0.1:8181" },
    code: 2,
    line: /environment: POLICYSHIP_OPA: takes the path of the opa binary, not a URL: name OPA instances with --instance/,
  },

  // explain: the decision log is hostile; ids, paths and revisions are checked before anything runs
  ...(() => {
    const sha = "a".repeat(40);
    /** One logged decision with id `explained`, its fields overridden by `fields`. */
    const logged = (fields: Record<string, unknown>) => () =>
      repoCommitting(
        "decisions.ndjson",
        `${JSON.stringify({
          decision_id: "explained",
          path: "authz/allow",
          input: { request: { http: { method: "GET", path: "/orders" } } },
          result: true,
          bundles: { authz: { revision: sha } },
          ...fields,
        })}\n`,
      );
    return [
      {
        name: "explain: a decision id that is a pattern, not an id",
        args: () => ["explain", "explained*", "--decisions", "decisions.ndjson"],
        repo: logged({}),
        code: 2,
        line: /decision id "explained\*" is not one a decision log records — /,
      },
      {
        name: "explain: a decision id no log holds",
        args: () => ["explain", "not-logged", "--decisions", "decisions.ndjson"],
        repo: logged({}),
        code: 1,
        line: /decision not-logged is not in decisions\.ndjson \(1 file read\) — /,
      },
      {
        name: "explain: a decision id without --decisions",
        args: () => ["explain", "explained"],
        code: 2,
        line: /where decision explained was logged is not given — pass --decisions/,
      },
      {
        name: "explain: a decision that names no revision",
        args: () => ["explain", "explained", "--decisions", "decisions.ndjson"],
        repo: logged({ bundles: undefined }),
        code: 2,
        line: /decision explained names no bundle revision .* — pass --revision <rev>/,
      },
      {
        name: "explain: a recorded revision that is a path",
        args: () => ["explain", "explained", "--decisions", "decisions.ndjson"],
        repo: logged({ bundles: { authz: { revision: "../../etc" } } }),
        code: 2,
        line: /decision explained records revision "\.\.\/\.\.\/etc", which is not a full commit SHA — pass --revision <rev>/,
      },
      {
        name: "explain: a decision whose log dropped the input",
        args: () => ["explain", "explained", "--decisions", "decisions.ndjson"],
        repo: logged({ input: undefined }),
        code: 2,
        line: /decision explained records no input \(its log masked or dropped \/input\), so it cannot be replayed — /,
      },
      {
        name: "explain: a recorded path that is no rule path",
        args: () => ["explain", "explained", "--decisions", "decisions.ndjson"],
        repo: logged({ path: "authz/../../x" }),
        code: 2,
        line: /decision explained records path "authz\/\.\.\/\.\.\/x" is not a rule path — pass --path/,
      },
      {
        name: "explain: --path that is no rule path",
        args: () => ["explain", "explained", "--decisions", "decisions.ndjson", "--path", "authz/-x"],
        repo: logged({}),
        code: 2,
        line: /--path "authz\/-x" is not a rule path — /,
      },
      {
        name: "explain: --revision that is an option",
        args: () => ["explain", "explained", "--decisions", "decisions.ndjson", "--revision=--upload-pack=x"],
        repo: logged({}),
        code: 2,
        line: /flags: --revision: must be 1–128 characters of A-Z a-z 0-9 \. _ - — /,
      },
      {
        name: "explain: --input without --revision",
        args: (c) => ["explain", "--input", `${c.scratch}/broken.json`],
        code: 2,
        line: /--input needs --revision — /,
      },
      {
        name: "explain: --input that is not JSON",
        args: (c) => ["explain", "--input", `${c.scratch}/broken.json`, "--revision", sha],
        code: 2,
        line: /--input .*broken\.json is not JSON: .* — pass a JSON file/,
      },
      {
        name: "explain: a decision id and --input both",
        args: (c) => [
          "explain",
          "explained",
          "--input",
          `${c.scratch}/broken.json`,
          "--decisions",
          "decisions.ndjson",
        ],
        repo: logged({}),
        code: 2,
        line: /a decision id and --input both name what to explain — pass one of them/,
      },
      {
        name: "explain: nothing to explain",
        args: () => ["explain"],
        code: 2,
        line: /nothing to explain — pass a decision id with --decisions/,
      },
    ] satisfies Case[];
  })(),

  // impact --shadow: live comparisons in decision logs that are malformed or contradict themselves
  ...(() => {
    /** A sampled decision the enforcer denied, with `shadow` as its logged comparison. */
    const sampled = (shadow: unknown) =>
      `${JSON.stringify({
        decision_id: "shadowed-1",
        path: "authz/allow",
        input: { request: { http: { method: "GET", path: "/admin" } } },
        result: false,
        custom: { policyship: { outcome: "deny", status: 403, shadow } },
      })}\n`;
    const answer = { revision: "b".repeat(40), allow: true, status: 200, headers: {}, engine: "remote" };
    return [
      {
        name: "impact --shadow: a deny → allow logged as no flip",
        args: () => ["impact", "--shadow", "--decisions", "decisions.ndjson"],
        code: 2,
        line: /decision shadowed-1 in decisions\.ndjson is refused: shadow\.flip is none, yet the enforced decision was deny and the candidate's allow — /,
        repo: () => repoCommitting("decisions.ndjson", sampled({ ...answer, differs: false, flip: "none" })),
      },
      {
        name: "impact --shadow: a comparison whose allow is a string",
        args: () => ["impact", "--shadow", "--decisions", "decisions.ndjson"],
        code: 2,
        line: /is refused: shadow\.allow is neither a boolean nor null — /,
        repo: () =>
          repoCommitting(
            "decisions.ndjson",
            sampled({ ...answer, allow: "yes", differs: true, flip: "deny_to_allow" }),
          ),
      },
      {
        name: "impact --shadow with --candidate, which only a replay uses",
        args: () => ["impact", "--shadow", "--decisions", "decisions.ndjson", "--candidate", "HEAD"],
        code: 2,
        line: /--candidate has no part in impact --shadow: it reads the comparisons the enforcer made, and replays nothing — /,
        repo: () =>
          repoCommitting("decisions.ndjson", sampled({ ...answer, differs: true, flip: "deny_to_allow" })),
      },
    ] satisfies Case[];
  })(),

  // impact at scale: --sample
  ...[
    { value: "0", line: /--sample: must be a share of the decisions above 0, such as 0\.1 — / },
    { value: "1.5", line: /--sample: must be at most 1 \(all\) — / },
    { value: "ten", line: /option '--sample <rate>' argument 'ten' is invalid\. expected a number — / },
  ].map(
    ({ value, line }): Case => ({
      name: `impact --sample ${value}`,
      args: () => ["impact", "--decisions", "decisions.ndjson", "--sample", value],
      code: 2,
      line,
    }),
  ),

  // impact --shadow: a line whose enforced side states its decision twice and contradicts itself
  ...(() => {
    /** A real deny → allow, its enforced side relabelled allow so that it reads as no change. */
    const relabelled = (policyship: Record<string, unknown>) =>
      `${JSON.stringify({
        decision_id: "relabelled-1",
        path: "authz/allow",
        input: { request: { http: { method: "GET", path: "/admin" } } },
        result: false,
        custom: {
          policyship: {
            outcome: "allow",
            status: 200,
            would: "deny",
            shadow: {
              revision: "b".repeat(40),
              allow: true,
              status: 200,
              headers: {},
              differs: false,
              flip: "none",
              engine: "remote",
            },
            ...policyship,
          },
        },
      })}\n`;
    return [
      {
        name: "impact --shadow: outcome allow, would deny",
        args: () => ["impact", "--shadow", "--decisions", "decisions.ndjson"],
        code: 2,
        line: /decision relabelled-1 in decisions\.ndjson is refused: custom\.policyship\.would is deny, yet custom\.policyship\.outcome is allow — /,
        repo: () => repoCommitting("decisions.ndjson", relabelled({})),
      },
      {
        name: "impact --shadow: outcome allow, logged result false",
        args: () => ["impact", "--shadow", "--decisions", "decisions.ndjson"],
        code: 2,
        line: /decision relabelled-1 in decisions\.ndjson is refused: the logged result denies, yet custom\.policyship\.outcome is allow — /,
        repo: () => repoCommitting("decisions.ndjson", relabelled({ would: "allow" })),
      },
    ] satisfies Case[];
  })(),

  // impact's decision reader: sources that would hang it or keep it busy for minutes
  {
    name: "impact: --decisions names a FIFO",
    args: () => ["impact", "--decisions", "decisions.fifo"],
    code: 2,
    line: /--decisions decisions\.fifo is not a regular file or a directory — /,
    repo: async () => {
      const made = await createRepo({ examplePolicies: true });
      execFileSync("mkfifo", [path.join(made.dir, "decisions.fifo")]);
      return made;
    },
  },
  {
    name: "impact: a small gzip that inflates to millions of blank lines",
    args: () => ["impact", "--decisions", "newlines.ndjson.gz"],
    code: 2,
    line: /newlines\.ndjson\.gz is refused: it has more than 100000 blank lines — /,
    repo: async () => {
      const made = await createRepo({ examplePolicies: true });
      await writeFile(
        path.join(made.dir, "newlines.ndjson.gz"),
        gzipSync(Buffer.alloc(8 * 1024 * 1024, 0x0a)),
      );
      return made;
    },
  },
  {
    name: "explain: the recorded revision's policies do not build",
    args: () => ["explain", "broken-1", "--decisions", "decisions.ndjson"],
    code: 2,
    line: /cannot build revision [0-9a-f]{40} from git: policies\/broken\.rego:\d+: rego_parse_error: [^;]+; policies\/broken\.rego:\d+: rego_parse_error: .* — fix the policies at that commit .*--revision <rev>/,
    repo: async () => {
      const made = await repoCommitting(
        "policies/broken.rego",
        "package broken\n\na if {\n  input.x ==\n}\nb if { y := }\n",
      );
      const revision = made.git("rev-parse", "HEAD");
      await writeFile(
        path.join(made.dir, "decisions.ndjson"),
        `${JSON.stringify({ decision_id: "broken-1", path: "authz/allow", input: {}, result: true, bundles: { authz: { revision } } })}\n`,
      );
      return made;
    },
  },

  // a prefix with an OCI store: refused with the settings, before check, build or test run
  {
    name: "release --store oci://… with the prefix init wrote in policyship.yaml",
    args: () => ["release", "--store", "oci://127.0.0.1:1/acme/policies"],
    code: 2,
    line: /^policyship: prefix "authz" \(from policyship\.yaml\) has no meaning for an OCI registry — remove it from policyship\.yaml; /,
    repo: () => repoCommitting("policyship.yaml", "policies: policies\nprefix: authz\n"),
  },
  {
    name: "build with POLICYSHIP_REGISTRY and POLICYSHIP_PREFIX",
    args: () => ["build"],
    env: { POLICYSHIP_REGISTRY: "127.0.0.1:1/acme/policies", POLICYSHIP_PREFIX: "authz" },
    code: 2,
    line: /prefix "authz" \(from POLICYSHIP_PREFIX\) has no meaning for an OCI registry/,
  },

  // -o / --output / --markdown: a file in a directory that is missing or is not one
  {
    name: "config -o into a directory that does not exist",
    args: (c) => ["config", "--revision", "r1", ...store(c), "-o", "missing-dir/x.yaml"],
    code: 2,
    line: /^policyship: cannot write missing-dir\/x\.yaml: its directory \S+missing-dir does not exist — create the directory first/,
  },
  {
    name: "config -o under a path that is a file",
    args: (c) => ["config", "--revision", "r1", ...store(c), "-o", "policyship.yaml/x.yaml"],
    code: 2,
    line: /^policyship: cannot write policyship\.yaml\/x\.yaml: its directory \S+policyship\.yaml does not exist — /,
  },
];

describe("the command line's refusals under --json", () => {
  // What commander refuses is a JSON document on stdout too, like every other error.
  for (const testCase of CASES.slice(0, 12)) {
    it(`${testCase.name}: one JSON document with exit code ${testCase.code}`, async () => {
      const result = await runCli(
        ["--json", ...testCase.args({ scratch, bucket, endpoint: minio().endpoint, closedHost })],
        {
          cwd: repo.dir,
          env: { ...awsEnv(), ...testCase.env },
        },
      );
      expect(result.exitCode, result.stderr).toBe(testCase.code);
      const document = JSON.parse(result.stdout) as {
        error: { message: string; hint: string; exitCode: number };
      };
      expect(document.error.exitCode).toBe(testCase.code);
      expect(`policyship: ${document.error.message} — ${document.error.hint}`).toMatch(testCase.line);
    });
  }
});

let recordedDecisions = 0;

/** One recorded decision, as the enforcer logs it, naming `bundles` when given. */
function recordedDecision(bundles?: Record<string, { revision: string }>): string {
  return JSON.stringify({
    decision_id: `decision-${++recordedDecisions}`,
    path: "authz/allow",
    input: { request: { http: { method: "GET", path: "/orders" } } },
    result: true,
    ...(bundles ? { bundles } : {}),
  });
}

describe("the bad-input catalogue", () => {
  it(`has at least 40 cases (${CASES.length})`, () => {
    expect(CASES.length).toBeGreaterThanOrEqual(40);
  });

  for (const testCase of CASES) {
    it(`${testCase.name} → ${testCase.code}`, async () => {
      const target = testCase.repo ? await testCase.repo() : repo;
      const result: CliResult = await runCli(
        testCase.args({ scratch, bucket, endpoint: minio().endpoint, closedHost }),
        {
          cwd: target.dir,
          env: { ...awsEnv(), ...testCase.env },
        },
      );
      expect(result.exitCode, result.stderr).toBe(testCase.code);
      const lines = result.stderr.trimEnd().split("\n");
      const errorLines = lines.filter((line) => line.startsWith("policyship:"));
      expect(errorLines, result.stderr).toHaveLength(1);
      expect(lines.at(-1)).toBe(errorLines[0]);
      expect(errorLines[0]).toMatch(testCase.line);
      expect(result.stderr).not.toMatch(/\n\s+at \S+ \(?[^)]*:\d+:\d+\)?/);
      expect(result.stdout).toBe("");
      expect(await readdir(path.join(target.dir, "dist")).catch(() => [])).toEqual([]);
    });
  }
});
