import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Command } from "commander";
import type { FAIL_ON } from "../choices.ts";
import { createContext, type Io, print } from "../cli-kit.ts";
import { addStoreOptions, collect, toNumber } from "../cli-options.ts";
import type { Context } from "../context.ts";
import { FailureError, UserError } from "../errors.ts";
import { appendStepSummary, inGitHubActions, markdownCode, markdownTable } from "../github.ts";
import type { RecordedDecision, SkipReason } from "../impact/decisions.ts";
import { heapKeeper } from "../impact/heap.ts";
import type { ImpactResult } from "../impact/report.ts";
import type { OfflineCapabilities } from "../opa/capabilities.ts";
import { locateOpaFor } from "../opa/locate.ts";
import { printable } from "../printable.ts";
import { writeOutput } from "./config.ts";
import { resolveRevisionArgument } from "./verify.ts";

/** Batches evaluated at once (each an opa process for the base and one for the candidate): every core busy. */
const REPLAY_PARALLEL = Math.max(1, Math.ceil(os.availableParallelism() / 2));

/**
 * The revision a recorded decision was made by: its bundle's (the one named --bundle-name, or the only one),
 * refused unless it is a full commit SHA; undefined when it names none (an outage, a 400, a failOpen).
 */
export function recordedRevisionOf(
  context: Context,
  record: RecordedDecision,
  assertRecordedRevision: (revision: string, decisionId: string | undefined) => string,
): string | undefined {
  // record.revisions has no prototype: a bundle called "constructor" is a plain key. Read without copying,
  // once per recorded decision.
  const { revisions } = record;
  const name = context.settings.bundleName;
  let revision = name !== undefined && Object.hasOwn(revisions, name) ? revisions[name] : undefined;
  if (revision === undefined) {
    let bundles = 0;
    for (const bundle in revisions) {
      if (++bundles > 1) break;
      revision = revisions[bundle];
    }
    if (bundles !== 1) revision = undefined;
  }
  return revision === undefined ? undefined : assertRecordedRevision(revision, record.decisionId);
}

/**
 * Replays recorded decisions against the revision that made each of them (the base) and a candidate, with
 * the real opa, and reports which decisions the candidate changes, and how, under Kong's contract.
 */
export async function impact(context: Context): Promise<ImpactResult> {
  const { settings, cwd, log } = context;
  if (!settings.decisions) {
    throw new UserError("no recorded decisions given", "pass --decisions <file|dir|s3://bucket/prefix>");
  }
  const [
    { readDecisionBatches, logsBucketOf },
    { noneSkipped },
    { Replayer },
    { sampled },
    { ImpactReport },
    { BundleResolver, assertRecordedRevision },
    { offlineCapabilities },
    opa,
  ] = await Promise.all([
    import("../impact/read-decisions.ts"),
    import("../impact/decisions.ts"),
    import("../impact/replayer.ts"),
    import("../impact/sample.ts"),
    import("../impact/report.ts"),
    import("../impact/bundles.ts"),
    import("../opa/capabilities.ts"),
    locateOpaFor(context),
  ]);
  const resolver = new BundleResolver(context, opa);
  const scratch = await mkdtemp(path.join(os.tmpdir(), "policyship-candidate-"));
  let capabilities: OfflineCapabilities | undefined;
  try {
    // Base and candidate alike are evaluated unable to reach the network: the inputs are production requests.
    const offline = await offlineCapabilities(opa);
    capabilities = offline;
    if (settings.candidate && settings.candidateDir) {
      throw new UserError("--candidate and --candidate-dir both name the candidate", "pass one of them");
    }
    // Named on the command line: a branch, a tag or a short SHA is resolved to the commit it names.
    const base = settings.base ? await resolveRevisionArgument(context, settings.base) : undefined;
    const candidate = settings.candidate
      ? await resolver.bundleOf(await resolveRevisionArgument(context, settings.candidate))
      : await buildCandidate(context, scratch);
    const report = new ImpactReport(settings.examples, settings.mask, settings.showResults);
    const progress = progressLine(context);
    const replayer = new Replayer(opa, (revision) => resolver.bundleOf(revision), candidate, report, {
      capabilities: offline.file,
      parallel: REPLAY_PARALLEL,
    });
    const source = settings.decisions;
    log.info(`replaying decisions from ${source}`);
    const stats = { files: 0, skipped: noneSkipped() };
    let withRevision = 0;
    let read = 0;
    const keepHeap = heapKeeper();
    for await (const records of readDecisionBatches(source, {
      cwd,
      stats,
      // Replayed as input = null it could differ from what OPA decided with no input.
      skipNoInput: true,
      s3: logsBucketOf(context),
    })) {
      for (const record of records) {
        read++;
        if (settings.sample !== undefined && !sampled(settings.sample, record.decisionId, read)) continue;
        // With --base the recorded revisions are not used, so not read.
        const revision = base ?? recordedRevisionOf(context, record, assertRecordedRevision);
        if (!base && revision !== undefined) withRevision++;
        const rulePath = (settings.decisionPath ?? record.path ?? "")
          .replace(/^\/+|\/+$/g, "")
          .replace(/^data\//, "");
        if (!rulePath) {
          stats.skipped.no_path++;
          continue;
        }
        if (revision === undefined) {
          stats.skipped.no_revision++;
          continue;
        }
        // Most records need no wait: only a full batch or window hands control back.
        const waiting = replayer.add(record, revision, rulePath);
        if (waiting) await waiting;
      }
      progress?.(report.replayed);
      keepHeap(read);
    }
    await replayer.finish();
    progress?.(-1);
    if (!base && withRevision === 0 && stats.skipped.no_revision > 0) {
      throw new UserError(
        `none of the ${stats.skipped.no_revision} recorded decisions names a bundle revision`,
        "pass --base <revision>, or --bundle-name to pick the bundle",
      );
    }
    const result = report.finish();
    Object.assign(result.skipped, stats.skipped);
    result.files = stats.files;
    result.evaluated = replayer.evaluated;
    if (settings.sample !== undefined) result.sample = { rate: settings.sample, read };
    await reportOutputs(context, result);
    return result;
  } finally {
    await Promise.all([
      rm(scratch, { recursive: true, force: true }),
      resolver.dispose(),
      capabilities?.dispose(),
    ]);
  }
}

/**
 * The working tree's bundle, built as `build` builds it (uncommitted changes allowed: it is a candidate); with
 * --candidate-dir, the policies of that checkout only, with this checkout's settings and no git.
 */
async function buildCandidate(context: Context, out: string): Promise<string> {
  const { build } = await import("./build.ts");
  const settings = {
    ...context.settings,
    out,
    allowDirty: true,
    target: "rego" as const,
    signingKey: undefined,
  };
  const quiet = { ...context, log: { ...context.log, info: context.log.debug } };
  const dir = context.settings.candidateDir;
  if (!dir) return path.resolve(context.cwd, (await build({ ...quiet, settings })).bundle);
  const { candidatePolicies, CANDIDATE_REVISION } = await import("../impact/candidate.ts");
  const policies = await candidatePolicies(context, dir);
  const built = await build(
    { ...quiet, settings: { ...settings, policies } },
    { revision: Promise.resolve({ revision: CANDIDATE_REVISION, dirty: false }) },
  );
  return path.resolve(context.cwd, built.bundle);
}

function progressLine(context: Context) {
  if (!process.stderr.isTTY || context.json) return undefined;
  let last = 0;
  return (replayed: number) => {
    if (replayed < 0) return void process.stderr.write("\n");
    if (Date.now() - last < 250) return;
    last = Date.now();
    process.stderr.write(`\rreplayed ${replayed} decisions`);
  };
}

async function reportOutputs(context: Context, result: ImpactResult) {
  const markdown = renderImpactMarkdown(result, context.settings.showResults);
  if (context.settings.markdown)
    await writeOutput(
      path.resolve(context.cwd, context.settings.markdown),
      markdown,
      context.settings.markdown,
    );
  if (inGitHubActions(context.env)) await appendStepSummary(context.env, markdown);
}

/** Every reason an event is not replayed, in the order shown. */
const SKIP_LABELS: Record<SkipReason, string> = {
  unparseable: "unparseable",
  not_a_decision: "not a decision",
  no_input: "no input",
  no_path: "no path",
  no_revision: "no revision",
  duplicate: "duplicate",
};

/** "12 skipped (10 no revision, 2 duplicate)", or undefined when nothing was skipped. */
export function describeSkipped(result: ImpactResult): string | undefined {
  const counted = (Object.keys(SKIP_LABELS) as SkipReason[]).filter((reason) => result.skipped[reason] > 0);
  if (counted.length === 0) return undefined;
  const total = counted.reduce((sum, reason) => sum + result.skipped[reason], 0);
  return `${total} skipped (${counted.map((reason) => `${result.skipped[reason]} ${SKIP_LABELS[reason]}`).join(", ")})`;
}

/**
 * --fail-on: exit 1 when any decision flipped in one of the named ways, and when none was replayed at all:
 * a gate that looked at nothing has not passed.
 */
export function assertImpactAccepted(context: Context, result: ImpactResult) {
  if (context.settings.failOn.length > 0 && result.replayed === 0) {
    const files = `${result.files} ${result.files === 1 ? "file" : "files"} read`;
    throw new FailureError(
      `nothing was replayed from ${printable(context.settings.decisions)}: ${files}, ${describeSkipped(result) ?? "no events in them"}`,
      "point --decisions at logs that hold decisions (with --base if they name no revision); --fail-on cannot pass on none",
      result,
    );
  }
  const counts: Record<(typeof FAIL_ON)[number], number> = {
    "deny-to-allow": result.flips.deny_to_allow,
    "allow-to-deny": result.flips.allow_to_deny,
    "to-error": result.flips.to_error,
    changed: result.changed,
  };
  const hit = context.settings.failOn.filter((name) => counts[name] > 0);
  if (hit.length > 0) {
    throw new FailureError(
      `the candidate changes recorded decisions: ${hit.map((name) => `${name} ${counts[name]}`).join(", ")}`,
      "review the flipped requests above; this is the gate --fail-on asked for",
      result,
    );
  }
}

/** " (a 10% sample of 1000000 read)" with --sample, else nothing: a sampled report must say so. */
function describeSample(result: ImpactResult): string {
  if (!result.sample) return "";
  return ` (a ${Number((result.sample.rate * 100).toPrecision(4))}% sample of ${result.sample.read} read)`;
}

export function renderImpact(result: ImpactResult): string {
  const { flips } = result;
  const lines = [
    `replayed ${result.replayed} decisions${describeSample(result)}: ${result.unchanged} unchanged, ${result.changed} changed, ${result.drift} drift`,
    `  allow → deny  ${flips.allow_to_deny}`,
    `  deny → allow  ${flips.deny_to_allow}`,
    `  → error       ${flips.to_error}`,
    `  error →       ${flips.from_error}`,
    `  other         ${flips.other}  (status, headers or message)`,
  ];
  const skipped = describeSkipped(result);
  if (skipped) lines.push(`not replayed: ${skipped}`);
  if (result.groups.length > 0) {
    lines.push("", "most changed requests:");
    for (const group of result.groups)
      lines.push(`  ${String(group.changed).padStart(6)}  ${printable(`${group.method} ${group.path}`)}`);
  }
  return lines.join("\n");
}

export function renderImpactMarkdown(result: ImpactResult, showResults = false): string {
  const { flips } = result;
  const sections = [
    "## policyship impact",
    "",
    `Replayed **${result.replayed}** recorded decisions${describeSample(result)}: **${result.changed}** would change, ${result.unchanged} unchanged${result.drift ? `, ${result.drift} drift (recorded ≠ replayed base)` : ""}.${describeSkipped(result) ? ` Not replayed: ${describeSkipped(result)}.` : ""}`,
    "",
    markdownTable(
      ["flip", "decisions"],
      [
        ["allow → deny", String(flips.allow_to_deny)],
        ["deny → allow", String(flips.deny_to_allow)],
        ["→ error", String(flips.to_error)],
        ["error →", String(flips.from_error)],
        ["other (status, headers, message)", String(flips.other)],
      ],
    ),
  ];
  if (result.groups.length > 0) {
    sections.push(
      "",
      markdownTable(
        ["method", "path", "changed"],
        result.groups.map((g) => [g.method, g.path, String(g.changed)]),
      ),
    );
  }
  if (result.examples.length > 0) {
    const shown = showResults ? "policy output shown, credential values masked" : "outcome and status only";
    sections.push("", `<details><summary>Examples (${shown})</summary>`, "");
    for (const example of result.examples) {
      sections.push(
        `- ${markdownCode(`${example.method} ${example.path}`)} ${example.flip.replaceAll("_", " ")}: ${markdownCode(JSON.stringify(example.base))} → ${markdownCode(JSON.stringify(example.candidate))}`,
      );
    }
    sections.push("", "</details>");
  }
  return `${sections.join("\n")}\n`;
}

/** The `impact` command: its flags, help and examples, and how its result is printed. @internal: CLI only, kept out of the .d.ts */
export function defineImpact(program: Command, io: Io): Command {
  return addStoreOptions(program.command("impact"))
    .description("replay recorded decisions against their revision and a candidate; report what flips")
    .option("--decisions <source>", "recorded decisions: a file, a directory or s3://bucket/prefix")
    .option("--base <rev>", "replay every decision against this revision (default: the one each recorded)")
    .option("--candidate <rev>", "the revision to compare (default: the working tree, built as build does)")
    .option(
      "--candidate-dir <checkout>",
      "another checkout (a pull request's head) whose policies directory is the candidate; only its policies are read",
    )
    .option("--path <rule>", "decision path such as authz/allow (default: each decision's own)")
    .option(
      "--fail-on <flips>",
      "exit 1 on deny-to-allow, allow-to-deny, to-error or changed (comma-separated)",
      (value: string, previous: string[] = []) => [
        ...previous,
        ...value
          .split(",")
          .map((part) => part.trim())
          .filter(Boolean),
      ],
    )
    .option("--examples <n>", "changed decisions to show, inputs masked (default: 20)", toNumber)
    .option(
      "--mask <pointer>",
      "also erase this JSON Pointer (under /input) from everything shown (repeatable)",
      collect,
    )
    .option(
      "--show-results",
      "also show the headers, message and error text of each example: policy output, which may contain request data",
    )
    .option(
      "--shadow",
      "replay nothing: summarise the comparisons a shadow candidate made live, from the enforcer's decision logs",
    )
    .option("--markdown <file>", "also write the report as markdown (GitHub Actions: the step summary too)")
    .option(
      "--sample <rate>",
      "replay this share of the recorded decisions (0.1: one in ten), the same ones on every run",
      toNumber,
    )
    .option("--policies <dir>", "policy directory of the candidate (default: policies)")
    .option("--out <dir>", "where build wrote bundles, searched first for recorded revisions (default: dist)")
    .option("--bundle-name <name>", "the bundle whose recorded revision is the base (default: authz)")
    .option("--v0-compatible", "policies written before OPA 1.0")
    .option("--ignore <pattern>", "file or directory names to leave out (repeatable)", collect)
    .addHelpText(
      "after",
      `
Examples:
  $ policyship impact --decisions decisions.ndjson
  $ policyship impact --decisions logs/ --fail-on deny-to-allow --markdown impact.md
  $ policyship impact --decisions s3://acme-logs/authz/ --bucket acme-logs --region eu-west-1 --json
  $ policyship impact --decisions decisions.ndjson --base 3f2a9c1 --candidate main
  $ policyship impact --decisions s3://acme-logs/authz/ --candidate-dir ../pr --markdown impact.md
  $ policyship impact --shadow --decisions logs/ --fail-on deny-to-allow --markdown shadow.md
  $ policyship impact --decisions logs/ --sample 0.1 --fail-on deny-to-allow`,
    )
    .action(async (_options, command: Command) => {
      const context = await createContext(io, command);
      if (context.settings.shadow) {
        const shadow = await import("../impact/shadow.ts");
        const result = await shadow.shadowImpact(context);
        print(io, context, result, shadow.renderShadowImpact(result));
        return shadow.assertShadowAccepted(context, result);
      }
      const result = await impact(context);
      print(io, context, result, renderImpact(result));
      assertImpactAccepted(context, result);
    });
}
