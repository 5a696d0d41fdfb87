import { mkdtemp } from "node:fs/promises";
import type http from "node:http";
import os from "node:os";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { expectOneLineError, runCli } from "../helpers/cli.ts";
import { serversClosedAfterEach } from "../helpers/serve.ts";

/** Servers that never stop answering "there is more": each listing must end in one line, exit 1, in bounded time. */

const serve = serversClosedAfterEach();
let cwd: string;
const ENV = { AWS_ACCESS_KEY_ID: "test", AWS_SECRET_ACCESS_KEY: "test-secret", AWS_REGION: "us-east-1" };
const TIMEOUT_MS = 60_000;

beforeAll(async () => {
  cwd = await mkdtemp(path.join(os.tmpdir(), "policyship-endless-"));
});

/** A ListObjectsV2 page of `keys` keys, truncated, continued by `token`. */
function s3Page(response: http.ServerResponse, keys: number, token: string, first: number) {
  const contents: string[] = [];
  for (let i = 0; i < keys; i++) {
    contents.push(
      `<Contents><Key>r${first + i}.tar.gz</Key><LastModified>2025-01-01T00:00:00.000Z</LastModified><Size>1</Size></Contents>`,
    );
  }
  response.writeHead(200, { "content-type": "application/xml" });
  response.end(
    `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix></Prefix><KeyCount>${keys}</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated><NextContinuationToken>${token}</NextContinuationToken>${contents.join("")}</ListBucketResult>`,
  );
}

/** A registry's tag list page of `count` tags, with a Link to `next`. */
function tagPage(response: http.ServerResponse, count: number, next: string, first: number) {
  const tags = Array.from({ length: count }, (_, i) => `r${first + i}`);
  response.writeHead(200, {
    "content-type": "application/json",
    link: `<${next}>; rel="next"`,
  });
  response.end(JSON.stringify({ name: "acme/policies", tags }));
}

const run = (args: string[]) => runCli(args, { cwd, env: ENV, timeoutMs: TIMEOUT_MS });

describe("S3 listings end", () => {
  it("refuses a continuation token the server already sent", async () => {
    let requests = 0;
    const endpoint = await serve((_request, response) => {
      requests++;
      s3Page(response, 1, "same-token", requests);
    });
    const result = await run(["list", "--bucket", "bkt", "--endpoint", endpoint]);
    expect(result.exitCode).toBe(1);
    expect(expectOneLineError(result)).toMatch(
      /s3:\/\/bkt\/ handed back a continuation it had already sent .*never ends/,
    );
    expect(requests).toBe(2);
  });
});

describe("registry tag lists end", () => {
  it("refuses a next link it already followed, the first page's included", async () => {
    let requests = 0;
    const registry = await serve((request, response) => {
      if (!request.url?.includes("/tags/list")) return response.writeHead(200).end("{}");
      requests++;
      tagPage(response, 1, "/v2/acme/policies/tags/list?n=1000", requests);
    });
    const store = `oci://${new URL(registry).host}/acme/policies`;
    const result = await run(["list", "--store", store]);
    expect(result.exitCode).toBe(1);
    expect(expectOneLineError(result)).toMatch(
      /the tag list of 127\.0\.0\.1:\d+\/acme\/policies handed back a continuation it had already sent/,
    );
    expect(requests).toBe(1);
  });

  it("refuses a tag list past a million tags", { timeout: TIMEOUT_MS * 2 }, async () => {
    let requests = 0;
    const registry = await serve((request, response) => {
      if (!request.url?.includes("/tags/list")) return response.writeHead(200).end("{}");
      requests++;
      tagPage(response, 50_000, `/v2/acme/policies/tags/list?n=1000&last=r${requests}`, requests * 50_000);
    });
    const store = `oci://${new URL(registry).host}/acme/policies`;
    const result = await run(["list", "--store", store]);
    expect(result.exitCode).toBe(1);
    expect(expectOneLineError(result)).toMatch(/acme\/policies lists more than 1000000 entries/);
    expect(requests).toBe(21);
  });
});
