import type { Context } from "../context.ts";
import { UserError } from "../errors.ts";
import { appendStepSummary, inGitHubActions, writeOutputs } from "../github.ts";
import { locateOpa } from "../opa/locate.ts";
import { assertRevision } from "../revision.ts";
import { openStore } from "../store/open.ts";
import { type ConfigResult, config } from "./config.ts";

/**
 * A revision named on the command line: a full SHA as is; a short SHA, tag or branch through the local git;
 * anything else (e.g. a --revision naming scheme) as a literal revision.
 */
export async function resolveRevisionArgument(context: Context, ref: string): Promise<string> {
  if (/^[0-9a-f]{40}$/.test(ref)) return ref;
  const { resolveCommit } = await import("../git.ts");
  const sha =
    /^[\w./-]+$/.test(ref) && !ref.startsWith("-") ? await resolveCommit(context.cwd, ref) : undefined;
  if (sha) return sha;
  if (!ref) throw new UserError("no revision given", "name a full SHA, a short SHA, a tag or a branch");
  return assertRevision(ref);
}

export interface RollbackResult extends ConfigResult {
  url: string;
  sha256: string;
  signatureVerified: boolean;
}

/** Checks the published object (exists, sha256, manifest revision, signature) and renders the config pinned to it. */
export async function rollback(context: Context, ref: string): Promise<RollbackResult> {
  const { settings } = context;
  const [revision, store] = await Promise.all([resolveRevisionArgument(context, ref), openStore(context)]);
  context.log.info(`checking ${revision} in ${store.location}`);
  const { verifyPublished } = await import("../bundle/verify.ts");
  const opa = settings.verificationKey
    ? await locateOpa({ flag: settings.opa, env: context.env, cwd: context.cwd })
    : undefined;
  const verified = await verifyPublished(store, {
    prefix: settings.prefix,
    revision,
    opa: opa?.path,
    verificationKey: settings.verificationKey,
    keyId: settings.keyId,
    v0Compatible: settings.v0Compatible,
  });
  const rendered = await config(context, { revision, store, verified: true });
  const result: RollbackResult = {
    ...rendered,
    url: verified.url,
    sha256: verified.sha256,
    signatureVerified: verified.signatureVerified,
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
      `## policyship rollback to \`${revision}\`\n\n- **Object**: \`${result.url}\` (sha256 \`${result.sha256}\` verified)\n- **Config**: ${result.output ?? "printed on stdout"}\n`,
    );
  }
  return result;
}

export function renderRollback(result: RollbackResult): string {
  const header = `# rollback to ${result.revision}: ${result.url} (sha256 ${result.sha256} verified)`;
  return result.output
    ? `${header}\nwrote OPA config to ${result.output}`
    : `${header}\n${result.text.trimEnd()}`;
}
