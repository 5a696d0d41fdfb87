import type { Command } from "commander";
import { createContext, type Io, opaFlags, print } from "../cli-kit.ts";
import type { Context } from "../context.ts";
import { FailureError, UserError } from "../errors.ts";
import { appendStepSummary, inGitHubActions, markdownTable } from "../github.ts";
import { readCapped } from "../http-body.ts";
import { printable } from "../printable.ts";
import { resolveRevisionArgument } from "./verify.ts";

export interface InstanceStatus {
  url: string;
  /** The active revision of the bundle; null when none is active or OPA cannot say. */
  revision: string | null;
  lastDownload: string | null;
  lastActivation: string | null;
  /** The last bundle error OPA reports, or why the instance could not be read. */
  error: string | null;
  /** With --expect: this instance runs that revision. */
  ok?: boolean;
}

export interface StatusResult {
  bundle: string;
  expect: string | null;
  instances: InstanceStatus[];
  /** Every instance runs the expected revision (true without --expect when all answered). */
  converged: boolean;
  waitedMs: number;
}

const REQUEST_TIMEOUT_MS = 5_000;
/** /v1/status of an OPA with many bundles is a few kilobytes; this is far above and still bounded. */
const MAX_RESPONSE_BYTES = 4 * 1024 * 1024;
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

/** One bundle in OPA's /v1/status, as it might arrive: nothing in it is trusted to have its type. */
interface BundleStatus {
  active_revision?: unknown;
  last_successful_download?: unknown;
  last_successful_activation?: unknown;
  code?: unknown;
  message?: unknown;
  errors?: { message?: unknown }[];
}

class TooLarge extends Error {}

async function getJson(url: string): Promise<{ status: number; body: unknown }> {
  const response = await fetch(url, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  const bytes = await readCapped(
    response,
    MAX_RESPONSE_BYTES,
    () => new TooLarge(`answered more than ${MAX_RESPONSE_BYTES} bytes`),
  );
  let body: unknown;
  try {
    body = JSON.parse(bytes.toString("utf8"));
  } catch {
    body = undefined;
  }
  return { status: response.status, body };
}

/** What OPA says is shown, never obeyed: a string made printable, anything else nothing. */
const text = (value: unknown, max = 2_000) =>
  typeof value === "string" && value !== "" ? printable(value, max) : null;
const real = (time: unknown) => {
  const shown = text(time, 100);
  return shown && !shown.startsWith("0001-") ? shown : null;
};

function bundleError(state: BundleStatus): string | null {
  const code = text(state.code);
  if (!code) return null;
  const details = Array.isArray(state.errors)
    ? state.errors.map((entry) => text(entry?.message)).filter(Boolean)
    : [];
  return [`${code}: ${text(state.message) ?? ""}`.trim(), details.length ? `(${details.join("; ")})` : ""]
    .filter(Boolean)
    .join(" ");
}

/** One instance: /v1/status, or /health?bundles=true where the status plugin is off. */
export async function readInstance(url: string, bundle: string): Promise<InstanceStatus> {
  const base = url.replace(/\/+$/, "");
  const blank: InstanceStatus = {
    url,
    revision: null,
    lastDownload: null,
    lastActivation: null,
    error: null,
  };
  try {
    const status = await getJson(`${base}/v1/status`);
    const bundles = (status.body as { result?: { bundles?: Record<string, BundleStatus> } })?.result?.bundles;
    if (status.status === 200 && bundles) {
      const state = Object.hasOwn(bundles, bundle) ? bundles[bundle] : undefined;
      if (!state || typeof state !== "object")
        return {
          ...blank,
          error: `no bundle named ${bundle} (it has: ${printable(Object.keys(bundles).join(", "), 300) || "none"})`,
        };
      return {
        url,
        revision: text(state.active_revision, 300),
        lastDownload: real(state.last_successful_download),
        lastActivation: real(state.last_successful_activation),
        error: bundleError(state),
      };
    }
    // The status plugin is off: health says whether every bundle is active, though not which revision.
    const health = await getJson(`${base}/health?bundles=true`);
    return {
      ...blank,
      error:
        health.status === 200
          ? "status plugin off: bundles are active, revision unknown (enable status in the OPA config)"
          : `status plugin off and bundles not active (GET /health?bundles=true answered ${health.status})`,
    };
  } catch (error) {
    if (error instanceof TooLarge) return { ...blank, error: error.message };
    const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).name;
    return { ...blank, error: `unreachable (${printable(cause, 100)})` };
  }
}

/**
 * Each --opa is an http(s) URL without user:password, which would be printed with every line and sent
 * nowhere (fetch refuses it); the refusal does not repeat the password.
 */
export function checkOpaUrls(urls: readonly string[]) {
  for (const url of urls) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(url);
    } catch {}
    if (parsed && (parsed.username || parsed.password)) {
      throw new UserError(
        `--opa ${parsed.protocol}//***@${parsed.host} carries credentials in the URL`,
        "leave them out: status reads /v1/status and /health, which OPA serves without a token by default",
      );
    }
    if (!parsed || !/^https?:$/.test(parsed.protocol) || !parsed.host)
      throw new UserError(
        `--opa ${printable(url, 200)} is not an http(s) URL`,
        "pass OPA's address, e.g. http://10.0.0.5:8181",
      );
  }
}

/**
 * Reads every OPA's bundle status; with --expect, waits (up to --wait) until every one runs that revision,
 * and fails naming each laggard and its error.
 */
export async function status(context: Context, urls: string[]): Promise<StatusResult> {
  if (urls.length === 0) throw new UserError("no OPA instance given", "pass --opa <url> (repeatable)");
  checkOpaUrls(urls);
  const { settings } = context;
  const bundle = settings.statusBundle ?? settings.bundleName;
  const expect = settings.expect ? await resolveRevisionArgument(context, settings.expect) : null;
  const wait = parseDuration(settings.wait);
  const started = Date.now();
  let instances: InstanceStatus[];
  for (;;) {
    instances = await Promise.all(urls.map((url) => readInstance(url, bundle)));
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
      : instances.every((instance) => !instance.error),
    waitedMs: Date.now() - started,
  };
  if (inGitHubActions(context.env)) await appendStepSummary(context.env, renderStatusMarkdown(result));
  return result;
}

export function assertConverged(result: StatusResult) {
  if (!result.expect || result.converged) return;
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

/** The `status` command: its flags, help and examples, and how its result is printed. */
export function defineStatus(program: Command, io: Io): Command {
  return program
    .command("status")
    .description("read each OPA's bundle status; with --expect, wait until every instance runs that revision")
    .option("--expect <rev>", "the revision every instance must run (full or short SHA, tag, branch)")
    .option("--bundle <name>", "the bundle to read (default: authz)")
    .option("--wait <duration>", "with --expect: how long to keep polling, e.g. 90s or 5m (default: 0)")
    .addHelpText(
      "after",
      `
Examples:
  $ policyship status --opa http://10.0.0.5:8181 --opa http://10.0.0.6:8181
  $ policyship status --opa http://opa-0:8181 --opa http://opa-1:8181 --expect 3f2a9c1 --wait 5m
  $ policyship status --opa http://127.0.0.1:8181 --expect HEAD --json

--opa is repeatable here and names OPA instances. With --expect, exit 0 as soon as every instance runs
that revision, 1 (naming each laggard and its error) when --wait runs out.`,
    )
    .action(async (options: { bundle?: string }, command: Command) => {
      const context = await createContext(io, command);
      const result = await status(
        { ...context, settings: { ...context.settings, statusBundle: options.bundle, opa: undefined } },
        opaFlags(command),
      );
      print(io, context, result, renderStatus(result));
      assertConverged(result);
    });
}
