import type { IncomingMessage, ServerResponse } from "node:http";
import type { Enforcer } from "../enforcer.ts";
import { addRequestHeaders } from "../respond.ts";

/** The slices of Fastify's request and reply this plugin uses; no import of fastify itself. */
interface FastifyRequest {
  raw: IncomingMessage;
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

interface FastifyInstance {
  addHook(
    name: "preHandler",
    hook: (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>,
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

/**
 * Fastify 5 plugin: `fastify.register(fastifyAuthorize, { enforcer })`. A preHandler hook, so route
 * parameters and the parsed body are known; it applies to every route (the plugin is not encapsulated).
 */
export async function fastifyAuthorize(fastify: FastifyInstance, options: { enforcer: Enforcer }) {
  const enforcer = options?.enforcer;
  if (!enforcer || typeof enforcer.decide !== "function") {
    throw new TypeError(`fastifyAuthorize expects { enforcer } from createEnforcer, got ${typeof enforcer}`);
  }
  fastify.addHook("preHandler", async (request, reply) => {
    let body: Buffer | undefined;
    if (enforcer.includeBody && request.body !== undefined) {
      body = Buffer.isBuffer(request.body)
        ? request.body
        : Buffer.from(typeof request.body === "string" ? request.body : JSON.stringify(request.body));
      if (body.length > enforcer.maxBodyBytes) {
        return reply.code(413).send({ message: "request body too large" });
      }
    }
    const input = enforcer.buildInput(request.raw, {
      uriCaptures: enforcer.includeUriCaptures ? capturesOf(request.params) : undefined,
      clientIp: request.ip,
      body,
    });
    const decision = await enforcer.decide(input);
    if (!decision.allow) {
      return reply.code(decision.status).headers(decision.headers).send({ message: decision.message });
    }
    addRequestHeaders(request.raw, decision.headers);
    // Fastify's request.headers is the raw headers object, so handlers see the added headers.
    return undefined;
  });
}

// Like fastify-plugin: skip Fastify's encapsulation so the hook covers the routes of the parent scope.
Object.assign(fastifyAuthorize, {
  [Symbol.for("skip-override")]: true,
  [Symbol.for("fastify.display-name")]: "policyship-authorize",
});
