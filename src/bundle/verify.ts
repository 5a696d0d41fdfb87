import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { FailureError } from "../errors.ts";
import type { Opa } from "../opa/commands.ts";
import { runOpa } from "../opa/run.ts";
import {
  artifactKey,
  artifactOfKey,
  normalizePrefix,
  type Store,
  type StoredObject,
  type Target,
} from "../store/store.ts";
import type { LocalRecord } from "./publish-record.ts";
import { type BundleLimits, readBundle } from "./read.ts";

export interface VerifiedObject {
  revision: string;
  key: string;
  url: string;
  sha256: string;
  size: number;
  signatureVerified: boolean;
  metadata: Record<string, string>;
  /** The store's name for exactly the bytes verified (an S3 object version, an OCI manifest digest). */
  pin?: string;
  target: Target;
  /** The local record the bytes (and pin) were checked against, or null when there was none. */
  localRecord: string | null;
  /** What "verified" rests on: the local record, the signature, or only the store's own metadata. */
  restsOn: string;
}

/** Said when nothing but the store vouches for the bytes: whoever overwrote them could write that too. */
export const RESTS_ON_STORE_METADATA =
  "matches the store's own metadata only; sign bundles (or keep the build record) to verify against tampering";

/** Published revisions of one target (rego unless asked: what OPA serves), or of both, newest first. */
export async function listPublished(
  store: Store,
  prefix: string,
  target: Target | "all" = "rego",
): Promise<(StoredObject & { revision: string; target: Target })[]> {
  // "authz" and "authz/" name the same folder in every store (objectKey puts the slash in): a store's list
  // takes a key prefix, and the directory store lists the folder a prefix ends in.
  const objects = await store.list(normalizePrefix(prefix));
  return objects
    .flatMap((object) => {
      const artifact = artifactOfKey(prefix, object.key);
      return artifact && (target === "all" || artifact.target === target) ? [{ ...object, ...artifact }] : [];
    })
    .sort((a, b) => (b.lastModified?.getTime() ?? 0) - (a.lastModified?.getTime() ?? 0));
}

/** Fails with the five newest published revisions, so a typo is easy to correct. */
export async function unknownRevision(
  store: Store,
  prefix: string,
  revision: string,
  target: Target = "rego",
): Promise<never> {
  const newest = (await listPublished(store, prefix, target)).slice(0, 5);
  const listed = newest.length ? newest.map((o) => o.revision).join(", ") : "none";
  throw new FailureError(
    `revision ${revision} is not published${target === "wasm" ? " for wasm" : ""} in ${store.location}${prefix}`,
    `newest published: ${listed}`,
    {
      revision,
      newest: newest.map((o) => ({ revision: o.revision, lastModified: o.lastModified, size: o.size })),
    },
  );
}

/**
 * The object's bytes are not the ones publish recorded. One message for publish, verify and rollback, so
 * none of them tells the user to do what another refuses.
 */
export function changedAfterPublishing(url: string, actual: string, recorded: string | undefined) {
  const what = recorded
    ? `${url} was changed after publishing, it holds other content: its sha256 is ${actual}, publish recorded ${recorded}`
    : `${url} has no sha256 metadata, so nothing says its bytes (sha256 ${actual}) are the ones published`;
  return new FailureError(
    what,
    "do not deploy it; restore the published object, or delete it and publish the revision again from its commit",
    { url, sha256: actual, recordedSha256: recorded ?? null },
  );
}

/**
 * The store holds other bytes (or another manifest) than this machine recorded for the revision. The store's
 * metadata may well agree with the store: whoever overwrote the object could write that too.
 */
function differsFromRecord(url: string, what: string, actual: string, recorded: string, file: string) {
  return new FailureError(
    `${url} ${what} ${actual}, but ${path.basename(file)} here recorded ${recorded}`,
    "do not deploy it; restore the published object, or delete it and publish the revision again from its commit",
    { url, actual, recorded, record: file },
  );
}

function restsOn(record: LocalRecord | undefined, signatureVerified: boolean): string {
  const grounds = [
    ...(record ? [`matches the local record ${record.file}`] : []),
    ...(signatureVerified ? ["its signature verifies with the given key"] : []),
  ];
  return grounds.length ? grounds.join("; ") : RESTS_ON_STORE_METADATA;
}

/**
 * Downloads a published bundle and checks it: sha256 (and pin) against the local record when there is one,
 * sha256 against the metadata written at publish, its entries
 * (bounded, no links, no climbing or duplicate paths), the manifest's revision against the key, and that
 * the real opa loads it (`opa build --bundle`, with the signature checked when a key is given): whatever
 * verify accepts, OPA accepts.
 */
export async function verifyPublished(
  store: Store,
  options: {
    prefix: string;
    revision: string;
    opa: Opa;
    limits: BundleLimits;
    verificationKey?: string;
    keyId?: string;
    signingAlg?: string;
    v0Compatible?: boolean;
    /** wasm: the revision's `<rev>.wasm.tar.gz`, which the embedded engine must also be able to run. */
    target?: Target;
    /** What build and publish recorded here for the revision: the store must hold exactly that. */
    record?: LocalRecord;
  },
): Promise<VerifiedObject> {
  const target = options.target ?? "rego";
  const key = artifactKey(options.prefix, options.revision, target);
  const url = store.urlOf(key);
  const head = await store.head(key);
  if (!head) return unknownRevision(store, options.prefix, options.revision, target);
  const { record } = options;
  if (record?.pin && head.pin !== record.pin) {
    throw differsFromRecord(url, "names", head.pin ?? "no pinned version", record.pin, record.file);
  }
  // With a pin, the bytes checked are exactly the ones the rendered config will name.
  const body = await store.get(key, head.pin);
  const contents = await readBundle(body, target === "wasm" ? ["policy.wasm"] : [], options.limits);
  const recorded = head.metadata.sha256;
  if (contents.sha256 !== recorded) throw changedAfterPublishing(url, contents.sha256, recorded);
  // Metadata that matches proves nothing on its own: whoever overwrote the bytes may have written it too.
  if (record?.sha256 && contents.sha256 !== record.sha256) {
    throw differsFromRecord(url, "holds sha256", contents.sha256, record.sha256, record.file);
  }
  if (contents.manifest.revision !== options.revision) {
    throw new FailureError(
      `${url} holds a bundle whose manifest revision is ${JSON.stringify(contents.manifest.revision)}, not ${options.revision}`,
      "do not deploy it; the object does not match its key",
    );
  }
  await loadWithOpa(body, options);
  if (target === "wasm") await assertEmbeddedEngineRuns(url, contents.kept.get("policy.wasm"));
  const signatureVerified = options.verificationKey !== undefined;
  return {
    revision: options.revision,
    key,
    url,
    sha256: contents.sha256,
    size: contents.size,
    signatureVerified,
    metadata: head.metadata,
    ...(head.pin ? { pin: head.pin } : {}),
    target,
    localRecord: record?.file ?? null,
    restsOn: restsOn(record, signatureVerified),
  };
}

/** The embedded engine's own checks on a wasm artifact: it has a policy.wasm, and every built-in it needs. */
async function assertEmbeddedEngineRuns(url: string, wasm: Buffer | undefined) {
  if (!wasm) {
    throw new FailureError(`${url} has no policy.wasm`, "do not deploy it to the embedded engine");
  }
  const { readHostBuiltins, unimplementedBuiltins, unimplementedHint, shownBuiltin } = await import(
    "../enforcer/builtin-check.ts"
  );
  const needed = await readHostBuiltins(wasm).catch((error: unknown) => {
    const reason = error instanceof Error ? error.message : String(error);
    throw new FailureError(
      `${url} has a policy.wasm the embedded engine cannot load: ${reason}`,
      "do not deploy it",
    );
  });
  const missing = unimplementedBuiltins(needed);
  if (missing.length > 0) {
    throw new FailureError(
      `${url} needs built-ins the embedded engine does not implement: ${missing.map(shownBuiltin).join(", ")}`,
      `do not deploy it; ${unimplementedHint(missing)}`,
    );
  }
}

/** `opa build --bundle` on the downloaded bytes: OPA's own reader and compiler, and the signature with a key. */
async function loadWithOpa(
  body: Buffer,
  options: {
    opa: Opa;
    verificationKey?: string;
    keyId?: string;
    signingAlg?: string;
    v0Compatible?: boolean;
  },
) {
  const dir = await mkdtemp(path.join(os.tmpdir(), "policyship-verify-"));
  try {
    const bundle = path.join(dir, "bundle.tar.gz");
    await writeFile(bundle, body);
    const args = ["build", "--bundle", bundle, "--output", path.join(dir, "out.tar.gz")];
    if (options.verificationKey) {
      args.push("--verification-key", options.verificationKey);
      if (options.keyId) args.push("--verification-key-id", options.keyId);
      if (options.signingAlg) args.push("--signing-alg", options.signingAlg);
    }
    if (options.v0Compatible) args.push("--v0-compatible");
    const result = await runOpa(options.opa.path, args, { env: options.opa.env });
    if (result.exitCode !== 0) {
      const reason = `${result.stdout}\n${result.stderr}`.trim().split("\n")[0] ?? "opa refused it";
      const cleaned = reason.replace(/^error:\s*/i, "").replaceAll(bundle, "the bundle");
      if (options.verificationKey && /verif|signature|token/i.test(cleaned)) {
        throw new FailureError(`the bundle's signature does not verify: ${cleaned}`, "do not deploy it");
      }
      throw new FailureError(`OPA refuses to load the bundle: ${cleaned}`, "do not deploy it");
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
