import type { IncomingMessage } from "node:http";
import type { TLSSocket } from "node:tls";

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
  /** The raw request body, already read and size-checked by the adapter. */
  body?: Buffer;
  /** The client address when a framework knows better (e.g. Express with trust proxy). */
  clientIp?: string;
}

export const INCLUDE_KEYS = [
  "body",
  "parsedJsonBody",
  "uriCaptures",
  "service",
  "route",
  "consumer",
] as const;

/** Nothing optional in the input: Kong's defaults. */
export const NO_INCLUDES = Object.fromEntries(INCLUDE_KEYS.map((key) => [key, false])) as Record<
  (typeof INCLUDE_KEYS)[number],
  boolean
>;

export interface InputOptions {
  include: {
    body: boolean;
    parsedJsonBody: boolean;
    uriCaptures: boolean;
    service: boolean;
    route: boolean;
    consumer: boolean;
  };
  service?: (req: IncomingMessage) => unknown;
  route?: (req: IncomingMessage) => unknown;
  consumer?: (req: IncomingMessage) => unknown;
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
  const result: KongInput["request"]["http"]["querystring"] = Object.create(null);
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

/** Lower-cased header names (Node already lower-cases them); a header sent twice becomes an array. */
function headersOf(req: IncomingMessage): Record<string, string | string[]> {
  const headers: Record<string, string | string[]> = {};
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

function isJson(contentType: string | undefined): boolean {
  return /^application\/([\w.+-]+\+)?json\s*(;|$)/i.test(contentType ?? "");
}

export function buildKongInput(
  req: IncomingMessage,
  options: InputOptions,
  extras: InputExtras = {},
): KongInput {
  const url = req.url ?? "/";
  const queryAt = url.indexOf("?");
  const http: KongInput["request"]["http"] = {
    host: hostOf(req),
    port: String(req.socket.localPort ?? ""),
    tls: tlsOf(req),
    method: req.method ?? "GET",
    scheme: (req.socket as Partial<TLSSocket>).encrypted ? "https" : "http",
    path: queryAt === -1 ? url : url.slice(0, queryAt),
    querystring: parseQuerystring(queryAt === -1 ? "" : url.slice(queryAt + 1)),
    headers: headersOf(req),
  };
  const { include } = options;
  if (include.uriCaptures) {
    http.uri_captures = {
      named: extras.uriCaptures?.named ?? {},
      unnamed: extras.uriCaptures?.unnamed ?? [],
    };
  }
  if (extras.body && (include.body || include.parsedJsonBody)) {
    if (include.body) {
      http.body = extras.body.toString("utf8");
      http.body_size = extras.body.length;
    }
    if (include.parsedJsonBody && isJson(req.headers["content-type"])) {
      try {
        http.parsed_body = JSON.parse(extras.body.toString("utf8"));
      } catch {
        // Kong leaves parsed_body out when the body is not valid JSON.
      }
    }
  }
  const input: KongInput = {
    request: { http },
    client_ip: extras.clientIp ?? req.socket.remoteAddress ?? "",
  };
  if (include.service) input.service = options.service?.(req);
  if (include.route) input.route = options.route?.(req);
  if (include.consumer) input.consumer = options.consumer?.(req);
  return input;
}
