import { markdownBlock, markdownCode, markdownText } from "../github.ts";
import { printable } from "../printable.ts";
import type { ExplainedRule, ExplainResult, ShownResult } from "./result.ts";

function resultText(shown: { defined: boolean; result?: unknown; error?: string; outcome: string }): string {
  if (shown.error) return `${shown.outcome}: ${shown.error}`;
  return `${shown.outcome}: ${shown.defined ? JSON.stringify(shown.result) : "undefined"}`;
}

function ruleHeading(rule: ExplainedRule): string {
  return `${rule.default ? "default " : ""}${rule.name}  ${rule.file}:${rule.row}`;
}

function rulesText(rules: readonly ExplainedRule[], indent: string): string[] {
  if (rules.length === 0) return [`${indent}no rule produced a value (undefined)`];
  const lines: string[] = [];
  for (const rule of rules) {
    lines.push(`${indent}${printable(ruleHeading(rule))}`);
    for (const line of rule.source)
      lines.push(
        `${indent}  ${String(line.row).padStart(4)} | ${printable(line.text.replaceAll("\t", "    "))}`,
      );
  }
  return lines;
}

/** The explanation for a terminal: every value from outside made printable (no escape sequence gets through). */
export function renderExplain(result: ExplainResult): string {
  const lines = [
    `decision ${printable(result.decision_id ?? "(--input)")} at revision ${result.revision}, path ${result.path}`,
  ];
  if (result.recorded) lines.push(`  recorded  ${printable(resultText(result.recorded), 2_000)}`);
  lines.push(`  replayed  ${printable(resultText(result.replayed), 2_000)}`);
  if (result.drift) {
    lines.push(
      "  drift: the replay differs from the recording (non-determinism, or data outside the bundle)",
    );
  }
  lines.push("", "decided by:", ...rulesText(result.rules, "  "));
  if (result.candidate) {
    const candidate = result.candidate;
    lines.push(
      "",
      `candidate ${candidate.revision}: ${printable(resultText(candidate.replayed), 2_000)}`,
      ...rulesText(candidate.rules, "  "),
      "",
      `${candidate.changed ? "changed" : "unchanged"}: ${printable(candidate.why, 2_000)}`,
    );
  }
  lines.push("", `input (masked): ${printable(JSON.stringify(result.input), 4_000)}`);
  return lines.join("\n");
}

function resultMarkdown(shown: ShownResult | NonNullable<ExplainResult["recorded"]>): string {
  const value =
    "error" in shown && shown.error
      ? shown.error
      : shown.defined
        ? JSON.stringify(shown.result)
        : "undefined";
  return `**${markdownText(shown.outcome)}** ${markdownCode(value)}`;
}

function rulesMarkdown(rules: readonly ExplainedRule[]): string[] {
  if (rules.length === 0) return ["No rule produced a value (undefined)."];
  const sections: string[] = [];
  for (const rule of rules) {
    sections.push(`- ${markdownCode(ruleHeading(rule).replace(/\s+/, " "))}`);
    if (rule.source.length > 0) {
      const text = rule.source.map((line) => `${String(line.row).padStart(4)} | ${line.text}`).join("\n");
      sections.push("", markdownBlock(text), "");
    }
  }
  return sections;
}

/**
 * A block to paste into an incident ticket: values in code spans and blocks, free text through markdownText,
 * so nothing recorded (a path, a header, a policy message) becomes a link, a mention or markup.
 */
export function renderExplainMarkdown(result: ExplainResult): string {
  const sections = [
    "## policyship explain",
    "",
    `Decision ${markdownCode(result.decision_id ?? "(input)")}, revision ${markdownCode(result.revision)}, path ${markdownCode(result.path)}.`,
    "",
  ];
  if (result.recorded) sections.push(`- Recorded: ${resultMarkdown(result.recorded)}`);
  sections.push(`- Replayed: ${resultMarkdown(result.replayed)}`);
  if (result.drift) {
    sections.push(
      "- **Drift**: the replay differs from the recording (non-determinism, or data outside the bundle)",
    );
  }
  sections.push("", "### Decided by", "", ...rulesMarkdown(result.rules));
  if (result.candidate) {
    const candidate = result.candidate;
    sections.push(
      "",
      `### Candidate ${markdownCode(candidate.revision)}`,
      "",
      `- Replayed: ${resultMarkdown(candidate.replayed)}`,
      `- ${candidate.changed ? "**Changed**" : "Unchanged"}: ${markdownText(candidate.why)}`,
      "",
      ...rulesMarkdown(candidate.rules),
    );
  }
  sections.push(
    "",
    "<details><summary>Input (credential values masked)</summary>",
    "",
    markdownBlock(JSON.stringify(result.input, null, 2), "json"),
    "",
    "</details>",
  );
  return `${sections.join("\n")}\n`;
}
