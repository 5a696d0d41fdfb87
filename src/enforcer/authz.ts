import type { IncomingMessage } from "node:http";
import type { Authz } from "./decision.ts";

const decisions = new WeakMap<IncomingMessage, Authz>();

export function rememberDecision(req: IncomingMessage, authz: Authz) {
  decisions.set(req, authz);
}

/** node:http: what the policy decided for this request (undefined before the enforcer ran on it). */
export function decisionOf(req: IncomingMessage): Authz | undefined {
  return decisions.get(req);
}
