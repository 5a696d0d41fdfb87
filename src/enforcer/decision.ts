/**
 * Kong Gateway's OPA plugin decision rules, applied to whatever OPA returned as `result`.
 * https://developer.konghq.com/plugins/opa/
 */

export interface Decision {
  allow: boolean;
  /** HTTP status for a denial; 200 when allowed. */
  status: number;
  /** Allowed: headers added to the request the handler sees. Denied: headers on the response. */
  headers: Record<string, string>;
  /** The response body's `message` on a denial; may be an object. */
  message: unknown;
  /** The bundle revision that made the decision, when known. */
  revision?: string;
  /** Why the decision is an error (400, 500 or 503), for logs; never sent to the client. */
  error?: string;
  /** What kind of error; only "unreachable" may ever be let through, and only with failOpen. */
  errorKind?: ErrorKind;
  /** True when an error was let through because the app opted into fail-open. */
  failOpen?: boolean;
  /** One per request, the same in onDecision, the span and the decision log. Set by the enforcer. */
  decisionId?: string;
  /** True when the decision came from the cache (or from a concurrent evaluation of the same key). */
  cached?: boolean;
  /** True in audit mode: the request proceeds whatever the policy said. */
  audited?: boolean;
  /** What the policy decided, for the handler (in audit mode too); set by the enforcer. */
  authz?: Authz;
  /** The policy's raw `result`, as OPA returned it (absent when there was none). */
  result?: unknown;
}

/** What the policy decided, as the handler may read it: req.authz, request.authz, decisionOf(req). */
export interface Authz {
  allow: boolean;
  status: number;
  headers: Record<string, string>;
  revision?: string;
  decisionId: string;
  cached: boolean;
  engine: "remote" | "embedded";
  /** Audit mode: the request proceeded, whatever `allow` says. */
  audited: boolean;
}

/** "allow", "deny" or "error": what the decision would do in enforce mode. */
export function outcomeOf(decision: Decision): "allow" | "deny" | "error" {
  if (decision.error) return "error";
  return decision.allow ? "allow" : "deny";
}

/**
 * Why a decision is an error. "unreachable": OPA could not be reached (refused, reset, timed out).
 * "answer": OPA answered, but not with a usable result (any non-200, garbage, too large). "policy": the
 * result breaks Kong's contract. "revision": another policy revision answered. "overload": too many
 * decisions in flight. "input": the request could not be turned into an input. "closed": after close().
 */
export type ErrorKind = "unreachable" | "answer" | "policy" | "revision" | "overload" | "input" | "closed";

export const UNAUTHORIZED = "unauthorized";
export const UNEXPECTED = "An unexpected error occurred";
export const REVISION_MISMATCH = "policy revision mismatch";
/** Largest `message` a policy may return, serialized; bigger ones are a policy error. */
export const MAX_MESSAGE_BYTES = 8 * 1024;

// RFC 9110 token characters.
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Visible ASCII, space, tab and obs-text; no CR, LF, NUL or other controls.
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
/** Hop-by-hop and framing headers: a policy must not be able to change how the message is delimited or routed. */
const FORBIDDEN_HEADERS = new Set([
  "connection",
  "content-length",
  "host",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

export class PolicyResultError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PolicyResultError";
  }
}

function validHeaders(value: unknown): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (typeof value !== "object" || Array.isArray(value)) {
    throw new PolicyResultError(`headers must be an object, got ${describe(value)}`);
  }
  // No prototype: a header named __proto__ or constructor is just a header.
  const headers: Record<string, string> = Object.create(null);
  for (const [name, raw] of Object.entries(value)) {
    if (!HEADER_NAME.test(name)) throw new PolicyResultError(`invalid header name ${JSON.stringify(name)}`);
    const lower = name.toLowerCase();
    if (FORBIDDEN_HEADERS.has(lower))
      throw new PolicyResultError(`header ${lower} may not be set by a policy`);
    if (typeof raw !== "string" && typeof raw !== "number") {
      throw new PolicyResultError(`header ${lower} must be a string, got ${describe(raw)}`);
    }
    const text = String(raw);
    if (!HEADER_VALUE.test(text)) {
      throw new PolicyResultError(`header ${lower} has a value with CR, LF or other control characters`);
    }
    headers[lower] = text;
  }
  return headers;
}

function validStatus(value: unknown): number {
  if (value === undefined || value === null) return 403;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 100 || value > 599) {
    throw new PolicyResultError(`status must be an integer from 100 to 599, got ${describe(value)}`);
  }
  return value;
}

function validMessage(value: unknown): unknown {
  if (value === undefined || value === null) return UNAUTHORIZED;
  const size = Buffer.byteLength(JSON.stringify(value) ?? "");
  if (size > MAX_MESSAGE_BYTES) {
    throw new PolicyResultError(`message is ${size} bytes, over the ${MAX_MESSAGE_BYTES}-byte limit`);
  }
  return value;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return `the string ${JSON.stringify(value.slice(0, 40))}`;
  if (typeof value === "object") return "an object";
  return `${typeof value} ${String(value)}`;
}

/**
 * `true` allows; `false` denies with 403; `{allow: true, headers}` allows and adds headers to the request;
 * `{allow: false, status?, headers?, message?}` denies with that status, headers and message. Anything
 * else — including an undefined result — throws PolicyResultError, which the enforcer turns into a 500.
 */
export function interpretResult(result: unknown, defined: boolean): Decision {
  if (!defined) throw new PolicyResultError("the policy decision is undefined (no result)");
  if (result === true) return { allow: true, status: 200, headers: Object.create(null), message: undefined };
  if (result === false)
    return { allow: false, status: 403, headers: Object.create(null), message: UNAUTHORIZED };
  if (typeof result !== "object" || result === null || Array.isArray(result)) {
    throw new PolicyResultError(`the policy returned ${describe(result)}, not a boolean or an object`);
  }
  const object = result as Record<string, unknown>;
  if (typeof object.allow !== "boolean") {
    throw new PolicyResultError(`allow must be a boolean, got ${describe(object.allow)}`);
  }
  const headers = validHeaders(object.headers);
  if (object.allow) return { allow: true, status: 200, headers, message: undefined };
  return { allow: false, status: validStatus(object.status), headers, message: validMessage(object.message) };
}

export function errorDecision(error: string, errorKind: ErrorKind, revision?: string): Decision {
  return { allow: false, status: 500, headers: {}, message: UNEXPECTED, error, errorKind, revision };
}

export function mismatchDecision(error: string, revision?: string): Decision {
  return {
    allow: false,
    status: 503,
    headers: {},
    message: REVISION_MISMATCH,
    error,
    errorKind: "revision",
    revision,
  };
}

/** A request target with no single path (see request-target.ts): 400, neither policy nor handler asked. */
export function badRequestDecision(error: string): Decision {
  return { allow: false, status: 400, headers: {}, message: "bad request", error, errorKind: "input" };
}
