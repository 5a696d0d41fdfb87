/**
 * policyship/enforcer: authorize each request of a Node app against OPA with Kong Gateway's OPA plugin
 * contract, against an OPA server (remote) or in-process from a wasm bundle (embedded).
 * This entry loads no AWS SDK, execa or commander.
 */
export { type AuthorizedRequest, expressAuthorize } from "./adapters/express.ts";
export { fastifyAuthorize } from "./adapters/fastify.ts";
export { withAuthorization } from "./adapters/node-http.ts";
export { decisionOf } from "./authz.ts";
export type { CacheOptions } from "./cache.ts";
export {
  type Authz,
  type Decision,
  interpretResult,
  MAX_MESSAGE_BYTES,
  PolicyResultError,
  REVISION_MISMATCH,
  UNAUTHORIZED,
  UNEXPECTED,
} from "./decision.ts";
export { AuthorizationError } from "./denial-error.ts";
export { createEnforcer, type DecisionEvent, type Enforcer, type EnforcerOptions } from "./enforcer.ts";
export { type InputExtras, type KongInput, parseQuerystring } from "./input.ts";
export { decisionChannel, shadowChannel } from "./telemetry.ts";
export type { ShadowEvent, ShadowOptions, ShadowOutcome, ShadowStats } from "./types.ts";
