import { parseNullPrototypeJson } from "./null-prototype-json.ts";

/** A recorded decision, from any of the shapes OPA and the enforcer write. */
export interface RecordedDecision {
  decisionId?: string;
  /** The rule path, e.g. "authz/allow". */
  path?: string;
  input: unknown;
  /** undefined when the decision was undefined. */
  result: unknown;
  hasResult: boolean;
  /** Bundle name → revision that answered (no prototype: a bundle may be called anything). */
  revisions: Record<string, string>;
  /** The event's `custom` member as written (the enforcer's `policyship` fields, a shadow comparison). */
  custom?: unknown;
  /** The line the event was read from, when it is the whole line: `input` can be read from it again. */
  text?: string;
}

/**
 * Lets go of a record's parsed input while the record waits (impact holds tens of thousands for their
 * evaluations: the line's text is a third of the parsed objects' size and nothing for the collector to walk).
 * inputOf() reads it again, as it was read the first time.
 */
export function releaseInput(record: RecordedDecision): void {
  if (record.text !== undefined) record.input = undefined;
}

/** A record's input, read again from its line if releaseInput() let it go. */
export function inputOf(record: RecordedDecision): unknown {
  if (record.input !== undefined || record.text === undefined) return record.input;
  return toRecord(parseNullPrototypeJson(record.text))?.input;
}

/** Why an event was not replayed, each counted in the report. */
export const SKIP_REASONS = [
  "unparseable",
  "not_a_decision",
  "no_input",
  "no_path",
  "no_revision",
  "duplicate",
] as const;
export type SkipReason = (typeof SKIP_REASONS)[number];
export type SkippedEvents = Record<SkipReason, number>;

export function noneSkipped(): SkippedEvents {
  return { unparseable: 0, not_a_decision: 0, no_input: 0, no_path: 0, no_revision: 0, duplicate: 0 };
}

/** Turns one event (the enforcer's line, OPA's console line, or an element of an uploaded batch) into a record. */
export function toRecord(event: unknown, text?: string): RecordedDecision | undefined {
  if (typeof event !== "object" || event === null || Array.isArray(event)) return undefined;
  const fields = event as Record<string, unknown>;
  // OPA's console logger adds level/msg/time around the event's own fields.
  if (Object.hasOwn(fields, "msg") && fields.msg !== "Decision Log") return undefined;
  if (!Object.hasOwn(fields, "input") && !Object.hasOwn(fields, "decision_id")) return undefined;
  const revisions: Record<string, string> = Object.create(null);
  const bundles = fields.bundles;
  if (typeof bundles === "object" && bundles !== null && !Array.isArray(bundles)) {
    for (const [name, info] of Object.entries(bundles)) {
      const revision =
        typeof info === "object" && info !== null ? (info as { revision?: unknown }).revision : undefined;
      if (typeof revision === "string" && revision !== "") revisions[name] = revision;
    }
  }
  return {
    decisionId: typeof fields.decision_id === "string" ? fields.decision_id : undefined,
    path: typeof fields.path === "string" ? fields.path : undefined,
    input: fields.input,
    result: fields.result,
    hasResult: Object.hasOwn(fields, "result"),
    revisions,
    custom: fields.custom,
    text,
  };
}
