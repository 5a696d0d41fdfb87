import { readFile } from "node:fs/promises";
import path from "node:path";
import { z } from "zod/v3";
import { UserError } from "./errors.ts";
import { nullObject, parseJson, withNullPrototypes } from "./safe-json.ts";
import { envName, flagName, storeKind } from "./settings-access.ts";
import { DEFAULTS, settingsSchema } from "./settings-schema.ts";
import type { Settings, SettingsInput } from "./settings-types.ts";
import { loadYaml } from "./yaml.ts";

// Where commands import them from when they need no schema; re-exported for every other importer.
export { bundleLimits, envName, flagName, storeKind } from "./settings-access.ts";

export const CONFIG_FILES = ["policyship.yaml", "policyship.yml", "policyship.json"];

type Key = keyof z.infer<typeof settingsSchema>;
const KEYS = Object.keys(settingsSchema.shape) as Key[];

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
    `invalid settings: ${[...new Set(issues)].join("; ")}`,
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
        parsed = parseJson(text);
      } catch (error) {
        throw new UserError(`${name} is not valid JSON: ${(error as Error).message}`, "fix the JSON syntax");
      }
    } else {
      const YAML = await loadYaml();
      try {
        // yaml defines `__proto__` as an own key; its objects still get their prototype dropped here.
        parsed = withNullPrototypes(YAML.parse(text, { prettyErrors: true }));
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
  // Null-prototype, like everything validated here: the schema refuses any key it finds, inherited ones too.
  const values = nullObject();
  for (const key of KEYS) {
    const raw = env[envName(key)];
    // An empty variable is unset: CI systems pass "" for inputs nobody filled in.
    if (raw !== undefined && raw !== "") values[key] = fromEnv(key, raw);
  }
  return validate("environment", values, (path) => envName(String(path[0])));
}

export function readFlags(flags: Record<string, unknown>): SettingsInput {
  const values = nullObject();
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
  const env = readEnv(options.env);
  const flags = readFlags(options.flags);
  const settings = { ...DEFAULTS, ...file.values, ...env, ...flags } as Settings;
  applyStore(settings);
  // Refused here, before check, build or test have run, not when the registry is first opened.
  if (storeKind(settings) === "oci" && settings.prefix) {
    const from = Object.hasOwn(flags, "prefix")
      ? "--prefix"
      : Object.hasOwn(env, "prefix")
        ? envName("prefix")
        : path.relative(options.cwd, file.file ?? "") || "the config file";
    throw new UserError(
      `prefix ${JSON.stringify(settings.prefix)} (from ${from}) has no meaning for an OCI registry`,
      `remove it from ${from}; put the path in the repository instead: oci://<registry>/<path>/<repository>`,
    );
  }
  applyAwsEndpoint(settings, options.env);
  if (settings.pollingMax < settings.pollingMin) {
    throw new UserError(
      `invalid settings: pollingMax (${settings.pollingMax}) is below pollingMin (${settings.pollingMin})`,
      "raise --polling-max or lower --polling-min",
    );
  }
  return { settings, configFile: file.file };
}

/**
 * The AWS SDK's own convention: AWS_ENDPOINT_URL_S3, then AWS_ENDPOINT_URL, name the S3 endpoint when no
 * --endpoint does. It becomes the endpoint setting, so publish and the config rendered for OPA follow the
 * same endpoint: the SDK alone would publish there while OPA was pointed at AWS.
 */
function applyAwsEndpoint(settings: Settings, env: NodeJS.ProcessEnv) {
  if (settings.endpoint) return;
  for (const name of ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]) {
    const value = env[name];
    if (!value) continue;
    const checked = validate("environment", Object.assign(nullObject(), { endpoint: value }), () => name);
    settings.endpoint = checked.endpoint;
    return;
  }
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
    const checked = validate(
      "--store",
      Object.assign(nullObject(), { bucket, prefix: rest.join("/") }),
      (name) => String(name[0]),
    );
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
