import type { IncomingMessage, ServerResponse } from "node:http";
import { BodyTooLargeError, readBody } from "./body.ts";
import type { Decision } from "./decision.ts";
import type { Enforcer } from "./enforcer.ts";
import type { InputExtras } from "./input.ts";
import { addRequestHeaders, sendDecision, sendTooLarge } from "./respond.ts";

export interface Authorized {
  /** true: the handler may run (headers already added to req). false: the response has been sent. */
  proceed: boolean;
  decision?: Decision;
  /** The body, when the enforcer read it; adapters hand it on so the handler can still use it. */
  body?: Buffer;
}

/**
 * The shared adapter step: read the body when the input needs it (413 over the limit), decide, then
 * either add the allow's headers to the request or send the denial. Framework adapters only map their
 * request objects onto this.
 */
export async function authorizeRequest(
  enforcer: Enforcer,
  req: IncomingMessage,
  res: ServerResponse,
  extras: InputExtras = {},
): Promise<Authorized> {
  let body = extras.body;
  if (enforcer.includeBody && body === undefined) {
    try {
      body = await readBody(req, enforcer.maxBodyBytes);
    } catch (error) {
      if (error instanceof BodyTooLargeError) {
        sendTooLarge(res);
        return { proceed: false };
      }
      throw error;
    }
  } else if (body !== undefined && body.length > enforcer.maxBodyBytes) {
    sendTooLarge(res);
    return { proceed: false };
  }
  const decision = await enforcer.decide(enforcer.buildInput(req, { ...extras, body }));
  if (!decision.allow) {
    sendDecision(res, decision);
    return { proceed: false, decision, body };
  }
  addRequestHeaders(req, decision.headers);
  return { proceed: true, decision, body };
}
