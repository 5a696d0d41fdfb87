import { rename, writeFile } from "node:fs/promises";
import path from "node:path";
import type { Command } from "commander";
import { createContext, type Io, print } from "../cli-kit.ts";
import { addConfigOptions, addStoreOptions } from "../cli-options.ts";
import type { Context } from "../context.ts";
import { FailureError } from "../errors.ts";
import { readVerificationKey } from "../opa/signing-key.ts";
import { type OpaConfig, renderOpaConfig } from "../opa-config/render.ts";
import { revisionOrHead } from "../revision.ts";
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
}

export async function serialize(config: OpaConfig, format: "yaml" | "json"): Promise<string> {
  if (format === "json") return `${JSON.stringify(config, null, 2)}\n`;
  const YAML = await loadYaml();
  return YAML.stringify(config, { lineWidth: 0 });
}

/** Writes atomically (temp name, then rename), so a deploy never reads half a config. */
export async function writeOutput(file: string, text: string) {
  const temp = `${file}.${process.pid}.tmp`;
  await writeFile(temp, text);
  await rename(temp, file);
}

/**
 * Renders OPA's configuration pinned to a revision. `--verify` first checks that the object exists.
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
  const rendered = renderOpaConfig({
    revision,
    settings,
    region: resolveRegion(context),
    verificationKey,
    pin: prepared?.pin,
  });
  if (settings.verify && !prepared?.verified) {
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
  if (output) await writeOutput(output, text);
  return {
    revision,
    key,
    format: settings.format,
    output: output ? path.relative(context.cwd, output) || output : undefined,
    text,
    config: rendered,
  };
}

export function renderConfigResult(result: ConfigResult): string {
  return result.output
    ? `wrote OPA config for ${result.revision} to ${result.output}`
    : result.text.trimEnd();
}

/** The `config` command: its flags, help and examples, and how its result is printed. */
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
