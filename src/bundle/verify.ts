import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { FailureError } from "../errors.ts";
import type { Opa } from "../opa/commands.ts";
import { runOpa } from "../opa/run.ts";
import { objectKey, revisionOfKey, type Store, type StoredObject } from "../store/store.ts";
import { type BundleLimits, readBundle } from "./read.ts";

export interface VerifiedObject {
  revision: string;
  key: string;
  url: string;
  sha256: string;
  size: number;
  signatureVerified: boolean;
  metadata: Record<string, string>;
  /** The store's name for the verified bytes (an OCI manifest digest): what config and rollback pin. */
  pin?: string;
}

/** Published revisions, newest first. */
export async function listPublished(
  store: Store,
  prefix: string,
): Promise<(StoredObject & { revision: string })[]> {
  const objects = await store.list(prefix);
  return objects
    .map((object) => ({ ...object, revision: revisionOfKey(prefix, object.key) }))
    .filter((object): object is StoredObject & { revision: string } => object.revision !== undefined)
    .sort((a, b) => (b.lastModified?.getTime() ?? 0) - (a.lastModified?.getTime() ?? 0));
}

/** Fails with the five newest published revisions, so a typo is easy to correct. */
export async function unknownRevision(store: Store, prefix: string, revision: string): Promise<never> {
  const newest = (await listPublished(store, prefix)).slice(0, 5);
  const listed = newest.length ? newest.map((o) => o.revision).join(", ") : "none";
  throw new FailureError(
    `revision ${revision} is not published in ${store.location}${prefix}`,
    `newest published: ${listed}`,
    {
      revision,
      newest: newest.map((o) => ({ revision: o.revision, lastModified: o.lastModified, size: o.size })),
    },
  );
}

/**
 * Downloads a published bundle and checks it: sha256 against the metadata written at publish, its entries
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
  },
): Promise<VerifiedObject> {
  const key = objectKey(options.prefix, options.revision);
  const url = store.urlOf(key);
  const head = await store.head(key);
  if (!head) return unknownRevision(store, options.prefix, options.revision);
  const body = await store.get(key);
  const contents = await readBundle(body, [], options.limits);
  const recorded = head.metadata.sha256;
  if (!recorded) {
    throw new FailureError(
      `${url} has no sha256 metadata`,
      "it was not published by policyship; publish it again",
    );
  }
  if (contents.sha256 !== recorded) {
    throw new FailureError(
      `${url} was changed after publishing: its sha256 is ${contents.sha256}, publish recorded ${recorded}`,
      "do not deploy it; publish the revision from its commit again under a new key or restore the object",
    );
  }
  if (contents.manifest.revision !== options.revision) {
    throw new FailureError(
      `${url} holds a bundle whose manifest revision is ${JSON.stringify(contents.manifest.revision)}, not ${options.revision}`,
      "do not deploy it; the object does not match its key",
    );
  }
  await loadWithOpa(body, options);
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
  };
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
