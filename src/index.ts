/** Library entry: the CLI's commands as functions. The runtime enforcer is "policyship/enforcer". */

export { run } from "./cli.ts";
export { type BuildResult, build } from "./commands/build.ts";
export { type CheckResult, check } from "./commands/check.ts";
export { type TestResult, test } from "./commands/test.ts";
export type { Context, Logger } from "./context.ts";
export { FailureError, UserError } from "./errors.ts";
export { resolveSettings, type Settings } from "./settings.ts";
