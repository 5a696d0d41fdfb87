import type { Command } from "commander";
import { createContext, type Io, print } from "../cli-kit.ts";
import { addInstanceOptions, addStoreOptions, toNumber } from "../cli-options.ts";
import type { Context } from "../context.ts";
import type { InstanceStatus } from "../opa/instances.ts";
import { printable } from "../printable.ts";
import { openStore } from "../store/open.ts";

export interface ListedRevision {
  revision: string;
  key: string;
  lastModified?: string;
  size: number;
  subject?: string;
  /** rego (what OPA serves) or wasm (what the embedded engine loads): one revision may have both. */
  target?: "rego" | "wasm";
  /** What names the published bytes where the store has such a name: an OCI manifest digest. */
  pin?: string;
  /** With instances set: the URLs of those that run this revision ([] for none). */
  instances?: string[];
}

/** An instance that runs none of the listed revisions: unreachable, no bundle, or a revision not listed. */
export interface UnlistedInstance {
  url: string;
  revision: string | null;
  error: string | null;
}

/**
 * Published revisions, newest first, with the commit subject when the local git knows the SHA. With instances
 * set, each revision names the instances that run it (see listMarked for those that run none).
 */
export async function list(context: Context): Promise<ListedRevision[]> {
  return (await listMarked(context)).revisions;
}

/** list, and the instances that run none of the listed revisions, which are shown as such, never dropped. */
export async function listMarked(
  context: Context,
): Promise<{ revisions: ListedRevision[]; unlisted: UnlistedInstance[] }> {
  const urls = context.settings.instances ?? [];
  // Checked (URLs, the token's way) before the store is opened, then read while it lists.
  let reading: Promise<InstanceStatus[]> = Promise.resolve([]);
  if (urls.length > 0) {
    const { checkOpaTargets, readInstance } = await import("../opa/instances.ts");
    const { token } = checkOpaTargets(urls, context.env);
    reading = Promise.all(urls.map((url) => readInstance(url, context.settings.bundleName, token)));
  }
  const store = await openStore(context);
  const { listPublished } = await import("../bundle/verify.ts");
  const published = (await listPublished(store, context.settings.prefix, "all")).slice(
    0,
    context.settings.limit,
  );
  const instances = await reading;
  const { commitSubjects } = await import("../git.ts");
  const subjects = await commitSubjects(
    context.cwd,
    published.map((o) => o.revision),
  );
  const listed = new Set(published.map((o) => o.revision));
  const unlisted = instances
    .filter((instance) => !instance.revision || !listed.has(instance.revision))
    .map(({ url, revision, error }) => ({ url, revision, error }));
  const running = (revision: string) =>
    instances.filter((instance) => instance.revision === revision).map((instance) => instance.url);
  const revisions = published.map((o) => ({
    revision: o.revision,
    key: o.key,
    lastModified: o.lastModified?.toISOString(),
    size: o.size,
    subject: subjects.get(o.revision),
    target: o.target,
    ...(o.pin ? { pin: o.pin } : {}),
    ...(urls.length > 0 ? { instances: running(o.revision) } : {}),
  }));
  return { revisions, unlisted };
}

/** Why an instance marks none of the listed revisions, in one line (readInstance made OPA's words printable). */
export function describeUnlisted(instance: UnlistedInstance): string {
  if (instance.revision) return `${instance.url} runs ${instance.revision}, which is not among those listed`;
  return `${instance.url}: ${instance.error ?? "no active revision"}`;
}

export function renderList(revisions: ListedRevision[]): string {
  if (revisions.length === 0) return "no published revisions";
  // A target column only once a wasm artifact is published: rego-only listings read as they always have.
  const targets = revisions.some((r) => r.target === "wasm");
  return revisions
    .map((r) =>
      [
        r.revision.padEnd(40),
        ...(targets ? [(r.target ?? "rego").padEnd(4)] : []),
        (r.lastModified ?? "").slice(0, 19).replace("T", " "),
        `${r.size} B`.padStart(10),
        // The store's metadata is whatever its writers put there.
        printable(r.subject ?? "", 200),
        ...(r.instances?.length ? [`← ${r.instances.join(", ")}`] : []),
      ]
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

/** The `list` command: its flags, help and examples, and how its result is printed. @internal: CLI only, kept out of the .d.ts */
export function defineList(program: Command, io: Io): Command {
  return addInstanceOptions(
    addStoreOptions(program.command("list")),
    "an OPA instance whose active revision is marked",
  )
    .description("published revisions, newest first; with --instance, which one each OPA runs")
    .option("--limit <n>", "how many (default: 20)", toNumber)
    .option("--bundle-name <name>", "the bundle the instances report (default: authz)")
    .addHelpText(
      "after",
      `
Examples:
  $ policyship list --bucket acme-policies --region eu-west-1 --limit 5 --json
  $ policyship list --store oci://ghcr.io/acme/policies
  $ policyship list --store oci://ghcr.io/acme/policies --instance http://opa-0:8181 --instance http://opa-1:8181

With instances (--instance, POLICYSHIP_INSTANCES or instances: in policyship.yaml), each revision ends with
← and the instances that run it ("instances" in --json); an instance that is unreachable or runs no listed
revision is a line of its own (on stderr with --json).`,
    )
    .action(async (_options, command: Command) => {
      const context = await createContext(io, command);
      const { revisions, unlisted } = await listMarked(context);
      const notes = unlisted.map(describeUnlisted);
      // --json keeps its document the array it always was; what no revision can show goes to stderr.
      if (context.json) for (const note of notes) context.log.warn(note);
      print(io, context, revisions, [renderList(revisions), ...notes.map((note) => `! ${note}`)].join("\n"));
    });
}
