import { stringify } from "safe-stable-stringify";
import { type Decision, interpretResult } from "../enforcer/decision.ts";
import { classifyDecision, type Flips, flipOf, type Outcome } from "../enforcer/decision-compare.ts";
import { inputOf, noneSkipped, type RecordedDecision, type SkippedEvents } from "./decisions.ts";
import type { Replayed } from "./evaluate.ts";
import { InputMask, MASKED, redact } from "./mask.ts";

export type { Flips, Outcome } from "../enforcer/decision-compare.ts";

type Classified = ReturnType<typeof classify>;

/** Kong's contract: true or {allow: true} allows, false or {allow: false} denies, anything else is an error. */
export function classify(replayed: Replayed): { outcome: Outcome; detail: string; decision?: Decision } {
  if (replayed.error) return { outcome: "error", detail: replayed.error };
  try {
    const decision = interpretResult(replayed.result, replayed.defined);
    return { ...classifyDecision(decision), decision };
  } catch (error) {
    return { outcome: "error", detail: (error as Error).message };
  }
}

/**
 * A replayed decision as the report shows it. Headers, message and error text are policy output, which may
 * copy the request (a debug message, a forwarded header): they are shown only when asked for (--show-results),
 * and then with every masked value of the input masked in them too.
 */
export interface ShownDecision {
  outcome: Outcome;
  status?: number;
  headers?: Record<string, string>;
  message?: unknown;
  error?: string;
}

function shownDecision(
  classified: ReturnType<typeof classify>,
  showResults: boolean,
  secrets: readonly string[],
): ShownDecision {
  const { outcome, decision } = classified;
  if (!decision) return showResults ? { outcome, error: redact(classified.detail, secrets) } : { outcome };
  const shown: ShownDecision = { outcome, status: decision.status };
  if (!showResults) return shown;
  if (Object.keys(decision.headers).length > 0) shown.headers = redact({ ...decision.headers }, secrets);
  if (decision.message !== undefined) shown.message = redact(decision.message, secrets);
  return shown;
}

export interface Example {
  decision_id?: string;
  base_revision: string;
  method?: string;
  path?: string;
  flip: keyof Flips;
  input: unknown;
  base: ShownDecision;
  candidate: ShownDecision;
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
  /** Distinct inputs, once projected onto what the policies can read, evaluated against base and candidate. */
  evaluated: number;
  /** With --sample: the share of the recorded decisions replayed, and how many decisions were read. */
  sample?: { rate: number; read: number };
}

const MAX_GROUPS = 10_000;

function requestOf(input: unknown): { method?: string; path?: string } {
  const http = (input as { request?: { http?: { method?: unknown; path?: unknown } } })?.request?.http;
  return {
    method: typeof http?.method === "string" ? http.method : undefined,
    path: typeof http?.path === "string" ? http.path : undefined,
  };
}

/** The method and path of a recorded request as shown: from the masked input, [masked] where a mask took them. */
function shownRequest(original: unknown, masked: unknown): { method: string; path: string } {
  const before = requestOf(original);
  const after = requestOf(masked);
  const show = (was: string | undefined, is: string | undefined) => is ?? (was !== undefined ? MASKED : "?");
  return { method: show(before.method, after.method), path: show(before.path, after.path) };
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
    evaluated: 0,
  };
  private readonly groups = new Map<string, number>();
  /** Each replayed result classified once: records that share an evaluation share its object. */
  private readonly classified = new WeakMap<Replayed, { classified: Classified; text: string | undefined }>();

  private readonly mask: InputMask;

  /**
   * `mask`: JSON Pointers under /input erased from everything shown, beside the credential headers.
   * `showResults`: show the headers, message and error text of replayed decisions, not only outcome and status.
   */
  constructor(
    private readonly maxExamples: number,
    mask: readonly string[] = [],
    private readonly showResults = false,
  ) {
    this.mask = new InputMask(mask);
  }

  get replayed(): number {
    return this.result.replayed;
  }

  add(record: RecordedDecision, baseRevision: string, base: Replayed, candidate: Replayed) {
    const result = this.result;
    result.replayed++;
    const recorded: Replayed = { defined: record.hasResult, result: record.result };
    const { classified: before, text } = this.classify(base);
    if (stringify(recorded.result) !== text || recorded.defined !== base.defined || base.error) {
      result.drift++;
    }
    const after = this.classify(candidate).classified;
    const flip = flipOf(before, after);
    if (flip === "none") {
      result.unchanged++;
      return;
    }
    result.changed++;
    result.flips[flip]++;
    // Everything shown from here on derives from the recorded input, so it is masked first.
    const input = inputOf(record);
    const masked = this.mask.apply(input);
    const { method, path } = shownRequest(input, masked.input);
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
        input: masked.input,
        base: shownDecision(before, this.showResults, masked.secrets),
        candidate: shownDecision(after, this.showResults, masked.secrets),
      });
    }
  }

  private classify(replayed: Replayed) {
    let known = this.classified.get(replayed);
    if (!known) {
      known = { classified: classify(replayed), text: stringify(replayed.result) };
      this.classified.set(replayed, known);
    }
    return known;
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
