/**
 * Library entry: every CLI command as a function taking a Context and returning data.
 * The runtime enforcer is "policyship/enforcer".
 */
export { run } from "./cli.ts";
export { type BuildResult, build } from "./commands/build.ts";
export { type CheckResult, check } from "./commands/check.ts";
export { type ConfigResult, config } from "./commands/config.ts";
export { type DoctorResult, doctor } from "./commands/doctor.ts";
export { type InitResult, init } from "./commands/init.ts";
export { type ListedRevision, list } from "./commands/list.ts";
export { type PublishResult, publish } from "./commands/publish.ts";
export { type ReleaseResult, release } from "./commands/release.ts";
export { type RollbackResult, rollback } from "./commands/rollback.ts";
export { type TestResult, test } from "./commands/test.ts";
export { checkPublished, verify } from "./commands/verify.ts";
export { type Context, type Logger, silentLogger, stderrLogger } from "./context.ts";
export { FailureError, UserError } from "./errors.ts";
export { renderOpaConfig } from "./opa-config/render.ts";
export { resolveSettings } from "./settings.ts";
export type { Settings, SettingsInput } from "./settings-types.ts";
