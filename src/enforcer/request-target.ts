/**
 * The path a policy sees is the path the app's router matches on. Each adapter describes how its
 * framework reads a request target (PathRules); resolveTarget applies those rules to the raw target, or
 * refuses a target that has no single path (the adapter answers 400 without asking the policy).
 *
 * Kong's `kong.request.get_path()` instead normalizes by RFC 3986 §6 (decodes unreserved characters,
 * resolves dot segments, merges slashes). A Node framework routes on its own reading, so policyship gives
 * the policy that reading, and refuses the shapes on which readers disagree (dot segments, empty segments).
 */

export interface PathRules {
  /** Percent-decode the path the way find-my-way (Fastify) does: decodeURI, with %25 kept as is. */
  decode: boolean;
  /** false: the router matches /ADMIN to a route for /admin, so the policy sees the path lower-cased. */
  caseSensitive: boolean;
  /** false: the router matches /admin/ to a route for /admin, so one trailing slash is dropped. */
  strict: boolean;
  /** true: the router reads //a///b as /a/b. false: a path with an empty segment (//) is refused. */
  mergeSlashes: boolean;
  /** true: `;` ends the path, as `?` does (Fastify's useSemicolonDelimiter). */
  semicolonEndsPath?: boolean;
}

/** node:http: the handler gets req.url as it is (absolute-form turned into origin-form). */
export const RAW_RULES: PathRules = { decode: false, caseSensitive: true, strict: true, mergeSlashes: false };

export type Target =
  | {
      ok: true;
      /** The path as the router matches it: what input.request.http.path carries. */
      path: string;
      /** The path as sent (origin-form), before decoding, case folding and slash rules. */
      rawPath: string;
      /** The raw query string, without "?". */
      query: string;
      /** True when the request line used absolute-form (http://host/path). */
      absolute: boolean;
    }
  | { ok: false; reason: string };

const ABSOLUTE_FORM = /^https?:\/\/[^/?#\\]*/;
const DOT_SEGMENT = /^(?:\.|%2e){1,2}$/i;

function refuse(reason: string): Target {
  return { ok: false, reason };
}

/** Resolves a request target (req.url) into the path a router with `rules` matches on. */
export function resolveTarget(method: string, url: string, rules: PathRules): Target {
  if (url === "*") {
    // Asterisk-form means "the server itself" and is defined only for OPTIONS (RFC 9112 §3.2.4).
    return method === "OPTIONS"
      ? { ok: true, path: "*", rawPath: "*", query: "", absolute: false }
      : refuse(`asterisk-form target with ${method}`);
  }
  let rest = url;
  // Origin-form (the usual case) cannot match the absolute-form pattern: skip the regular expression.
  const absolute = url.charCodeAt(0) === 47 ? null : ABSOLUTE_FORM.exec(url);
  if (absolute) rest = url.slice(absolute[0].length);
  if (!rest.startsWith("/")) {
    return refuse(absolute ? "absolute-form target without a path" : "target does not start with /");
  }
  // A fragment is never sent, and a backslash is read as "/" by some URL parsers and not by others.
  if (rest.includes("#")) return refuse("target contains #");
  const queryAt = rest.indexOf("?");
  let rawPath = queryAt === -1 ? rest : rest.slice(0, queryAt);
  let query = queryAt === -1 ? "" : rest.slice(queryAt + 1);
  if (rules.semicolonEndsPath) {
    const semicolon = rawPath.indexOf(";");
    if (semicolon !== -1) {
      query = rest.slice(semicolon + 1);
      rawPath = rawPath.slice(0, semicolon);
    }
  }
  if (rawPath.includes("\\")) return refuse("path contains a backslash");
  // "." and ".." (also percent-encoded) name another path to whoever resolves them, and the router does not.
  // Without a "." or a "%" no segment can be one (split only a path that might hold one).
  if (
    (rawPath.includes(".") || rawPath.includes("%")) &&
    rawPath.split("/").some((segment) => DOT_SEGMENT.test(segment))
  ) {
    return refuse("path contains a dot segment");
  }
  // An empty segment (//) is read differently by each reader: Express 4's mount matcher drops one slash of
  // it (/api//admin runs the /admin route of a router at /api), WHATWG URL reads //h/admin as host h and
  // path /admin. Only a router that merges slashes has one reading of it. (%2F is no separator to any of
  // the routers, so /%2F and %2F%2F stay one segment.)
  if (!rules.mergeSlashes && rawPath.includes("//")) return refuse("path contains an empty segment (//)");
  let path = rawPath;
  if (rules.decode && path.includes("%")) {
    try {
      // find-my-way: decodeURI leaves reserved characters (%2F, %3F …) encoded; %25 stays %25.
      path = decodeURI(path.replaceAll("%25", "%2525"));
    } catch {
      return refuse("path has a malformed percent-encoding");
    }
  }
  if (rules.mergeSlashes) path = path.replace(/\/{2,}/g, "/");
  if (!rules.strict && path.length > 1 && path.endsWith("/")) path = path.slice(0, -1);
  if (!rules.caseSensitive) path = path.toLowerCase();
  return { ok: true, path, rawPath, query, absolute: absolute !== null };
}
