import { execFile } from "node:child_process";
import { access, chmod, mkdir, mkdtemp, readFile, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { createRepo, gitEnv, type TempRepo } from "../helpers/git-repo.ts";
import { pinnedOpaVersion, repoRoot, toolPath } from "../helpers/tools.ts";

interface Step {
  name?: string;
  uses?: string;
  if?: string;
  run?: string;
  with?: Record<string, string>;
  env?: Record<string, string>;
  "working-directory"?: string;
}

interface Job {
  if?: string;
  environment?: string;
  permissions?: Record<string, string>;
  env?: Record<string, string>;
  steps: Step[];
}

interface Workflow {
  on: Record<string, unknown>;
  permissions: Record<string, string>;
  jobs: Record<string, Job>;
}

const WORKFLOW = path.join(repoRoot, ".github/workflows/policy-impact.yml");

async function readWorkflow(file = WORKFLOW): Promise<{ text: string; workflow: Workflow }> {
  const YAML = await import("yaml");
  const text = await readFile(file, "utf8");
  return { text, workflow: YAML.parse(text) as Workflow };
}

function run(
  command: string,
  args: string[],
  options: { cwd: string; env: NodeJS.ProcessEnv },
): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      { ...options, maxBuffer: 16 * 1024 * 1024, timeout: 180_000 },
      (error, stdout, stderr) =>
        resolve({ code: error ? Number(error.code ?? 1) : 0, output: stdout + stderr }),
    );
  });
}

describe("policy-impact.yml", () => {
  it("runs on pull_request, never pull_request_target, pins every action and is clean under actionlint", async () => {
    const { text, workflow } = await readWorkflow();
    expect(Object.keys(workflow.on)).toEqual(["pull_request"]);
    const code = text.split("\n").filter((line) => !line.trimStart().startsWith("#"));
    expect(code.join("\n")).not.toContain("pull_request_target");
    for (const job of Object.values(workflow.jobs)) {
      for (const step of job.steps.filter((s) => s.uses)) expect(step.uses).toMatch(/@[0-9a-f]{40}$/);
      // No script interpolates an expression: values reach scripts through the environment.
      for (const step of job.steps.filter((s) => s.run)) expect(step.run).not.toContain("${{");
    }
    const lint = await run(toolPath("actionlint"), [WORKFLOW], { cwd: repoRoot, env: process.env });
    expect(lint.output).toBe("");
    expect(lint.code).toBe(0);
  });

  it("holds the logs role only in the reviewed environment, for branches of this repository", async () => {
    const { workflow } = await readWorkflow();
    expect(workflow.permissions).toEqual({ contents: "read" });
    const { impact, fork } = workflow.jobs as { impact: Job; fork: Job };
    expect(impact.if).toBe("github.event.pull_request.head.repo.full_name == github.repository");
    expect(impact.environment).toBe("policy-impact");
    expect(impact.permissions).toEqual({ contents: "read", "pull-requests": "write", "id-token": "write" });
    // The fork job gets no id-token and never checks anything out.
    expect(fork.if).toBe("github.event.pull_request.head.repo.full_name != github.repository");
    expect(fork.permissions).toEqual({ "pull-requests": "write" });
    expect(fork.steps.some((s) => s.uses?.startsWith("actions/checkout@"))).toBe(false);
    const comment = impact.steps.find((s) => s.uses?.startsWith("marocchino/sticky-pull-request-comment@"));
    expect(comment?.with).toMatchObject({ header: "policyship-impact", path: "impact.md" });
    const install = impact.steps.findIndex((s) => s.name === "install the pinned policyship");
    const credentials = impact.steps.findIndex((s) =>
      s.uses?.startsWith("aws-actions/configure-aws-credentials@"),
    );
    expect(install).toBeGreaterThanOrEqual(0);
    expect(install).toBeLessThan(credentials);
  });
});

/** Credentials as configure-aws-credentials exports them for the steps after it. */
const ROLE_ENV = {
  AWS_ACCESS_KEY_ID: "SENTINEL-AKIA-logs-role",
  AWS_SECRET_ACCESS_KEY: "SENTINEL-logs-role-secret-5e1b",
  AWS_SESSION_TOKEN: "SENTINEL-logs-role-session-0d7c",
};

const BASE_POLICY = `package authz

default allow := {"allow": false, "status": 403, "message": "not allowed"}

allow := {"allow": true} if input.request.http.method == "GET"
`;

/** The PR: opens POST (a deny → allow flip), and tries to print the job's environment into the report. */
const PR_POLICY = `package authz

env := sprintf("%v", [opa.runtime().env])

open := {"GET", "POST"}

allow := {"allow": true, "headers": {"x-env": env}} if input.request.http.method in open

allow := {"allow": false, "status": 403, "message": env} if not input.request.http.method in open
`;

interface Simulation {
  remote: TempRepo;
  baseSha: string;
  headSha: string;
  decisions: string;
  markers: string;
}

/**
 * A repository whose main branch is benign and whose PR branch carries a hostile policyship.yaml (credentials
 * for opa, its own opa, results shown, another base and policies directory), its own policyship in
 * node_modules/.bin and a lockfile, beside a policy change. Each hostile piece that runs leaves a marker.
 */
async function hostilePullRequest(): Promise<Simulation> {
  const remote = await createRepo();
  const markers = await mkdtemp(path.join(os.tmpdir(), "policyship-markers-"));
  await remote.write("policies/authz.rego", BASE_POLICY);
  await remote.write("policyship.yaml", "examples: 5\n");
  const baseSha = remote.commit("base: GET only");
  remote.git("checkout", "--quiet", "-b", "pr");
  await remote.write("policies/authz.rego", PR_POLICY);
  await remote.write("evil-policies/authz.rego", 'package authz\n\nallow := {"allow": true}\n');
  const marker = (name: string) =>
    `#!/bin/sh\necho ran > '${path.join(markers, name)}'\nexec '${toolPath("opa")}' "$@"\n`;
  await remote.write("tools/opa", marker("pr-opa"));
  await remote.write("node_modules/.bin/policyship", marker("pr-policyship"));
  await remote.write(
    "package.json",
    `${JSON.stringify({ name: "app", private: true, devDependencies: { policyship: "0.1.0" } })}\n`,
  );
  await remote.write(
    "package-lock.json",
    `${JSON.stringify({ name: "app", lockfileVersion: 3, packages: {} })}\n`,
  );
  await chmod(path.join(remote.dir, "tools/opa"), 0o755);
  await chmod(path.join(remote.dir, "node_modules/.bin/policyship"), 0o755);
  await remote.write(
    "policyship.yaml",
    [
      "opaEnv: [AWS_SECRET_ACCESS_KEY]",
      "opa: tools/opa",
      "showResults: true",
      `base: ${baseSha}`,
      "policies: evil-policies",
      "examples: 1000",
      "",
    ].join("\n"),
  );
  remote.git("add", "--all", "--force");
  remote.git("commit", "--quiet", "-m", "PR: open POST, and take over the job");
  const headSha = remote.git("rev-parse", "HEAD");
  remote.git("checkout", "--quiet", "main");
  const decisions = path.join(markers, "decisions.ndjson");
  const record = (id: string, method: string, result: unknown) => ({
    decision_id: id,
    path: "authz/allow",
    input: { request: { http: { method, path: "/orders", headers: {} } } },
    result,
    bundles: { authz: { revision: baseSha } },
  });
  await writeFile(
    decisions,
    `${[
      record("1", "GET", { allow: true }),
      record("2", "POST", { allow: false, status: 403, message: "not allowed" }),
    ]
      .map((line) => JSON.stringify(line))
      .join("\n")}\n`,
  );
  return { remote, baseSha, headSha, decisions, markers };
}

/**
 * An npm that installs the policyship built from this repository, as the registry would serve the pinned
 * version, and logs where and how it ran.
 */
async function fakeNpm(dir: string, log: string): Promise<void> {
  const cli = path.join(repoRoot, "bin/policyship.js");
  const wrapper = path.join(dir, "policyship-from-registry");
  await writeFile(wrapper, `#!/bin/sh\nexec '${toolPath("node")}' '${cli}' "$@"\n`);
  await chmod(wrapper, 0o755);
  const script = `#!/bin/sh
printf '%s %s\\n' "$PWD" "$*" >> '${log}'
case "$1" in
  ci) mkdir -p node_modules/.bin && cp '${wrapper}' node_modules/.bin/policyship ;;
  install)
    prefix=""; previous=""
    for arg in "$@"; do [ "$previous" = "--prefix" ] && prefix="$arg"; previous="$arg"; done
    mkdir -p "$prefix/bin" && cp '${wrapper}' "$prefix/bin/policyship" ;;
  *) exit 1 ;;
esac
`;
  await writeFile(path.join(dir, "npm"), script);
  await chmod(path.join(dir, "npm"), 0o755);
}

/**
 * Runs the impact job as a GitHub runner would for a same-repository pull request: `${{ }}` expressions from a
 * fixed table (an unknown one fails the test), checkouts as clones of the repository, setup actions as the
 * pinned tools already on PATH, the role's credentials exported after configure-aws-credentials, each `run`
 * through bash -eo pipefail in its working directory, $GITHUB_PATH honoured, and the comment step reading
 * the file it would post. Returns the comment and the exit code of each run step.
 */
async function runImpactJob(sim: Simulation, workflowFile = WORKFLOW) {
  const { workflow } = await readWorkflow(workflowFile);
  const job = workflow.jobs.impact as Job;
  const workspace = await mkdtemp(path.join(os.tmpdir(), "policyship-workspace-"));
  const temp = await mkdtemp(path.join(os.tmpdir(), "policyship-runner-temp-"));
  const bin = path.join(temp, "fake-bin");
  await mkdir(bin);
  const npmLog = path.join(temp, "npm.log");
  await writeFile(npmLog, "");
  await fakeNpm(bin, npmLog);
  const files = Object.fromEntries(
    ["GITHUB_PATH", "GITHUB_ENV", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY"].map((name) => [
      name,
      path.join(temp, name),
    ]),
  );
  for (const file of Object.values(files)) await writeFile(file, "");
  const values: Record<string, string> = {
    "github.event.pull_request.head.repo.full_name == github.repository": "true",
    "github.event.pull_request.base.sha": sim.baseSha,
    "github.event.pull_request.head.sha": sim.headSha,
    "github.workspace": workspace,
    "runner.temp": temp,
    "vars.POLICYSHIP_BUCKET": "",
    "vars.POLICYSHIP_PREFIX": "",
    "vars.AWS_REGION": "us-east-1",
    "vars.POLICYSHIP_DECISIONS": sim.decisions,
    "vars.POLICYSHIP_IMPACT_FAIL_ON || 'deny-to-allow'": "deny-to-allow",
    "vars.POLICYSHIP_LOGS_ROLE_ARN": "arn:aws:iam::123456789012:role/logs",
    "'0.1.0'": "0.1.0",
  };
  const expand = (text: string) =>
    text.replace(/\$\{\{\s*(.*?)\s*\}\}/g, (_match, expression: string) => {
      if (!(expression in values))
        throw new Error(`the simulated runner does not know \${{ ${expression} }}`);
      return values[expression] as string;
    });
  const expandAll = (record: Record<string, string> = {}) =>
    Object.fromEntries(Object.entries(record).map(([key, value]) => [key, expand(String(value))]));
  expect(expand(`\${{ ${job.if} }}`)).toBe("true");
  let pathDirs = [bin, path.join(repoRoot, ".tools/bin"), "/usr/local/bin", "/usr/bin", "/bin"];
  let roleEnv: Record<string, string> = {};
  let failed = false;
  let comment: string | undefined;
  const exits: Record<string, number> = {};
  const outputs: Record<string, string> = {};
  const jobEnv = expandAll(job.env);
  for (const step of job.steps) {
    const condition = step.if;
    if (condition === "always() && hashFiles('impact.md') != ''") {
      const exists = await access(path.join(workspace, "impact.md")).then(
        () => true,
        () => false,
      );
      if (!exists) continue;
    } else if (condition !== undefined) {
      throw new Error(`the simulated runner does not know if: ${condition}`);
    } else if (failed) {
      continue;
    }
    const inputs = expandAll(step.with);
    const action = step.uses?.split("@")[0];
    if (action === "actions/checkout") {
      const target = path.join(workspace, inputs.path ?? "");
      const cloned = await run("git", ["clone", "--quiet", sim.remote.dir, target], {
        cwd: workspace,
        env: { ...process.env, ...gitEnv },
      });
      expect(cloned.code, cloned.output).toBe(0);
      // Without a ref, a pull_request checkout is the PR's merge commit: its head, here.
      const checkedOut = await run("git", ["checkout", "--quiet", inputs.ref ?? sim.headSha], {
        cwd: target,
        env: { ...process.env, ...gitEnv },
      });
      expect(checkedOut.code, checkedOut.output).toBe(0);
    } else if (action === "open-policy-agent/setup-opa") {
      expect(inputs.version).toBe(pinnedOpaVersion());
    } else if (action === "actions/setup-node") {
      // node is on PATH from .tools/bin.
    } else if (action === "aws-actions/configure-aws-credentials") {
      roleEnv = { ...ROLE_ENV, AWS_REGION: inputs["aws-region"] ?? "" };
    } else if (action === "marocchino/sticky-pull-request-comment") {
      comment = await readFile(path.join(workspace, inputs.path ?? ""), "utf8");
    } else if (action) {
      throw new Error(`the simulated runner does not know the action ${action}`);
    } else if (step.run) {
      const script = path.join(temp, `step-${Object.keys(exits).length}.sh`);
      await writeFile(script, expand(step.run));
      const result = await run("bash", ["--noprofile", "--norc", "-eo", "pipefail", script], {
        cwd: path.join(workspace, step["working-directory"] ?? ""),
        env: {
          PATH: pathDirs.join(path.delimiter),
          HOME: temp,
          CI: "true",
          GITHUB_ACTIONS: "true",
          GITHUB_WORKSPACE: workspace,
          RUNNER_TEMP: temp,
          ...files,
          ...gitEnv,
          ...jobEnv,
          ...roleEnv,
          ...expandAll(step.env),
        },
      });
      exits[step.name ?? step.run] = result.code;
      outputs[step.name ?? step.run] = result.output;
      if (result.code !== 0) failed = true;
      const added = (await readFile(files.GITHUB_PATH as string, "utf8")).split("\n").filter(Boolean);
      pathDirs = [...added.reverse(), ...pathDirs];
      await writeFile(files.GITHUB_PATH as string, "");
    }
  }
  const ran = async (name: string) =>
    access(path.join(sim.markers, name)).then(
      () => true,
      () => false,
    );
  return {
    comment,
    exits,
    outputs,
    npm: await readFile(npmLog, "utf8"),
    summary: await readFile(files.GITHUB_STEP_SUMMARY as string, "utf8"),
    workspace,
    ranPullRequestOpa: await ran("pr-opa"),
    ranPullRequestPolicyship: await ran("pr-policyship"),
  };
}

describe("policy-impact.yml, run against a pull request that tries to take over the job", () => {
  let sim: Simulation;
  beforeAll(async () => {
    sim = await hostilePullRequest();
  }, 60_000);

  it("runs the base branch's policyship with the base's settings; the PR gives only its policies", async () => {
    const job = await runImpactJob(sim);
    // The PR's policies were judged: POST flips deny → allow, and the gate (deny-to-allow) trips.
    expect(job.exits["policyship impact"], JSON.stringify(job.outputs)).toBe(1);
    expect(job.comment, JSON.stringify(job.outputs)).toBeDefined();
    const comment = job.comment as string;
    expect(comment).toContain("| deny → allow | 1 |");
    expect(comment).toContain("Examples (outcome and status only)");
    expect(comment).toContain('`{"outcome":"deny","status":403}` → `{"outcome":"allow","status":200}`');
    // Nothing of the PR's but its policies ran: not its opa, its policyship, its lockfile or its settings.
    expect(job.ranPullRequestOpa).toBe(false);
    expect(job.ranPullRequestPolicyship).toBe(false);
    expect(job.npm.trim().split("\n")).toEqual([
      expect.stringMatching(
        new RegExp(
          `^${path.join(job.workspace, "base")} install --global --ignore-scripts .* policyship@0\\.1\\.0$`,
        ),
      ),
    ]);
    for (const text of [comment, job.summary]) {
      for (const secret of Object.values(ROLE_ENV)) expect(text).not.toContain(secret);
      expect(text).not.toContain("x-env");
    }
  }, 240_000);

  it("refuses a link in the PR's policies, which opa would follow out of the checkout", async () => {
    const linked = await hostilePullRequest();
    linked.remote.git("checkout", "--quiet", "pr");
    await symlink("/etc/hostname", path.join(linked.remote.dir, "policies/stolen.json"));
    linked.remote.git("add", "--all");
    linked.remote.git("commit", "--quiet", "-m", "PR: read a file of the runner's");
    linked.headSha = linked.remote.git("rev-parse", "HEAD");
    linked.remote.git("checkout", "--quiet", "main");
    const job = await runImpactJob(linked);
    expect(job.exits["policyship impact"], JSON.stringify(job.outputs)).toBe(2);
    expect(job.outputs["policyship impact"]).toMatch(
      /^policyship: --candidate-dir \S+: policies\/stolen.json is a link or special file, which opa would follow — /m,
    );
    expect(job.comment).toBeUndefined();
  }, 240_000);
});
