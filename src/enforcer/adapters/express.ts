import type { IncomingMessage, ServerResponse } from "node:http";
import { authorizeRequest, handlerBody, streamConsumed } from "../authorize.ts";
import type { Authz } from "../decision.ts";
import { AuthorizationError } from "../denial-error.ts";
import type { Enforcer } from "../enforcer.ts";
import { type PathRules, resolveTarget } from "../request-target.ts";

declare global {
  // Express's documented way to type what middleware adds to req.
  namespace Express {
    interface Request {
      /** What the policy decided, set by expressAuthorize. */
      authz?: Authz;
    }
  }
}

/**
 * A request expressAuthorize let through: `authz` is set by then. Express's types cannot carry that from one
 * handler of a route to the next, so a handler narrows its own request, e.g.
 * `const { authz } = req as AuthorizedRequest<Request>` with Request from express.
 */
export type AuthorizedRequest<R extends object = Express.Request> = R & { authz: Authz };

/** The slice of Express's request this adapter reads; no import of express itself. */
interface ExpressRequest extends IncomingMessage {
  authz?: Authz;
  params?: Record<string, string>;
  ip?: string;
  body?: unknown;
  _body?: boolean;
  baseUrl?: string;
}

/** The scheme and authority of an absolute-form target (GET http://host/admin), which routers skip. */
const ABSOLUTE_FORM = /^https?:\/\/[^/?#\\]*/;

/**
 * The target the routers after this middleware match, as a full path: req.url as rewritten so far (a
 * rewrite middleware mounted before, or Express trimming a mount path) under req.baseUrl, the mount path
 * it was trimmed of. req.originalUrl is what the client sent, which a rewrite leaves behind.
 */
function routedTarget(req: ExpressRequest): string {
  const url = req.url ?? "/";
  const base = req.baseUrl ?? "";
  if (base === "") return url;
  // Express keeps the scheme and host in front when it trims an absolute-form target.
  const absolute = ABSOLUTE_FORM.exec(url)?.[0] ?? "";
  return `${absolute}${base}${url.slice(absolute.length)}`;
}

type Next = (error?: unknown) => void;

/** How the app's routers match paths; match them to the Router options, Express's defaults otherwise. */
export interface ExpressRouting {
  /** Router `caseSensitive` (default false: /ADMIN runs app.get("/admin"), so the policy sees /admin). */
  caseSensitive?: boolean;
  /** Router `strict` (default false: /admin/ runs app.get("/admin"), so the policy sees /admin). */
  strict?: boolean;
  /**
   * "respond" (default): a denial is answered as Kong does. "next": it goes to the app's error handler as
   * next(AuthorizationError), with its status, headers and message, for apps with their own error pages.
   * The handler of the route never runs either way.
   */
  onDeny?: "respond" | "next";
}

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
 * Express 4 and 5 middleware. The policy's path is the full path the routers after it match (req.baseUrl +
 * req.url: a mount point such as app.use("/api", router) is part of it, and so is a rewrite of req.url
 * mounted before it), folded the way Express matches it. A middleware mounted after it that rewrites
 * req.url changes the route after the decision; mount rewrites before it.
 * Route parameters reach `uri_captures` when it is mounted on a route (`app.get("/orders/:id",
 * expressAuthorize(enforcer), handler)`); `app.use` sees none.
 *
 * The body: mounted before any parser, the enforcer reads it and sets `req.body` (the parsed JSON the policy
 * saw, else the Buffer; an empty JSON body is `{}`, as express.json gives it) and marks it read, even when
 * empty, so parsers mounted later skip it. Mounted after a parser, the
 * policy gets what the parser gave the handler: express.raw/text bytes as `body`, express.json/urlencoded
 * values as `parsed_body` (the raw `body` is then unknown, and including it answers 500).
 */
export function expressAuthorize(enforcer: Enforcer, routing: ExpressRouting = {}) {
  if (!enforcer || typeof enforcer.authorize !== "function") {
    throw new TypeError(`expressAuthorize expects an enforcer from createEnforcer, got ${typeof enforcer}`);
  }
  if (typeof routing !== "object" || routing === null) {
    throw new TypeError(
      `expressAuthorize routing options must be an object, got ${routing === null ? "null" : typeof routing}`,
    );
  }
  if (routing.onDeny !== undefined && routing.onDeny !== "respond" && routing.onDeny !== "next") {
    throw new TypeError(`expressAuthorize onDeny must be "respond" or "next", got ${String(routing.onDeny)}`);
  }
  const handOn = routing.onDeny === "next";
  const rules: PathRules = {
    decode: false,
    caseSensitive: routing.caseSensitive === true,
    strict: routing.strict === true,
    mergeSlashes: false,
  };
  return (req: ExpressRequest, res: ServerResponse, next: Next) => {
    const consumed = streamConsumed(req);
    authorizeRequest(
      enforcer,
      req,
      res,
      {
        target: resolveTarget(req.method ?? "GET", routedTarget(req), rules),
        uriCaptures: enforcer.includeUriCaptures ? capturesOf(req.params) : undefined,
        clientIp: req.ip,
        parsedBody: consumed && req.body !== undefined ? { value: req.body } : undefined,
      },
      !handOn,
    ).then((outcome) => {
      if (!outcome.proceed) {
        if (handOn && outcome.decision && !res.headersSent) next(new AuthorizationError(outcome.decision));
        return;
      }
      req.authz = outcome.decision?.authz;
      if (outcome.body) {
        // The enforcer read the stream, even an empty one: body-parser 1.x skips a request marked _body
        // (unmarked, it reads the spent stream and answers 500); 2.x skips a stream that has ended.
        req._body = true;
        req.body = handlerBody(req, outcome.body);
      }
      next();
    }, next);
  };
}
