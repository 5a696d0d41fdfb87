import { stringify } from "safe-stable-stringify";
import type { Replayed } from "../impact/evaluate.ts";
import { classify, type Outcome } from "../impact/report.ts";
import { type BundleChanges, describeChanges } from "./difference.ts";
import type { SourceLine } from "./source.ts";
import type { AppliedRule } from "./trace.ts";

/** A rule that produced the value, with its policy source lines. */
export interface ExplainedRule extends AppliedRule {
  source: SourceLine[];
}

/** A result as shown: the value (masked), whether it was defined, the outcome under Kong's contract. */
export interface ShownResult {
  defined: boolean;
  result?: unknown;
  outcome: Outcome;
  error?: string;
}

/** One revision's evaluation of the decision's input. */
export interface RevisionExplanation {
  revision: string;
  replayed: ShownResult;
  rules: ExplainedRule[];
}

export interface CandidateExplanation extends RevisionExplanation {
  /** The candidate decides otherwise than the decision's revision does (the value, not only the outcome). */
  changed: boolean;
  /** Why, in a sentence: which rules decided before and after, and what differs between the bundles. */
  why: string;
  /** The rules and data that differ between the two revisions, as `diff` reports them. */
  changes: BundleChanges;
}

export interface ExplainResult {
  /** null for --input, which names no logged decision. */
  decision_id: string | null;
  revision: string;
  path: string;
  /** What the log recorded; null for --input, which has no recording. */
  recorded: { defined: boolean; result?: unknown; outcome: Outcome } | null;
  replayed: ShownResult;
  /** Recorded ≠ replayed: non-determinism (time, randomness), or data outside the bundle. */
  drift: boolean;
  rules: ExplainedRule[];
  /** The input, masked as impact masks it. */
  input: unknown;
  candidate?: CandidateExplanation;
}

/** Recorded and replayed differ exactly when impact counts the decision as drift. */
export function differs(a: Replayed, b: Replayed): boolean {
  return (
    stringify(a.result) !== stringify(b.result) || a.defined !== b.defined || Boolean(a.error ?? b.error)
  );
}

export function shownResult(replayed: Replayed, redact: <T>(value: T) => T): ShownResult {
  const { outcome } = classify(replayed);
  const shown: ShownResult = { defined: replayed.defined, outcome };
  if (replayed.defined) shown.result = redact(replayed.result);
  if (replayed.error) shown.error = redact(replayed.error);
  return shown;
}

function ruleList(rules: readonly AppliedRule[]): string {
  if (rules.length === 0) return "no rule (the value is undefined)";
  return rules
    .map((rule) => `${rule.default ? "default " : ""}${rule.name} at ${rule.file}:${rule.row}`)
    .join(", ");
}

/** The sentence that says why the candidate decides as it does, next to the revision's decision. */
export function whyTheyDiffer(
  base: RevisionExplanation,
  candidate: RevisionExplanation,
  changed: boolean,
  changes: BundleChanges,
): string {
  const before = `${base.replayed.outcome} by ${ruleList(base.rules)}`;
  const after = `${candidate.replayed.outcome} by ${ruleList(candidate.rules)}`;
  if (!changed) return `the candidate decides the same: ${after}`;
  const sourceOf = (rules: readonly ExplainedRule[]) =>
    rules.map((rule) => `${rule.file}\n${rule.source.map((line) => line.text).join("\n")}`).join("\n\n");
  const sameRules = base.rules.length > 0 && sourceOf(base.rules) === sourceOf(candidate.rules);
  const reason = candidate.replayed.error
    ? `the candidate fails (${candidate.replayed.error}); `
    : sameRules
      ? "the same rules, unchanged, give another value; "
      : "";
  return `${base.revision} decides ${before}; the candidate ${candidate.revision} decides ${after}: ${reason}${describeChanges(changes)}`;
}
