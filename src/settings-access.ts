import type { Settings } from "./settings-types.ts";

/**
 * What commands read from settings once they are resolved: a setting's flag and environment names, the
 * store they name, the bundle limits. Kept apart from the zod schema (settings-schema.ts) so that loading a
 * command's definition, for --help, does not load zod (docs/perf/P2.md); settings.ts re-exports them.
 */

/** Characters that are safe in an S3 key, a file name and OPA's manifest. */
export const REVISION_PATTERN = /^[A-Za-z0-9._-]{1,128}$/;

export function envName(key: string): string {
  return `POLICYSHIP_${key.replace(/[A-Z]/g, (letter) => `_${letter}`).toUpperCase()}`;
}

/** Settings whose flag is not the key spelled in kebab-case: one repeatable flag fills a list. */
const FLAG_NAMES: Readonly<Record<string, string>> = Object.assign(Object.create(null), {
  instances: "--instance",
});

export function flagName(key: string): string {
  return FLAG_NAMES[key] ?? `--${key.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)}`;
}

/** What kind of store the settings name (see applyStore in settings.ts for the order). */
export function storeKind(settings: Settings): "directory" | "oci" | "s3" | undefined {
  if (settings.to) return "directory";
  if (settings.registry) return "oci";
  if (settings.bucket) return "s3";
  return undefined;
}

/** The caps on reading a bundle, from settings (defaults in bundle/read.ts's DEFAULT_BUNDLE_LIMITS). */
export function bundleLimits(settings: Settings) {
  return {
    maxEntries: settings.bundleMaxEntries,
    maxBytes: settings.bundleMaxBytes,
    maxFileBytes: settings.bundleMaxFileBytes,
    maxPathLength: settings.bundleMaxPathLength,
  };
}
