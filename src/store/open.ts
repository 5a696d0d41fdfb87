import path from "node:path";
import type { Context } from "../context.ts";
import { UserError } from "../errors.ts";
import type { Store } from "./store.ts";

/** The region for S3: --region, then AWS_REGION / AWS_DEFAULT_REGION, then us-east-1 for custom endpoints. */
export function resolveRegion(context: Context): string | undefined {
  const { settings, env } = context;
  return (
    settings.region ??
    env.AWS_REGION ??
    env.AWS_DEFAULT_REGION ??
    (settings.endpoint ? "us-east-1" : undefined)
  );
}

/**
 * A progress line on a terminal (never with --json), rewritten at most every 200 ms and ended at the total.
 * Counts below `from` are not worth a line.
 */
function progressLine(context: Context, show: (done: number, total: number) => string, from = 0) {
  if (!process.stderr.isTTY || context.json) return undefined;
  let last = 0;
  return (done: number, total: number) => {
    const now = Date.now();
    if (total < from || (now - last < 200 && done < total)) return;
    last = now;
    process.stderr.write(`\r${show(done, total)}`);
    if (done >= total) process.stderr.write("\n");
  };
}

const uploading = (loaded: number, total: number) =>
  `uploading ${total ? Math.floor((loaded / total) * 100) : 0}% (${(loaded / 1e6).toFixed(1)}/${(total / 1e6).toFixed(1)} MB)`;

/** The S3 store, or the directory store with --to; the AWS SDK is loaded only for S3. */
export async function openStore(context: Context): Promise<Store> {
  const { settings, cwd } = context;
  if (settings.to) {
    const { DirectoryStore } = await import("./directory.ts");
    return new DirectoryStore(path.resolve(cwd, settings.to), settings.serviceUrl);
  }
  if (settings.registry) {
    const [{ OciStore }, { parseRegistry }, { findCredential }] = await Promise.all([
      import("./oci/oci.ts"),
      import("./oci/reference.ts"),
      import("./oci/credentials.ts"),
    ]);
    const reference = parseRegistry(settings.registry, settings.insecureRegistry);
    const credential = await findCredential(reference.registry, context.env);
    context.log.debug(
      `registry ${reference.registry}: credentials from ${credential?.source ?? "nowhere (anonymous)"}`,
    );
    return new OciStore(reference, credential, settings.prefix, {
      insecureHosts: settings.insecureRegistry,
      onProgress: progressLine(context, uploading),
      // A registry with a long history: one manifest per tag.
      onListed: progressLine(context, (read, total) => `reading manifests ${read}/${total}`, 50),
    });
  }
  if (!settings.bucket) {
    throw new UserError(
      "no bucket given",
      "pass --bucket <name> or --store oci://<registry>/<repository> (or bucket: / registry: in policyship.yaml)",
    );
  }
  const region = resolveRegion(context);
  if (!region) throw new UserError("no AWS region given", "pass --region, or set AWS_REGION");
  const { S3Store } = await import("./s3.ts");
  return new S3Store({
    bucket: settings.bucket,
    region,
    endpoint: settings.endpoint,
    forcePathStyle: settings.forcePathStyle || settings.endpoint !== undefined,
    profile: settings.profile,
    onProgress: progressLine(context, uploading),
  });
}
