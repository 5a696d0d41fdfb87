import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { type Command, Option } from "commander";
import { recordPublished } from "../bundle/publish-record.ts";
import { sha256File, sha256Of } from "../bundle/read.ts";
import { changedAfterPublishing } from "../bundle/verify.ts";
import { TARGETS } from "../choices.ts";
import { createContext, type Io, print } from "../cli-kit.ts";
import { addConfigOptions, addStoreOptions } from "../cli-options.ts";
import type { Context } from "../context.ts";
import { FailureError, UserError } from "../errors.ts";
import { revisionOrHead } from "../revision.ts";
import { parseJson } from "../safe-json.ts";
import { openStore } from "../store/open.ts";
import { artifactFile, artifactKey, type Store, type StoredObject, type Target } from "../store/store.ts";
import type { BuildResult } from "./build.ts";

export interface PublishResult {
  revision: string;
  key: string;
  url: string;
  sha256: string;
  size: number;
  /** false when the same content was already there (an idempotent re-run). */
  created: boolean;
  /** The store's name for exactly these bytes (an S3 object version, an OCI manifest digest), for a config pinned to them. */
  pin?: string;
}

/** SHA-256 of the bytes the store holds for an object: the store's own answer, or the bytes hashed here. */
export async function storedSha256(store: Store, object: StoredObject): Promise<string> {
  if (store.storedSha256) return store.storedSha256(object);
  return sha256Of(await store.get(object.key, object.pin));
}

/**
 * What build wrote for a revision. With build's record (`<rev>.json`), its sha256 is used as is: the store
 * checks the bytes against it while uploading, so the tarball is read once. Without one, it is hashed first.
 */
async function readBuildOutput(context: Context, revision: string, target: Target) {
  const file = path.resolve(context.cwd, context.settings.out, artifactFile(revision, target));
  const info = await stat(file).catch(() => undefined);
  if (!info?.isFile()) {
    throw new UserError(
      `no bundle for revision ${revision} at ${path.relative(context.cwd, file)}`,
      "run policyship build first (same --out)",
    );
  }
  const metadata = await readFile(file.replace(/\.tar\.gz$/, ".json"), "utf8")
    .then((text) => parseJson(text) as Partial<BuildResult>)
    .catch(() => ({}) as Partial<BuildResult>);
  const recorded = typeof metadata.sha256 === "string" && /^[0-9a-f]{64}$/.test(metadata.sha256);
  const sha256 = recorded ? (metadata.sha256 as string) : (await sha256File(file)).sha256;
  return { file, sha256, size: info.size, metadata };
}

/**
 * Uploads `<out>/<rev>.tar.gz` to `<prefix><rev>.tar.gz` (for wasm, `<rev>.wasm.tar.gz` to
 * `<prefix><rev>.wasm.tar.gz`, the OCI tag `<rev>.wasm`) as a conditional create. A revision is immutable:
 * the same content already there is success, other content is a failure that leaves the object untouched.
 */
export async function publish(
  context: Context,
  prepared?: { revision?: string; build?: BuildResult; store?: Store },
): Promise<PublishResult> {
  const revision = prepared?.revision ?? (await revisionOrHead(context, "publish"));
  if (revision.endsWith("-dirty")) {
    throw new FailureError(
      `refusing to publish ${revision}: it was built from uncommitted changes`,
      "commit the changes and build again",
    );
  }
  const target = prepared?.build?.target ?? context.settings.target;
  const [bundle, store] = await Promise.all([
    prepared?.build
      ? {
          file: path.resolve(context.cwd, prepared.build.bundle),
          sha256: prepared.build.sha256,
          size: prepared.build.size,
          metadata: prepared.build,
        }
      : readBuildOutput(context, revision, target),
    prepared?.store ?? openStore(context),
  ]);
  const key = artifactKey(context.settings.prefix, revision, target);
  const url = store.urlOf(key);
  const metadata: Record<string, string> = {
    revision,
    sha256: bundle.sha256,
    "built-at": bundle.metadata.builtAt ?? new Date().toISOString(),
  };
  const gitRef = bundle.metadata.git?.branch ?? context.env.GITHUB_REF;
  if (gitRef) metadata["git-ref"] = gitRef;
  if (target === "wasm") metadata.target = "wasm";
  context.log.info(`publishing ${revision} to ${url}`);
  const outcome = await store.createIfAbsent(
    {
      key,
      file: bundle.file,
      size: bundle.size,
      sha256: bundle.sha256,
      contentType: "application/gzip",
      metadata,
    },
    { signal: context.signal },
  );
  let pin = outcome.created ? outcome.pin : undefined;
  if (!outcome.created) {
    // "Already published" is decided from the stored bytes; the metadata is only what the writer claimed.
    const existing = outcome.existing;
    const stored = await storedSha256(store, existing);
    const recorded = existing.metadata.sha256;
    if (stored !== recorded) throw changedAfterPublishing(url, stored, recorded);
    if (stored !== bundle.sha256) {
      throw new FailureError(
        `${url} already holds other content for revision ${revision} (published sha256 ${stored}, local ${bundle.sha256}); left untouched`,
        "a revision is immutable: commit the change and publish the new SHA",
        { revision, key, url, publishedSha256: stored, localSha256: bundle.sha256 },
      );
    }
    pin = existing.pin;
  }
  // Beside build's record, so config for this revision pins these bytes without asking the store again.
  await recordPublished(bundle.file.replace(/\.tar\.gz$/, ".json"), store.location, {
    url,
    ...(pin ? { pin } : {}),
    publishedAt: new Date().toISOString(),
  });
  return {
    revision,
    key,
    url,
    sha256: bundle.sha256,
    size: bundle.size,
    created: outcome.created,
    ...(pin ? { pin } : {}),
  };
}

export function renderPublish(result: PublishResult): string {
  const pin = result.pin ? `, pinned by ${result.pin}` : "";
  return result.created
    ? `published ${result.url} (sha256 ${result.sha256}, ${result.size} bytes${pin})`
    : `already published ${result.url} with the same sha256 ${result.sha256}${pin}`;
}

/** The `publish` command: its flags, help and examples, and how its result is printed. @internal: CLI only, kept out of the .d.ts */
export function definePublish(program: Command, io: Io): Command {
  return addConfigOptions(addStoreOptions(program.command("publish")))
    .description(
      "upload <out>/<rev>.tar.gz to <prefix><rev>.tar.gz (or the tag <rev> in an OCI registry); a revision is immutable",
    )
    .option("--out <dir>", "where build wrote the bundle (default: dist)")
    .option("--revision <id>", "revision to publish (default: full SHA of HEAD)")
    .addOption(
      new Option("--target <target>", "wasm: publish <rev>.wasm.tar.gz beside the rego bundle").choices(
        TARGETS,
      ),
    )
    .addHelpText(
      "after",
      `
Examples:
  $ policyship publish --bucket acme-policies --region eu-west-1
  $ policyship publish --bucket policies --endpoint http://127.0.0.1:9000
  $ policyship publish --to /srv/bundles
  $ policyship publish --store oci://ghcr.io/acme/policies
  $ policyship publish --target wasm --bucket acme-policies   # <prefix><rev>.wasm.tar.gz

Publishing the same revision again with the same content succeeds ("already published");
other content under a published revision exits 1 and leaves the object untouched.`,
    )
    .action(async (_options, command: Command) => {
      const context = await createContext(io, command);
      const result = await publish(context);
      print(io, context, result, renderPublish(result));
    });
}
