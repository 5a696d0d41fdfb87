import { appendFile, mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import type { Command } from "commander";
import { createContext, type Io, print } from "../cli-kit.ts";
import type { Context } from "../context.ts";
import { UserError } from "../errors.ts";
import { packageRoot } from "../package-root.ts";

export interface InitResult {
  created: string[];
  skipped: string[];
  /** .gitignore, when init added the out dir or node_modules/ to it. */
  updated: string[];
}

const SETTINGS = (
  policies: string,
) => `# policyship settings. Flags and POLICYSHIP_* environment variables override these.
# Every key: https://github.com/policyship/policyship#configuration
policies: ${policies}
out: dist
# bucket: my-policy-bucket     # where bundles are published (or POLICYSHIP_BUCKET)
# region: eu-west-1            # the bucket's region (or AWS_REGION)
# endpoint: http://127.0.0.1:9000  # MinIO or another S3-compatible store (or POLICYSHIP_ENDPOINT)
# registry: ghcr.io/acme/policies  # or an OCI registry instead of a bucket: each revision is the tag <sha>
#                                  # (then drop prefix: the repository path does its job)
prefix: authz
bundleName: authz
coverageThreshold: 90
# impact and explain erase this header (the example policy's API key) from every input they show
mask: ["/input/request/http/headers/x-api-key"]
`;

/** With --registry: the registry instead of a bucket, and where OPA finds its pull token. */
const registrySettings = (
  registry: string,
  policies: string,
) => `# policyship settings. Flags and POLICYSHIP_* environment variables override these.
# Every key: https://github.com/policyship/policyship#configuration
policies: ${policies}
out: dist
registry: ${registry}          # each revision is the tag <sha> of this repository
# registryTokenPath: /run/secrets/registry-token   # where OPA reads its pull token (never in the config)
bundleName: authz
coverageThreshold: 90
# impact and explain erase this header (the example policy's API key) from every input they show
mask: ["/input/request/http/headers/x-api-key"]
`;

async function exists(file: string): Promise<boolean> {
  return (await stat(file).catch(() => undefined)) !== undefined;
}

/**
 * The policies directory goes into YAML and workflow text as it is, so it must be a plain relative path
 * inside the repository: nothing that quotes, escapes or climbs out.
 */
function checkPoliciesDir(policies: string): string {
  const normalized = path.posix.normalize(policies.replaceAll("\\", "/")).replace(/\/+$/, "");
  if (
    !/^[A-Za-z0-9._/-]+$/.test(normalized) ||
    path.posix.isAbsolute(normalized) ||
    normalized === "." ||
    normalized.split("/").includes("..")
  ) {
    throw new UserError(
      `--policies ${JSON.stringify(policies)} must be a directory inside the repository`,
      "pass a relative path of letters, digits, '.', '_', '-' and '/', such as opa or policy/rego",
    );
  }
  return normalized;
}

/** The workflows name the policies directory twice: the release's default and the impact's paths filter. */
function followPolicies(policies: string): (text: string) => string {
  return (text) =>
    text
      .replaceAll("default: policies\n", `default: ${policies}\n`)
      .replaceAll("inputs.policies || 'policies'", `inputs.policies || '${policies}'`)
      .replaceAll('"policies/**"', `"${policies}/**"`);
}

/**
 * The out dir and node_modules/ in .gitignore, creating the file where there is none (a new user's first
 * `git add -A` must commit neither); false when both are listed already.
 */
async function ignoreEntries(cwd: string, out: string): Promise<boolean> {
  const file = path.join(cwd, ".gitignore");
  const text = await readFile(file, "utf8").catch(() => undefined);
  const lines = (text ?? "").split(/\r?\n/).map((line) => line.trim());
  const listed = (dir: string) =>
    [dir, `/${dir}`, `**/${dir}`].some((form) => lines.includes(form) || lines.includes(`${form}/`));
  const missing = [
    { dir: out.replace(/\/+$/, ""), comment: "# policyship's build output" },
    { dir: "node_modules", comment: "# installed packages" },
  ].filter(({ dir }) => !listed(dir));
  if (missing.length === 0) return false;
  const separator = text === undefined || text === "" || text.endsWith("\n") ? "" : "\n";
  const added = missing.map(({ dir, comment }) => `${comment}\n${dir}/\n`).join("");
  await appendFile(file, `${separator}${added}`);
  return true;
}

/**
 * Scaffolds policyship.yaml, the example policies, the release, rollback and impact workflows and the
 * .gitignore entries; never overwrites what is there, and every path follows --policies.
 */
export async function init(context: Context): Promise<InitResult> {
  const { cwd } = context;
  if (!(await stat(cwd).catch(() => undefined))?.isDirectory()) {
    throw new UserError(`${cwd} is not a directory`, "run init inside your repository");
  }
  const templates = path.join(packageRoot().dir, "dist", "templates");
  if (!(await exists(templates))) {
    throw new UserError(`the init templates are missing from ${templates}`, "reinstall policyship");
  }
  const { registry } = context.settings;
  const policies = checkPoliciesDir(context.settings.policies);
  if (registry) {
    const { parseRegistry } = await import("../store/oci/reference.ts");
    parseRegistry(registry, context.settings.insecureRegistry);
  }
  const { describeHead } = await import("../git.ts");
  if (!(await describeHead(cwd))) {
    context.log.warn(
      `${cwd} is not a git repository: policyship builds each bundle at a commit — run git init, then commit what init writes`,
    );
  }
  const release = registry ? "policy-release-oci.yml" : "policy-release.yml";
  const follow = followPolicies(policies);
  const plan: { target: string; from?: string; text?: string; transform?: (text: string) => string }[] = [
    {
      target: "policyship.yaml",
      text: registry ? registrySettings(registry.replace(/^oci:\/\//, ""), policies) : SETTINGS(policies),
    },
    {
      target: ".github/workflows/policy-release.yml",
      from: path.join(templates, release),
      transform: follow,
    },
    {
      target: ".github/workflows/policy-rollback.yml",
      from: path.join(templates, registry ? "policy-rollback-oci.yml" : "policy-rollback.yml"),
    },
    {
      target: ".github/workflows/policy-impact.yml",
      from: path.join(templates, "policy-impact.yml"),
      transform: follow,
    },
  ];
  const result: InitResult = { created: [], skipped: [], updated: [] };
  // The examples (an authz package and data.json with demo API keys) only ever go into a new directory:
  // in an existing one they would sit beside, and be shipped with, the team's own policies.
  const policiesDir = path.join(cwd, policies);
  const existing = await readdir(policiesDir).catch(() => undefined);
  if (existing && existing.length > 0) {
    result.skipped.push(`${policies}/ (has files; the examples go only into a new directory)`);
  } else {
    for (const file of ["authz.rego", "authz_test.rego", "data.json"]) {
      plan.push({ target: path.join(policies, file), from: path.join(templates, "policies", file) });
    }
  }
  for (const item of plan) {
    const target = path.join(cwd, item.target);
    if (await exists(target)) {
      result.skipped.push(`${item.target} (already exists)`);
      continue;
    }
    await mkdir(path.dirname(target), { recursive: true });
    let text = item.from ? await readFile(item.from, "utf8") : (item.text ?? "");
    if (item.transform) text = item.transform(text);
    await writeFile(target, text, { flag: "wx" });
    result.created.push(item.target);
  }
  if (await ignoreEntries(cwd, context.settings.out)) result.updated.push(".gitignore");
  return result;
}

export function renderInit(result: InitResult, registry?: string): string {
  const lines = [
    ...result.created.map((file) => `created ${file}`),
    ...result.skipped.map((file) => `skipped ${file}`),
    ...result.updated.map((file) => `updated ${file} (added the out dir and node_modules/, where missing)`),
  ];
  if (result.created.length > 0) {
    lines.push(
      "",
      "next: commit these files, then run `npx policyship release --dry-run`",
      registry
        ? "      the workflow pushes with GITHUB_TOKEN on ghcr.io (add a login step for other registries)"
        : "      set bucket and region (and endpoint, for MinIO or another S3-compatible store) in policyship.yaml to publish",
    );
  }
  return lines.join("\n");
}

/** The `init` command: its flags, help and examples, and how its result is printed. @internal: CLI only, kept out of the .d.ts */
export function defineInit(program: Command, io: Io): Command {
  return program
    .command("init")
    .description(
      "scaffold policyship.yaml, example policies, the release, rollback and impact workflows, and dist/ and node_modules/ in .gitignore (never overwrites)",
    )
    .option("--policies <dir>", "where the example policies go (default: policies)")
    .option(
      "--registry <registry/repository>",
      "publish to this OCI registry instead of S3 (e.g. ghcr.io/acme/policies)",
    )
    .addHelpText(
      "after",
      "\nExamples:\n  $ policyship init\n  $ policyship init --cwd path/to/repo --policies opa\n  $ policyship init --registry ghcr.io/acme/policies",
    )
    .action(async (_options, command: Command) => {
      const context = await createContext(io, command);
      const result = await init(context);
      print(io, context, result, renderInit(result, context.settings.registry));
    });
}
