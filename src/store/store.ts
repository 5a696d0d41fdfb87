/** Where published bundles live: an S3 bucket, or a folder laid out like one. */

export interface StoredObject {
  key: string;
  size: number;
  lastModified?: Date;
  /** User metadata written at publish: revision, sha256, git-ref, built-at. */
  metadata: Record<string, string>;
  /**
   * The store's own name for exactly these bytes, which no later write can change: the object's version on
   * a versioned S3 bucket, an OCI manifest digest (`sha256:…`). The rendered OPA config names it instead of
   * the revision's mutable name. Undefined where the store has none (the key is all a reader can name).
   */
  pin?: string;
}

export interface ObjectToCreate {
  key: string;
  file: string;
  size: number;
  /** The digest recorded at build; stores check the bytes they send against it and refuse a mismatch. */
  sha256: string;
  contentType: string;
  metadata: Record<string, string>;
}

/** `pin`: what names the created bytes, where the store has such a name (see StoredObject.pin). */
export type CreateOutcome = { created: true; pin?: string } | { created: false; existing: StoredObject };

/** How a create may be stopped: at the signal, the store undoes what it started (an upload) and throws. */
export interface CreateOptions {
  signal?: AbortSignal;
}

export interface Store {
  /** e.g. s3://bucket/prefix/ or /srv/bundles/ — for messages. */
  readonly location: string;
  /**
   * Creates the object only when the key is free; never overwrites. Aborted by `options.signal`, it leaves
   * no object, no partial object and no pending upload behind, and throws (see interruptedBy).
   */
  createIfAbsent(object: ObjectToCreate, options?: CreateOptions): Promise<CreateOutcome>;
  head(key: string): Promise<StoredObject | undefined>;
  /** The bytes under key; with a pin, exactly the bytes that pin names. */
  get(key: string, pin?: string): Promise<Buffer>;
  /**
   * SHA-256 (hex) of the bytes stored for the object (at its pin), from a checksum the server computed over
   * the whole object or by reading the bytes; never from the metadata, which whoever writes the object sets.
   */
  storedSha256?(object: StoredObject): Promise<string>;
  /** Whether a rendered config can name exactly the verified bytes here, in one line (doctor). */
  pinning?(): Promise<{ pinned: boolean; detail: string }>;
  /** Objects under the prefix, any order. */
  list(prefix: string): Promise<StoredObject[]>;
  /** A URL for humans and GitHub outputs. */
  urlOf(key: string): string;
  /** Removes the object and its metadata (prune). */
  delete(key: string): Promise<void>;
  /** One cheap call that proves the store answers (doctor); stores without it are listed instead. */
  probe?(): Promise<string>;
}

/** Object key of a revision: the prefix (always ending in "/" when set) then `<rev>.tar.gz`. */
export function objectKey(prefix: string, revision: string): string {
  return `${normalizePrefix(prefix)}${revision}.tar.gz`;
}

export function normalizePrefix(prefix: string): string {
  return prefix === "" || prefix.endsWith("/") ? prefix : `${prefix}/`;
}

/** The revision named by a key under prefix, or undefined for other objects. */
export function revisionOfKey(prefix: string, key: string): string | undefined {
  const normalized = normalizePrefix(prefix);
  if (!key.startsWith(normalized)) return undefined;
  const match = /^([A-Za-z0-9._-]{1,128})\.tar\.gz$/.exec(key.slice(normalized.length));
  return match?.[1];
}

/** What a bundle is built for: OPA (rego) or the embedded engine (wasm). */
export type Target = "rego" | "wasm";

/** Marks a wasm artifact's name; a revision may not end with it (see assertRevision), so names never collide. */
export const WASM_SUFFIX = ".wasm";

/**
 * The file name of a revision's artifact: `<rev>.tar.gz` for rego (as ever), `<rev>.wasm.tar.gz` for wasm.
 * The same name is the object key under the prefix, the directory store's file, and (less `.tar.gz`) the
 * OCI tag, so one commit ships both under one revision.
 */
export function artifactFile(revision: string, target: Target = "rego"): string {
  return `${revision}${target === "wasm" ? WASM_SUFFIX : ""}.tar.gz`;
}

/** Object key of a revision's artifact for a target; objectKey's for rego. */
export function artifactKey(prefix: string, revision: string, target: Target = "rego"): string {
  return `${normalizePrefix(prefix)}${artifactFile(revision, target)}`;
}

/** The revision and target a key names under prefix, or undefined for other objects. */
export function artifactOfKey(prefix: string, key: string): { revision: string; target: Target } | undefined {
  const name = revisionOfKey(prefix, key);
  if (!name) return undefined;
  if (!name.endsWith(WASM_SUFFIX)) return { revision: name, target: "rego" };
  const revision = name.slice(0, -WASM_SUFFIX.length);
  return revision ? { revision, target: "wasm" } : undefined;
}
