import { FailureError } from "../../errors.ts";
import { readJson } from "../../http-body.ts";
import { ListingBound } from "../list-bounds.ts";
import type { RegistryClient } from "./client.ts";
import { isTag } from "./reference.ts";

/** Reading what a registry or its token service sends: bounded, and never trusted to be well-formed. */

const MAX_ERROR_BODY = 16 * 1024;
/** A page of up to 1,000 tags is some 50 KB; a registry that sends more is not read further. */
const MAX_TAG_PAGE_BYTES = 16 * 1024 * 1024;

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** JSON from a registry or its token service, read under a cap; undefined if it is not JSON or too long. */
export function readRegistryJson(response: Response, max: number): Promise<unknown> {
  return readJson(response, max, () => new Error("too long")).catch(() => undefined);
}

/** The start of an error answer, for its error codes; the rest is not read. */
export async function readBounded(response: Response): Promise<string> {
  const reader = response.body?.getReader();
  if (!reader) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  while (size < MAX_ERROR_BODY) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.length;
  }
  await reader.cancel().catch(() => {});
  return Buffer.concat(chunks).toString("utf8").slice(0, MAX_ERROR_BODY);
}

/** `Bearer realm="…",service="…",scope="…"` → its scheme and parameters (RFC 7235 auth-params). */
export function parseChallenge(header: string): Challenge | undefined {
  const match = /^\s*([A-Za-z][A-Za-z0-9_-]*)\s*(.*)$/s.exec(header);
  if (!match) return undefined;
  const params: Record<string, string> = Object.create(null);
  for (const param of (match[2] ?? "").matchAll(
    /([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))/g,
  )) {
    params[(param[1] as string).toLowerCase()] =
      param[2] !== undefined ? param[2].replace(/\\(.)/g, "$1") : (param[3] ?? "");
  }
  return { scheme: (match[1] as string).toLowerCase(), params };
}

/**
 * Every tag of the repository that can be a revision, page by page; none when nothing was pushed yet.
 * `firstOf` reads only the first page, of that many tags (doctor's one call).
 */
export async function listTags(client: RegistryClient, firstOf?: number): Promise<string[]> {
  const { registry, repository } = client.reference;
  const tags: string[] = [];
  const bound = new ListingBound(`the tag list of ${registry}/${repository}`);
  let next: string | undefined = client.url(`tags/list?n=${firstOf ?? 1000}`);
  bound.begin(next);
  while (next) {
    const response = await client.send("GET", next, "pull");
    if (response.status === 404) {
      await response.body?.cancel();
      return []; // NAME_UNKNOWN: nothing was pushed yet.
    }
    if (!response.ok) throw await client.refused(response, `listing the tags of ${repository}`);
    const body = (await readRegistryJson(response, MAX_TAG_PAGE_BYTES)) as { tags?: unknown } | undefined;
    if (typeof body !== "object" || body === null) {
      throw new FailureError(
        `${registry} answered the tag list of ${repository} with something that is not JSON of at most ${MAX_TAG_PAGE_BYTES} bytes`,
        "run again; if it persists check the registry",
      );
    }
    const page = Array.isArray(body.tags) ? body.tags : [];
    // RFC 5988 Link: <url>; rel="next"
    const link = /<([^>]+)>\s*;\s*rel="?next"?/.exec(response.headers.get("link") ?? "")?.[1];
    next = link && !firstOf ? client.ownUrl(link, "the next page of tags").toString() : undefined;
    bound.page(page.length, next);
    for (const tag of page) if (typeof tag === "string" && isTag(tag)) tags.push(tag);
  }
  return tags;
}
