import { createHash } from "node:crypto";
import { FailureError } from "../../errors.ts";
import { parseJson } from "../../safe-json.ts";

/**
 * The layout OPA's OCI downloader pulls (v1/download/oci_download.go): an image manifest whose one layer is
 * the bundle tarball (application/vnd.oci.image.layer.v1.tar+gzip) and whose config is `{}`
 * (application/vnd.oci.image.config.v1+json), as `oras push` writes it in OPA's docs.
 */
export const MEDIA_TYPES = {
  manifest: "application/vnd.oci.image.manifest.v1+json",
  config: "application/vnd.oci.image.config.v1+json",
  layer: "application/vnd.oci.image.layer.v1.tar+gzip",
} as const;

/** Manifest annotations: the OCI pre-defined keys, and the bundle's digest and git ref. */
export const ANNOTATIONS = {
  revision: "org.opencontainers.image.revision",
  created: "org.opencontainers.image.created",
  title: "org.opencontainers.image.title",
  sha256: "dev.policyship.bundle.sha256",
  gitRef: "dev.policyship.git-ref",
} as const;

export const EMPTY_CONFIG = Buffer.from("{}");
export const EMPTY_CONFIG_DIGEST = digestOf(EMPTY_CONFIG);
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
export const ACCEPT_MANIFESTS = [
  MEDIA_TYPES.manifest,
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
].join(", ");

export interface Layer {
  mediaType: string;
  digest: string;
  size: number;
}

/** A manifest as read back: its digest, the bundle layer if it has one, and its string annotations. */
export interface Found {
  digest: string;
  layer?: Layer;
  annotations: Record<string, string>;
}

export function digestOf(bytes: Buffer): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

/** The manifest publish pushes for a revision; the store's metadata travels as annotations. */
export function buildManifest(bundle: {
  tag: string;
  sha256: string;
  size: number;
  metadata: Record<string, string>;
}): Buffer {
  const annotations: Record<string, string> = {
    [ANNOTATIONS.revision]: bundle.metadata.revision ?? bundle.tag,
    [ANNOTATIONS.created]: bundle.metadata["built-at"] ?? new Date().toISOString(),
    [ANNOTATIONS.sha256]: bundle.sha256,
  };
  if (bundle.metadata["git-ref"]) annotations[ANNOTATIONS.gitRef] = bundle.metadata["git-ref"];
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.manifest,
      config: { mediaType: MEDIA_TYPES.config, digest: EMPTY_CONFIG_DIGEST, size: EMPTY_CONFIG.length },
      layers: [
        {
          mediaType: MEDIA_TYPES.layer,
          digest: `sha256:${bundle.sha256}`,
          size: bundle.size,
          annotations: { [ANNOTATIONS.title]: `${bundle.tag}.tar.gz` },
        },
      ],
      annotations,
    }),
  );
}

/** Reads what a registry returned for a tag; anything but a JSON object with our layer has no layer. */
export function parseManifest(bytes: Buffer, name: string): Found {
  let parsed: { layers?: unknown; annotations?: unknown };
  try {
    parsed = parseJson(bytes.toString("utf8")) as typeof parsed;
  } catch {
    throw new FailureError(`the manifest of ${name} is not JSON`, "do not deploy it");
  }
  if (typeof parsed !== "object" || parsed === null) {
    throw new FailureError(`the manifest of ${name} is not a JSON object`, "do not deploy it");
  }
  const layers = Array.isArray(parsed.layers) ? (parsed.layers as Partial<Layer>[]) : [];
  // OPA deploys the first gzip layer (bundleLayer in v1/download/oci_download.go), so that is the one read
  // here too; if it is not a sha256 digest with a size, there is no bundle to check, not a later one.
  const first = layers.find((entry) => entry?.mediaType === MEDIA_TYPES.layer);
  const layer =
    first &&
    typeof first.digest === "string" &&
    /^sha256:[0-9a-f]{64}$/.test(first.digest) &&
    Number.isSafeInteger(first.size) &&
    (first.size as number) >= 0
      ? (first as Layer)
      : undefined;
  const annotations: Record<string, string> = Object.create(null);
  if (parsed.annotations && typeof parsed.annotations === "object") {
    for (const [name, value] of Object.entries(parsed.annotations)) {
      if (typeof value === "string") annotations[name] = value;
    }
  }
  return { digest: digestOf(bytes), layer, annotations };
}

/** The store's metadata (what S3 keeps as object metadata) from a manifest's annotations. */
export function metadataOf(found: Found): Record<string, string> {
  const metadata: Record<string, string> = Object.create(null);
  const names: [string, string][] = [
    ["revision", ANNOTATIONS.revision],
    ["sha256", ANNOTATIONS.sha256],
    ["built-at", ANNOTATIONS.created],
    ["git-ref", ANNOTATIONS.gitRef],
  ];
  for (const [name, annotation] of names) {
    const value = found.annotations[annotation];
    if (value) metadata[name] = value;
  }
  metadata["manifest-digest"] = found.digest;
  return metadata;
}
