import { createHash } from "node:crypto";
import { FailureError } from "../errors.ts";
import { printable } from "../printable.ts";

/**
 * A listing a store pages through ends: a server that keeps answering "there is more" (S3 IsTruncated, a
 * registry's Link rel="next") would otherwise grow memory until the process dies. Far above any real store:
 * a million revisions, and pages enough for them at a hundred per page.
 */
export const MAX_LISTED_ENTRIES = 1_000_000;
export const MAX_LIST_PAGES = 10_000;

export interface ListLimits {
  maxEntries: number;
  maxPages: number;
}

const DEFAULT_LIST_LIMITS: ListLimits = { maxEntries: MAX_LISTED_ENTRIES, maxPages: MAX_LIST_PAGES };

/** Counts the pages and entries of one listing of `where`, and refuses one that does not end. */
export class ListingBound {
  private pages = 0;
  private entries = 0;
  private readonly seen = new Set<string>();

  constructor(
    private readonly where: string,
    private readonly limits: ListLimits = DEFAULT_LIST_LIMITS,
  ) {}

  /** The first page's own address, so a next link back to it counts as handed back again. */
  begin(first: string): void {
    this.seen.add(createHash("sha256").update(first).digest("base64"));
  }

  /** After a page of `count` entries; `next` is the continuation the server handed back, if any. */
  page(count: number, next?: string): void {
    this.pages++;
    this.add(count);
    if (next === undefined) return;
    // Digests, not the tokens: a server picks their length.
    const seen = createHash("sha256").update(next).digest("base64");
    if (this.seen.has(seen)) {
      throw new FailureError(
        `${this.where} handed back a continuation it had already sent (${printable(next, 100)}), so its listing never ends`,
        "check the store: it is not answering as S3 or a registry does",
      );
    }
    this.seen.add(seen);
    if (this.pages >= this.limits.maxPages) {
      throw new FailureError(
        `${this.where} was still listing after ${this.limits.maxPages} pages`,
        "check the store: a real one ends its listing long before that",
      );
    }
  }

  /** Entries outside pages (a directory read entry by entry). */
  add(count: number): void {
    this.entries += count;
    if (this.entries > this.limits.maxEntries) {
      throw new FailureError(
        `${this.where} lists more than ${this.limits.maxEntries} entries`,
        "check the store: a real one ends its listing long before that",
      );
    }
  }
}
