/**
 * policyship/enforcer/fastify: the same fastifyAuthorize as "policyship/enforcer", plus `request.authz` on
 * Fastify's own request type. The augmentation names the "fastify" module, so it lives here rather than in
 * the main entry, which must compile in apps that have no fastify installed.
 */
import type { Authz } from "../decision.ts";

export { fastifyAuthorize } from "./fastify.ts";

/** Fastify's own request type, with `authz` added below. (Type-only: fastify is never imported at run time.) */
export type AuthorizedFastifyRequest = import("fastify").FastifyRequest;

declare module "fastify" {
  interface FastifyRequest {
    /** What the policy decided, set by fastifyAuthorize (null before it ran). */
    authz: Authz | null;
  }
}
