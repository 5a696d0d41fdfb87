import path from "node:path";
import type { Command } from "commander";
import { createContext, type Io, print } from "../cli-kit.ts";
import {
  addBuildOptions,
  addCheckOptions,
  addConfigOptions,
  addStoreOptions,
  addTestOptions,
} from "../cli-options.ts";
import { type Context, silentLogger } from "../context.ts";
import { appendStepSummary, inGitHubActions, markdownBlock, markdownText, writeOutputs } from "../github.ts";
import { locateOpaFor } from "../opa/locate.ts";
import { readVerificationKey } from "../opa/signing-key.ts";
import { renderOpaConfig } from "../opa-config/render.ts";
import { resolveBuildRevision } from "../revision.ts";
import { storeKind } from "../settings-access.ts";
import type { Settings } from "../settings-schema.ts";
import { resolveRegion } from "../store/open.ts";
import type { Store } from "../store/store.ts";
import { assertPoliciesDir, type BuildResult, build } from "./build.ts";
import { assertCheckPassed, type CheckResult, check, checksRun } from "./check.ts";
import { type ConfigResult, config } from "./config.ts";
import { type PublishResult, publish } from "./publish.ts";
import { assertTestsPassed, renderTest, summaryLine, type TestResult, test } from "./test.ts";

export interface ReleaseResult {
  revision: string;
  target: "rego" | "wasm";
  bundle: string;
  sha256: string;
  size: number;
  tests: Pick<TestResult, "passed" | "failed" | "skipped" | "coverage">;
  /** The checks the settings turned off (fmt: false, strict: false); empty when every check ran. */
  checksSkipped: CheckResult["skipped"];
  /** null with --dry-run. */
  published: Pick<PublishResult, "key" | "url" | "created" | "pin"> | null;
  /** Why the rendered config cannot name exactly the tested bytes, in one line; null when it does. */
  unpinned: string | null;
  /** Path of the rendered OPA config; null on a dry run without a bucket, or on an OCI registry. */
  config: string | null;
  durationMs: number;
}

/**
 * build → check → test → publish → config, stopping at the first failure. Check runs beside build (both
 * only read the policies); test runs on the built artifact; publish reuses build's digest, so the
 * tarball is read once after opa writes it.
 */
export async function release(context: Context): Promise<ReleaseResult> {
  const started = performance.now();
  const { settings, cwd, log } = context;
  // Every setting the OPA config needs is checked before anything is built or published.
  await assertConfigRenders(context);
  const opa = locateOpaFor(context);
  const revision = resolveBuildRevision(context, { metadata: true });
  // Both are awaited below; this keeps an early rejection from being reported as unhandled.
  opa.catch(() => {});
  revision.catch(() => {});
  const store = settings.dryRun
    ? undefined
    : import("../store/open.ts").then(({ openStore }) => openStore(context));
  store?.catch(() => {});

  // Build and check both need the policies directory; it is walked once for both.
  const policiesDir = assertPoliciesDir(context);
  policiesDir.catch(() => {});
  const [built, checked] = await Promise.all([
    build(context, { opa, revision, policiesDir }),
    check(context, { opa, policiesDir }),
  ]);
  assertCheckPassed(checked);
  if (checked.skipped.length > 0) log.warn(`not checked: ${checksRun(checked.skipped)}`);
  const wantCoverage = settings.coverageThreshold !== undefined || inGitHubActions(context.env);
  const tested = await test(context, {
    opa,
    bundle: path.resolve(cwd, built.bundle),
    coverage: wantCoverage,
    revision: built.revision,
  });
  log.info(renderTest(tested));
  assertTestsPassed(tested);

  let published: PublishResult | undefined;
  if (settings.dryRun) {
    log.info("dry run: not publishing");
  } else {
    published = await publish(context, { revision: built.revision, build: built, store: await store });
    log.info(published.created ? `published ${published.url}` : `already published ${published.url}`);
  }
  let rendered: ConfigResult | undefined;
  if (built.target === "wasm") {
    // OPA is configured for the rego bundle; the embedded engine loads <rev>.wasm.tar.gz itself.
    log.info("wasm: no OPA config rendered (the app's embedded engine loads the bundle)");
  } else if (configSkipped(settings) === "no-store") {
    log.info("dry run without a bucket, registry or --service-url: no OPA config rendered");
  } else if (configSkipped(settings) === "oci-dry-run") {
    // An OCI config names the manifest digest, which exists only once publish has pushed the manifest.
    log.info(
      "dry run on an OCI registry: no OPA config rendered (it pins the manifest digest publish creates)",
    );
  } else {
    const output =
      settings.output ?? path.join(settings.out, `${built.revision}.opa-config.${settings.format}`);
    rendered = await config(
      { ...context, settings: { ...settings, output, verify: false } },
      { revision: built.revision, verified: true, pin: published?.pin },
    );
  }
  const unpinned = published ? await unpinnedLine(context, await (store as Promise<Store>), published) : null;
  if (unpinned) log.warn(unpinned);
  const result: ReleaseResult = {
    revision: built.revision,
    target: built.target,
    bundle: built.bundle,
    sha256: built.sha256,
    size: built.size,
    checksSkipped: checked.skipped,
    tests: {
      passed: tested.passed,
      failed: tested.failed,
      skipped: tested.skipped,
      coverage: tested.coverage,
    },
    published: published
      ? {
          key: published.key,
          url: published.url,
          created: published.created,
          ...(published.pin ? { pin: published.pin } : {}),
        }
      : null,
    unpinned,
    config: rendered?.output ?? null,
    durationMs: Math.round(performance.now() - started),
  };
  await reportToGitHub(context, result, built, rendered);
  return result;
}

/** Why release renders no OPA config for these settings (wasm aside), or undefined when it renders one. */
function configSkipped(settings: Settings): "no-store" | "oci-dry-run" | undefined {
  if (settings.dryRun && !settings.bucket && !settings.registry && !settings.serviceUrl) return "no-store";
  if (settings.dryRun && settings.registry && !settings.serviceUrl) return "oci-dry-run";
  return undefined;
}

/** Well-formed stand-ins for what only build and publish know; the settings are what is checked. */
const PROBE_REVISION = "0".repeat(40);
const PROBE_PIN = `sha256:${"0".repeat(64)}`;

/**
 * Refuses, before build, the settings the OPA config cannot be rendered from (a directory with no
 * --service-url, a bucket with no region, a verification key without --key-id, ...): found after publish,
 * they would leave a published object that no config points at.
 */
async function assertConfigRenders(context: Context): Promise<void> {
  const { settings } = context;
  if (settings.target === "wasm" || configSkipped(settings)) return;
  // config() reads the key again and warns then; once is enough.
  const verificationKey = (await readVerificationKey({ ...context, log: silentLogger }))?.material;
  renderOpaConfig({
    revision: PROBE_REVISION,
    settings,
    region: resolveRegion(context),
    verificationKey,
    pin: storeKind(settings) === "oci" && !settings.serviceUrl ? PROBE_PIN : undefined,
  });
}

/**
 * One line when the config names the key rather than the tested bytes: S3 without versioning (or behind a
 * --service-url), a directory. An OCI config names the manifest digest.
 */
async function unpinnedLine(
  context: Context,
  store: Store,
  published: PublishResult,
): Promise<string | null> {
  const { settings } = context;
  const kind = storeKind(settings);
  if (kind === "oci") return null;
  if (kind === "s3" && settings.serviceUrl) {
    return `the config reaches ${published.key} through --service-url, so an overwrite changes what OPA loads — point OPA at a versioned bucket itself, or sign bundles (--signing-key, --verification-key)`;
  }
  if (kind === "s3" && published.pin) return null;
  return (await store.pinning?.())?.detail ?? null;
}

async function reportToGitHub(
  context: Context,
  result: ReleaseResult,
  built: BuildResult,
  rendered: ConfigResult | undefined,
) {
  if (!inGitHubActions(context.env)) return;
  await writeOutputs(context.env, {
    revision: result.revision,
    key: result.published?.key,
    url: result.published?.url,
    sha256: result.sha256,
    config: result.config ?? undefined,
  });
  const coverage = result.tests.coverage === null ? "not measured" : `${result.tests.coverage.toFixed(1)}%`;
  const object = result.published
    ? `\`${result.published.url}\`${result.published.created ? "" : " (already published)"}`
    : "not published (dry run)";
  const markdown = [
    `## policyship release ${result.revision}`,
    "",
    `- **Revision**: \`${result.revision}\``,
    `- **Commit**: ${built.git ? markdownText(built.git.subject) : "(unknown)"}`,
    `- **Tests**: ${result.tests.passed} passed, ${result.tests.failed} failed; coverage ${coverage}`,
    ...(result.checksSkipped.length > 0 ? [`- **Checks**: ${checksRun(result.checksSkipped)}`] : []),
    `- **Object**: ${object}`,
    ...(result.unpinned
      ? [`- **Pin**: none: ${markdownText(result.unpinned)}`]
      : result.published?.pin
        ? [
            `- **Pin**: ${result.published.pin.startsWith("sha256:") ? "manifest digest" : "object version"} \`${result.published.pin}\``,
          ]
        : []),
    `- **Size**: ${result.size} bytes, sha256 \`${result.sha256}\``,
    "",
    ...(rendered
      ? [
          `<details><summary>OPA configuration (${markdownText(result.config)})</summary>`,
          "",
          markdownBlock(rendered.text.trimEnd(), rendered.format),
          "</details>",
          "",
        ]
      : []),
  ].join("\n");
  await appendStepSummary(context.env, markdown);
}

export function renderRelease(result: ReleaseResult): string {
  return [
    `released ${result.revision}`,
    `  bundle   ${result.bundle} (${result.size} bytes, sha256 ${result.sha256})`,
    ...(result.checksSkipped.length > 0 ? [`  checks   ${checksRun(result.checksSkipped)}`] : []),
    `  tests    ${summaryLine(result.tests)}${result.tests.coverage === null ? "" : `, coverage ${result.tests.coverage.toFixed(1)}%`}`,
    `  object   ${result.published ? `${result.published.url}${result.published.created ? "" : " (already published)"}${result.published.pin && !result.unpinned ? `, ${result.published.pin.startsWith("sha256:") ? "digest" : "version"} ${result.published.pin}` : ""}` : "not published (dry run)"}`,
    `  config   ${result.config ?? (result.target === "wasm" ? "none for wasm (the embedded engine loads the bundle)" : "not rendered (dry run without a bucket, or on an OCI registry)")}`,
  ].join("\n");
}

/** The `release` command: its flags, help and examples, and how its result is printed. @internal: CLI only, kept out of the .d.ts */
export function defineRelease(program: Command, io: Io): Command {
  return addCheckOptions(
    addConfigOptions(addStoreOptions(addTestOptions(addBuildOptions(program.command("release"))))),
  )
    .description("build → check → test → publish → config, stopping at the first failure")
    .option("--dry-run", "everything but publish")
    .addHelpText(
      "after",
      `
Examples:
  $ policyship release --bucket acme-policies --region eu-west-1
  $ policyship release --dry-run
  $ policyship release --store oci://ghcr.io/acme/policies
  $ policyship release --bucket policies --endpoint http://127.0.0.1:9000 --coverage-threshold 90
  $ policyship release --target wasm --entrypoint authz/allow --bucket acme-policies --region eu-west-1

In GitHub Actions (GITHUB_ACTIONS=true) it writes the outputs revision, key, url, sha256 and
config to $GITHUB_OUTPUT and a summary to $GITHUB_STEP_SUMMARY.`,
    )
    .action(async (_options, command: Command) => {
      const context = await createContext(io, command);
      const result = await release(context);
      print(io, context, result, renderRelease(result));
    });
}
