import type { IncomingMessage } from "node:http";
import type { TLSSocket } from "node:tls";
import { RAW_RULES, resolveTarget, type Target } from "./request-target.ts";

/** The input Kong Gateway's OPA plugin sends, under `input`. */
export interface KongInput {
  request: {
    http: {
      host: string;
      port: string;
      tls: { version?: string; cipher?: string } | Record<string, never>;
      method: string;
      scheme: "http" | "https";
      path: string;
      querystring: Record<string, string | true | (string | true)[]>;
      headers: Record<string, string | string[]>;
      uri_captures?: { named: Record<string, string>; unnamed: string[] };
      body?: string;
      body_size?: number;
      parsed_body?: unknown;
    };
  };
  client_ip: string;
  service?: unknown;
  route?: unknown;
  consumer?: unknown;
}

export interface InputExtras {
  /** Route parameters: named ones by name, unnamed (regex groups) in order. */
  uriCaptures?: { named?: Record<string, string>; unnamed?: string[] };
  /** The raw request body as sent, already read and size-checked by the adapter. */
  body?: Buffer;
  /**
   * What a framework's body parser handed the app instead, when the raw bytes are gone: a Buffer
   * (express.raw), a string (express.text) or a parsed value (express.json, express.urlencoded).
   */
  parsedBody?: { value: unknown };
  /** True when something before the enforcer read the request stream (so it must not be read again). */
  bodyConsumed?: boolean;
  /** The client address when a framework knows better (e.g. Express with trust proxy). */
  clientIp?: string;
  /** The request target as the app's router reads it (default: req.url read as node:http does). */
  target?: Target;
}

/** The input cannot be built for this request: 400 (no single path) or 500 (e.g. the body is unknown). */
export class InputError extends Error {
  constructor(
    message: string,
    readonly status: 400 | 500,
  ) {
    super(message);
    this.name = "InputError";
  }
}

/**
 * lua-cjson's default decode_max_depth, which Kong's JSON body decoding uses: a body nested deeper is not
 * decoded, so parsed_body is left out (and V8's recursive JSON.stringify never meets it).
 */
export const MAX_JSON_DEPTH = 1000;

export const INCLUDE_KEYS = [
  "body",
  "parsedJsonBody",
  "uriCaptures",
  "service",
  "route",
  "consumer",
] as const;

/** Nothing optional in the input: Kong's defaults. */
export const NO_INCLUDES = Object.fromEntries(
  INCLUDE_KEYS.map((key) => [key, false]),
) as InputOptions["include"];

export interface InputOptions {
  include: Record<(typeof INCLUDE_KEYS)[number], boolean>;
  service?: (req: IncomingMessage) => unknown;
  route?: (req: IncomingMessage) => unknown;
  consumer?: (req: IncomingMessage) => unknown;
}

/**
 * An empty object with no prototype, as Object.create(null) makes one, but in V8's fast-properties mode:
 * Object.create(null) starts in dictionary mode, where adding a key the parser just sliced out of the request
 * costs about a microsecond each (see docs/perf/P7.md). With no prototype, `__proto__` is a plain key here too.
 */
export function emptyRecord<T>(): Record<string, T> {
  return Object.setPrototypeOf({}, null);
}

function decode(text: string): string {
  if (!text.includes("%") && !text.includes("+")) return text;
  try {
    return decodeURIComponent(text.replaceAll("+", " "));
  } catch {
    return text; // malformed escapes stay as sent, as Kong does
  }
}

/**
 * Kong's querystring: a key without "=" is true, a repeated key is an array. The object has no prototype,
 * so a key such as __proto__ is just a key.
 */
export function parseQuerystring(query: string): KongInput["request"]["http"]["querystring"] {
  const result: KongInput["request"]["http"]["querystring"] = emptyRecord();
  if (!query) return result;
  for (const part of query.split("&")) {
    if (!part) continue;
    const equals = part.indexOf("=");
    const key = decode(equals === -1 ? part : part.slice(0, equals));
    const value: string | true = equals === -1 ? true : decode(part.slice(equals + 1));
    const existing = result[key];
    if (existing === undefined) result[key] = value;
    else if (Array.isArray(existing)) existing.push(value);
    else result[key] = [existing, value];
  }
  return result;
}

/**
 * Lower-cased header names (Node already lower-cases them); a header sent twice becomes an array. The object
 * has no prototype, so __proto__, constructor or hasOwnProperty are plain keys.
 */
function headersOf(req: IncomingMessage): Record<string, string | string[]> {
  const headers: Record<string, string | string[]> = emptyRecord();
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    const value = raw[i + 1] as string;
    const existing = headers[name];
    if (existing === undefined) headers[name] = value;
    else if (Array.isArray(existing)) existing.push(value);
    else headers[name] = [existing, value];
  }
  return headers;
}

/** The Host header without its port; IPv6 literals keep their brackets off. */
function hostOf(req: IncomingMessage): string {
  const host = req.headers.host ?? "";
  if (host.startsWith("[")) return host.slice(1, host.indexOf("]"));
  const colon = host.lastIndexOf(":");
  return colon === -1 ? host : host.slice(0, colon);
}

function tlsOf(req: IncomingMessage): KongInput["request"]["http"]["tls"] {
  const socket = req.socket as Partial<TLSSocket>;
  if (!socket.encrypted) return {};
  return { version: socket.getProtocol?.() ?? undefined, cipher: socket.getCipher?.()?.name };
}

/** The one test of "JSON body" that the input builder and every adapter share. */
export function isJson(contentType: string | string[] | undefined): boolean {
  return typeof contentType === "string" && /^application\/([\w.+-]+\+)?json\s*(;|$)/i.test(contentType);
}

/** Whether JSON text nests arrays and objects deeper than `max`; a linear scan that never recurses. */
export function jsonTextDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const char = text.charCodeAt(i);
    if (inString) {
      if (char === 92)
        i++; // backslash: skip the escaped character
      else if (char === 34) inString = false;
    } else if (char === 34) inString = true;
    else if (char === 91 || char === 123) {
      if (++depth > max) return true;
    } else if (char === 93 || char === 125) depth--;
  }
  return false;
}

/** Whether a parsed value nests deeper than `max`; iterative, so a hostile value cannot overflow the stack. */
export function valueDeeperThan(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [current, depth] = stack.pop() as [unknown, number];
    if (current === null || typeof current !== "object") continue;
    if (depth > max) return true;
    for (const child of Object.values(current)) {
      if (child !== null && typeof child === "object") stack.push([child, depth + 1]);
    }
  }
  return false;
}

/** Kong's parsed_body: JSON text decoded, unless it is invalid or nested past MAX_JSON_DEPTH. */
export function parseJsonBody(text: string): { ok: true; value: unknown } | { ok: false } {
  if (jsonTextDeeperThan(text, MAX_JSON_DEPTH)) return { ok: false };
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}

/** body, body_size and parsed_body, from the raw bytes or from what a framework's parser produced. */
function addBody(
  http: KongInput["request"]["http"],
  include: InputOptions["include"],
  contentType: string | undefined,
  extras: InputExtras,
) {
  const parsed = extras.parsedBody?.value;
  // A parser that kept bytes or text (express.raw, express.text) kept the raw body too.
  const parserKeptText = Buffer.isBuffer(parsed) || typeof parsed === "string";
  const raw =
    extras.body ??
    (Buffer.isBuffer(parsed) ? parsed : typeof parsed === "string" ? Buffer.from(parsed) : undefined);
  if (raw === undefined && extras.parsedBody === undefined && extras.bodyConsumed) {
    throw new InputError(
      "the request body was read by something mounted before the enforcer and not kept; mount the " +
        "enforcer first, or after a body parser that sets req.body",
      500,
    );
  }
  if (include.body) {
    if (raw === undefined && extras.parsedBody !== undefined) {
      throw new InputError(
        "the raw request body was consumed by a body parser that kept only a parsed value; mount the " +
          "enforcer before the parser, or include parsedJsonBody alone",
        500,
      );
    }
    const bytes = raw ?? Buffer.alloc(0);
    http.body = bytes.toString("utf8");
    http.body_size = bytes.length;
  }
  if (!include.parsedJsonBody) return;
  if (extras.parsedBody !== undefined && !parserKeptText) {
    // The handler gets this value, so the policy sees the same one. One it cannot be given (nested past
    // Kong's depth) is refused rather than decided without: a handler would act on what no policy saw.
    if (valueDeeperThan(parsed, MAX_JSON_DEPTH)) {
      throw new InputError(
        `the request body nests deeper than ${MAX_JSON_DEPTH} levels, so the policy cannot see what the handler would get`,
        400,
      );
    }
    http.parsed_body = parsed;
    return;
  }
  if (raw !== undefined && raw.length > 0 && isJson(contentType)) {
    const decoded = parseJsonBody(raw.toString("utf8"));
    if (decoded.ok) http.parsed_body = decoded.value;
  }
}

/** Throws InputError when the request has no single path or its body cannot be known. */
export function buildKongInput(
  req: IncomingMessage,
  options: InputOptions,
  extras: InputExtras = {},
): KongInput {
  const target = extras.target ?? resolveTarget(req.method ?? "GET", req.url ?? "/", RAW_RULES);
  if (!target.ok) throw new InputError(`bad request target: ${target.reason}`, 400);
  const http: KongInput["request"]["http"] = {
    host: hostOf(req),
    port: String(req.socket.localPort ?? ""),
    tls: tlsOf(req),
    method: req.method ?? "GET",
    scheme: (req.socket as Partial<TLSSocket>).encrypted ? "https" : "http",
    path: target.path,
    querystring: parseQuerystring(target.query),
    headers: headersOf(req),
  };
  const { include } = options;
  if (include.uriCaptures) {
    http.uri_captures = {
      named: extras.uriCaptures?.named ?? {},
      unnamed: extras.uriCaptures?.unnamed ?? [],
    };
  }
  if (include.body || include.parsedJsonBody) addBody(http, include, req.headers["content-type"], extras);
  const input: KongInput = {
    request: { http },
    client_ip: extras.clientIp ?? req.socket.remoteAddress ?? "",
  };
  if (include.service) input.service = options.service?.(req);
  if (include.route) input.route = options.route?.(req);
  if (include.consumer) input.consumer = options.consumer?.(req);
  return input;
}
