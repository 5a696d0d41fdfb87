import http from "node:http";
import type { AddressInfo } from "node:net";

/** Answers every listing with one entry and "there is more", always at the same continuation. */
export const endlessListing = (() => {
  const server = http.createServer((request, response) => {
    if (request.url?.includes("/tags/list")) {
      response.writeHead(200, {
        "content-type": "application/json",
        link: '</v2/acme/policies/tags/list?n=1000>; rel="next"',
      });
      return response.end('{"name":"acme/policies","tags":["r1"]}');
    }
    if (request.url?.startsWith("/v2/")) return response.writeHead(200).end("{}");
    response.writeHead(200, { "content-type": "application/xml" });
    response.end(
      '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>bkt</Name><IsTruncated>true</IsTruncated><NextContinuationToken>same</NextContinuationToken><Contents><Key>r1.tar.gz</Key><Size>1</Size></Contents></ListBucketResult>',
    );
  });
  server.listen(0, "127.0.0.1").unref();
  return { url: () => `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
})();
