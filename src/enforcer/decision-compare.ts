import { stringify } from "safe-stable-stringify";
import type { Decision } from "./decision.ts";

/**
 * How two decisions for the same input compare, as `impact` reports a replay and the shadow a candidate:
 * the outcome, then status, headers and message (or the error text) as one stable detail.
 */

export type Outcome = "allow" | "deny" | "error";

export interface Flips {
  allow_to_deny: number;
  deny_to_allow: number;
  to_error: number;
  from_error: number;
  /** Status, headers or message changed within allow or within deny. */
  other: number;
}

export type Flip = keyof Flips | "none";

export interface Classified {
  outcome: Outcome;
  /** Status, headers and message (serialized with sorted keys), or the error text. */
  detail: string;
}

/** A decision's outcome and detail; an error decision is its error text, whatever status it carries. */
export function classifyDecision(decision: Decision): Classified {
  if (decision.error !== undefined) return { outcome: "error", detail: decision.error };
  return {
    outcome: decision.allow ? "allow" : "deny",
    detail: stringify([decision.status, decision.headers, decision.message]) ?? "",
  };
}

/** Which way `after` moved from `before`; "none" when outcome and detail are the same. */
export function flipOf(before: Classified, after: Classified): Flip {
  if (before.outcome === after.outcome && before.detail === after.detail) return "none";
  if (after.outcome === "error") return "to_error";
  if (before.outcome === "error") return "from_error";
  if (before.outcome === "allow" && after.outcome === "deny") return "allow_to_deny";
  if (before.outcome === "deny" && after.outcome === "allow") return "deny_to_allow";
  return "other";
}
