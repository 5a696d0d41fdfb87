import { AmbiguousJson, parseStrictJson as parseWithShape } from "../../strict-json.ts";

export { AmbiguousJson };

/** The field names of the OCI image manifest, index, descriptor and platform (image-spec specs-go/v1). */
export const OCI_FIELDS = [
  "schemaVersion",
  "mediaType",
  "artifactType",
  "config",
  "layers",
  "manifests",
  "subject",
  "annotations",
  "digest",
  "size",
  "urls",
  "data",
  "platform",
  "architecture",
  "os",
  "os.version",
  "os.features",
  "variant",
  "features",
];

/**
 * An OCI manifest, index or descriptor read the way Go reads it, or refused (see ../../strict-json.ts): every
 * number in them is an integer.
 */
export function parseStrictJson(bytes: Uint8Array): unknown {
  return parseWithShape(bytes, { fields: OCI_FIELDS, integersOnly: true });
}
