import { UserError } from "../errors.ts";
import { flagName, storeKind } from "../settings-access.ts";
import type { Settings } from "../settings-types.ts";
import { parseRegistry, tagOf } from "../store/oci/reference.ts";
import { objectKey } from "../store/store.ts";

/**
 * OPA's configuration pinned to one revision: a service for the bucket, one bundle whose resource is
 * `<prefix><rev>.tar.gz`, and labels naming the revision.
 * https://www.openpolicyagent.org/docs/configuration
 */

export type OpaConfig = Record<string, unknown>;

export interface RenderInput {
  revision: string;
  settings: Settings;
  /** Region for AWS URLs and s3_signing; resolved from flags and env by the caller. */
  region?: string;
  /** PEM text of the verification key, when bundles are signed. */
  verificationKey?: string;
  /**
   * The store's name for exactly the bytes verified, when it has one (an S3 object version, an OCI manifest
   * digest). The resource then names those bytes, not whatever the key holds when OPA asks.
   */
  pin?: string;
}

const SESSION_NAME = "policyship-opa";

/**
 * Every setting whose value is written into the config. OPA replaces each `${VAR}` in its config file with
 * its own environment variable VAR (https://www.openpolicyagent.org/docs/configuration#environment-variable-substitution),
 * so a value holding `${` could pull any variable of OPA's environment into a URL or a header.
 */
const RENDERED_SETTINGS = [
  "bucket",
  "prefix",
  "region",
  "endpoint",
  "serviceUrl",
  "serviceName",
  "bundleName",
  "roleArn",
  "iamRole",
  "profile",
  "keyId",
  "revision",
  "registry",
  "registryTokenPath",
  "registryTokenScheme",
] as const;

/** Refuses `${` in any value that reaches the rendered config; exit 2 with one line. */
export function assertNoEnvironmentReferences(
  settings: Settings,
  extra: Record<string, string | undefined> = {},
) {
  const values: [string, string | undefined][] = [
    ...RENDERED_SETTINGS.map((key) => [flagName(key), settings[key]] as [string, string | undefined]),
    ...Object.entries(extra),
  ];
  for (const [name, value] of values) {
    if (typeof value === "string" && value.includes("${")) {
      throw new UserError(
        `${name} contains "\${", which OPA would replace with one of its environment variables`,
        `remove "\${" from ${name}`,
      );
    }
  }
}

/** The bucket's URL. AWS always gets the regional endpoint: the global one redirects, which breaks signing. */
export function serviceUrl(settings: Settings, region?: string): string {
  if (settings.serviceUrl) return settings.serviceUrl.replace(/\/+$/, "");
  if (!settings.bucket) {
    throw new UserError(
      "no bucket (or --service-url) to point OPA at",
      "pass --bucket <name>, or --service-url <url> for a bundle server",
    );
  }
  if (settings.endpoint) return `${settings.endpoint.replace(/\/+$/, "")}/${settings.bucket}`;
  if (!region) throw new UserError("no AWS region for the bucket URL", "pass --region, or set AWS_REGION");
  return settings.forcePathStyle
    ? `https://s3.${region}.amazonaws.com/${settings.bucket}`
    : `https://${settings.bucket}.s3.${region}.amazonaws.com`;
}

/** `credentials.s3_signing` for the chosen provider; undefined for a plain HTTP(S) service. */
export function s3Signing(settings: Settings, region?: string): Record<string, unknown> | undefined {
  if (settings.serviceUrl) return undefined;
  const withRegion = region ? { aws_region: region } : {};
  switch (settings.credentials) {
    case "environment":
      return { environment_credentials: {} };
    case "metadata":
      if (!region) throw new UserError("--credentials metadata needs a region", "pass --region");
      return {
        metadata_credentials: { ...withRegion, ...(settings.iamRole ? { iam_role: settings.iamRole } : {}) },
      };
    case "web-identity":
      return {
        web_identity_credentials: {
          ...withRegion,
          ...(settings.roleArn ? { iam_role_arn: settings.roleArn } : {}),
          session_name: SESSION_NAME,
        },
      };
    case "profile":
      return {
        profile_credentials: { ...(settings.profile ? { profile: settings.profile } : {}), ...withRegion },
      };
    case "assume-role":
      if (!settings.roleArn)
        throw new UserError(
          "--credentials assume-role needs --role-arn",
          "pass the ARN of the role OPA assumes",
        );
      return {
        assume_role_credentials: {
          ...withRegion,
          iam_role_arn: settings.roleArn,
          session_name: SESSION_NAME,
          // The role is assumed with the credentials OPA finds in its environment.
          aws_signing: { environment_credentials: {} },
        },
      };
    case "sso":
      return { sso_credentials: settings.profile ? { profile: settings.profile } : {} };
  }
}

const MANIFEST_DIGEST = /^sha256:[0-9a-f]{64}$/;

/**
 * OPA's OCI downloader: `type: oci`, the registry's URL (its scheme tells OPA plain HTTP from HTTPS), and a
 * bearer token OPA reads from a file or its environment, never one written here.
 * https://www.openpolicyagent.org/docs/configuration#oci-repositories
 *
 * The resource is `<registry>/<repository>@<manifest digest>`, not the tag: a tag can be moved, a digest
 * names the verified bytes. OPA resolves it with containerd's resolver (manifests/<digest>) and oras checks
 * what it fetches against the digest (v1/download/oci_download.go).
 */
function ociService(settings: Settings, revision: string, pin: string | undefined) {
  const reference = parseRegistry(settings.registry as string, settings.insecureRegistry);
  const service: Record<string, unknown> = { url: `${reference.scheme}://${reference.apiHost}`, type: "oci" };
  if (settings.registryTokenPath && settings.registryTokenEnv) {
    throw new UserError(
      "--registry-token-path and --registry-token-env both name OPA's registry token",
      "keep one of them",
    );
  }
  const scheme = settings.registryTokenScheme;
  if (settings.registryTokenPath) {
    service.credentials = { bearer: { scheme, token_path: settings.registryTokenPath } };
  } else if (settings.registryTokenEnv) {
    service.credentials = { bearer: { scheme, token: `\${${settings.registryTokenEnv}}` } };
  }
  tagOf(revision);
  if (!pin || !MANIFEST_DIGEST.test(pin)) {
    throw new UserError(
      `no manifest digest to pin revision ${revision} to`,
      "publish it first; config and rollback read the digest from the registry",
    );
  }
  return { service, resource: `${reference.registry}/${reference.repository}@${pin}` };
}

/**
 * The S3 bundle resource: the key, and with a pin `?versionId=<pin>`, which S3 answers with that version only.
 * OPA appends the resource to the service URL as it is and signs the raw query with s3_signing
 * (v1/plugins/rest/rest.go Do, internal/providers/aws/signing_v4.go), so the pin must be URL-safe as written.
 * A --service-url server in front of the bucket may drop the query, so nothing is pinned through one.
 */
function s3Resource(key: string, settings: Settings, pin: string | undefined): string {
  if (!pin || settings.serviceUrl) return key;
  if (!/^[A-Za-z0-9._-]{1,1024}$/.test(pin)) {
    throw new UserError(`the object version ${JSON.stringify(pin)} is not URL-safe`, "report it as a bug");
  }
  return `${key}?versionId=${pin}`;
}

export function renderOpaConfig(input: RenderInput): OpaConfig {
  const { settings, revision, region } = input;
  if (input.verificationKey && !settings.keyId) {
    throw new UserError("--verification-key needs --key-id", "name the key, e.g. --key-id release");
  }
  const hmac = settings.signingAlg.startsWith("HS");
  assertNoEnvironmentReferences(
    { ...settings, revision },
    // A public key is rendered as is, so it is checked too; an HMAC secret never is (see keys below).
    { "--verification-key": hmac ? undefined : input.verificationKey, region },
  );
  let service: Record<string, unknown>;
  let resource: string;
  if (storeKind(settings) === "oci" && !settings.serviceUrl) {
    ({ service, resource } = ociService(settings, revision, input.pin));
  } else {
    const signing = s3Signing(settings, region);
    service = { url: serviceUrl(settings, region) };
    if (signing) service.credentials = { s3_signing: signing };
    resource = s3Resource(objectKey(settings.prefix, revision), settings, input.pin);
  }
  const bundle: Record<string, unknown> = {
    service: settings.serviceName,
    resource,
    // The object never changes (immutable revision), so polling only retries a failed first download.
    polling: { min_delay_seconds: settings.pollingMin, max_delay_seconds: settings.pollingMax },
  };
  if (settings.persist) bundle.persist = true;
  if (input.verificationKey) bundle.signing = { keyid: settings.keyId };
  const config: OpaConfig = {
    labels: { "policyship-revision": revision },
    services: { [settings.serviceName]: service },
    bundles: { [settings.bundleName]: bundle },
  };
  if (input.verificationKey) {
    // An HMAC key is a shared secret: the config names the variable OPA reads it from, never the secret.
    const key = hmac ? `\${${settings.verificationKeyEnv}}` : input.verificationKey;
    config.keys = { [settings.keyId as string]: { key, algorithm: settings.signingAlg } };
  }
  // The status plugin must be on for GET /v1/status, which operators and `policyship status` read. Prometheus
  // enables it without console noise and without reporting to the bundle service.
  config.status = settings.status === "console" ? { console: true } : { prometheus: true };
  if (settings.decisionLogs === "console") config.decision_logs = { console: true };
  if (settings.persist) config.persistence_directory = ".opa";
  return config;
}
