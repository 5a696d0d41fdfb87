/** What each setting may hold, and its default; settings.ts reads the sources and merges them. */

// zod/v3 is the v3 API that ships inside the zod 4 package. It imports in ~17 ms against ~95 ms for the v4
// core, and every command pays that on start-up (see README "Performance").
import { z } from "zod/v3";
import { CONFIG_FORMATS, CREDENTIAL_MODES, FAIL_ON, TARGETS } from "./choices.ts";
import { REVISION_PATTERN } from "./settings-access.ts";
import type { Settings, SettingsInput } from "./settings-types.ts";
import { HAS_URL_SCHEME } from "./url-scheme.ts";

export { REVISION_PATTERN };

const revision = z.string().regex(REVISION_PATTERN, "must be 1–128 characters of A-Z a-z 0-9 . _ -");

// https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
const bucket = z
  .string()
  .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, "must be 3–63 lower-case letters, digits, '.' or '-'")
  .refine(
    (name) => !name.includes("..") && !/^\d+\.\d+\.\d+\.\d+$/.test(name),
    "is not a valid S3 bucket name",
  );

const prefix = z
  .string()
  .max(512)
  .refine((value) => !value.startsWith("/"), "must not start with '/'")
  .refine((value) => !value.split("/").includes(".."), "must not contain '..'")
  .refine((value) => !/[\s\\]/.test(value), "must not contain spaces or backslashes");

const region = z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d{1,2}$/, "must look like us-east-1");

/**
 * An http(s) URL with neither user:password, a query nor a fragment: each would be written into the rendered
 * config, stdout and messages, a password leaks there, and OPA appends the bundle's resource to the URL as it
 * is (`/b?x=1/<rev>.tar.gz` names no object). The messages never repeat the value.
 */
/**
 * A directory setting: init writes it into policyship.yaml, the workflows and .gitignore, so a line break
 * or another control character could add lines of its own there.
 */
const directory = z
  .string()
  .min(1)
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this refuses
  .regex(/^[^\u0000-\u001f\u007f]+$/, "must not hold a line break or another control character");

const url = z
  .string()
  .url("must be an http(s) URL")
  .refine((value) => /^https?:\/\//.test(value), "must be an http(s) URL")
  .refine(
    (value) => !hasUserinfo(value),
    "must not carry user:password (it would be printed and rendered into OPA's config); leave it out",
  )
  .refine((value) => !/[?#]/.test(value), "must not carry a query or a fragment (?… or #…); leave it out")
  // URL parsing drops tabs and line breaks, so a value holding them passes as a URL, yet each use prints it
  // as written: one value must stay one line in output, a step summary and a workflow command.
  .refine(
    (value) => !/[\s\p{Cc}\p{Cf}]/u.test(value),
    "must not hold spaces, line breaks or control characters",
  );

/** A registry (`oci://host/repo` or `host/repo`) whose host part holds '@' carries a user or a password. */
const NO_REGISTRY_USERINFO = [
  (value: string) => !/^([a-z][a-z0-9+.-]*:\/\/)?[^/]*@/i.test(value),
  "must not carry user:password (it would be printed); log in with POLICYSHIP_REGISTRY_PASSWORD or docker login",
] as const;

/** '@' anywhere in the authority as written, or a user or password as URL reads it (it drops an empty one). */
function hasUserinfo(value: string): boolean {
  if (/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*@/i.test(value)) return true;
  try {
    const parsed = new URL(value);
    return parsed.username !== "" || parsed.password !== "";
  } catch {
    return false;
  }
}

/**
 * Environment variables that hold or lead to credentials. opa children get an allow-listed environment because a
 * policy can read it (`opa.runtime().env`) and print it into a test failure or an impact report; `opaEnv` must
 * not be a way to hand these back. Matched case-insensitively: the cloud and CI families by prefix, and any
 * name that says what it holds.
 */
const CREDENTIAL_ENV = [
  /^(AWS|AMAZON|ACTIONS|RUNNER_TOKEN|AZURE|ARM|GOOGLE|GCP|GCLOUD|CLOUDSDK|POLICYSHIP|VAULT|NPM_CONFIG)_/i,
  /^(GITHUB_TOKEN|GH_TOKEN|GH_ENTERPRISE_TOKEN|GITHUB_ENTERPRISE_TOKEN|NODE_AUTH_TOKEN|SSH_AUTH_SOCK|KUBECONFIG|DOCKER_CONFIG)$/i,
  // A proxy URL often carries a password; opa never uses the network anyway (opa/capabilities.ts).
  /^(HTTPS?|ALL|FTP)_PROXY$/i,
  /TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|CREDENTIAL|PRIVATE|AUTH|COOKIE|SESSION|(^|_)KEY($|_)|APIKEY|ACCESSKEY/i,
];

export function isCredentialEnv(name: string): boolean {
  return CREDENTIAL_ENV.some((pattern) => pattern.test(name));
}

const opaEnvName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must be environment variable names")
  .refine(
    (name) => !isCredentialEnv(name),
    (name) => ({
      message: `${name} holds or leads to credentials, which opa and the policies it runs must never see; remove it`,
    }),
  );

export const SIGNING_ALGORITHMS = [
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "HS256",
  "HS384",
  "HS512",
] as const;

/**
 * Every setting, from policyship.yaml, POLICYSHIP_* environment variables and flags.
 * All optional here; DEFAULTS fills the gaps after the sources are merged.
 */
export const settingsSchema = z
  .object({
    // build
    policies: directory,
    out: directory,
    revision: revision,
    allowDirty: z.boolean(),
    optimize: z.number().int().min(0).max(2),
    target: z.enum(TARGETS),
    entrypoints: z.array(
      z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_/.-]*$/, "must be a slash-separated path"),
    ),
    signingKey: z.string().min(1),
    signingAlg: z.enum(SIGNING_ALGORITHMS),
    claimsFile: z.string().min(1),
    v0Compatible: z.boolean(),
    ignore: z.array(z.string().min(1)),
    // check: opa fmt and opa check --strict; a team adopting policyship may release before it reformats
    fmt: z.boolean(),
    strict: z.boolean(),
    // test
    bundle: z.string().min(1),
    coverageThreshold: z.number().min(0).max(100),
    run: z.string().min(1),
    // store
    bucket: bucket,
    prefix: prefix,
    region: region,
    endpoint: url,
    forcePathStyle: z.boolean(),
    profile: z.string().min(1),
    to: z.string().min(1),
    store: z
      .string()
      .regex(/^(oci|s3):\/\/[^/]/, "must be oci://<registry>/<repository> or s3://<bucket>[/<prefix>]")
      .refine(...NO_REGISTRY_USERINFO),
    registry: z
      .string()
      .min(1)
      .refine(...NO_REGISTRY_USERINFO),
    insecureRegistry: z.array(
      z.string().regex(/^[A-Za-z0-9.-]+(:\d{1,5})?$/, "must be registry hosts such as registry.lan:5000"),
    ),
    registryTokenPath: z.string().min(1),
    registryTokenEnv: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must be an environment variable name"),
    registryTokenScheme: z
      .string()
      .regex(/^[A-Za-z][A-Za-z0-9_-]{0,31}$/, "must be a scheme such as Bearer or Basic"),
    // OPA configuration
    bundleName: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, "must be letters, digits, '.', '_' or '-'"),
    serviceName: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, "must be letters, digits, '.', '_' or '-'"),
    serviceUrl: url,
    credentials: z.enum(CREDENTIAL_MODES),
    roleArn: z.string().regex(/^arn:aws[a-z-]*:iam::\d{12}:role\/.+$/, "must be an IAM role ARN"),
    iamRole: z.string().min(1),
    pollingMin: z.number().int().min(1),
    pollingMax: z.number().int().min(1),
    persist: z.boolean(),
    decisionLogs: z.enum(["console"]),
    status: z.enum(["console"]),
    verificationKey: z.string().min(1),
    verificationKeyEnv: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must be an environment variable name"),
    keyId: z.string().min(1),
    format: z.enum(CONFIG_FORMATS),
    output: z.string().min(1),
    // reading bundles (see bundle/read.ts)
    bundleMaxEntries: z.number().int().min(1),
    bundleMaxBytes: z.number().int().min(1),
    bundleMaxFileBytes: z.number().int().min(1),
    bundleMaxPathLength: z.number().int().min(1),
    // tools
    // The opa binary, everywhere; OPA instances are `instances`. A URL here once meant an instance to status and
    // prune, and would otherwise be looked up as a file.
    opa: z
      .string()
      .min(1)
      .refine(
        (value) => !HAS_URL_SCHEME.test(value),
        "takes the path of the opa binary, not a URL: name OPA instances with --instance <url> (status, prune, list)",
      ),
    opaEnv: z.array(opaEnvName),
    limit: z.number().int().min(1).max(1000),
    // impact
    decisions: z.string().min(1),
    base: z.string().min(1),
    candidate: z.string().min(1),
    candidateDir: z.string().min(1),
    decisionPath: z.string().regex(/^\/*[\w-]+(\/[\w-]+)*\/*$/, "must be a rule path such as authz/allow"),
    failOn: z.array(z.enum(FAIL_ON)),
    examples: z.number().int().min(0).max(1000),
    mask: z.array(z.string().regex(/^\/input(\/|$)/, "must be JSON Pointers under /input")),
    showResults: z.boolean(),
    shadow: z.boolean(),
    markdown: z.string().min(1),
    // status, prune and list: the OPA instances to read (--instance, POLICYSHIP_INSTANCES=a,b, instances: [])
    instances: z.array(url),

    sample: z
      .number()
      .gt(0, "must be a share of the decisions above 0, such as 0.1")
      .max(1, "must be at most 1 (all)"),
    // status
    expect: z.string().min(1),
    wait: z.string().regex(/^\d+(\.\d+)?(ms|s|m|h)?$/, "must be a duration such as 90s, 5m or 1h"),
    statusBundle: z.string().min(1),
    // prune
    keep: z.number().int().min(1),
    // Hours, days or weeks only: "6m" could mean minutes or months, and a guess deletes history.
    olderThan: z
      .string()
      .regex(
        /^\d+(\.\d+)?[hdw]$/,
        "must be hours, days or weeks, such as 12h, 90d or 26w (6m could mean minutes or months)",
      ),
    protect: z.array(z.string().min(1)),
    yes: z.boolean(),
    // diff
    patch: z.boolean(),
    exitCode: z.boolean(),
    // per-command switches
    verify: z.boolean(),
    dryRun: z.boolean(),
  })
  .strict();

export type { Settings, SettingsInput };

export const DEFAULTS = {
  policies: "policies",
  out: "dist",
  allowDirty: false,
  optimize: 0,
  target: "rego",
  entrypoints: [],
  signingAlg: "RS256",
  v0Compatible: false,
  fmt: true,
  strict: true,
  ignore: [],
  prefix: "",
  forcePathStyle: false,
  insecureRegistry: [],
  registryTokenScheme: "Bearer",
  bundleName: "authz",
  serviceName: "bundles",
  credentials: "environment",
  pollingMin: 60,
  pollingMax: 120,
  persist: false,
  verificationKeyEnv: "OPA_VERIFICATION_KEY",
  format: "yaml",
  opaEnv: [],
  failOn: [],
  examples: 20,
  mask: [],
  showResults: false,
  shadow: false,
  patch: false,
  protect: [],
  yes: false,
  exitCode: false,
  bundleMaxEntries: 10_000,
  bundleMaxBytes: 1024 * 1024 * 1024,
  bundleMaxFileBytes: 1024 * 1024 * 1024,
  bundleMaxPathLength: 1024,
  limit: 20,
  verify: false,
  dryRun: false,
} as const satisfies SettingsInput;

/**
 * The settings' plain types (settings-types.ts, what the library entry exports without zod) must equal what
 * the schema infers, both ways: a setting added here and not there, or typed differently, fails typecheck.
 */
type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Inferred = z.infer<typeof settingsSchema>;
type InferredSettings = Omit<Partial<Inferred>, keyof typeof DEFAULTS> & {
  -readonly [K in keyof typeof DEFAULTS]-?: Inferred[K];
};
type Flatten<T> = { [K in keyof T]: T[K] };
type Assert<T extends true> = T;
export type SettingsTypesMatchSchema = [
  Assert<Equals<Flatten<SettingsInput>, Partial<Inferred>>>,
  Assert<Equals<Flatten<Settings>, Flatten<InferredSettings>>>,
];
