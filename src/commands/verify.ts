import type { VerifiedObject } from "../bundle/verify.ts";
import type { Context } from "../context.ts";
import { locateOpa } from "../opa/locate.ts";
import { openStore } from "../store/open.ts";
import { resolveRevisionArgument } from "./rollback.ts";

/** Downloads a published revision and checks its sha256, manifest revision and (with a key) signature. */
export async function verify(context: Context, ref: string): Promise<VerifiedObject> {
  const { settings } = context;
  const [revision, store, opa] = await Promise.all([
    resolveRevisionArgument(context, ref),
    openStore(context),
    settings.verificationKey
      ? locateOpa({ flag: settings.opa, env: context.env, cwd: context.cwd })
      : undefined,
  ]);
  const { verifyPublished } = await import("../bundle/verify.ts");
  return verifyPublished(store, {
    prefix: settings.prefix,
    revision,
    opa: opa?.path,
    verificationKey: settings.verificationKey,
    keyId: settings.keyId,
    v0Compatible: settings.v0Compatible,
  });
}

export function renderVerify(result: VerifiedObject): string {
  return [
    `verified ${result.url}`,
    `  revision   ${result.revision} (manifest matches)`,
    `  sha256     ${result.sha256} (matches publish metadata)`,
    `  signature  ${result.signatureVerified ? "verified" : "not checked (no --verification-key)"}`,
  ].join("\n");
}
