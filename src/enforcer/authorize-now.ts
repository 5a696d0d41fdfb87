import type { IncomingMessage } from "node:http";
import type { Decision } from "./decision.ts";
import type { InputExtras } from "./input.ts";
import type { Enforcer } from "./types.ts";

/**
 * The enforcer's authorize, answering at once (no promise) when it can: a cache hit, a refused input. The
 * adapters take this path, since every async layer between a request and its handler costs microtask hops
 * and promise allocations on each request (docs/perf/P7.md). Not part of the public Enforcer.
 */
export const AUTHORIZE_NOW = Symbol("policyship.authorizeNow");

export type AuthorizeNow = (req: IncomingMessage, extras?: InputExtras) => Decision | Promise<Decision>;

/** An enforcer from createEnforcer answers through its AUTHORIZE_NOW; any other through authorize(). */
export function authorizeNow(
  enforcer: Enforcer,
  req: IncomingMessage,
  extras?: InputExtras,
): Decision | Promise<Decision> {
  const now = (enforcer as Enforcer & { [AUTHORIZE_NOW]?: AuthorizeNow })[AUTHORIZE_NOW];
  return now === undefined ? enforcer.authorize(req, extras) : now(req, extras);
}
