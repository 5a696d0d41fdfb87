import type { Context } from "../context.ts";
import { openStore } from "../store/open.ts";

export interface ListedRevision {
  revision: string;
  key: string;
  lastModified?: string;
  size: number;
  subject?: string;
}

/** Published revisions, newest first, with the commit subject when the local git knows the SHA. */
export async function list(context: Context): Promise<ListedRevision[]> {
  const store = await openStore(context);
  const { listPublished } = await import("../bundle/verify.ts");
  const published = (await listPublished(store, context.settings.prefix)).slice(0, context.settings.limit);
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
  }));
}

export function renderList(revisions: ListedRevision[]): string {
  if (revisions.length === 0) return "no published revisions";
  return revisions
    .map((r) =>
      [
        r.revision.padEnd(40),
        (r.lastModified ?? "").slice(0, 19).replace("T", " "),
        `${r.size} B`.padStart(10),
        r.subject ?? "",
      ]
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}
