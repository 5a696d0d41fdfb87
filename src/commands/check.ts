import path from "node:path";
import type { Command } from "commander";
import { createContext, type Io, print } from "../cli-kit.ts";
import { addCheckOptions, collect } from "../cli-options.ts";
import type { Context } from "../context.ts";
import { FailureError } from "../errors.ts";
import { opaCheck, opaFormatList } from "../opa/commands.ts";
import { locateOpaFor, type OpaBinary } from "../opa/locate.ts";
import { parseJson } from "../safe-json.ts";
import { assertPoliciesDir } from "./build.ts";

export interface CheckIssue {
  file?: string;
  row?: number;
  message: string;
}

export interface CheckResult {
  policies: string;
  errors: CheckIssue[];
  unformatted: string[];
  /** What the settings turned off: "fmt" (opa fmt) and "strict" (opa check --strict). */
  skipped: ("fmt" | "strict")[];
}

interface CheckJson {
  errors?: { message: string; code?: string; location?: { file?: string; row?: number } }[];
}

function parseCheckErrors(text: string, policies: string): CheckIssue[] {
  try {
    const parsed = parseJson(text) as CheckJson;
    return (parsed.errors ?? []).map((error) => ({
      file: error.location?.file ? path.join(policies, error.location.file) : undefined,
      row: error.location?.row,
      message: error.code ? `${error.code}: ${error.message}` : error.message,
    }));
  } catch {
    return [{ message: text.trim().split("\n")[0] ?? "opa check failed" }];
  }
}

/** `opa check --strict` and `opa fmt --list --fail`, in parallel. */
export async function check(
  context: Context,
  prepared?: { opa?: Promise<OpaBinary>; policiesDir?: Promise<string> },
): Promise<CheckResult> {
  const { settings } = context;
  const [dir, opa] = await Promise.all([
    prepared?.policiesDir ?? assertPoliciesDir(context),
    prepared?.opa ?? locateOpaFor(context),
  ]);
  const skipped = [
    ...(settings.fmt ? [] : ["fmt" as const]),
    ...(settings.strict ? [] : ["strict" as const]),
  ];
  context.log.info(`checking ${settings.policies} (${checksRun(skipped)})`);
  const options = { v0Compatible: settings.v0Compatible, ignore: settings.ignore, strict: settings.strict };
  const [checked, formatted] = await Promise.all([
    opaCheck(opa, dir, options),
    settings.fmt ? opaFormatList(opa, dir, options) : { files: [] },
  ]);
  const errors =
    checked.exitCode === 0 ? [] : parseCheckErrors(checked.stdout || checked.stderr, settings.policies);
  const unformatted = formatted.files.map((file) => path.join(settings.policies, file));
  // fmt also fails on files it cannot parse; those are already among the check errors.
  return { policies: settings.policies, errors, unformatted, skipped };
}

/** What ran, in words: "opa check --strict, opa fmt", or with what was skipped named. */
export function checksRun(skipped: readonly string[]): string {
  return [
    skipped.includes("strict") ? "opa check (not strict)" : "opa check --strict",
    skipped.includes("fmt") ? "opa fmt skipped" : "opa fmt",
  ].join(", ");
}

export function assertCheckPassed(result: CheckResult) {
  if (result.errors.length > 0) {
    const first = result.errors
      .slice(0, 3)
      .map((e) => (e.file ? `${e.file}:${e.row ?? "?"}: ${e.message}` : e.message))
      .join("; ");
    throw new FailureError(
      `opa check found ${result.errors.length} error(s): ${first}`,
      "fix the policy",
      result,
    );
  }
  if (result.unformatted.length > 0) {
    throw new FailureError(
      `not formatted: ${result.unformatted.join(", ")}`,
      `run opa fmt --write ${result.policies}`,
      result,
    );
  }
}

export function renderCheck(result: CheckResult): string {
  const lines = [
    ...result.errors.map((e) => `ERROR ${e.file ?? "?"}:${e.row ?? "?"}: ${e.message}`),
    ...result.unformatted.map((file) => `UNFORMATTED ${file}`),
  ];
  lines.push(
    result.errors.length === 0 && result.unformatted.length === 0
      ? `${result.policies}: ${checksRun(result.skipped)}: pass`
      : `${result.errors.length} errors, ${result.unformatted.length} unformatted files`,
  );
  return lines.join("\n");
}

/** The `check` command: its flags, help and examples, and how its result is printed. @internal: CLI only, kept out of the .d.ts */
export function defineCheck(program: Command, io: Io): Command {
  return addCheckOptions(program.command("check"))
    .description("opa check --strict and opa fmt --list --fail on the policies")
    .option("--policies <dir>", "policy directory (default: policies)")
    .option("--v0-compatible", "policies written before OPA 1.0")
    .option("--ignore <pattern>", "file or directory names to leave out (repeatable)", collect)
    .addHelpText(
      "after",
      "\nExamples:\n  $ policyship check\n  $ policyship check --policies opa/ --json\n  $ policyship check --no-fmt --no-strict   # an existing repository, before it reformats",
    )
    .action(async (_options, command: Command) => {
      const context = await createContext(io, command);
      const result = await check(context);
      print(io, context, result, renderCheck(result));
      assertCheckPassed(result);
    });
}
