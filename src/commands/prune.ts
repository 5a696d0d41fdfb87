import type { Command } from "commander";
import { listPublished } from "../bundle/verify.ts";
import { createContext, type Io, opaFlags, print } from "../cli-kit.ts";
import { addStoreOptions, collect, toNumber } from "../cli-options.ts";
import type { Context } from "../context.ts";
import { FailureError, UserError } from "../errors.ts";
import { checkOpaTargets, readInstance } from "../opa/instances.ts";
import { openStore } from "../store/open.ts";
import { parseDuration } from "./status.ts";
import { resolveRevisionArgument } from "./verify.ts";

export interface PrunedRevision {
  revision: string;
  key: string;
  lastModified?: string;
}

export interface PruneResult {
  /** false without --yes: the plan only. */
  deleted: boolean;
  delete: PrunedRevision[];
  keep: (PrunedRevision & { reason: "newest" | "protected" | "active" | "younger" })[];
}

/**
 * Trims published revisions without breaking a rollback: never the newest --keep, a --protect'ed one, one an
 * --opa instance runs, or one younger than --older-than. Lists the plan; deletes only with --yes.
 */
export async function prune(context: Context, instances: string[]): Promise<PruneResult> {
  const { settings } = context;
  if (settings.keep === undefined) {
    throw new UserError(
      "prune needs --keep <n>",
      "say how many of the newest revisions always stay, e.g. --keep 20",
    );
  }
  const minimumAgeMs = parseDuration(settings.olderThan);
  const { token } = checkOpaTargets(instances, context.env);
  const store = await openStore(context);
  // Listed once, before anything is deleted: a revision published meanwhile is not in the list, so it stays.
  const published = await listPublished(store, settings.prefix);
  const known = new Set(published.map((object) => object.revision));
  const protectedRevisions = new Set<string>();
  for (const ref of settings.protect) {
    const revision = await resolveRevisionArgument(context, ref);
    if (!known.has(revision)) {
      throw new UserError(
        `--protect ${ref} is not a published revision`,
        "name a revision that policyship list shows",
      );
    }
    protectedRevisions.add(revision);
  }
  const active = new Set<string>();
  for (const url of instances) {
    const instance = await readInstance(url, settings.bundleName, token);
    if (!instance.revision) {
      throw new FailureError(
        `cannot tell which revision ${url} runs (${instance.error ?? "no active revision"}); nothing deleted`,
        "fix or leave out that instance, or --protect what it runs",
      );
    }
    active.add(instance.revision);
  }
  const now = Date.now();
  const result: PruneResult = { deleted: settings.yes, delete: [], keep: [] };
  for (const [index, object] of published.entries()) {
    const entry = {
      revision: object.revision,
      key: object.key,
      lastModified: object.lastModified?.toISOString(),
    };
    const age = now - (object.lastModified?.getTime() ?? now);
    if (index < settings.keep) result.keep.push({ ...entry, reason: "newest" });
    else if (protectedRevisions.has(object.revision)) result.keep.push({ ...entry, reason: "protected" });
    else if (active.has(object.revision)) result.keep.push({ ...entry, reason: "active" });
    else if (age < minimumAgeMs) result.keep.push({ ...entry, reason: "younger" });
    else result.delete.push(entry);
  }
  if (settings.yes) {
    for (const entry of result.delete) {
      context.log.info(`deleting ${store.urlOf(entry.key)}`);
      await store.delete(entry.key);
    }
  }
  return result;
}

export function renderPrune(result: PruneResult): string {
  const verb = result.deleted ? "deleted" : "would delete";
  const lines = result.delete.map((entry) =>
    `${verb}  ${entry.revision}  ${entry.lastModified ?? ""}`.trimEnd(),
  );
  for (const entry of result.keep) lines.push(`kept          ${entry.revision}  (${entry.reason})`);
  if (!result.deleted && result.delete.length > 0)
    lines.push("", "nothing was deleted: pass --yes to delete these");
  if (result.delete.length === 0) lines.push("nothing to delete");
  return lines.join("\n");
}

/** The `prune` command: its flags, help and examples, and how its result is printed. */
export function definePrune(program: Command, io: Io): Command {
  return addStoreOptions(program.command("prune"))
    .description("delete old published revisions, never the newest --keep, protected, active or young ones")
    .option("--keep <n>", "how many of the newest revisions always stay (required)", toNumber)
    .option("--older-than <duration>", "only revisions older than this, e.g. 90d")
    .option("--protect <rev>", "a revision that always stays (repeatable)", collect)
    .option("--yes", "delete; without it prune only lists what it would delete")
    .option("--bundle-name <name>", "the bundle --opa instances report (default: authz)")
    .addHelpText(
      "after",
      `
Examples:
  $ policyship prune --keep 20 --bucket acme-policies --region eu-west-1
  $ policyship prune --keep 20 --older-than 90d --protect v1.4.2 --opa http://opa-0:8181 --yes
  $ policyship prune --keep 50 --store oci://ghcr.io/acme/policies

--opa (repeatable) names OPA instances whose active revisions must stay (a token for them goes in
POLICYSHIP_OPA_TOKEN).`,
    )
    .action(async (_options, command: Command) => {
      const context = await createContext(io, command);
      const result = await prune(
        { ...context, settings: { ...context.settings, opa: undefined } },
        opaFlags(command),
      );
      print(io, context, result, renderPrune(result));
    });
}
