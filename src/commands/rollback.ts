import type { Command } from "commander";
import { createContext, type Io, print } from "../cli-kit.ts";
import { addConfigOptions, addStoreOptions } from "../cli-options.ts";
import type { Context } from "../context.ts";
import { appendStepSummary, inGitHubActions, markdownText, writeOutputs } from "../github.ts";
import { type ConfigResult, config } from "./config.ts";
import { checkPublished } from "./verify.ts";

export interface RollbackResult extends ConfigResult {
  url: string;
  sha256: string;
  signatureVerified: boolean;
  /** What "verified" rests on (see VerifiedObject.restsOn). */
  restsOn: string;
  localRecord: string | null;
}

/** Checks the published object (exists, sha256, manifest revision, signature) and renders the config pinned to it. */
export async function rollback(context: Context, ref: string): Promise<RollbackResult> {
  // OPA is rolled back, so its artifact is checked: the rego bundle, whatever target builds use.
  const { store, verified } = await checkPublished(context, ref, "rego");
  const { revision } = verified;
  // The config names the very bytes just verified (the manifest digest on OCI), not the revision's tag.
  const rendered = await config(context, { revision, store, verified: true, pin: verified.pin });
  const result: RollbackResult = {
    ...rendered,
    url: verified.url,
    sha256: verified.sha256,
    signatureVerified: verified.signatureVerified,
    restsOn: verified.restsOn,
    localRecord: verified.localRecord,
  };
  if (inGitHubActions(context.env)) {
    await writeOutputs(context.env, {
      revision,
      key: result.key,
      url: result.url,
      sha256: result.sha256,
      config: result.output,
    });
    await appendStepSummary(
      context.env,
      `## policyship rollback to \`${revision}\`\n\n- **Object**: \`${result.url}\` (sha256 \`${result.sha256}\` verified; ${markdownText(result.restsOn)})\n- **Config**: ${result.output ? markdownText(result.output) : "printed on stdout"}\n`,
    );
  }
  return result;
}

export function renderRollback(result: RollbackResult): string {
  const header = `# rollback to ${result.revision}: ${result.url} (sha256 ${result.sha256} verified)\n# verified: ${result.restsOn}`;
  return result.output
    ? `${header}\nwrote OPA config to ${result.output}`
    : `${header}\n${result.text.trimEnd()}`;
}

/** The `rollback` command: its flags, help and examples, and how its result is printed. @internal: CLI only, kept out of the .d.ts */
export function defineRollback(program: Command, io: Io): Command {
  return addConfigOptions(addStoreOptions(program.command("rollback")))
    .argument("<revision>", "full SHA, short SHA, tag or branch")
    .description("check a published revision and render the OPA config pinned to it")
    .option("--v0-compatible", "the bundle holds policies written before OPA 1.0")
    .addHelpText(
      "after",
      `
Examples:
  $ policyship rollback 3f2a9c1 --bucket acme-policies --region eu-west-1 -o opa-config.yaml
  $ policyship rollback v1.4.2 --bucket acme-policies --region eu-west-1
  $ policyship rollback 3f2a9c1 --store oci://ghcr.io/acme/policies -o opa-config.yaml
  $ policyship rollback 3f2a9c1 --bucket acme-policies --verification-key pub.pem --key-id release`,
    )
    .action(async (ref: string, _options, command: Command) => {
      const context = await createContext(io, command);
      const result = await rollback(context, ref);
      const { text: _text, ...data } = result;
      print(io, context, data, renderRollback(result));
    });
}
