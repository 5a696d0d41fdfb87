import type { Decision } from "./decision.ts";

/**
 * A denial or a failure to decide, handed to a framework's error handler instead of answered
 * (expressAuthorize(enforcer, { onDeny: "next" })). It carries what the enforcer would have sent: the
 * status (as `status` and `statusCode`, which Express's handlers read), the policy's headers and its
 * message. Like http-errors, `expose` is false for 5xx, whose message a page should not show.
 */
export class AuthorizationError extends Error {
  readonly status: number;
  readonly statusCode: number;
  readonly expose: boolean;
  /** The policy's response headers (www-authenticate, retry-after …); Express 5 sets them on the answer. */
  readonly headers: Record<string, string>;
  /** The policy's message as Kong would send it: a string, or the JSON value the policy gave. */
  readonly policyMessage: unknown;

  constructor(decision: Decision) {
    const message =
      typeof decision.message === "string" ? decision.message : JSON.stringify(decision.message);
    super(message ?? "unauthorized");
    this.name = "AuthorizationError";
    this.status = decision.status;
    this.statusCode = decision.status;
    this.expose = decision.status < 500;
    this.headers = { ...decision.headers };
    this.policyMessage = decision.message;
  }
}
