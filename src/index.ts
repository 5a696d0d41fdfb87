/** Library entry. The runtime enforcer is "policyship/enforcer". */
export { FailureError, UserError } from "./errors.ts";
