import { UserError } from "../errors.ts";
import { printable } from "../printable.ts";
import type { RecordedDecision } from "./decisions.ts";
import type { Flips, Outcome } from "./report.ts";

/** The flip names the enforcer writes: impact's, and "none" for a sample the candidate agreed with. */
export const SHADOW_FLIPS = [
  "allow_to_deny",
  "deny_to_allow",
  "to_error",
  "from_error",
  "other",
  "none",
] as const;
export type ShadowFlip = (typeof SHADOW_FLIPS)[number];

/** One live comparison, as the enforcer logged it in `custom.policyship.shadow`, checked field by field. */
export interface ShadowSample {
  /** The candidate's revision; null when it answered with none (an outage, an error before it decided). */
  candidateRevision: string | null;
  engine: "remote" | "embedded";
  enforced: { outcome: Outcome; status: number; error?: string };
  candidate: {
    outcome: Outcome;
    status: number | null;
    headers: Record<string, string>;
    /** Kong's message: any JSON value (a denial's text, or an object the policy built). */
    message?: unknown;
    error?: string;
  };
  differs: boolean;
  flip: ShadowFlip;
}

/**
 * The longest candidate revision read. A revision is the candidate's own answer, opaque text (OPA's manifest
 * allows any string; it is printed escaped); the enforcer cuts a longer one to 256 characters and marks it.
 */
const MAX_REVISION = 1_024;
const MAX_HEADERS = 1_000;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A member of an object parsed from the log: only its own, never one reached through a prototype. */
function member(object: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(object, key) ? object[key] : undefined;
}

/**
 * The shadow comparison a recorded decision carries, undefined when it carries none (not sampled); a line
 * whose comparison is malformed, or contradicts itself (a flip its outcomes cannot make, differs without a
 * flip), is refused: a report that trusted it could hide a deny → allow.
 */
export function shadowSampleOf(record: RecordedDecision, source: string): ShadowSample | undefined {
  const custom = record.custom;
  if (custom === undefined) return undefined;
  const refuse = (what: string): never => {
    const id =
      record.decisionId === undefined ? "a decision" : `decision ${printable(record.decisionId, 100)}`;
    throw new UserError(
      `${id} in ${printable(source)} is refused: ${what}`,
      "pass decision logs as the enforcer writes them with a shadow candidate (custom.policyship.shadow)",
    );
  };
  if (!isObject(custom)) return refuse("its custom member is not an object");
  const policyship = member(custom, "policyship");
  if (policyship === undefined) return undefined;
  if (!isObject(policyship)) return refuse("custom.policyship is not an object");
  const shadow = member(policyship, "shadow");
  if (shadow === undefined) return undefined;
  if (!isObject(shadow)) return refuse("custom.policyship.shadow is not an object");

  const outcome = member(policyship, "outcome");
  if (outcome !== "allow" && outcome !== "deny" && outcome !== "error")
    return refuse("custom.policyship.outcome is not allow, deny or error");
  const enforcedStatus = member(policyship, "status");
  if (!isStatus(enforcedStatus)) return refuse("custom.policyship.status is not an HTTP status");
  const enforcedError = member(policyship, "error");
  if (enforcedError !== undefined && typeof enforcedError !== "string")
    return refuse("custom.policyship.error is not a string");
  const contradiction = enforcedContradiction(record, policyship, outcome, enforcedStatus, enforcedError);
  if (contradiction !== undefined) return refuse(contradiction);

  const revision = member(shadow, "revision");
  if (revision !== null && !(typeof revision === "string" && revision.length <= MAX_REVISION))
    return refuse(`shadow.revision is neither null nor a string of at most ${MAX_REVISION} characters`);
  const engine = member(shadow, "engine");
  if (engine !== "remote" && engine !== "embedded") return refuse("shadow.engine is not remote or embedded");
  const allow = member(shadow, "allow");
  if (allow !== null && typeof allow !== "boolean")
    return refuse("shadow.allow is neither a boolean nor null");
  const status = member(shadow, "status");
  if (status !== null && !isStatus(status)) return refuse("shadow.status is neither null nor an HTTP status");
  const headers = member(shadow, "headers");
  if (!isObject(headers)) return refuse("shadow.headers is not an object");
  const entries = Object.entries(headers);
  if (entries.length > MAX_HEADERS) return refuse(`shadow.headers holds more than ${MAX_HEADERS} headers`);
  const shownHeaders: Record<string, string> = Object.create(null);
  for (const [name, value] of entries) {
    if (typeof value !== "string") return refuse(`shadow.headers.${printable(name, 100)} is not a string`);
    shownHeaders[name] = value;
  }
  const message = member(shadow, "message");
  const error = member(shadow, "error");
  if (error !== undefined && typeof error !== "string") return refuse("shadow.error is not a string");
  const differs = member(shadow, "differs");
  if (typeof differs !== "boolean") return refuse("shadow.differs is not a boolean");
  const flip = member(shadow, "flip");
  if (typeof flip !== "string" || !(SHADOW_FLIPS as readonly string[]).includes(flip))
    return refuse(`shadow.flip is not one of ${SHADOW_FLIPS.join(", ")}`);

  // An answer has an outcome and a status; no answer has neither, and says why.
  if ((allow === null) !== (status === null))
    return refuse("shadow.allow and shadow.status disagree on whether the candidate answered");
  if (allow === null && error === undefined)
    return refuse("shadow.allow is null, yet shadow.error does not say why");
  const candidateOutcome: Outcome = allow === null ? "error" : allow ? "allow" : "deny";
  const implied = impliedFlip(outcome, candidateOutcome);
  if (implied === undefined ? flip !== "other" && flip !== "none" : flip !== implied)
    return refuse(
      `shadow.flip is ${flip}, yet the enforced decision was ${outcome} and the candidate's ${candidateOutcome}`,
    );
  if (differs !== (flip !== "none"))
    return refuse(`shadow.differs is ${differs}, yet shadow.flip is ${flip}`);

  return {
    candidateRevision: revision as string | null,
    engine,
    enforced: {
      outcome,
      status: enforcedStatus,
      ...(enforcedError !== undefined ? { error: enforcedError } : {}),
    },
    candidate: {
      outcome: candidateOutcome,
      status: status as number | null,
      headers: shownHeaders,
      ...(message !== undefined ? { message } : {}),
      ...(error !== undefined ? { error } : {}),
    },
    differs,
    flip: flip as ShadowFlip,
  };
}

/**
 * Where the line states the enforced decision twice (outcome and would, outcome and error, outcome and
 * status, outcome and the policy's own result), what the two say differently; undefined when they agree.
 * A line whose enforced side says allow while its result says deny would hide a real deny → allow.
 */
function enforcedContradiction(
  record: RecordedDecision,
  policyship: Record<string, unknown>,
  outcome: Outcome,
  status: number,
  error: unknown,
): string | undefined {
  const would = member(policyship, "would");
  if (would !== undefined && would !== outcome)
    return `custom.policyship.would is ${printable(String(would), 20)}, yet custom.policyship.outcome is ${outcome}`;
  if (error !== undefined && outcome !== "error")
    return `custom.policyship.error is set, yet custom.policyship.outcome is ${outcome}`;
  if (outcome === "allow" && status !== 200)
    return `custom.policyship.outcome is allow, yet custom.policyship.status is ${status}`;
  if (outcome === "error" || !record.hasResult) return undefined;
  const { result } = record;
  const said =
    typeof result === "boolean"
      ? result
      : isObject(result) && typeof member(result, "allow") === "boolean"
        ? (member(result, "allow") as boolean)
        : undefined;
  if (said !== undefined && said !== (outcome === "allow"))
    return `the logged result ${said ? "allows" : "denies"}, yet custom.policyship.outcome is ${outcome}`;
  if (outcome !== "deny") return undefined;
  const resultStatus = result === false ? 403 : isObject(result) ? member(result, "status") : undefined;
  if (isStatus(resultStatus) && resultStatus !== status)
    return `the logged result's status is ${resultStatus}, yet custom.policyship.status is ${status}`;
  return undefined;
}

function isStatus(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= 100 && (value as number) <= 599;
}

/** The flip two different outcomes make, as impact names it; undefined when they are the same outcome. */
function impliedFlip(enforced: Outcome, candidate: Outcome): keyof Flips | undefined {
  if (enforced === candidate) return undefined;
  if (candidate === "error") return "to_error";
  if (enforced === "error") return "from_error";
  return enforced === "allow" ? "allow_to_deny" : "deny_to_allow";
}
