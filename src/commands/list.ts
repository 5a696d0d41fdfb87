import type { Command } from "commander";
import { createContext, type Io, print } from "../cli-kit.ts";
import { addStoreOptions, toNumber } from "../cli-options.ts";
import type { Context } from "../context.ts";
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
}

/** Published revisions, newest first, with the commit subject when the local git knows the SHA. */
export async function list(context: Context): Promise<ListedRevision[]> {
  const store = await openStore(context);
  const { listPublished } = await import("../bundle/verify.ts");
  const published = (await listPublished(store, context.settings.prefix, "all")).slice(
    0,
    context.settings.limit,
  );
  const { commitSubjects } = await import("../git.ts");
  const subjects = await commitSubjects(
    context.cwd,
    published.map((o) => o.revision),
  );
  return published.map((o) => ({
    revision: o.revision,
    key: o.key,
    lastModified: o.lastModified?.toISOString(),
    size: o.size,
    subject: subjects.get(o.revision),
    target: o.target,
    ...(o.pin ? { pin: o.pin } : {}),
  }));
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
      ]
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

/** The `list` command: its flags, help and examples, and how its result is printed. */
export function defineList(program: Command, io: Io): Command {
  return addStoreOptions(program.command("list"))
    .description("published revisions, newest first")
    .option("--limit <n>", "how many (default: 20)", toNumber)
    .addHelpText(
      "after",
      "\nExamples:\n  $ policyship list --bucket acme-policies --region eu-west-1 --limit 5 --json\n  $ policyship list --store oci://ghcr.io/acme/policies",
    )
    .action(async (_options, command: Command) => {
      const context = await createContext(io, command);
      const result = await list(context);
      print(io, context, result, renderList(result));
    });
}
