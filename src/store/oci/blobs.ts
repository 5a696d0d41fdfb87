import { FailureError } from "../../errors.ts";
import { readCapped } from "../../http-body.ts";
import type { RegistryClient } from "./client.ts";

/** Blobs in and out of a registry: the bundle layer and the empty config. */

const UPLOAD_TIMEOUT_MS = 30 * 60_000;
const DOWNLOAD_TIMEOUT_MS = 10 * 60_000;

/**
 * Blobs are often served from a CDN by redirect; the redirect is followed without the registry's
 * credentials. The body may not be longer than the manifest says (the digest is checked by the caller).
 */
export async function downloadBlob(client: RegistryClient, digest: string, size: number): Promise<Buffer> {
  let response = await client.send("GET", client.url(`blobs/${digest}`), "pull", {
    timeoutMs: DOWNLOAD_TIMEOUT_MS,
  });
  for (let hops = 0; response.status >= 300 && response.status < 400 && hops < 5; hops++) {
    const location = response.headers.get("location");
    await response.body?.cancel();
    if (!location) break;
    response = await fetch(new URL(location, response.url || client.base), {
      redirect: "manual",
      signal: AbortSignal.timeout(DOWNLOAD_TIMEOUT_MS),
    });
  }
  if (!response.ok) throw await client.refused(response, `downloading ${digest}`);
  return readCapped(
    response,
    size,
    () =>
      new FailureError(
        `${client.reference.registry} sent more than the ${size} bytes of ${digest}`,
        "do not deploy it",
      ),
  );
}

/** A monolithic upload (POST then PUT ?digest=), skipped when the registry already holds the blob. */
export async function pushBlob(
  client: RegistryClient,
  digest: string,
  size: number,
  body: () => Buffer | ReadableStream,
  signal?: AbortSignal,
): Promise<void> {
  const exists = await client.send("HEAD", client.url(`blobs/${digest}`), "push", { signal });
  await exists.body?.cancel();
  if (exists.ok) return;
  const start = await client.send("POST", client.url("blobs/uploads/"), "push", {
    headers: { "content-length": "0" },
    signal,
  });
  if (start.status !== 202) throw await client.refused(start, `starting the upload of ${digest}`);
  await start.body?.cancel();
  const location = client.ownUrl(start.headers.get("location") ?? "", "the upload");
  location.searchParams.set("digest", digest);
  const put = await client.send("PUT", location.toString(), "push", {
    headers: { "content-type": "application/octet-stream", "content-length": String(size) },
    body: body(),
    timeoutMs: UPLOAD_TIMEOUT_MS,
    signal,
  });
  if (put.status !== 201) throw await client.refused(put, `uploading ${digest}`);
  await put.body?.cancel();
}
