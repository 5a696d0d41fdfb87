import { copyFile, mkdir, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import type { Command } from "commander";
import { createContext, type Io, print } from "../cli-kit.ts";
import type { Context } from "../context.ts";
import { UserError } from "../errors.ts";
import { packageRoot } from "../package-root.ts";

export interface InitResult {
  created: string[];
  skipped: string[];
}

const SETTINGS = `# policyship settings. Flags and POLICYSHIP_* environment variables override these.
# Every key: https://github.com/policyship/policyship#configuration
policies: policies
out: dist
# bucket: my-policy-bucket     # where bundles are published (or POLICYSHIP_BUCKET)
# region: eu-west-1            # the bucket's region (or AWS_REGION)
# registry: ghcr.io/acme/policies  # or an OCI registry instead of a bucket: each revision is the tag <sha>
#                                  # (then drop prefix: the repository path does its job)
prefix: authz
bundleName: authz
coverageThreshold: 90
`;

/** With --registry: the registry instead of a bucket, and where OPA finds its pull token. */
const registrySettings = (
  registry: string,
) => `# policyship settings. Flags and POLICYSHIP_* environment variables override these.
# Every key: https://github.com/policyship/policyship#configuration
policies: policies
out: dist
registry: ${registry}          # each revision is the tag <sha> of this repository
# registryTokenPath: /run/secrets/registry-token   # where OPA reads its pull token (never in the config)
bundleName: authz
coverageThreshold: 90
`;

async function exists(file: string): Promise<boolean> {
  return (await stat(file).catch(() => undefined)) !== undefined;
}

/** Scaffolds policyship.yaml, policies/ and the release workflow; never overwrites what is there. */
export async function init(context: Context): Promise<InitResult> {
  const { cwd } = context;
  if (!(await stat(cwd).catch(() => undefined))?.isDirectory()) {
    throw new UserError(`${cwd} is not a directory`, "run init inside your repository");
  }
  const templates = path.join(packageRoot().dir, "dist", "templates");
  if (!(await exists(templates))) {
    throw new UserError(`the init templates are missing from ${templates}`, "reinstall policyship");
  }
  const { policies, registry } = context.settings;
  if (registry) {
    const { parseRegistry } = await import("../store/oci/reference.ts");
    parseRegistry(registry, context.settings.insecureRegistry);
  }
  const release = registry ? "policy-release-oci.yml" : "policy-release.yml";
  const plan: { target: string; from?: string; text?: string }[] = [
    {
      target: "policyship.yaml",
      text: registry ? registrySettings(registry.replace(/^oci:\/\//, "")) : SETTINGS,
    },
    { target: path.join(policies, "authz.rego"), from: path.join(templates, "policies/authz.rego") },
    {
      target: path.join(policies, "authz_test.rego"),
      from: path.join(templates, "policies/authz_test.rego"),
    },
    { target: path.join(policies, "data.json"), from: path.join(templates, "policies/data.json") },
    { target: ".github/workflows/policy-release.yml", from: path.join(templates, release) },
    { target: ".github/workflows/policy-impact.yml", from: path.join(templates, "policy-impact.yml") },
  ];
  const result: InitResult = { created: [], skipped: [] };
  for (const item of plan) {
    const target = path.join(cwd, item.target);
    if (await exists(target)) {
      result.skipped.push(item.target);
      continue;
    }
    await mkdir(path.dirname(target), { recursive: true });
    if (item.from) await copyFile(item.from, target);
    else await writeFile(target, item.text ?? "", { flag: "wx" });
    result.created.push(item.target);
  }
  return result;
}

export function renderInit(result: InitResult, registry?: string): string {
  const lines = [
    ...result.created.map((file) => `created ${file}`),
    ...result.skipped.map((file) => `skipped ${file} (already exists)`),
  ];
  if (result.created.length > 0) {
    lines.push(
      "",
      "next: commit these files, then run `npx policyship release --dry-run`",
      registry
        ? "      the workflow pushes with GITHUB_TOKEN on ghcr.io (add a login step for other registries); add dist/ to .gitignore"
        : "      set bucket and region in policyship.yaml to publish; add dist/ to .gitignore",
    );
  }
  return lines.join("\n");
}

/** The `init` command: its flags, help and examples, and how its result is printed. */
export function defineInit(program: Command, io: Io): Command {
  return program
    .command("init")
    .description(
      "scaffold policyship.yaml, policies/, and the release and impact workflows (never overwrites)",
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
