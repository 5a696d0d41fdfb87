import type { IncomingMessage, ServerResponse } from "node:http";
import { type Authorized, authorizeRequestNow } from "../authorize.ts";
import { errorDecision } from "../decision.ts";
import type { Enforcer } from "../enforcer.ts";
import { RAW_RULES, resolveTarget } from "../request-target.ts";
import { sendDecision } from "../respond.ts";

export type Handler<
  Req extends IncomingMessage = IncomingMessage,
  Res extends ServerResponse = ServerResponse,
> = (req: Req, res: Res) => unknown;

/**
 * Wraps a node:http handler: it runs only when the policy allows. The policy's path is req.url's path as
 * sent; an absolute-form target (GET http://host/admin) is rewritten to origin-form on req.url, so the
 * handler routes on exactly what the policy saw. When the body is part of the input, the enforcer reads it
 * and leaves it on `req.body` (a Buffer), since the stream is then consumed.
 */
export function withAuthorization<Req extends IncomingMessage, Res extends ServerResponse>(
  enforcer: Enforcer,
  handler: Handler<Req, Res>,
): (req: Req, res: Res) => Promise<void> {
  if (!enforcer || typeof enforcer.authorize !== "function") {
    throw new TypeError(`withAuthorization expects an enforcer from createEnforcer, got ${typeof enforcer}`);
  }
  if (typeof handler !== "function")
    throw new TypeError(`withAuthorization expects a handler function, got ${typeof handler}`);
  return async (req, res) => {
    const target = resolveTarget(req.method ?? "GET", req.url ?? "/", RAW_RULES);
    if (target.ok && target.absolute)
      req.url = target.query ? `${target.rawPath}?${target.query}` : target.rawPath;
    let outcome: Authorized;
    try {
      // A cache hit is answered without a promise; only a pending decision is awaited (docs/perf/P7.md).
      const pending = authorizeRequestNow(enforcer, req, res, { target });
      outcome = pending instanceof Promise ? await pending : pending;
    } catch {
      // Only the request stream can fail here (a client that aborts mid-body); fail closed.
      if (!res.headersSent) sendDecision(res, errorDecision("reading the request failed", "input"));
      return;
    }
    if (!outcome.proceed) return;
    if (outcome.body) (req as Req & { body?: Buffer }).body = outcome.body;
    // The handler's own errors are the app's, as they would be without this wrapper.
    const handled = handler(req, res);
    if (handled !== undefined) await handled;
  };
}
