import { readFile } from "node:fs/promises";
import path from "node:path";
// zod/v3 is the v3 API that ships inside the zod 4 package. It imports in ~17 ms against ~95 ms for the v4
// core, and every command pays that on start-up (see README "Performance").
import { z } from "zod/v3";
import { CONFIG_FORMATS, CREDENTIAL_MODES, FAIL_ON, TARGETS } from "./choices.ts";
import { UserError } from "./errors.ts";
import { loadYaml } from "./yaml.ts";

/** Characters that are safe in an S3 key, a file name and OPA's manifest. */
export const REVISION_PATTERN = /^[A-Za-z0-9._-]{1,128}$/;
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

const url = z
  .string()
  .url("must be an http(s) URL")
  .refine((value) => /^https?:\/\//.test(value), "must be an http(s) URL");

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
    policies: z.string().min(1),
    out: z.string().min(1),
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
      .regex(/^(oci|s3):\/\/[^/]/, "must be oci://<registry>/<repository> or s3://<bucket>[/<prefix>]"),
    registry: z.string().min(1),
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
    opa: z.string().min(1),
    opaEnv: z.array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must be environment variable names")),
    limit: z.number().int().min(1).max(1000),
    // impact
    decisions: z.string().min(1),
    base: z.string().min(1),
    candidate: z.string().min(1),
    decisionPath: z.string().regex(/^\/*[\w-]+(\/[\w-]+)*\/*$/, "must be a rule path such as authz/allow"),
    failOn: z.array(z.enum(FAIL_ON)),
    examples: z.number().int().min(0).max(1000),
    mask: z.array(z.string().regex(/^\/input(\/|$)/, "must be JSON Pointers under /input")),
    markdown: z.string().min(1),
    // status
    expect: z.string().min(1),
    wait: z.string().regex(/^\d+(\.\d+)?(ms|s|m|h)?$/, "must be a duration such as 90s, 5m or 1h"),
    statusBundle: z.string().min(1),
    // prune
    keep: z.number().int().min(1),
    olderThan: z.string().regex(/^\d+(\.\d+)?(ms|s|m|h|d)?$/, "must be a duration such as 90d or 12h"),
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

export type SettingsInput = Partial<z.infer<typeof settingsSchema>>;

export const DEFAULTS = {
  policies: "policies",
  out: "dist",
  allowDirty: false,
  optimize: 0,
  target: "rego",
  entrypoints: [],
  signingAlg: "RS256",
  v0Compatible: false,
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

export type Settings = Omit<SettingsInput, keyof typeof DEFAULTS> & {
  -readonly [K in keyof typeof DEFAULTS]-?: z.infer<typeof settingsSchema>[K];
};

export const CONFIG_FILES = ["policyship.yaml", "policyship.yml", "policyship.json"];

type Key = keyof z.infer<typeof settingsSchema>;
const KEYS = Object.keys(settingsSchema.shape) as Key[];

export function envName(key: string): string {
  return `POLICYSHIP_${key.replace(/[A-Z]/g, (letter) => `_${letter}`).toUpperCase()}`;
}

export function flagName(key: string): string {
  return `--${key.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)}`;
}

function kindOf(key: Key): "boolean" | "number" | "array" | "string" {
  const schema = settingsSchema.shape[key];
  if (schema instanceof z.ZodBoolean) return "boolean";
  if (schema instanceof z.ZodNumber) return "number";
  if (schema instanceof z.ZodArray) return "array";
  return "string";
}

/** Turns an environment string into the field's type; what cannot be read stays a string for zod to reject. */
function fromEnv(key: Key, raw: string): unknown {
  switch (kindOf(key)) {
    case "boolean":
      if (/^(1|true|yes|on)$/i.test(raw)) return true;
      if (/^(0|false|no|off)$/i.test(raw)) return false;
      return raw;
    case "number":
      return raw.trim() !== "" && Number.isFinite(Number(raw)) ? Number(raw) : raw;
    case "array":
      return raw
        .split(",")
        .map((part) => part.trim())
        .filter(Boolean);
    default:
      return raw;
  }
}

function validate(source: string, value: unknown, nameOf: (path: PropertyKey[]) => string): SettingsInput {
  const result = settingsSchema.partial().safeParse(value);
  if (result.success) return result.data;
  const issues = result.error.issues.map((issue) => {
    if (issue.code === "unrecognized_keys") return `${source}: unknown setting ${issue.keys.join(", ")}`;
    return `${source}: ${nameOf(issue.path)}: ${issue.message}`;
  });
  throw new UserError(
    `invalid settings: ${issues.join("; ")}`,
    "fix the values named above (see policyship --help)",
  );
}

function dotted(path: PropertyKey[]): string {
  return path.map(String).join(".");
}

/** Finds and parses policyship.yaml / .json; `explicit` (from --config) must exist. */
export async function readConfigFile(
  cwd: string,
  explicit?: string,
): Promise<{ file?: string; values: SettingsInput }> {
  const candidates = explicit
    ? [path.resolve(cwd, explicit)]
    : CONFIG_FILES.map((name) => path.join(cwd, name));
  for (const file of candidates) {
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ENOENT" && !explicit) continue;
      if (code === "ENOENT")
        throw new UserError(`config file ${explicit} not found`, "check the --config path");
      if (code === "EISDIR")
        throw new UserError(`config file ${file} is a directory`, "point --config at a file");
      throw new UserError(`cannot read ${file}: ${(error as Error).message}`, "check the file's permissions");
    }
    const name = path.relative(cwd, file) || file;
    let parsed: unknown;
    if (file.endsWith(".json")) {
      try {
        parsed = JSON.parse(text);
      } catch (error) {
        throw new UserError(`${name} is not valid JSON: ${(error as Error).message}`, "fix the JSON syntax");
      }
    } else {
      const YAML = await loadYaml();
      try {
        parsed = YAML.parse(text, { prettyErrors: true });
      } catch (error) {
        const firstLine = (error as Error).message.split("\n")[0];
        throw new UserError(`${name} is not valid YAML: ${firstLine}`, "fix the YAML syntax at that line");
      }
    }
    parsed ??= {};
    if (typeof parsed !== "object" || Array.isArray(parsed)) {
      throw new UserError(`${name} must hold a mapping of settings`, "see policyship init for an example");
    }
    return { file, values: validate(name, parsed, dotted) };
  }
  return { values: {} };
}

export function readEnv(env: NodeJS.ProcessEnv): SettingsInput {
  const values: Record<string, unknown> = {};
  for (const key of KEYS) {
    const raw = env[envName(key)];
    // An empty variable is unset: CI systems pass "" for inputs nobody filled in.
    if (raw !== undefined && raw !== "") values[key] = fromEnv(key, raw);
  }
  return validate("environment", values, (path) => envName(String(path[0])));
}

export function readFlags(flags: Record<string, unknown>): SettingsInput {
  const values: Record<string, unknown> = {};
  for (const key of KEYS) if (flags[key] !== undefined) values[key] = flags[key];
  return validate("flags", values, (path) => flagName(String(path[0])));
}

/** Flags, then POLICYSHIP_* env, then the config file, then defaults. */
export async function resolveSettings(options: {
  cwd: string;
  env: NodeJS.ProcessEnv;
  flags: Record<string, unknown>;
  configFile?: string;
}): Promise<{ settings: Settings; configFile?: string }> {
  const file = await readConfigFile(options.cwd, options.configFile);
  const settings = {
    ...DEFAULTS,
    ...file.values,
    ...readEnv(options.env),
    ...readFlags(options.flags),
  } as Settings;
  applyStore(settings);
  if (settings.pollingMax < settings.pollingMin) {
    throw new UserError(
      `invalid settings: pollingMax (${settings.pollingMax}) is below pollingMin (${settings.pollingMin})`,
      "raise --polling-max or lower --polling-min",
    );
  }
  return { settings, configFile: file.file };
}

/**
 * `--store` names the store outright: `s3://bucket/prefix` sets bucket and prefix, `oci://registry/repo` sets
 * registry, and either clears the others. Without it, `--to` wins, then `registry`, then `bucket`; a bucket
 * and a registry from the same settings are ambiguous.
 */
function applyStore(settings: Settings) {
  const store = settings.store;
  if (store?.startsWith("s3://")) {
    const [bucket = "", ...rest] = store.slice("s3://".length).split("/");
    const checked = validate("--store", { bucket, prefix: rest.join("/") }, (name) => String(name[0]));
    Object.assign(settings, {
      bucket: checked.bucket,
      prefix: checked.prefix ?? "",
      registry: undefined,
      to: undefined,
    });
  } else if (store?.startsWith("oci://")) {
    Object.assign(settings, { registry: store, bucket: undefined, to: undefined });
  } else if (settings.registry && settings.bucket && !settings.to) {
    throw new UserError(
      "both bucket and registry are set, so the store is ambiguous",
      "keep one of them, or choose with --store oci://<registry>/<repository> or --store s3://<bucket>",
    );
  }
}

/** What kind of store the settings name (see applyStore for the order). */
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
