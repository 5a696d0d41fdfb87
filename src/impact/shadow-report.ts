import { UserError } from "../errors.ts";
import { printable } from "../printable.ts";
import type { RecordedDecision, SkippedEvents } from "./decisions.ts";
import { InputMask, MASKED, redact } from "./mask.ts";
import { classify, type Flips, type ShownDecision } from "./report.ts";
import type { ShadowSample } from "./shadow-line.ts";

export interface ShadowExample {
  decision_id?: string;
  /** The revision that enforced the decision; absent when the line names none. */
  base_revision?: string;
  method: string;
  path: string;
  flip: keyof Flips;
  input: unknown;
  base: ShownDecision;
  candidate: ShownDecision;
}

/** The comparisons made against one candidate revision, in impact's terms (base = the enforced decision). */
export interface ShadowCandidate {
  /** null: samples whose candidate answered with no revision (it was down, or failed before deciding). */
  revision: string | null;
  engines: ("remote" | "embedded")[];
  compared: number;
  unchanged: number;
  changed: number;
  flips: Flips;
  groups: { method: string; path: string; changed: number }[];
  examples: ShadowExample[];
  /** The revisions that enforced the compared decisions (a deploy during the day makes two). */
  base_revisions: string[];
}

export interface ShadowImpactResult {
  mode: "shadow";
  /** Totals over every candidate: what --fail-on looks at. */
  compared: number;
  unchanged: number;
  changed: number;
  flips: Flips;
  /** Decisions logged without a shadow comparison (not sampled, or dropped by a full shadow queue). */
  not_sampled: number;
  /** One entry per candidate revision seen, most compared first. */
  candidates: ShadowCandidate[];
  files: number;
  skipped: SkippedEvents;
}

/** More candidates than a rollout has: a log of that many is not one day of one shadow. */
export const MAX_CANDIDATES = 100;
const MAX_GROUPS = 10_000;
const MAX_BASE_REVISIONS = 100;

function noFlips(): Flips {
  return { allow_to_deny: 0, deny_to_allow: 0, to_error: 0, from_error: 0, other: 0 };
}

function requestOf(input: unknown): { method?: string; path?: string } {
  const http = (input as { request?: { http?: { method?: unknown; path?: unknown } } })?.request?.http;
  return {
    method: typeof http?.method === "string" ? http.method : undefined,
    path: typeof http?.path === "string" ? http.path : undefined,
  };
}

interface Tally {
  result: ShadowCandidate;
  groups: Map<string, number>;
  engines: Set<"remote" | "embedded">;
  bases: Set<string>;
}

/**
 * Live comparisons summarised per candidate revision. Everything shown of a request comes from its input
 * masked as impact masks it (credential headers, --mask pointers, and their values wherever they reappear);
 * headers, message and error text only with --show-results.
 */
export class ShadowReport {
  private readonly tallies = new Map<string | null, Tally>();
  private readonly mask: InputMask;
  private notSampled = 0;

  constructor(
    private readonly maxExamples: number,
    mask: readonly string[] = [],
    private readonly showResults = false,
  ) {
    this.mask = new InputMask(mask);
  }

  addNotSampled() {
    this.notSampled++;
  }

  add(record: RecordedDecision, baseRevision: string | undefined, sample: ShadowSample) {
    const tally = this.tallyOf(sample.candidateRevision);
    const result = tally.result;
    result.compared++;
    tally.engines.add(sample.engine);
    if (baseRevision !== undefined && tally.bases.size < MAX_BASE_REVISIONS) tally.bases.add(baseRevision);
    if (sample.flip === "none") {
      result.unchanged++;
      return;
    }
    result.changed++;
    result.flips[sample.flip]++;
    const masked = this.mask.apply(record.input);
    const before = requestOf(record.input);
    const after = requestOf(masked.input);
    const show = (was?: string, is?: string) => is ?? (was !== undefined ? MASKED : "?");
    const method = show(before.method, after.method);
    const path = show(before.path, after.path);
    const group = JSON.stringify([method, path]);
    if (tally.groups.has(group) || tally.groups.size < MAX_GROUPS)
      tally.groups.set(group, (tally.groups.get(group) ?? 0) + 1);
    if (result.examples.length >= this.maxExamples) return;
    result.examples.push({
      ...(record.decisionId !== undefined ? { decision_id: record.decisionId } : {}),
      ...(baseRevision !== undefined ? { base_revision: baseRevision } : {}),
      method,
      path,
      flip: sample.flip,
      input: masked.input,
      base: this.shownEnforced(record, sample, masked.secrets),
      candidate: this.shownCandidate(sample, masked.secrets),
    });
  }

  private tallyOf(revision: string | null): Tally {
    let tally = this.tallies.get(revision);
    if (tally) return tally;
    if (this.tallies.size >= MAX_CANDIDATES) {
      throw new UserError(
        `the decision logs name more than ${MAX_CANDIDATES} shadow candidate revisions`,
        "pass the logs of one rollout (a day, one candidate or two) to impact --shadow",
      );
    }
    tally = {
      result: {
        revision,
        engines: [],
        compared: 0,
        unchanged: 0,
        changed: 0,
        flips: noFlips(),
        groups: [],
        examples: [],
        base_revisions: [],
      },
      groups: new Map(),
      engines: new Set(),
      bases: new Set(),
    };
    this.tallies.set(revision, tally);
    return tally;
  }

  /** The enforced decision: outcome and status as logged; its result (masked) only with --show-results. */
  private shownEnforced(record: RecordedDecision, sample: ShadowSample, secrets: string[]): ShownDecision {
    const { outcome, status, error } = sample.enforced;
    if (!this.showResults) return { outcome, status };
    if (outcome === "error") return { outcome, status, ...(error ? { error: redact(error, secrets) } : {}) };
    const shown: ShownDecision = { outcome, status };
    const { decision } = classify({ defined: record.hasResult, result: record.result });
    if (decision && Object.keys(decision.headers).length > 0)
      shown.headers = redact({ ...decision.headers }, secrets);
    if (decision?.message !== undefined) shown.message = redact(decision.message, secrets);
    return shown;
  }

  private shownCandidate(sample: ShadowSample, secrets: string[]): ShownDecision {
    const { outcome, status, headers, message, error } = sample.candidate;
    const shown: ShownDecision = status === null ? { outcome } : { outcome, status };
    if (!this.showResults) return shown;
    if (Object.keys(headers).length > 0) shown.headers = redact({ ...headers }, secrets);
    if (message !== undefined) shown.message = redact(message, secrets);
    if (error !== undefined) shown.error = redact(error, secrets);
    return shown;
  }

  finish(files: number, skipped: SkippedEvents): ShadowImpactResult {
    const candidates = [...this.tallies.values()].map((tally) => {
      tally.result.engines = [...tally.engines].sort();
      tally.result.base_revisions = [...tally.bases].sort();
      tally.result.groups = [...tally.groups]
        .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
        .slice(0, 10)
        .map(([group, changed]) => {
          const [method, path] = JSON.parse(group) as [string, string];
          return { method, path, changed };
        });
      return tally.result;
    });
    candidates.sort(
      (a, b) => b.compared - a.compared || String(a.revision).localeCompare(String(b.revision)),
    );
    const flips = noFlips();
    for (const candidate of candidates)
      for (const name of Object.keys(flips) as (keyof Flips)[]) flips[name] += candidate.flips[name];
    const sum = (field: "compared" | "unchanged" | "changed") =>
      candidates.reduce((total, candidate) => total + candidate[field], 0);
    return {
      mode: "shadow",
      compared: sum("compared"),
      unchanged: sum("unchanged"),
      changed: sum("changed"),
      flips,
      not_sampled: this.notSampled,
      candidates,
      files,
      skipped,
    };
  }
}

/** A candidate revision as a line shows it. */
export function shownRevision(revision: string | null): string {
  return revision === null ? "(no revision)" : printable(revision);
}
