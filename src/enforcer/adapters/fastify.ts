import type { IncomingMessage, ServerResponse } from "node:http";
import { Transform } from "node:stream";
import type { Authz } from "../decision.ts";
import type { Enforcer } from "../enforcer.ts";
import { type PathRules, resolveTarget } from "../request-target.ts";
import { addRequestHeaders } from "../respond.ts";

/**
 * The slices of Fastify's request and reply this plugin uses; no import of fastify itself, so an app
 * without fastify installed compiles against "policyship/enforcer". `request.authz` on Fastify's own
 * request type comes with "policyship/enforcer/fastify" (fastify-entry.ts).
 */
interface FastifyRequest {
  raw: IncomingMessage;
  authz?: Authz | null;
  params?: unknown;
  body?: unknown;
  ip?: string;
  headers: Record<string, string | string[] | undefined>;
}

interface FastifyReply {
  raw: ServerResponse;
  code(status: number): FastifyReply;
  headers(values: Record<string, string>): FastifyReply;
  send(payload: unknown): FastifyReply;
}

interface RouterOptions {
  caseSensitive?: boolean;
  ignoreTrailingSlash?: boolean;
  ignoreDuplicateSlashes?: boolean;
  useSemicolonDelimiter?: boolean;
}

interface FastifyInstance {
  initialConfig?: RouterOptions & { routerOptions?: RouterOptions };
  decorateRequest(name: "authz", value: null): unknown;
  addHook(
    name: "preHandler",
    hook: (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>,
  ): unknown;
  addHook(
    name: "preParsing",
    hook: (request: FastifyRequest, reply: FastifyReply, payload: NodeJS.ReadableStream) => Promise<unknown>,
  ): unknown;
}

function capturesOf(params: unknown) {
  const named: Record<string, string> = {};
  const unnamed: string[] = [];
  for (const [key, value] of Object.entries((params as Record<string, string>) ?? {})) {
    if (key === "*") unnamed.push(value);
    else named[key] = value;
  }
  return { named, unnamed };
}

/** find-my-way's reading of a request target, under this instance's router options. */
function routerRules(fastify: FastifyInstance): PathRules {
  const config = fastify.initialConfig?.routerOptions ?? fastify.initialConfig ?? {};
  return {
    decode: true,
    caseSensitive: config.caseSensitive !== false,
    strict: config.ignoreTrailingSlash !== true,
    mergeSlashes: config.ignoreDuplicateSlashes === true,
    semicolonEndsPath: config.useSemicolonDelimiter === true,
  };
}

interface Capture {
  chunks: Buffer[];
  size: number;
  tooLarge: boolean;
}

const captured = new WeakMap<IncomingMessage, Capture>();

/**
 * Copies the bytes Fastify's body parser reads, up to the limit; past it the copy stops and the preHandler
 * answers 413. (Fastify's own bodyLimit still bounds what its parser reads.)
 */
function captureBody(req: IncomingMessage, maxBytes: number): Transform {
  const capture: Capture = { chunks: [], size: 0, tooLarge: false };
  captured.set(req, capture);
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      capture.size += chunk.length;
      if (capture.size > maxBytes) {
        capture.tooLarge = true;
        capture.chunks = [];
      } else {
        capture.chunks.push(chunk);
      }
      callback(null, chunk);
    },
  });
}

/**
 * Fastify 5 plugin: `fastify.register(fastifyAuthorize, { enforcer })`. A preHandler hook, so route
 * parameters and the parsed body are known; it applies to every route (the plugin is not encapsulated).
 * The policy's path is the one find-my-way routes on (percent-decoded as it decodes, folded by the
 * instance's router options). With the body in the input, a preParsing hook keeps a copy of the bytes
 * Fastify's parser reads, so `body` is what was sent and `parsed_body` is what the handler gets.
 */
export async function fastifyAuthorize(fastify: FastifyInstance, options: { enforcer: Enforcer }) {
  const enforcer = options?.enforcer;
  if (!enforcer || typeof enforcer.authorize !== "function") {
    throw new TypeError(`fastifyAuthorize expects { enforcer } from createEnforcer, got ${typeof enforcer}`);
  }
  const rules = routerRules(fastify);
  fastify.decorateRequest("authz", null);
  if (enforcer.includeBody) {
    fastify.addHook("preParsing", async (request, _reply, payload) =>
      payload.pipe(captureBody(request.raw, enforcer.maxBodyBytes)),
    );
  }
  fastify.addHook("preHandler", async (request, reply) => {
    const capture = captured.get(request.raw);
    if (capture?.tooLarge) return reply.code(413).send({ message: "request body too large" });
    const decision = await enforcer.authorize(request.raw, {
      target: resolveTarget(request.raw.method ?? "GET", request.raw.url ?? "/", rules),
      uriCaptures: enforcer.includeUriCaptures ? capturesOf(request.params) : undefined,
      clientIp: request.ip,
      body: capture ? Buffer.concat(capture.chunks) : undefined,
      parsedBody: request.body === undefined ? undefined : { value: request.body },
    });
    if (!decision.allow) {
      return reply.code(decision.status).headers(decision.headers).send({ message: decision.message });
    }
    request.authz = decision.authz ?? null;
    addRequestHeaders(request.raw, decision.headers);
    // Fastify's request.headers is the raw headers object, so handlers see the added headers.
    return undefined;
  });
}

// Like fastify-plugin: skip Fastify's encapsulation so the hooks cover the routes of the parent scope.
Object.assign(fastifyAuthorize, {
  [Symbol.for("skip-override")]: true,
  [Symbol.for("fastify.display-name")]: "policyship-authorize",
});
