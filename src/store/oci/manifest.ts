import { createHash } from "node:crypto";
import { FailureError } from "../../errors.ts";
import { AmbiguousJson, parseStrictJson } from "./strict-json.ts";

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
  /** On the manifest a publisher tags as its claim while it races others (claim.ts). */
  claim: "dev.policyship.claim",
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
  /** The claim manifest: the same with one more annotation, so it has a digest of its own. */
  claim?: boolean;
}): Buffer {
  const annotations: Record<string, string> = {
    [ANNOTATIONS.revision]: bundle.metadata.revision ?? bundle.tag,
    [ANNOTATIONS.created]: bundle.metadata["built-at"] ?? new Date().toISOString(),
    [ANNOTATIONS.sha256]: bundle.sha256,
  };
  if (bundle.metadata["git-ref"]) annotations[ANNOTATIONS.gitRef] = bundle.metadata["git-ref"];
  if (bundle.claim) annotations[ANNOTATIONS.claim] = "true";
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

/** Reads what a registry returned for a tag, as OPA would read it; anything two readers could read differently is refused. */
export function parseManifest(bytes: Buffer, name: string, contentType?: string | null): Found {
  const refuse = (why: string) =>
    new FailureError(
      `the manifest of ${name} is refused: ${why}`,
      "do not deploy it; publish the revision again",
    );
  let parsed: unknown;
  try {
    parsed = parseStrictJson(bytes);
  } catch (error) {
    if (error instanceof AmbiguousJson) throw refuse(`${error.message}, so OPA could deploy something else`);
    throw new FailureError(`the manifest of ${name} is not JSON`, "do not deploy it");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new FailureError(`the manifest of ${name} is not a JSON object`, "do not deploy it");
  }
  const manifest = parsed as Record<string, unknown>;
  // OPA reads any manifest as an image manifest (manifestFromDesc in v1/download/oci_download.go) and oras walks
  // it by the media type the registry names; only the one kind publish writes means the same to both.
  const served = contentType?.split(";")[0]?.trim();
  if (manifest.mediaType !== MEDIA_TYPES.manifest || (served && served !== MEDIA_TYPES.manifest)) {
    const kind = typeof manifest.mediaType === "string" ? manifest.mediaType : served || "no media type";
    throw refuse(
      `it is ${JSON.stringify(kind).slice(0, 120)}, not an image manifest (${MEDIA_TYPES.manifest})`,
    );
  }
  if (manifest.schemaVersion !== 2) throw refuse("its schemaVersion is not 2");
  if (manifest.layers !== undefined && !Array.isArray(manifest.layers))
    throw refuse("its layers are not a list");
  const layers = (manifest.layers ?? []) as unknown[];
  for (const [index, entry] of layers.entries()) checkDescriptor(entry, `layers[${index}]`, refuse);
  if (manifest.config !== undefined) checkDescriptor(manifest.config, "config", refuse);
  // OPA deploys the first gzip layer (bundleLayer in v1/download/oci_download.go), so that is the one read
  // here too; if it is not a sha256 digest with a size, there is no bundle to check, not a later one.
  const first = (layers as Layer[]).find((entry) => entry.mediaType === MEDIA_TYPES.layer);
  const layer =
    first && typeof first.digest === "string" && /^sha256:[0-9a-f]{64}$/.test(first.digest) && first.size >= 0
      ? { mediaType: first.mediaType, digest: first.digest, size: first.size }
      : undefined;
  const annotations: Record<string, string> = Object.create(null);
  if (manifest.annotations !== undefined) {
    const given = manifest.annotations;
    if (typeof given !== "object" || given === null || Array.isArray(given))
      throw refuse("its annotations are not an object");
    for (const [key, value] of Object.entries(given)) {
      // Go's map[string]string refuses any other value, so OPA would not load it at all.
      if (typeof value !== "string")
        throw refuse(`the annotation ${JSON.stringify(key).slice(0, 120)} is not a string`);
      annotations[key] = value;
    }
  }
  return { digest: digestOf(bytes), layer, annotations };
}

/** A descriptor's fields have the types Go's ocispec.Descriptor gives them, or OPA refuses the whole manifest. */
function checkDescriptor(entry: unknown, where: string, refuse: (why: string) => FailureError): void {
  if (typeof entry !== "object" || entry === null || Array.isArray(entry))
    throw refuse(`${where} is not a descriptor`);
  const descriptor = entry as Record<string, unknown>;
  for (const field of ["mediaType", "digest"]) {
    if (descriptor[field] !== undefined && typeof descriptor[field] !== "string") {
      throw refuse(`${where}.${field} is not a string`);
    }
  }
  if (descriptor.size !== undefined && !Number.isSafeInteger(descriptor.size)) {
    throw refuse(`${where}.size is not an integer`);
  }
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
