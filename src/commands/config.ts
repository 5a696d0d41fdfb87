import { rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import type { Command } from "commander";
import { recordedPin } from "../bundle/publish-record.ts";
import { createContext, type Io, print } from "../cli-kit.ts";
import { addConfigOptions, addStoreOptions } from "../cli-options.ts";
import type { Context } from "../context.ts";
import { FailureError, UserError } from "../errors.ts";
import { readVerificationKey } from "../opa/signing-key.ts";
import { type OpaConfig, renderOpaConfig } from "../opa-config/render.ts";
import { printable } from "../printable.ts";
import { revisionOrHead } from "../revision.ts";
import { storeKind } from "../settings-access.ts";
import { resolveRegion } from "../store/open.ts";
import { objectKey, type Store } from "../store/store.ts";
import { loadYaml } from "../yaml.ts";

export interface ConfigResult {
  revision: string;
  key: string;
  format: "yaml" | "json";
  /** Where the config was written; undefined when printed on stdout. */
  output?: string;
  text: string;
  config: OpaConfig;
  /** The store's name for the revision's bytes that the config points at (an OCI manifest digest). */
  pin?: string;
}

export async function serialize(config: OpaConfig, format: "yaml" | "json"): Promise<string> {
  if (format === "json") return `${JSON.stringify(config, null, 2)}\n`;
  const YAML = await loadYaml();
  return YAML.stringify(config, { lineWidth: 0 });
}

/**
 * Writes atomically (temp name, then rename), so a deploy never reads half a config. A directory that is
 * missing or cannot be written is refused with one line naming `given` (the path as the user wrote it), never
 * the temp name; the temp file does not outlive a failed rename.
 */
export async function writeOutput(file: string, text: string, given: string = file) {
  const temp = `${file}.${process.pid}.tmp`;
  try {
    await writeFile(temp, text);
    await rename(temp, file);
  } catch (error) {
    await rm(temp, { force: true }).catch(() => {});
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") {
      throw new UserError(
        `cannot write ${printable(given)}: its directory ${printable(path.dirname(file))} does not exist`,
        "create the directory first, or write somewhere else",
        { cause: error },
      );
    }
    if (code === "EACCES" || code === "EPERM" || code === "EROFS" || code === "EISDIR") {
      throw new UserError(
        `cannot write ${printable(given)}: ${code === "EISDIR" ? "it is a directory" : `${code}`}`,
        "choose a file in a directory you can write",
        { cause: error },
      );
    }
    throw error;
  }
}

/** Any well-formed digest: rendering with it first refuses bad settings before the registry is asked. */
const PROBE_PIN = `sha256:${"0".repeat(64)}`;

/**
 * The manifest digest an OCI config points at: the one given (publish, rollback), else the one publish
 * recorded in `<out>/<rev>.json` for this registry (with --verify, checked against the tag), else the one
 * of the revision as the registry holds it, after downloading and verifying it as `verify` does.
 */
async function ociPin(
  context: Context,
  revision: string,
  key: string,
  prepared?: { store?: Store; pin?: string },
): Promise<string> {
  if (prepared?.pin) return prepared.pin;
  const { openStore } = await import("../store/open.ts");
  const store = prepared?.store ?? (await openStore(context));
  const record = path.resolve(context.cwd, context.settings.out, `${revision}.json`);
  const recorded = await recordedPin(record, store.location);
  if (recorded) {
    if (context.settings.verify) {
      const head = await store.head(key);
      if (!head) {
        throw new FailureError(
          `${store.urlOf(key)} does not exist`,
          "publish the revision first (policyship publish)",
        );
      }
      if (head.pin !== recorded) {
        throw new FailureError(
          `${store.urlOf(key)} names manifest ${head.pin ?? "unknown"}, but publish recorded ${recorded}`,
          "do not deploy it; find out who moved the tag, then verify the revision (policyship verify)",
        );
      }
    }
    return recorded;
  }
  context.log.info(
    `no publish record for ${revision} here: verifying it in ${store.location} to pin its digest`,
  );
  const { checkPublished } = await import("./verify.ts");
  const { verified } = await checkPublished(context, revision);
  if (!verified.pin)
    throw new FailureError(`${verified.url} has no manifest digest to pin`, "publish it again");
  return verified.pin;
}

/**
 * Renders OPA's configuration pinned to a revision. `--verify` first checks that the object exists. On an
 * OCI registry the config names the revision's manifest digest (see ociPin).
 */
export async function config(
  context: Context,
  prepared?: { revision?: string; store?: Store; verified?: boolean; pin?: string },
): Promise<ConfigResult> {
  const { settings } = context;
  const revision = prepared?.revision ?? (await revisionOrHead(context, "pin"));
  const key = objectKey(settings.prefix, revision);
  // HS* algorithms take a shared secret, rendered as OPA's ${VAR}; every other one a PEM public key.
  const verificationKey = (await readVerificationKey(context))?.material;
  const input = { revision, settings, region: resolveRegion(context), verificationKey };
  let pin = prepared?.pin;
  if (storeKind(settings) === "oci" && !settings.serviceUrl) {
    renderOpaConfig({ ...input, pin: PROBE_PIN });
    pin = await ociPin(context, revision, key, prepared);
  }
  const rendered = renderOpaConfig({ ...input, pin });
  if (settings.verify && !prepared?.verified && !pin) {
    const { openStore } = await import("../store/open.ts");
    const store = prepared?.store ?? (await openStore(context));
    if (!(await store.head(key))) {
      throw new FailureError(
        `${store.urlOf(key)} does not exist`,
        "publish the revision first (policyship publish)",
      );
    }
  }
  const text = await serialize(rendered, settings.format);
  const output = settings.output ? path.resolve(context.cwd, settings.output) : undefined;
  if (output) await writeOutput(output, text, settings.output);
  return {
    revision,
    key,
    format: settings.format,
    output: output ? path.relative(context.cwd, output) || output : undefined,
    text,
    config: rendered,
    ...(pin ? { pin } : {}),
  };
}

export function renderConfigResult(result: ConfigResult): string {
  return result.output
    ? `wrote OPA config for ${result.revision} to ${result.output}`
    : result.text.trimEnd();
}

/** The `config` command: its flags, help and examples, and how its result is printed. @internal: CLI only, kept out of the .d.ts */
export function defineConfig(program: Command, io: Io): Command {
  return addConfigOptions(addStoreOptions(program.command("config")))
    .description("render the OPA configuration pinned to a revision")
    .option("--revision <id>", "revision to pin (default: full SHA of HEAD)")
    .option("--verify", "check first that the object exists in the store")
    .addHelpText(
      "after",
      `
Examples:
  $ policyship config --bucket acme-policies --region eu-west-1 -o opa-config.yaml
  $ policyship config --bucket policies --endpoint http://127.0.0.1:9000 --format json
  $ policyship config --bucket acme-policies --region eu-west-1 --credentials web-identity --role-arn arn:aws:iam::123456789012:role/opa
  $ policyship config --to /srv/bundles --service-url https://bundles.example.com
  $ policyship config --store oci://ghcr.io/acme/policies --registry-token-path /run/secrets/ghcr-token`,
    )
    .action(async (_options, command: Command) => {
      const context = await createContext(io, command);
      const result = await config(context);
      const { text: _text, ...data } = result;
      print(io, context, data, renderConfigResult(result));
    });
}
