import path from "node:path";
import type { Context } from "../context.ts";
import { FailureError, UserError } from "../errors.ts";
import { appendStepSummary, inGitHubActions, markdownCode, markdownTable } from "../github.ts";
import { printable } from "../printable.ts";
import { noneSkipped } from "./decisions.ts";
import type { Flips } from "./report.ts";
import { shadowSampleOf } from "./shadow-line.ts";
import {
  type ShadowCandidate,
  type ShadowImpactResult,
  ShadowReport,
  shownRevision,
} from "./shadow-report.ts";

/** What names a candidate to replay: nothing is replayed with --shadow, so each is refused rather than ignored. */
const REPLAY_ONLY = [
  ["base", "--base"],
  ["candidate", "--candidate"],
  ["candidateDir", "--candidate-dir"],
  ["decisionPath", "--path"],
] as const;

/**
 * `impact --shadow`: the comparisons a shadow candidate made live, read from the decision logs the enforcer
 * wrote (custom.policyship.shadow), summarised as impact summarises a replay, one section per candidate
 * revision. Nothing is replayed: no opa, no bundle, no git.
 */
export async function shadowImpact(context: Context): Promise<ShadowImpactResult> {
  const { settings, cwd, log } = context;
  if (!settings.decisions) {
    throw new UserError("no recorded decisions given", "pass --decisions <file|dir|s3://bucket/prefix>");
  }
  for (const [key, flag] of REPLAY_ONLY) {
    if (settings[key] !== undefined) {
      throw new UserError(
        `${flag} has no part in impact --shadow: it reads the comparisons the enforcer made, and replays nothing`,
        `drop ${flag}, or drop --shadow to replay the decisions against a candidate`,
      );
    }
  }
  const { readDecisions, logsBucketOf } = await import("./read-decisions.ts");
  const report = new ShadowReport(settings.examples, settings.mask, settings.showResults);
  const source = settings.decisions;
  log.info(`reading shadow comparisons from ${source}`);
  const stats = { files: 0, skipped: noneSkipped() };
  for await (const record of readDecisions(source, {
    cwd,
    stats,
    s3: logsBucketOf(context),
  })) {
    const sample = shadowSampleOf(record, source);
    if (!sample) {
      report.addNotSampled();
      continue;
    }
    const revisions = Object.entries(record.revisions);
    const named = revisions.find(([name]) => name === settings.bundleName);
    const base = named?.[1] ?? (revisions.length === 1 ? revisions[0]?.[1] : undefined);
    report.add(record, base, sample);
  }
  const result = report.finish(stats.files, stats.skipped);
  const markdown = renderShadowMarkdown(result, settings.showResults);
  if (settings.markdown) {
    const { writeOutput } = await import("../commands/config.ts");
    await writeOutput(path.resolve(cwd, settings.markdown), markdown, settings.markdown);
  }
  if (inGitHubActions(context.env)) await appendStepSummary(context.env, markdown);
  return result;
}

const FLIP_ROWS: [keyof Flips, string][] = [
  ["allow_to_deny", "allow → deny"],
  ["deny_to_allow", "deny → allow"],
  ["to_error", "→ error"],
  ["from_error", "error →"],
  ["other", "other (status, headers, message)"],
];

function skippedText(result: ShadowImpactResult): string | undefined {
  const counted = Object.entries(result.skipped).filter(([, count]) => count > 0);
  if (counted.length === 0) return undefined;
  const total = counted.reduce((sum, [, count]) => sum + count, 0);
  return `${total} skipped (${counted.map(([reason, count]) => `${count} ${reason.replaceAll("_", " ")}`).join(", ")})`;
}

function candidateLine(candidate: ShadowCandidate): string {
  const bases = candidate.base_revisions.map((revision) => printable(revision)).join(", ") || "none named";
  return `candidate ${shownRevision(candidate.revision)} (${candidate.engines.join(", ")}; enforced by ${bases})`;
}

export function renderShadowImpact(result: ShadowImpactResult): string {
  const lines = [
    `compared ${result.compared} decisions in shadow: ${result.unchanged} unchanged, ${result.changed} changed; ${result.not_sampled} not sampled`,
  ];
  const skipped = skippedText(result);
  if (skipped) lines.push(`not read: ${skipped}`);
  for (const candidate of result.candidates) {
    lines.push(
      "",
      `${candidateLine(candidate)}: ${candidate.compared} compared, ${candidate.changed} changed`,
      `  allow → deny  ${candidate.flips.allow_to_deny}`,
      `  deny → allow  ${candidate.flips.deny_to_allow}`,
      `  → error       ${candidate.flips.to_error}`,
      `  error →       ${candidate.flips.from_error}`,
      `  other         ${candidate.flips.other}  (status, headers or message)`,
    );
    if (candidate.groups.length > 0) {
      lines.push("  most changed requests:");
      for (const group of candidate.groups)
        lines.push(`    ${String(group.changed).padStart(6)}  ${printable(`${group.method} ${group.path}`)}`);
    }
  }
  return lines.join("\n");
}

export function renderShadowMarkdown(result: ShadowImpactResult, showResults = false): string {
  const skipped = skippedText(result);
  const sections = [
    "## policyship impact --shadow",
    "",
    `Compared live **${result.compared}** decisions in shadow: **${result.changed}** differed, ${result.unchanged} unchanged, ${result.not_sampled} not sampled.${skipped ? ` Not read: ${skipped}.` : ""}`,
  ];
  const shown = showResults ? "policy output shown, credential values masked" : "outcome and status only";
  for (const candidate of result.candidates) {
    sections.push(
      "",
      `### ${markdownCode(shownRevision(candidate.revision))}`,
      "",
      `${candidate.compared} compared, ${candidate.changed} changed; ${candidate.engines.join(", ")} engine; enforced by ${candidate.base_revisions.map((revision) => markdownCode(revision)).join(", ") || "no named revision"}.`,
      "",
      markdownTable(
        ["flip", "decisions"],
        FLIP_ROWS.map(([name, label]) => [label, String(candidate.flips[name])]),
      ),
    );
    if (candidate.groups.length > 0) {
      sections.push(
        "",
        markdownTable(
          ["method", "path", "changed"],
          candidate.groups.map((group) => [group.method, group.path, String(group.changed)]),
        ),
      );
    }
    if (candidate.examples.length > 0) {
      sections.push("", `<details><summary>Examples (${shown})</summary>`, "");
      for (const example of candidate.examples) {
        sections.push(
          `- ${markdownCode(`${example.method} ${example.path}`)} ${example.flip.replaceAll("_", " ")}: ${markdownCode(JSON.stringify(example.base))} → ${markdownCode(JSON.stringify(example.candidate))}`,
        );
      }
      sections.push("", "</details>");
    }
  }
  return `${sections.join("\n")}\n`;
}

/**
 * --fail-on, as impact applies it to a replay: exit 1 when a sampled decision flipped in a named way, and
 * when nothing was compared at all (a gate that saw no sample has not passed).
 */
export function assertShadowAccepted(context: Context, result: ShadowImpactResult) {
  const failOn = context.settings.failOn;
  if (failOn.length === 0) return;
  if (result.compared === 0) {
    throw new FailureError(
      `no shadow comparison in ${printable(context.settings.decisions)}: ${result.files} ${result.files === 1 ? "file" : "files"} read, ${result.not_sampled} decisions not sampled`,
      "point --decisions at logs of an enforcer with a shadow candidate; --fail-on cannot pass on none",
      result,
    );
  }
  const counts: Record<(typeof failOn)[number], number> = {
    "deny-to-allow": result.flips.deny_to_allow,
    "allow-to-deny": result.flips.allow_to_deny,
    "to-error": result.flips.to_error,
    changed: result.changed,
  };
  const hit = failOn.filter((name) => counts[name] > 0);
  if (hit.length > 0) {
    throw new FailureError(
      `the shadow candidate disagreed with live decisions: ${hit.map((name) => `${name} ${counts[name]}`).join(", ")}`,
      "review the flipped requests above before promoting the candidate; this is the gate --fail-on asked for",
      result,
    );
  }
}
