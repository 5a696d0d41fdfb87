import type { Command } from "commander";
import { createContext, type Io, print } from "../cli-kit.ts";
import { addInstanceOptions, takeDeprecatedOpaUrls } from "../cli-options.ts";
import type { Context } from "../context.ts";
import { FailureError, UserError } from "../errors.ts";
import { appendStepSummary, inGitHubActions, markdownTable } from "../github.ts";
import { checkOpaTargets, type InstanceStatus, readInstance } from "../opa/instances.ts";
import { resolveRevisionArgument } from "./verify.ts";

export interface StatusResult {
  bundle: string;
  expect: string | null;
  instances: InstanceStatus[];
  /** Every instance runs the expected revision (true without --expect when all answered). */
  converged: boolean;
  waitedMs: number;
}

const POLL_MS = 1_000;

/** "90s", "5m", "1h", "500ms", or plain seconds. */
export function parseDuration(text: string | undefined): number {
  if (!text) return 0;
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!match) throw new UserError(`${text} is not a duration`, "write it like 90s, 5m, 1h or 90d");
  const scale = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[
    (match[2] ?? "s") as "ms" | "s" | "m" | "h" | "d"
  ];
  return Number(match[1]) * scale;
}

/** What to do when no instance is named, in any of the three places a setting can be. */
export const NO_INSTANCE_HINT =
  "pass --instance <url> (repeatable), or set instances: in policyship.yaml or POLICYSHIP_INSTANCES=<url>,<url>";

/**
 * Reads every OPA's bundle status (the instances setting unless `urls` names others); with --expect, waits (up
 * to --wait) until every one runs that revision, and fails naming each laggard and its error.
 */
export async function status(
  context: Context,
  urls: string[] = context.settings.instances ?? [],
): Promise<StatusResult> {
  if (urls.length === 0) throw new UserError("no OPA instance given", NO_INSTANCE_HINT);
  const { token } = checkOpaTargets(urls, context.env);
  const { settings } = context;
  const bundle = settings.statusBundle ?? settings.bundleName;
  const expect = settings.expect ? await resolveRevisionArgument(context, settings.expect) : null;
  const wait = parseDuration(settings.wait);
  const started = Date.now();
  let instances: InstanceStatus[];
  for (;;) {
    instances = await Promise.all(urls.map((url) => readInstance(url, bundle, token)));
    if (expect) for (const instance of instances) instance.ok = instance.revision === expect;
    const done = expect ? instances.every((instance) => instance.ok) : true;
    if (done || Date.now() - started >= wait) break;
    context.log.info(
      `waiting for ${instances.filter((i) => !i.ok).length} of ${urls.length} instances to run ${expect}`,
    );
    await new Promise((resolve) => setTimeout(resolve, Math.min(POLL_MS, wait - (Date.now() - started))));
  }
  const result: StatusResult = {
    bundle,
    expect,
    instances,
    converged: expect
      ? instances.every((instance) => instance.ok)
      : instances.every((instance) => !instance.error && Boolean(instance.revision)),
    waitedMs: Date.now() - started,
  };
  if (inGitHubActions(context.env)) await appendStepSummary(context.env, renderStatusMarkdown(result));
  return result;
}

export function assertConverged(result: StatusResult) {
  if (result.converged) return;
  if (!result.expect) {
    // Without --expect, an instance that cannot answer or runs no bundle is still a failure: nothing
    // could be read, or nothing is enforced.
    const broken = result.instances
      .filter((instance) => instance.error || !instance.revision)
      .map((instance) => `${instance.url}: ${instance.error ?? "no active revision"}`);
    throw new FailureError(
      `${broken.length} of ${result.instances.length} OPA instances report no active revision: ${broken.join("; ")}`,
      "check that each OPA is up and its bundle configuration loads a published revision",
      result,
    );
  }
  const laggards = result.instances
    .filter((instance) => !instance.ok)
    .map(
      (instance) =>
        `${instance.url} runs ${instance.revision ?? "no revision"}${instance.error ? ` (${instance.error})` : ""}`,
    );
  throw new FailureError(
    `${laggards.length} of ${result.instances.length} OPA instances do not run ${result.expect}: ${laggards.join("; ")}`,
    "fix the laggards' configuration or bundle, or wait longer with --wait",
    result,
  );
}

export function renderStatus(result: StatusResult): string {
  return result.instances
    .map((instance) => {
      const mark = result.expect ? (instance.ok ? "✓" : "✗") : instance.error ? "!" : "·";
      const times = [
        instance.lastDownload ? `downloaded ${instance.lastDownload}` : null,
        instance.lastActivation ? `activated ${instance.lastActivation}` : null,
      ].filter(Boolean);
      return [
        `${mark} ${instance.url}`,
        instance.revision ?? "(no active revision)",
        ...times,
        instance.error ? `error: ${instance.error}` : null,
      ]
        .filter(Boolean)
        .join("  ");
    })
    .join("\n");
}

function renderStatusMarkdown(result: StatusResult): string {
  const title = result.expect
    ? `## policyship status: rollout of \`${result.expect}\``
    : "## policyship status";
  const rows = result.instances.map((i) => [
    result.expect ? (i.ok ? "✓" : "✗") : "",
    i.url,
    i.revision ?? "—",
    i.lastActivation ?? "—",
    i.error ?? "",
  ]);
  return `${title}\n\n${markdownTable(["", "instance", "active revision", "activated", "error"], rows)}\n`;
}

/** The `status` command: its flags, help and examples, and how its result is printed. @internal: CLI only, kept out of the .d.ts */
export function defineStatus(program: Command, io: Io): Command {
  return addInstanceOptions(program.command("status"), "an OPA instance to read, e.g. http://10.0.0.5:8181")
    .description("read each OPA's bundle status; with --expect, wait until every instance runs that revision")
    .option("--expect <rev>", "the revision every instance must run (full or short SHA, tag, branch)")
    .option("--bundle <name>", "the bundle to read (default: authz)")
    .option("--wait <duration>", "with --expect: how long to keep polling, e.g. 90s or 5m (default: 0)")
    .addHelpText(
      "after",
      `
Examples:
  $ policyship status --instance http://10.0.0.5:8181 --instance http://10.0.0.6:8181
  $ policyship status --instance http://opa-0:8181 --instance http://opa-1:8181 --expect 3f2a9c1 --wait 5m
  $ POLICYSHIP_INSTANCES=http://opa-0:8181,http://opa-1:8181 policyship status --expect HEAD --json

The instances come from --instance, else POLICYSHIP_INSTANCES (comma-separated), else instances: in
policyship.yaml. --opa <url> still names one this version, with a deprecation notice on stderr. With
--expect, exit 0 as soon as every instance runs that revision, 1 (naming each laggard and its error) when
--wait runs out. Without --expect, exit 1 when an instance is unreachable or runs no bundle. An OPA
started with --authentication=token gets the token in POLICYSHIP_OPA_TOKEN (over HTTPS, or to this machine).`,
    )
    .action(async (options: { bundle?: string }, command: Command) => {
      takeDeprecatedOpaUrls(command, (line) => io.stderr(`${line}\n`));
      const context = await createContext(io, command);
      const result = await status({
        ...context,
        settings: { ...context.settings, statusBundle: options.bundle, opa: undefined },
      });
      print(io, context, result, renderStatus(result));
      assertConverged(result);
    });
}
