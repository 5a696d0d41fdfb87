import { mkdtemp, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { FailureError } from "../../src/errors.ts";
import { DirectoryStore } from "../../src/store/directory.ts";
import { ListingBound, MAX_LIST_PAGES, MAX_LISTED_ENTRIES } from "../../src/store/list-bounds.ts";
import { S3Store } from "../../src/store/s3.ts";
import { serversClosedAfterEach } from "../helpers/serve.ts";

const serve = serversClosedAfterEach();
const LIMITS = { maxEntries: 500, maxPages: 20 };

/** A loopback "S3" whose every ListObjectsV2 page says it is truncated and hands back a fresh token. */
async function endlessS3(keysPerPage: number) {
  let requests = 0;
  const endpoint = await serve((_request, response) => {
    requests++;
    const contents = Array.from(
      { length: keysPerPage },
      (_, i) =>
        `<Contents><Key>r${requests}-${i}.tar.gz</Key><LastModified>2025-01-01T00:00:00.000Z</LastModified><Size>1</Size></Contents>`,
    ).join("");
    response.writeHead(200, { "content-type": "application/xml" });
    response.end(
      `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>bkt</Name><KeyCount>${keysPerPage}</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated><NextContinuationToken>token-${requests}</NextContinuationToken>${contents}</ListBucketResult>`,
    );
  });
  const store = new S3Store({
    bucket: "bkt",
    region: "us-east-1",
    endpoint,
    forcePathStyle: true,
    listLimits: LIMITS,
  });
  // The SDK reads credentials from the environment; the fake does not check them.
  process.env.AWS_ACCESS_KEY_ID ??= "test";
  process.env.AWS_SECRET_ACCESS_KEY ??= "test-secret";
  return { store, requests: () => requests };
}

describe("listings end", () => {
  it("the defaults are generous: a million entries, ten thousand pages", () => {
    expect(MAX_LISTED_ENTRIES).toBe(1_000_000);
    expect(MAX_LIST_PAGES).toBe(10_000);
  });

  it("an S3 endpoint that is always truncated with fresh tokens is cut off at the entry cap", async () => {
    const { store, requests } = await endlessS3(100);
    await expect(store.list("")).rejects.toThrow(/^s3:\/\/bkt\/ lists more than 500 entries$/);
    expect(requests()).toBe(6);
  });

  it("an S3 endpoint that pages forever with empty pages is cut off at the page cap", async () => {
    const { store, requests } = await endlessS3(0);
    const failure = await store.list("").catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(FailureError);
    expect((failure as Error).message).toBe("s3://bkt/ was still listing after 20 pages");
    expect(requests()).toBe(20);
  });

  it("a directory with more names than the cap is refused, not loaded", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "policyship-list-bounds-"));
    await Promise.all(Array.from({ length: 30 }, (_, i) => writeFile(path.join(dir, `r${i}.tar.gz`), "x")));
    const small = new DirectoryStore(dir, undefined, { maxEntries: 29, maxPages: 1 });
    await expect(small.list("")).rejects.toThrow(/lists more than 29 entries/);
    expect(await new DirectoryStore(dir, undefined, { maxEntries: 30, maxPages: 1 }).list("")).toHaveLength(
      30,
    );
  });

  it("a continuation handed back twice, or the first page's address as next, is refused", () => {
    const bound = new ListingBound("oci://registry/acme");
    bound.begin("/v2/acme/tags/list?n=1000");
    expect(() => bound.page(1, "/v2/acme/tags/list?n=1000")).toThrow(
      /handed back a continuation it had already sent/,
    );
    const again = new ListingBound("s3://bkt/");
    again.page(1, "a");
    again.page(1, "b");
    expect(() => again.page(1, "a")).toThrow(
      /^s3:\/\/bkt\/ handed back a continuation it had already sent \(a\)/,
    );
  });
});
