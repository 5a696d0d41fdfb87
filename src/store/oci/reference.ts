import { UserError } from "../../errors.ts";

/**
 * Where revisions live in an OCI registry: `<registry>/<repository>`, each revision the tag `<sha>`.
 * Parsed from `--store oci://<registry>/<repository>` or `registry: <registry>/<repository>`.
 */
export interface RegistryReference {
  /** The registry as users write it (ghcr.io, 127.0.0.1:5000); credentials are looked up by it. */
  registry: string;
  /** The host the distribution API answers on (docker.io's is registry-1.docker.io). */
  apiHost: string;
  repository: string;
  /** http:// for loopback registries and hosts named by --insecure-registry; https:// otherwise. */
  scheme: "http" | "https";
}

// https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pulling-manifests
const REPOSITORY = /^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const HOST = /^([A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(:\d{1,5})?$/;

/** Plain HTTP without asking, as docker and oras do: the connection never leaves the machine. */
export function isLoopback(host: string): boolean {
  const name = host.replace(/:\d+$/, "").replace(/^\[|\]$/g, "");
  return name === "localhost" || name === "::1" || /^127(\.\d{1,3}){3}$/.test(name);
}

/** `oci://host/repo`, or `host/repo`; a tag or digest is refused (revisions are the tags). */
export function parseRegistry(value: string, insecureHosts: readonly string[] = []): RegistryReference {
  const text = value.replace(/^oci:\/\//, "");
  const slash = text.indexOf("/");
  const registry = slash > 0 ? text.slice(0, slash) : "";
  const repository = slash > 0 ? text.slice(slash + 1) : "";
  const hint = "write it as oci://<registry>/<repository>, e.g. oci://ghcr.io/acme/policies";
  if (
    !HOST.test(registry) ||
    (!registry.includes(".") && !registry.includes(":") && registry !== "localhost")
  ) {
    throw new UserError(`${JSON.stringify(value)} does not start with a registry host`, hint);
  }
  if (/[:@]/.test(repository)) {
    throw new UserError(
      `${JSON.stringify(value)} names a tag or digest; each revision is pushed as the tag <sha>`,
      hint,
    );
  }
  if (repository.length > 255 || !REPOSITORY.test(repository)) {
    throw new UserError(
      `${JSON.stringify(repository)} is not a valid repository name`,
      "use lower-case letters, digits and . _ - separated by /",
    );
  }
  const dockerHub = registry === "docker.io" || registry === "index.docker.io";
  return {
    registry: dockerHub ? "docker.io" : registry,
    apiHost: dockerHub ? "registry-1.docker.io" : registry,
    repository: dockerHub && !repository.includes("/") ? `library/${repository}` : repository,
    scheme: isLoopback(registry) || insecureHosts.includes(registry) ? "http" : "https",
  };
}

/** The tag of a revision; revisions that OCI cannot tag (a leading '.' or '-') are refused. */
export function tagOf(revision: string): string {
  if (!TAG.test(revision)) {
    throw new UserError(
      `revision ${revision} cannot be an OCI tag`,
      "tags start with a letter, digit or '_' and hold at most 128 of A-Z a-z 0-9 . _ -",
    );
  }
  return revision;
}

export function isTag(value: string): boolean {
  return TAG.test(value);
}

/** `<registry>/<repository>:<tag>`: the resource OPA's OCI downloader pulls. */
export function pinned(reference: RegistryReference, tag: string): string {
  return `${reference.registry}/${reference.repository}:${tag}`;
}

export function baseUrl(reference: RegistryReference): string {
  return `${reference.scheme}://${reference.apiHost}`;
}
