import type { IncomingMessage, ServerResponse } from "node:http";
import { authorizeNow } from "./authorize-now.ts";
import { rememberDecision } from "./authz.ts";
import { BodyTooLargeError, readBody } from "./body.ts";
import type { Decision } from "./decision.ts";
import type { Enforcer } from "./enforcer.ts";
import { type InputExtras, isJson, parseJsonBody } from "./input.ts";
import { addRequestHeaders, sendDecision, sendTooLarge } from "./respond.ts";

export interface Authorized {
  /** true: the handler may run (headers already added to req). false: the response has been sent (or, when
   * the adapter asked not to respond, the denial is the adapter's to hand on). */
  proceed: boolean;
  decision?: Decision;
  /** The raw body, when the enforcer read it; adapters hand it on so the handler can still use it. */
  body?: Buffer;
}

/** Most allows add no header; this check costs less than the Object.keys of a null-prototype object. */
function hasHeaders(headers: Record<string, string>): boolean {
  for (const name in headers) if (Object.hasOwn(headers, name)) return true;
  return false;
}

/** Whether something already read the request stream; it is never read a second time. */
export function streamConsumed(req: IncomingMessage): boolean {
  return req.readableDidRead || req.readableEnded;
}

/**
 * What the handler gets when the enforcer read the body itself: the JSON value the policy saw as
 * parsed_body (same bytes, same parse, same depth rule), else the bytes. An empty JSON body is `{}`, as
 * express.json (body-parser 1.x and 2.x) gives it.
 */
export function handlerBody(req: IncomingMessage, body: Buffer): unknown {
  if (!isJson(req.headers["content-type"])) return body;
  if (body.length === 0) return {};
  const parsed = parseJsonBody(body.toString("utf8"));
  return parsed.ok ? parsed.value : body;
}

/**
 * The shared adapter step: read the body when the input needs it and nothing read it before (413 over the
 * limit), decide, then either add the allow's headers to the request or send the denial. Framework adapters
 * only map their request objects onto this.
 */
export async function authorizeRequest(
  enforcer: Enforcer,
  req: IncomingMessage,
  res: ServerResponse,
  extras: InputExtras = {},
  /** false: a denial is not answered here; the adapter hands it on (proceed is false, the response untouched). */
  respond = true,
): Promise<Authorized> {
  let body = extras.body;
  const consumed = streamConsumed(req);
  if (enforcer.includeBody && body === undefined && extras.parsedBody === undefined && !consumed) {
    try {
      body = await readBody(req, enforcer.maxBodyBytes);
    } catch (error) {
      if (error instanceof BodyTooLargeError) {
        sendTooLarge(res);
        return { proceed: false };
      }
      throw error;
    }
  }
  return authorizeWithBody(enforcer, req, res, extras, body, consumed, respond);
}

/**
 * authorizeRequest, answering at once when it can: with no body to read and a decision at hand (a cache
 * hit), no promise is made between the request and its handler (docs/perf/P7.md). A throw is the caller's,
 * as authorizeRequest's rejection would be.
 */
export function authorizeRequestNow(
  enforcer: Enforcer,
  req: IncomingMessage,
  res: ServerResponse,
  extras: InputExtras = {},
  respond = true,
): Authorized | Promise<Authorized> {
  if (enforcer.includeBody && extras.body === undefined && extras.parsedBody === undefined) {
    if (!streamConsumed(req)) return authorizeRequest(enforcer, req, res, extras, respond);
  }
  return authorizeWithBody(enforcer, req, res, extras, extras.body, streamConsumed(req), respond);
}

function authorizeWithBody(
  enforcer: Enforcer,
  req: IncomingMessage,
  res: ServerResponse,
  extras: InputExtras,
  body: Buffer | undefined,
  consumed: boolean,
  respond: boolean,
): Authorized | Promise<Authorized> {
  if (enforcer.includeBody) {
    const known = body ?? extras.parsedBody?.value;
    const size = Buffer.isBuffer(known)
      ? known.length
      : typeof known === "string"
        ? Buffer.byteLength(known)
        : 0;
    if (size > enforcer.maxBodyBytes) {
      sendTooLarge(res);
      return { proceed: false };
    }
  }
  // The body and whether the stream was read matter to the input only when it includes the body; without
  // one the caller's extras go as they are, with no per-request copy. Object.assign rather than spread,
  // which V8 builds through a slow path (docs/perf/P7.md).
  const withBody = enforcer.includeBody
    ? Object.assign({}, extras, { body, bodyConsumed: consumed })
    : extras;
  const decided = authorizeNow(enforcer, req, withBody);
  if (decided instanceof Promise) return decided.then((decision) => apply(req, res, decision, body, respond));
  return apply(req, res, decided, body, respond);
}

function apply(
  req: IncomingMessage,
  res: ServerResponse,
  decision: Decision,
  body: Buffer | undefined,
  respond: boolean,
): Authorized {
  if (decision.authz) rememberDecision(req, decision.authz);
  if (!decision.allow) {
    if (respond) sendDecision(res, decision);
    return { proceed: false, decision, body };
  }
  if (hasHeaders(decision.headers)) addRequestHeaders(req, decision.headers);
  return { proceed: true, decision, body };
}
