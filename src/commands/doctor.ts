import { readdir, stat } from "node:fs/promises";
import path from "node:path";
import type { Command } from "commander";
import { createContext, type Io, print } from "../cli-kit.ts";
import { addStoreOptions } from "../cli-options.ts";
import type { Context } from "../context.ts";
import { FailureError } from "../errors.ts";
import { gitVersion } from "../git.ts";
import { locateOpaFor } from "../opa/locate.ts";
import { storeKind } from "../settings-access.ts";

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  /** Works, with a caveat the user should know (rendered "!"); ok stays true. */
  warn?: boolean;
}

export interface DoctorResult {
  ok: boolean;
  checks: Check[];
}

const STORE_TIMEOUT_MS = 10_000;

async function attempt(name: string, run: () => Promise<string>): Promise<Check> {
  try {
    return { name, ok: true, detail: await run() };
  } catch (error) {
    const message = (error as Error).message;
    const hint = (error as { hint?: string }).hint;
    return { name, ok: false, detail: hint ? `${message} — ${hint}` : message };
  }
}

/** One check per thing policyship needs; each becomes a ✓ or ✗ line. */
export async function doctor(context: Context): Promise<DoctorResult> {
  const { settings, cwd } = context;
  const checks = await Promise.all([
    attempt("node", async () => {
      const major = Number(process.versions.node.split(".")[0]);
      if (major < 22)
        throw new Error(`node ${process.versions.node} is older than 22; install Node 22 or newer`);
      return `node ${process.versions.node}`;
    }),
    attempt("git", () =>
      gitVersion(cwd).catch(() => Promise.reject(new Error("git not found on PATH; install git"))),
    ),
    attempt("opa", async () => {
      const opa = await locateOpaFor(context);
      return `opa ${opa.version} at ${opa.path}`;
    }),
    attempt("policies", async () => {
      const dir = path.resolve(cwd, settings.policies);
      if (!(await stat(dir).catch(() => undefined))?.isDirectory()) {
        throw new Error(`${settings.policies} is not a directory; run policyship init or pass --policies`);
      }
      const files = (await readdir(dir, { recursive: true })).filter((f) => /\.(rego|json|ya?ml)$/.test(f));
      if (files.length === 0) throw new Error(`${settings.policies} has no .rego or data files`);
      return `${settings.policies}: ${files.length} policy and data files`;
    }),
    attempt("config", async () => {
      // The settings were already read to get here; this names the file (and re-checks an explicit one).
      const { readConfigFile } = await import("../settings.ts");
      const file = context.configFile ?? (await readConfigFile(cwd)).file;
      return file
        ? `${path.relative(cwd, file) || file} is valid`
        : "no policyship.yaml (flags, env and defaults)";
    }),
    attempt("store", async () => {
      if (!storeKind(settings)) {
        throw new Error(
          "no store configured; set bucket or registry in policyship.yaml, or pass --bucket, --store or --to",
        );
      }
      const { openStore } = await import("../store/open.ts");
      const store = await openStore(context);
      const reached = store.probe
        ? store.probe()
        : store.list(settings.prefix).then(() => `${store.location} is reachable`);
      return Promise.race([
        reached,
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error("no answer within 10 s")), STORE_TIMEOUT_MS).unref(),
        ),
      ]);
    }),
  ]);
  const kind = storeKind(settings);
  if (kind === "s3" || kind === "directory") checks.push(await pinning(context));
  return { ok: checks.every((check) => check.ok), checks };
}

/**
 * Whether a rendered config can name exactly the verified bytes. Where it cannot, doctor says so in one line
 * and still passes: the store works, it just cannot pin.
 */
async function pinning(context: Context): Promise<Check> {
  const check = await attempt("pinning", async () => {
    const { openStore } = await import("../store/open.ts");
    const store = await openStore(context);
    const answer = store.pinning?.() ?? Promise.resolve({ pinned: false, detail: "the store cannot say" });
    const result = await Promise.race([
      answer,
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error("no answer within 10 s")), STORE_TIMEOUT_MS).unref(),
      ),
    ]);
    if (!result.pinned) throw new Error(result.detail);
    return result.detail;
  });
  return check.ok ? check : { ...check, ok: true, warn: true };
}

export function renderDoctor(result: DoctorResult): string {
  return result.checks
    .map((check) => `${check.warn ? "!" : check.ok ? "✓" : "✗"} ${check.name.padEnd(8)} ${check.detail}`)
    .join("\n");
}

/** The `doctor` command: its flags, help and examples, and how its result is printed. @internal: CLI only, kept out of the .d.ts */
export function defineDoctor(program: Command, io: Io): Command {
  return addStoreOptions(program.command("doctor"))
    .description("check node, git, opa, the policies, the config file and the store; one ✓/✗ line each")
    .option("--policies <dir>", "policy directory (default: policies)")
    .addHelpText(
      "after",
      "\nExamples:\n  $ policyship doctor\n  $ policyship doctor --bucket acme-policies --region eu-west-1 --json",
    )
    .action(async (_options, command: Command) => {
      const context = await createContext(io, command);
      const result = await doctor(context);
      print(io, context, result, renderDoctor(result));
      const failed = result.checks.filter((check) => !check.ok).map((check) => check.name);
      if (failed.length > 0) {
        throw new FailureError(
          `${failed.length} check${failed.length === 1 ? "" : "s"} failed: ${failed.join(", ")}`,
        );
      }
    });
}
