import { createHash } from "node:crypto";
import { afterAll } from "vitest";
import { createRepo, type TempRepo } from "./git-repo.ts";
import { type RunningRegistry, startRegistry } from "./registry.ts";

/**
 * A real registry holding manifests that Go's JSON reader (OPA's) and JavaScript's read differently, for the
 * bad-input catalogue: started on first use, stopped after the file's tests.
 */

const MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const INDEX = "application/vnd.oci.image.index.v1+json";
export const AMBIGUOUS = {
  repository: "acme/ambiguous",
  /** `"layers"` then `"Layers"`. */
  foldedLayers: "1".repeat(40),
  /** An image index. */
  index: "2".repeat(40),
  /** A layer whose digest is spelled `"Digest"`. */
  digestInCaps: "3".repeat(40),
};

let started: Promise<RunningRegistry> | undefined;
afterAll(async () => {
  await (await started)?.stop();
});

const digestOf = (bytes: Buffer | string) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

async function fill(registry: RunningRegistry) {
  const base = `http://${registry.host}/v2/${AMBIGUOUS.repository}`;
  const config = Buffer.from("{}");
  const layer = Buffer.from("not a bundle: the manifest is refused before any download");
  for (const blob of [config, layer]) {
    const start = await fetch(`${base}/blobs/uploads/`, { method: "POST" });
    const location = new URL(start.headers.get("location") as string, `http://${registry.host}`);
    location.searchParams.set("digest", digestOf(blob));
    await fetch(location, { method: "PUT", body: blob });
  }
  const put = async (reference: string, text: string, contentType = MANIFEST) => {
    const response = await fetch(`${base}/manifests/${reference}`, {
      method: "PUT",
      headers: { "content-type": contentType },
      body: text,
    });
    if (response.status !== 201) throw new Error(`registry refused ${reference}: ${await response.text()}`);
  };
  const descriptor = (digestKey: string) =>
    `{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","${digestKey}":"${digestOf(layer)}","size":${layer.length}}`;
  const manifest = (layers: string) =>
    `{"schemaVersion":2,"mediaType":"${MANIFEST}","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"${digestOf(config)}","size":2},${layers}}`;
  const plain = manifest(`"layers":[${descriptor("digest")}]`);
  await put(digestOf(plain), plain);
  await put(AMBIGUOUS.foldedLayers, manifest(`"layers":[${descriptor("digest")}],"Layers":[]`));
  await put(AMBIGUOUS.digestInCaps, manifest(`"layers":[${descriptor("Digest")}]`));
  await put(
    AMBIGUOUS.index,
    JSON.stringify({
      schemaVersion: 2,
      mediaType: INDEX,
      manifests: [{ mediaType: MANIFEST, digest: digestOf(plain), size: Buffer.byteLength(plain) }],
    }),
    INDEX,
  );
}

let host = "";

/** A fresh repository to run in, once the registry is up and filled; its store is ambiguousStore(). */
export async function repoBesideAmbiguousRegistry(): Promise<TempRepo> {
  started ??= startRegistry().then(async (registry) => {
    await fill(registry);
    return registry;
  });
  host = (await started).host;
  return createRepo({ examplePolicies: true });
}

export function ambiguousStore(): string {
  return `oci://${host}/${AMBIGUOUS.repository}`;
}
