import type * as Yaml from "yaml";

/**
 * The yaml package, loaded on demand. Under Node it is CommonJS, so a bundled dynamic import may hand back
 * its exports under `default`; both shapes are accepted.
 */
export async function loadYaml(): Promise<typeof Yaml> {
  const loaded = (await import("yaml")) as typeof Yaml & { default?: typeof Yaml };
  return typeof loaded.parse === "function" ? loaded : (loaded.default as typeof Yaml);
}
