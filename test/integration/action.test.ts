import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { cp, mkdir, mkdtemp, readFile, realpath, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { HeadObjectCommand } from "@aws-sdk/client-s3";
import { beforeAll, describe, expect, it } from "vitest";
import { runAction } from "../helpers/action-runner.ts";
import { createRepo, type TempRepo } from "../helpers/git-repo.ts";
import { awsEnv, createBucket, minio, s3Client } from "../helpers/s3.ts";
import { serversClosedAfterEach } from "../helpers/serve.ts";
import { pinnedOpaVersion, repoRoot, toolPath } from "../helpers/tools.ts";

/**
 * The composite action at the repository root, checked by a real actionlint from a caller's workflow, and
 * its `run:` steps executed against a real opa release served on loopback, the packed package and MinIO.
 */

function run(command: string, args: string[], cwd: string) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(command, args, { cwd, timeout: 240_000, maxBuffer: 32 * 1024 * 1024 }, (error, stdout, stderr) =>
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const CALLER = (withs: string) => `name: policy
on:
  push:
    branches: [main]
permissions:
  contents: read
  id-token: write
jobs:
  release:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2
      - uses: aws-actions/configure-aws-credentials@b47578312673ae6fa5b5096b330d9fbac3d116df # v4.2.1
        with:
          role-to-assume: arn:aws:iam::123456789012:role/policy-release
          aws-region: eu-west-1
      - id: policy
        uses: ./
        with:
${withs}
      - run: echo "released $REVISION to $URL ($SHA256, key $KEY); OPA config in $CONFIG"
        env:
          REVISION: \${{ steps.policy.outputs.revision }}
          URL: \${{ steps.policy.outputs.url }}
          SHA256: \${{ steps.policy.outputs.sha256 }}
          KEY: \${{ steps.policy.outputs.key }}
          CONFIG: \${{ steps.policy.outputs.config }}
`;

async function actionlintCaller(withs: string) {
  const dir = await mkdtemp(path.join(os.tmpdir(), "policyship-action-lint-"));
  await mkdir(path.join(dir, ".github/workflows"), { recursive: true });
  await cp(path.join(repoRoot, "action.yml"), path.join(dir, "action.yml"));
  await writeFile(path.join(dir, ".github/workflows/policy.yml"), CALLER(withs));
  // actionlint reads a local action's inputs only inside a repository: without one it checks nothing.
  expect((await run("git", ["init", "--quiet"], dir)).code).toBe(0);
  return run(toolPath("actionlint"), [".github/workflows/policy.yml"], dir);
}

describe("the GitHub Action, as a caller's workflow sees it", () => {
  it("is accepted by actionlint with its real inputs and outputs", async () => {
    const result = await actionlintCaller(
      [
        "command: release",
        "policies: policies",
        "bucket: acme-policies",
        "region: eu-west-1",
        "prefix: authz",
        'opa-version: "1.22.2"',
        'policyship-version: "0.1.0"',
      ]
        .map((line) => `          ${line}`)
        .join("\n"),
    );
    expect(result.stdout + result.stderr).toBe("");
    expect(result.code).toBe(0);
  });

  it("makes actionlint report an input it does not have", async () => {
    const result = await actionlintCaller("          bucket: acme-policies\n          bukcet: typo");
    expect(result.code).not.toBe(0);
    expect(result.stdout).toMatch(/input "bukcet" is not defined in action "policyship"/);
  });

  it("pins every action it uses to a commit and never runs npx --yes", async () => {
    const text = await readFile(path.join(repoRoot, "action.yml"), "utf8");
    const uses = [...text.matchAll(/^\s+(?:- )?uses: (\S+)/gm)].map((match) => match[1] as string);
    expect(uses.length).toBe(2);
    for (const action of uses) expect(action).toMatch(/@[0-9a-f]{40}$/);
    const scripts = await Promise.all(
      ["inputs.sh", "download-opa.sh", "install.sh", "command.sh"].map((file) =>
        readFile(path.join(repoRoot, "action", file), "utf8"),
      ),
    );
    // Outside comments: no npx, no role of its own, no secret it reads for itself.
    const code = `${text}${scripts.join("")}`.replace(/^\s*#.*$/gm, "");
    expect(code).not.toMatch(/\bnpx\b|role-to-assume|secrets\./);
  });
});

describe("the GitHub Action's steps, executed", () => {
  const serve = serversClosedAfterEach();
  let tarball: string;
  let opaBytes: Buffer;
  let repo: TempRepo;

  beforeAll(async () => {
    const packDir = await mkdtemp(path.join(os.tmpdir(), "policyship-action-pack-"));
    const packed = await run("npm", ["pack", "--json", "--pack-destination", packDir], repoRoot);
    expect(packed.code, packed.stderr).toBe(0);
    tarball = path.join(packDir, (JSON.parse(packed.stdout) as [{ filename: string }])[0].filename);
    opaBytes = await readFile(await realpath(toolPath("opa")));
    repo = await createRepo({ examplePolicies: true });
  }, 300_000);

  /** OPA's release download layout on loopback: the asset and its .sha256, counting requests. */
  async function opaReleases(options: { tamper?: boolean } = {}) {
    const requests: string[] = [];
    const sha = createHash("sha256").update(opaBytes).digest("hex");
    const url = await serve((request, response) => {
      requests.push(request.url ?? "");
      const asset = new RegExp(
        `^/v${pinnedOpaVersion().replace(/^v/, "")}/(opa_linux_(?:amd64|arm64)_static)(\\.sha256)?$`,
      ).exec(request.url ?? "");
      if (!asset) {
        response.writeHead(404).end();
      } else if (asset[2]) {
        response.end(`${sha}  ${asset[1]}\n`);
      } else {
        response.end(options.tamper ? Buffer.concat([opaBytes, Buffer.from("x")]) : opaBytes);
      }
    });
    return { url, requests };
  }

  const jobEnv = (releases: string) => ({
    ...awsEnv(),
    POLICYSHIP_ENDPOINT: minio().endpoint,
    POLICYSHIP_OPA_RELEASES: releases,
    GITHUB_SHA: repo.git("rev-parse", "HEAD"),
  });
  const opaVersion = () => pinnedOpaVersion().replace(/^v/, "");

  it("downloads opa once, installs the exact package and releases to S3 with every output", async () => {
    const bucket = await createBucket();
    const toolCache = await mkdtemp(path.join(os.tmpdir(), "policyship-toolcache-"));
    const releases = await opaReleases();
    const inputs = {
      bucket,
      region: "us-east-1",
      "opa-version": opaVersion(),
      "policyship-version": tarball,
    };
    const first = await runAction({ inputs, env: jobEnv(releases.url), cwd: repo.dir, toolCache });
    const failed = first.steps.find((step) => step.code !== 0);
    expect(first.code, failed && `${failed.name}: ${failed.stdout}${failed.stderr}`).toBe(0);
    const sha = repo.git("rev-parse", "HEAD");
    expect(first.outputs.revision).toBe(sha);
    expect(first.outputs.key).toBe(`${sha}.tar.gz`);
    expect(first.outputs.url).toBe(`s3://${bucket}/${sha}.tar.gz`);
    expect(first.outputs.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect((await stat(path.join(repo.dir, first.outputs.config as string))).isFile()).toBe(true);
    const head = await s3Client().send(new HeadObjectCommand({ Bucket: bucket, Key: `${sha}.tar.gz` }));
    expect(head.ContentLength).toBeGreaterThan(0);
    expect(releases.requests).toHaveLength(2);

    // The next run restores opa from the cache and downloads nothing; publishing again is idempotent.
    const second = await runAction({ inputs, env: jobEnv(releases.url), cwd: repo.dir, toolCache });
    expect(second.code, second.steps.map((step) => step.stderr).join("")).toBe(0);
    expect(second.steps.find((step) => step.name === "download opa")?.skipped).toBe(true);
    expect(releases.requests).toHaveLength(2);
    expect(second.outputs.sha256).toBe(first.outputs.sha256);
  }, 300_000);

  it("refuses an opa download whose sha256 is not the release's, and keeps nothing of it", async () => {
    const toolCache = await mkdtemp(path.join(os.tmpdir(), "policyship-toolcache-"));
    const releases = await opaReleases({ tamper: true });
    const result = await runAction({
      inputs: { bucket: "unused", "opa-version": opaVersion(), "policyship-version": tarball },
      env: jobEnv(releases.url),
      cwd: repo.dir,
      toolCache,
    });
    expect(result.code).toBe(2);
    const download = result.steps.find((step) => step.name === "download opa");
    expect(download?.stdout).toMatch(
      /^::error title=policyship::opa .* has sha256 [0-9a-f]{64}, but its release says/m,
    );
    const [dir] = await readdirDeep(toolCache);
    expect(dir ? await readdirNames(dir) : []).toEqual([]);
  }, 120_000);

  it.each([
    [{ "opa-version": "latest" }, /opa-version must be an exact release such as 1\.22\.2, not 'latest'/],
    [{ "policyship-version": "^0.1.0" }, /policyship-version must be an exact version such as 0\.1\.0/],
    [
      { command: "exec" },
      /command must be one of release, check, test, build, config, verify, rollback, list, not 'exec'/,
    ],
    [{ command: "rollback" }, /rollback needs the revision input/],
  ])(
    "refuses %o with one annotation",
    async (bad, message) => {
      const toolCache = await mkdtemp(path.join(os.tmpdir(), "policyship-toolcache-"));
      const releases = await opaReleases();
      const inputs = { bucket: "unused", "opa-version": opaVersion(), "policyship-version": tarball, ...bad };
      const result = await runAction({ inputs, env: jobEnv(releases.url), cwd: repo.dir, toolCache });
      expect(result.code).toBe(2);
      const failed = result.steps.find((step) => step.code !== 0);
      expect(failed?.stdout).toMatch(message);
      expect(failed?.stdout.split("\n").filter((line) => line.startsWith("::error"))).toHaveLength(1);
    },
    300_000,
  );
});

async function readdirDeep(root: string): Promise<string[]> {
  const { readdir } = await import("node:fs/promises");
  const versions = await readdir(path.join(root, "policyship-opa")).catch(() => []);
  const dirs: string[] = [];
  for (const version of versions) {
    for (const asset of await readdir(path.join(root, "policyship-opa", version)))
      dirs.push(path.join(root, "policyship-opa", version, asset));
  }
  return dirs;
}

async function readdirNames(dir: string): Promise<string[]> {
  const { readdir } = await import("node:fs/promises");
  return readdir(dir);
}

describe("the README's workflow examples", () => {
  it("grant the permissions a called release workflow and the action need", async () => {
    const readme = await readFile(path.join(repoRoot, "README.md"), "utf8");
    const blocks = [...readme.matchAll(/```yaml\n([\s\S]*?)```/g)].map((match) => match[1] as string);
    const callers = blocks.filter((block) =>
      /uses: <owner>\/(?:<repo>\/\.github\/workflows\/policy-release\.yml|policyship)@/.test(block),
    );
    expect(callers).toHaveLength(2);
    for (const block of callers)
      expect(block).toMatch(/permissions:\n\s+contents: read\n\s+id-token: write\n/);
  });
});
