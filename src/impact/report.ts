import { stringify } from "safe-stable-stringify";
import { interpretResult } from "../enforcer/decision.ts";
import { DEFAULT_MASK, erasePointers } from "../enforcer/decision-log.ts";
import { noneSkipped, type RecordedDecision, type SkippedEvents } from "./decisions.ts";
import type { Replayed } from "./evaluate.ts";

export type Outcome = "allow" | "deny" | "error";

/** Kong's contract: true or {allow: true} allows, false or {allow: false} denies, anything else is an error. */
export function classify(replayed: Replayed): { outcome: Outcome; detail: string } {
  if (replayed.error) return { outcome: "error", detail: replayed.error };
  try {
    const decision = interpretResult(replayed.result, replayed.defined);
    return {
      outcome: decision.allow ? "allow" : "deny",
      detail: stringify([decision.status, decision.headers, decision.message]) ?? "",
    };
  } catch (error) {
    return { outcome: "error", detail: (error as Error).message };
  }
}

export interface Flips {
  allow_to_deny: number;
  deny_to_allow: number;
  to_error: number;
  from_error: number;
  /** Status, headers or message changed within allow or within deny. */
  other: number;
}

export interface Example {
  decision_id?: string;
  base_revision: string;
  method?: string;
  path?: string;
  flip: keyof Flips;
  input: unknown;
  base: unknown;
  candidate: unknown;
}

export interface ImpactResult {
  replayed: number;
  unchanged: number;
  changed: number;
  flips: Flips;
  /** Recorded result ≠ the base replay: non-determinism, or data outside the bundle. */
  drift: number;
  /** The request groups (method and path) with the most changed decisions. */
  groups: { method: string; path: string; changed: number }[];
  examples: Example[];
  /** Files (or objects) read, and the events in them not replayed, by reason. */
  files: number;
  skipped: SkippedEvents;
}

const MAX_GROUPS = 10_000;

function requestOf(input: unknown): { method?: string; path?: string } {
  const http = (input as { request?: { http?: { method?: unknown; path?: unknown } } })?.request?.http;
  return {
    method: typeof http?.method === "string" ? http.method : undefined,
    path: typeof http?.path === "string" ? http.path : undefined,
  };
}

export class ImpactReport {
  private readonly result: ImpactResult = {
    replayed: 0,
    unchanged: 0,
    changed: 0,
    flips: { allow_to_deny: 0, deny_to_allow: 0, to_error: 0, from_error: 0, other: 0 },
    drift: 0,
    groups: [],
    examples: [],
    files: 0,
    skipped: noneSkipped(),
  };
  private readonly groups = new Map<string, number>();

  private readonly mask: string[];

  /** `mask`: JSON Pointers under /input erased from examples, beside the credential headers. */
  constructor(
    private readonly maxExamples: number,
    mask: readonly string[] = [],
  ) {
    this.mask = [...DEFAULT_MASK, ...mask];
  }

  get replayed(): number {
    return this.result.replayed;
  }

  add(record: RecordedDecision, baseRevision: string, base: Replayed, candidate: Replayed) {
    const result = this.result;
    result.replayed++;
    const recorded: Replayed = { defined: record.hasResult, result: record.result };
    if (
      stringify(recorded.result) !== stringify(base.result) ||
      recorded.defined !== base.defined ||
      base.error
    ) {
      result.drift++;
    }
    const before = classify(base);
    const after = classify(candidate);
    if (before.outcome === after.outcome && before.detail === after.detail) {
      result.unchanged++;
      return;
    }
    result.changed++;
    const flip: keyof Flips =
      after.outcome === "error"
        ? "to_error"
        : before.outcome === "error"
          ? "from_error"
          : before.outcome === "allow" && after.outcome === "deny"
            ? "allow_to_deny"
            : before.outcome === "deny" && after.outcome === "allow"
              ? "deny_to_allow"
              : "other";
    result.flips[flip]++;
    const { method = "?", path = "?" } = requestOf(record.input);
    const group = `${method} ${path}`;
    if (this.groups.has(group) || this.groups.size < MAX_GROUPS)
      this.groups.set(group, (this.groups.get(group) ?? 0) + 1);
    if (result.examples.length < this.maxExamples) {
      result.examples.push({
        decision_id: record.decisionId,
        base_revision: baseRevision,
        method,
        path,
        flip,
        input: erasePointers({ input: record.input }, this.mask).value.input,
        base: base.error ? { error: base.error } : base.defined ? base.result : null,
        candidate: candidate.error ? { error: candidate.error } : candidate.defined ? candidate.result : null,
      });
    }
  }

  finish(): ImpactResult {
    this.result.groups = [...this.groups]
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
      .slice(0, 10)
      .map(([group, changed]) => {
        const space = group.indexOf(" ");
        return { method: group.slice(0, space), path: group.slice(space + 1), changed };
      });
    return this.result;
  }
}
