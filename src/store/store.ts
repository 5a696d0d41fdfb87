/** Where published bundles live: an S3 bucket, or a folder laid out like one. */

export interface StoredObject {
  key: string;
  size: number;
  lastModified?: Date;
  /** User metadata written at publish: revision, sha256, git-ref, built-at. */
  metadata: Record<string, string>;
  /**
   * What names these very bytes where the store can: an OCI manifest digest (`sha256:…`). The rendered OPA
   * config points at it instead of the revision's mutable name.
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

export interface Store {
  /** e.g. s3://bucket/prefix/ or /srv/bundles/ — for messages. */
  readonly location: string;
  /** Creates the object only when the key is free; never overwrites. */
  createIfAbsent(object: ObjectToCreate): Promise<CreateOutcome>;
  head(key: string): Promise<StoredObject | undefined>;
  get(key: string): Promise<Buffer>;
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
