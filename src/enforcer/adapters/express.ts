import type { IncomingMessage, ServerResponse } from "node:http";
import { authorizeRequest } from "../authorize.ts";
import type { Enforcer } from "../enforcer.ts";

/** The slice of Express's request this adapter reads; no import of express itself. */
interface ExpressRequest extends IncomingMessage {
  params?: Record<string, string>;
  ip?: string;
  body?: unknown;
  _body?: boolean;
}

type Next = (error?: unknown) => void;

/** Route parameters: names become `named`, the numeric keys of regex routes become `unnamed` in order. */
function capturesOf(params: Record<string, string> | undefined) {
  const named: Record<string, string> = {};
  const unnamed: string[] = [];
  for (const [key, value] of Object.entries(params ?? {})) {
    if (/^\d+$/.test(key)) unnamed[Number(key)] = value;
    else named[key] = value;
  }
  return { named, unnamed: unnamed.filter((value) => value !== undefined) };
}

/**
 * Express 4 and 5 middleware. Route parameters reach `uri_captures` when it is mounted on a route
 * (`app.get("/orders/:id", expressAuthorize(enforcer), handler)`); `app.use` sees none.
 * When the body is part of the input and no body parser ran before, the enforcer reads it and sets
 * `req.body` (parsed JSON for JSON content types, else the Buffer) and `req._body`, so body parsers skip it.
 */
export function expressAuthorize(enforcer: Enforcer) {
  if (!enforcer || typeof enforcer.decide !== "function") {
    throw new TypeError(`expressAuthorize expects an enforcer from createEnforcer, got ${typeof enforcer}`);
  }
  return (req: ExpressRequest, res: ServerResponse, next: Next) => {
    const parsedBefore = req._body === true && req.body !== undefined;
    const body = parsedBefore
      ? Buffer.from(typeof req.body === "string" ? req.body : JSON.stringify(req.body))
      : undefined;
    authorizeRequest(enforcer, req, res, {
      uriCaptures: enforcer.includeUriCaptures ? capturesOf(req.params) : undefined,
      clientIp: req.ip,
      body,
    }).then((outcome) => {
      if (!outcome.proceed) return;
      if (outcome.body && !parsedBefore) {
        req._body = true;
        req.body = /json/i.test(req.headers["content-type"] ?? "") ? safeJson(outcome.body) : outcome.body;
      }
      next();
    }, next);
  };
}

function safeJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString("utf8"));
  } catch {
    return body;
  }
}
