import type { IncomingMessage } from "node:http";
import type { Authz } from "./decision.ts";

/** A symbol-keyed property on the request: cheaper than a WeakMap on every request, and invisible to JSON. */
const DECISION = Symbol.for("policyship.decision");

type WithDecision = IncomingMessage & { [DECISION]?: Authz };

export function rememberDecision(req: IncomingMessage, authz: Authz) {
  (req as WithDecision)[DECISION] = authz;
}

/** node:http: what the policy decided for this request (undefined before the enforcer ran on it). */
export function decisionOf(req: IncomingMessage): Authz | undefined {
  return (req as WithDecision)[DECISION];
}
