import type { Command } from "commander";
import { listPublished } from "../bundle/verify.ts";
import { createContext, type Io, print } from "../cli-kit.ts";
import {
  addInstanceOptions,
  addStoreOptions,
  collect,
  takeDeprecatedOpaUrls,
  toNumber,
} from "../cli-options.ts";
import type { Context } from "../context.ts";
import { FailureError, UserError } from "../errors.ts";
import { checkOpaTargets, readActiveRevisions, readInstance } from "../opa/instances.ts";
import { printable } from "../printable.ts";
import { openStore } from "../store/open.ts";
import type { Store, StoredObject } from "../store/store.ts";
import { resolveRevisionArgument } from "./verify.ts";

export interface PrunedRevision {
  revision: string;
  key: string;
  lastModified?: string;
  /** OCI: kept revisions whose tags resolve to the same manifest; only this tag is removed, never the manifest. */
  sharesManifestWith?: string[];
}

/** What prune needs of an OCI registry beyond the Store interface (see store/oci/oci.ts). */
interface TagStore extends Store {
  manifestDigestOf(key: string): Promise<string | undefined>;
  deleteTag(key: string): Promise<boolean>;
}

const isTagStore = (store: Store): store is TagStore =>
  typeof (store as Partial<TagStore>).manifestDigestOf === "function" &&
  typeof (store as Partial<TagStore>).deleteTag === "function";

const UNIT_MS = { h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 } as const;

/** --older-than in hours, days or weeks (the settings schema refuses anything else, e.g. 6m). */
export function parseAge(text: string | undefined): number {
  if (!text) return 0;
  const match = /^(\d+(?:\.\d+)?)([hdw])$/.exec(text);
  if (!match) {
    throw new UserError(
      `--older-than ${text} has no unambiguous unit`,
      "write it in hours, days or weeks, e.g. 12h, 90d or 26w",
    );
  }
  return Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
}

const MANIFEST_CONCURRENCY = 8;

/**
 * On a registry, deleting a manifest by digest removes every tag that resolves to it. Each revision to delete
 * whose manifest a kept tag still resolves to is marked, so only its tag goes.
 */
async function markSharedManifests(store: TagStore, result: PruneResult) {
  // A tag left alone (a release name put on a published manifest) goes with its manifest too.
  const staying = [...result.keep, ...result.notPublished];
  const all = [...result.delete, ...staying];
  const digests = new Map<string, string | undefined>();
  for (let i = 0; i < all.length; i += MANIFEST_CONCURRENCY) {
    const batch = all.slice(i, i + MANIFEST_CONCURRENCY);
    const found = await Promise.all(batch.map((entry) => store.manifestDigestOf(entry.key)));
    for (const [index, entry] of batch.entries()) digests.set(entry.key, found[index]);
  }
  for (const entry of result.delete) {
    const digest = digests.get(entry.key);
    if (!digest) continue;
    const kept = staying.filter((other) => digests.get(other.key) === digest).map((other) => other.revision);
    if (kept.length > 0) entry.sharesManifestWith = kept;
  }
}

/**
 * Published by policyship: its metadata (S3 object metadata, the directory's `.meta.json`, OCI annotations)
 * names this same revision and a sha256, as publish writes them. Anything else under the prefix is someone
 * else's object, which prune never counts, plans or deletes.
 */
function isPublishedBy(object: StoredObject | undefined, revision: string): boolean {
  const metadata = object?.metadata;
  return (
    metadata?.revision === revision &&
    typeof metadata.sha256 === "string" &&
    /^[0-9a-f]{64}$/.test(metadata.sha256)
  );
}

/** Each listed object with its metadata: OCI lists it already; S3 and directories answer it per object. */
async function withMetadata<T extends StoredObject>(store: Store, objects: T[]): Promise<T[]> {
  const read: T[] = [];
  for (let i = 0; i < objects.length; i += MANIFEST_CONCURRENCY) {
    const batch = objects.slice(i, i + MANIFEST_CONCURRENCY);
    const heads = await Promise.all(
      batch.map((object) => (Object.keys(object.metadata).length > 0 ? object : store.head(object.key))),
    );
    for (const [index, object] of batch.entries())
      read.push({ ...object, metadata: heads[index]?.metadata ?? {} });
  }
  return read;
}

/** Read again right before its delete: an object replaced since the plan by one policyship did not publish stays. */
async function checkStillPublished(store: Store, entry: PrunedRevision, deleted: number) {
  if (isPublishedBy(await store.head(entry.key), entry.revision)) return;
  throw new FailureError(
    `${store.urlOf(entry.key)} no longer carries the metadata policyship publishes for ${entry.revision}, so it stays; ${deleted === 0 ? "nothing deleted" : `${deleted} deleted before it`}`,
    "look at who wrote it, then run prune again",
    { revision: entry.revision },
  );
}

/** Shared manifests first, tag by tag, so a registry that cannot delete a tag stops prune before anything is gone. */
async function deleteAll(context: Context, store: Store, entries: PrunedRevision[]) {
  const shared = entries.filter((entry) => entry.sharesManifestWith);
  let deleted = 0;
  for (const entry of shared) {
    await checkStillPublished(store, entry, deleted);
    context.log.info(
      `deleting the tag of ${entry.revision} (its manifest stays for ${entry.sharesManifestWith?.join(", ")})`,
    );
    if (!(await (store as TagStore).deleteTag(entry.key))) {
      throw new FailureError(
        `${store.urlOf(entry.key)} resolves to the same manifest as ${entry.sharesManifestWith?.join(", ")}, which ${entry.sharesManifestWith?.length === 1 ? "stays" : "stay"}, and the registry cannot delete a tag alone; ${deleted === 0 ? "nothing deleted" : `${deleted} deleted before it`}`,
        `--protect ${entry.revision} too, or delete the tag in the registry itself`,
        { revision: entry.revision, sharesManifestWith: entry.sharesManifestWith },
      );
    }
    deleted++;
  }
  for (const entry of entries) {
    if (entry.sharesManifestWith) continue;
    await checkStillPublished(store, entry, deleted);
    context.log.info(`deleting ${store.urlOf(entry.key)}`);
    await store.delete(entry.key);
    deleted++;
  }
}

export interface PruneResult {
  /** false without --yes: the plan only. */
  deleted: boolean;
  delete: PrunedRevision[];
  keep: (PrunedRevision & { reason: "newest" | "protected" | "active" | "younger" })[];
  /** Objects under the prefix that policyship did not publish: never counted, planned or deleted. */
  notPublished: { revision: string; key: string; url: string }[];
}

/**
 * Trims published revisions without breaking a rollback: never the newest --keep, a --protect'ed one, one an
 * instance runs (the instances setting unless `instances` names others), or one younger than --older-than.
 * Lists the plan; deletes only with --yes.
 */
export async function prune(
  context: Context,
  instances: string[] = context.settings.instances ?? [],
): Promise<PruneResult> {
  const { settings } = context;
  if (settings.keep === undefined) {
    throw new UserError(
      "prune needs --keep <n>",
      "say how many of the newest revisions always stay, e.g. --keep 20",
    );
  }
  const minimumAgeMs = parseAge(settings.olderThan);
  const { token } = checkOpaTargets(instances, context.env);
  const store = await openStore(context);
  // Listed once, before anything is deleted: a revision published meanwhile is not in the list, so it stays.
  const listed = await withMetadata(store, await listPublished(store, settings.prefix));
  const published = listed.filter((object) => isPublishedBy(object, object.revision));
  const notPublished = listed
    .filter((object) => !isPublishedBy(object, object.revision))
    .map((object) => ({ revision: object.revision, key: object.key, url: store.urlOf(object.key) }));
  // Everything listed may be protected or run: what is not policyship's stays anyway.
  const known = new Set(listed.map((object) => object.revision));
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
    // A short SHA or a tag is not guessed into a full revision: the guess could delete what the instance runs.
    if (!known.has(instance.revision)) {
      throw new FailureError(
        `${url} runs ${JSON.stringify(printable(instance.revision, 200))}, which is not a full revision published in ${store.location}; nothing deleted`,
        "--protect the revision it runs (a short SHA or tag is resolved with git), or leave out that instance",
        { url, revision: instance.revision },
      );
    }
    active.add(instance.revision);
    // Every other bundle the instance runs may come from this store too (a canary, a second app's policy):
    // each revision it reports that is published here stays, and so does each one a short SHA could name.
    for (const [name, revision] of await readActiveRevisions(url, token)) {
      if (name === settings.bundleName) continue;
      for (const published of known) {
        if (published === revision || (/^[0-9a-f]{7,39}$/.test(revision) && published.startsWith(revision)))
          active.add(published);
      }
    }
  }
  const now = Date.now();
  const result: PruneResult = { deleted: settings.yes, delete: [], keep: [], notPublished };
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
  if (isTagStore(store) && result.delete.length > 0) await markSharedManifests(store, result);
  if (settings.yes) await deleteAll(context, store, result.delete);
  return result;
}

export function renderPrune(result: PruneResult): string {
  const verb = result.deleted ? "deleted" : "would delete";
  const lines = result.delete.map((entry) =>
    `${verb}  ${entry.revision}  ${entry.lastModified ?? ""}${entry.sharesManifestWith ? `  (the tag only: its manifest stays for ${entry.sharesManifestWith.join(", ")})` : ""}`.trimEnd(),
  );
  for (const entry of result.keep) lines.push(`kept          ${entry.revision}  (${entry.reason})`);
  for (const entry of result.notPublished)
    lines.push(
      `left alone    ${entry.url}  (not published by policyship: no metadata naming its revision and a sha256)`,
    );
  if (!result.deleted && result.delete.length > 0)
    lines.push("", "nothing was deleted: pass --yes to delete these");
  if (result.delete.length === 0) lines.push("nothing to delete");
  return lines.join("\n");
}

/** The `prune` command: its flags, help and examples, and how its result is printed. @internal: CLI only, kept out of the .d.ts */
export function definePrune(program: Command, io: Io): Command {
  return addInstanceOptions(
    addStoreOptions(program.command("prune")),
    "an OPA instance whose active revision must stay",
  )
    .description("delete old published revisions, never the newest --keep, protected, active or young ones")
    .option("--keep <n>", "how many of the newest revisions always stay (required)", toNumber)
    .option("--older-than <age>", "only revisions older than this, in h, d or w, e.g. 90d")
    .option("--protect <rev>", "a revision that always stays (repeatable)", collect)
    .option("--yes", "delete; without it prune only lists what it would delete")
    .option("--bundle-name <name>", "the bundle the instances report (default: authz)")
    .addHelpText(
      "after",
      `
Examples:
  $ policyship prune --keep 20 --bucket acme-policies --region eu-west-1
  $ policyship prune --keep 20 --older-than 90d --protect v1.4.2 --instance http://opa-0:8181 --yes
  $ policyship prune --keep 50 --store oci://ghcr.io/acme/policies

The instances whose active revisions must stay come from --instance (repeatable), else
POLICYSHIP_INSTANCES, else instances: in policyship.yaml; --opa <url> still names one this version, with a
deprecation notice on stderr. A token for them goes in POLICYSHIP_OPA_TOKEN.`,
    )
    .action(async (_options, command: Command) => {
      takeDeprecatedOpaUrls(command, (line) => io.stderr(`${line}\n`));
      const context = await createContext(io, command);
      const result = await prune({ ...context, settings: { ...context.settings, opa: undefined } });
      print(io, context, result, renderPrune(result));
    });
}
