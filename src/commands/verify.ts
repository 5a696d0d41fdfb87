import path from "node:path";
import { type Command, Option } from "commander";
import { readLocalRecord } from "../bundle/publish-record.ts";
import type { VerifiedObject } from "../bundle/verify.ts";
import { TARGETS } from "../choices.ts";
import { createContext, type Io, print } from "../cli-kit.ts";
import { addStoreOptions } from "../cli-options.ts";
import type { Context } from "../context.ts";
import { UserError } from "../errors.ts";
import { locateOpaFor } from "../opa/locate.ts";
import { prepareVerificationKey, redactError } from "../opa/signing-key.ts";
import { assertRevision } from "../revision.ts";
import { bundleLimits } from "../settings-access.ts";
import { openStore } from "../store/open.ts";
import { artifactFile, type Store, type Target } from "../store/store.ts";

/**
 * A revision named on the command line: a full SHA as is; a short SHA, tag or branch through the local git;
 * anything else (e.g. a --revision naming scheme) as a literal revision.
 */
export async function resolveRevisionArgument(context: Context, ref: string): Promise<string> {
  if (/^[0-9a-f]{40}$/.test(ref)) return ref;
  const { resolveCommit } = await import("../git.ts");
  const sha =
    /^[\w./~^@{}-]+$/.test(ref) && !ref.startsWith("-") ? await resolveCommit(context.cwd, ref) : undefined;
  if (sha) return sha;
  if (!ref) throw new UserError("no revision given", "name a full SHA, a short SHA, a tag or a branch");
  return assertRevision(ref);
}

/**
 * Resolves the revision, then downloads the published object and checks its sha256 (and pin) against the
 * local build and publish record when there is one, its sha256 against the publish metadata, its manifest
 * revision and (with --verification-key) its signature. Used by verify and rollback.
 */
export async function checkPublished(
  context: Context,
  ref: string,
  target: Target = context.settings.target,
): Promise<{ store: Store; verified: VerifiedObject }> {
  const { settings } = context;
  const [revision, store, opa] = await Promise.all([
    resolveRevisionArgument(context, ref),
    openStore(context),
    locateOpaFor(context),
  ]);
  context.log.info(`checking ${revision} in ${store.location}`);
  // build's `<rev>.json` (publish adds its pin): the store's metadata is written by whoever wrote the object.
  const recordFile = path.resolve(
    context.cwd,
    settings.out,
    artifactFile(revision, target).replace(/\.tar\.gz$/, ".json"),
  );
  const record = await readLocalRecord(recordFile, store.location);
  const { verifyPublished } = await import("../bundle/verify.ts");
  // opa reads the key from a file: an HMAC secret on its argv could be read by any user of the machine.
  const key = await prepareVerificationKey(context);
  try {
    const verified = await verifyPublished(store, {
      prefix: settings.prefix,
      revision,
      opa,
      limits: bundleLimits(settings),
      verificationKey: key?.file,
      keyId: settings.keyId,
      signingAlg: settings.signingAlg,
      v0Compatible: settings.v0Compatible,
      target,
      ...(record
        ? { record: { ...record, file: path.relative(context.cwd, recordFile) || recordFile } }
        : {}),
    });
    return { store, verified };
  } catch (error) {
    throw redactError(error, key);
  } finally {
    await key?.cleanup();
  }
}

/** Downloads a published revision and checks its sha256, manifest revision and (with a key) signature. */
export async function verify(context: Context, ref: string): Promise<VerifiedObject> {
  return (await checkPublished(context, ref)).verified;
}

export function renderVerify(result: VerifiedObject): string {
  return [
    `verified ${result.url}`,
    `  revision   ${result.revision} (manifest matches)`,
    `  sha256     ${result.sha256} (${result.localRecord ? `matches ${result.localRecord} and the publish metadata` : "matches the publish metadata"})`,
    `  signature  ${result.signatureVerified ? "verified" : "not checked (no --verification-key)"}`,
    `  rests on   ${result.restsOn}`,
    ...(result.target === "wasm"
      ? ["  wasm       policy.wasm loads; the embedded engine has every built-in it needs"]
      : []),
  ].join("\n");
}

/** The `verify` command: its flags, help and examples, and how its result is printed. @internal: CLI only, kept out of the .d.ts */
export function defineVerify(program: Command, io: Io): Command {
  return addStoreOptions(program.command("verify"))
    .argument("<revision>", "full SHA, short SHA, tag or branch")
    .description("download a published revision and check its sha256, manifest revision and signature")
    .option("--verification-key <pem>", "public key to check the bundle signature with")
    .option("--key-id <id>", "name of the verification key")
    .option("--v0-compatible", "the bundle holds policies written before OPA 1.0")
    .addOption(
      new Option(
        "--target <target>",
        "wasm: the revision's <rev>.wasm.tar.gz, checked for the embedded engine too (default: rego)",
      ).choices(TARGETS),
    )
    .addHelpText(
      "after",
      "\nExamples:\n  $ policyship verify 3f2a9c1 --bucket acme-policies --region eu-west-1\n  $ policyship verify 3f2a9c1 --target wasm --bucket acme-policies --region eu-west-1\n  $ policyship verify 3f2a9c1 --store oci://ghcr.io/acme/policies",
    )
    .action(async (ref: string, _options, command: Command) => {
      const context = await createContext(io, command);
      const result = await verify(context, ref);
      print(io, context, result, renderVerify(result));
    });
}
