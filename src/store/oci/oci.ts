import { createReadStream } from "node:fs";
import { pipeline, Readable, Transform } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { digestVerifier, READ_CHUNK_BYTES } from "../../bundle/read.ts";
import { FailureError, isKnownError, UserError } from "../../errors.ts";
import { readCapped } from "../../http-body.ts";
import { interruptedBy } from "../../interrupt.ts";
import {
  type CreateOptions,
  type CreateOutcome,
  normalizePrefix,
  type ObjectToCreate,
  objectKey,
  revisionOfKey,
  type Store,
  type StoredObject,
} from "../store.ts";
import { downloadBlob, pushBlob } from "./blobs.ts";
import { isClaimTag, type TagAccess, writeTagOnce } from "./claim.ts";
import { RegistryClient } from "./client.ts";
import type { Credential } from "./credentials.ts";
import {
  ACCEPT_MANIFESTS,
  buildManifest,
  digestOf,
  EMPTY_CONFIG,
  EMPTY_CONFIG_DIGEST,
  type Found,
  MAX_MANIFEST_BYTES,
  MEDIA_TYPES,
  metadataOf,
  parseManifest,
} from "./manifest.ts";
import { pinned, type RegistryReference, tagOf } from "./reference.ts";
import { listTags } from "./wire.ts";

const LIST_CONCURRENCY = 8;
/** How long a refused upload waits for the local digest check to say why. */
const LOCAL_CHECK_WAIT_MS = 2_000;

/**
 * A store in an OCI registry, in the layout OPA's OCI downloader pulls (see manifest.ts): each revision is
 * the tag `<sha>`.
 */
export class OciStore implements Store {
  readonly location: string;
  private readonly client: RegistryClient;
  /** The manifest each tag had when head() last read it, for the get() that follows. */
  private readonly headed = new Map<string, Found>();

  constructor(
    readonly reference: RegistryReference,
    credential: Credential | undefined,
    private readonly prefix: string,
    private readonly options: {
      insecureHosts?: readonly string[];
      /** Called with bytes sent so far while the bundle goes up. */
      onProgress?: (loaded: number, total: number) => void;
      /** Called with manifests read so far while list() reads one per tag. */
      onListed?: (read: number, total: number) => void;
    } = {},
  ) {
    if (normalizePrefix(prefix) !== "") {
      throw new UserError(
        "--prefix has no meaning for an OCI registry",
        "remove prefix (flag, POLICYSHIP_PREFIX or policyship.yaml); put the path in the repository instead: oci://<registry>/<path>/<repository>",
      );
    }
    this.location = `oci://${reference.registry}/${reference.repository}`;
    this.client = new RegistryClient(reference, credential, options.insecureHosts);
  }

  private tagOfKey(key: string): string {
    const revision = revisionOfKey(this.prefix, key);
    if (!revision) throw new UserError(`${key} is not a revision's key`);
    return tagOf(revision);
  }

  urlOf(key: string): string {
    return pinned(this.reference, this.tagOfKey(key));
  }

  async head(key: string): Promise<StoredObject | undefined> {
    const tag = this.tagOfKey(key);
    const found = await this.manifest(tag);
    // get() right after head() (verify, rollback, diff) downloads the layer this very manifest names.
    if (found) this.headed.set(tag, found);
    else this.headed.delete(tag);
    return found && this.toObject(key, found);
  }

  private toObject(key: string, found: Found): StoredObject {
    const metadata = metadataOf(found);
    const created = metadata["built-at"] ? new Date(metadata["built-at"]) : undefined;
    return {
      key,
      size: found.layer?.size ?? 0,
      lastModified: created && !Number.isNaN(created.getTime()) ? created : undefined,
      metadata,
      pin: found.digest,
    };
  }

  /** The manifest a tag points at, or undefined when the tag does not exist. */
  private async manifest(reference: string): Promise<Found | undefined> {
    const response = await this.client.send("GET", this.client.url(`manifests/${reference}`), "pull", {
      headers: { accept: ACCEPT_MANIFESTS },
    });
    if (response.status === 404) {
      await response.body?.cancel();
      return undefined;
    }
    if (!response.ok) throw await this.client.refused(response, `reading ${reference}`);
    const bytes = await readCapped(
      response,
      MAX_MANIFEST_BYTES,
      () =>
        new FailureError(
          `the manifest of ${pinned(this.reference, reference)} is larger than ${MAX_MANIFEST_BYTES} bytes`,
          "do not deploy it",
        ),
    );
    return parseManifest(bytes, pinned(this.reference, reference), response.headers.get("content-type"));
  }

  async get(key: string): Promise<Buffer> {
    const tag = this.tagOfKey(key);
    const found = this.headed.get(tag) ?? (await this.manifest(tag));
    this.headed.delete(tag);
    if (!found) throw new FailureError(`${pinned(this.reference, tag)} does not exist`);
    if (!found.layer) {
      throw new FailureError(
        `${pinned(this.reference, tag)} has no ${MEDIA_TYPES.layer} layer`,
        "it was not published by policyship",
      );
    }
    const body = await downloadBlob(this.client, found.layer.digest, found.layer.size);
    const actual = digestOf(body);
    // A registry is content-addressed; one that serves other bytes for a digest is refused here.
    if (actual !== found.layer.digest) {
      throw new FailureError(
        `${this.reference.registry} served ${actual} for the blob ${found.layer.digest}`,
        "do not deploy it",
      );
    }
    return body;
  }

  async list(prefix: string): Promise<StoredObject[]> {
    const tags = (await listTags(this.client)).filter((tag) => !isClaimTag(tag));
    const keys = tags.map((tag) => objectKey(this.prefix, tag)).filter((key) => key.startsWith(prefix));
    const objects: StoredObject[] = [];
    for (let i = 0; i < keys.length; i += LIST_CONCURRENCY) {
      const batch = await Promise.all(
        keys.slice(i, i + LIST_CONCURRENCY).map(async (key) => {
          const found = await this.manifest(this.tagOfKey(key));
          return found && this.toObject(key, found);
        }),
      );
      for (const object of batch) if (object) objects.push(object);
      this.options.onListed?.(Math.min(i + LIST_CONCURRENCY, keys.length), keys.length);
    }
    return objects;
  }

  /**
   * The tag is read first: same bundle digest, already published; other content, refused and untouched.
   * Blobs go first, the manifest last, so a tag never names a missing blob; racing publishers settle who
   * writes the tag through claims (claim.ts).
   */
  async createIfAbsent(object: ObjectToCreate, options: CreateOptions = {}): Promise<CreateOutcome> {
    const { signal } = options;
    try {
      return await this.create(object, signal);
    } catch (error) {
      if (!signal?.aborted) throw error;
      throw interruptedBy(
        signal,
        "nothing was published (no tag was written; blobs already sent are unreferenced)",
      );
    }
  }

  private async create(object: ObjectToCreate, signal?: AbortSignal): Promise<CreateOutcome> {
    const tag = this.tagOfKey(object.key);
    const before = await this.head(object.key);
    if (before) return { created: false, existing: before };
    const layerDigest = `sha256:${object.sha256}`;
    await pushBlob(this.client, EMPTY_CONFIG_DIGEST, EMPTY_CONFIG.length, () => EMPTY_CONFIG, signal);
    // The bytes are checked against the build's sha256 on their way out; a mismatch aborts the upload
    // (pipeline carries the error to the request body), and the registry checks the digest again. When the
    // registry answers first (DIGEST_INVALID), the local check's own failure is the one reported.
    let streamed: Promise<unknown> = Promise.resolve();
    try {
      await pushBlob(
        this.client,
        layerDigest,
        object.size,
        () => {
          let sent = 0;
          const counted = new Transform({
            transform: (chunk: Buffer, _encoding, callback) => {
              sent += chunk.length;
              this.options.onProgress?.(sent, object.size);
              callback(null, chunk);
            },
          });
          let settle: (error: unknown) => void = () => {};
          streamed = new Promise((resolve) => {
            settle = resolve;
          });
          const body = pipeline(
            createReadStream(object.file, { highWaterMark: READ_CHUNK_BYTES }),
            digestVerifier(object.sha256, object.file),
            counted,
            (error) => settle(error),
          );
          return Readable.toWeb(body) as ReadableStream;
        },
        signal,
      );
    } catch (error) {
      if (signal?.aborted) throw error;
      const local = await Promise.race([streamed, sleep(LOCAL_CHECK_WAIT_MS)]);
      throw isKnownError(local) ? local : error;
    }
    const manifest = buildManifest({
      tag,
      sha256: object.sha256,
      size: object.size,
      metadata: object.metadata,
    });
    const manifestDigest = digestOf(manifest);
    const claim = buildManifest({
      tag,
      sha256: object.sha256,
      size: object.size,
      metadata: object.metadata,
      claim: true,
    });
    // A concurrent publisher of the same revision may have won while the blobs went up (see claim.ts).
    const outcome = await writeTagOnce(
      this.tagAccess(),
      tag,
      manifest,
      manifestDigest,
      { manifest: claim, digest: digestOf(claim) },
      { signal },
    );
    return outcome.created
      ? { created: true, pin: manifestDigest }
      : { created: false, existing: this.toObject(object.key, outcome.existing) };
  }

  private tagAccess(): TagAccess<Found> {
    return {
      put: async (reference, manifest) => {
        const put = await this.client.send("PUT", this.client.url(`manifests/${reference}`), "push", {
          headers: { "content-type": MEDIA_TYPES.manifest },
          body: manifest,
        });
        if (!put.ok) throw await this.client.refused(put, `pushing ${pinned(this.reference, reference)}`);
        await put.body?.cancel();
      },
      read: (reference) => this.manifest(reference),
      tags: () => listTags(this.client),
      remove: async (digest) => {
        const response = await this.client.send("DELETE", this.client.url(`manifests/${digest}`), "delete");
        await response.body?.cancel();
      },
      name: (reference) => pinned(this.reference, reference),
    };
  }

  /**
   * The first page of one tag, for doctor: the registry answers and takes the credentials for reading. (Push
   * rights show only on a push; listing every manifest, as list does, could take minutes.)
   */
  async probe(): Promise<string> {
    await listTags(this.client, 1);
    return `${this.location} answers (credentials: ${this.client.credentialSource ?? "none, anonymous"})`;
  }

  /** By manifest digest, which removes the tag with it; the registry's garbage collection frees the blobs. */
  async delete(key: string): Promise<void> {
    const tag = this.tagOfKey(key);
    const found = await this.manifest(tag);
    if (!found) return;
    const response = await this.client.send("DELETE", this.client.url(`manifests/${found.digest}`), "delete");
    if (response.status === 202 || response.status === 200 || response.status === 404) {
      await response.body?.cancel();
      return;
    }
    if (response.status === 405 || response.status === 400) {
      await response.body?.cancel();
      throw new FailureError(
        `${this.reference.registry} does not allow deleting manifests (HTTP ${response.status}), so ${tag} stays`,
        this.reference.registry === "ghcr.io"
          ? "delete package versions with the GitHub API or the package settings page"
          : "enable deletes on the registry (distribution: storage.delete.enabled), or delete it there",
      );
    }
    throw await this.client.refused(response, `deleting ${pinned(this.reference, tag)}`);
  }
  /** The layer's digest, which the registry checked against the bytes when they were pushed; never an annotation. */
  async storedSha256(object: StoredObject): Promise<string> {
    const found = await this.manifest(this.tagOfKey(object.key));
    if (!found?.layer) {
      throw new FailureError(
        `${this.urlOf(object.key)} has no ${MEDIA_TYPES.layer} layer`,
        "it was not published by policyship",
      );
    }
    return found.layer.digest.replace(/^sha256:/, "");
  }

  /** The manifest digest a revision's tag resolves to now, or undefined without the tag (prune). */
  async manifestDigestOf(key: string): Promise<string | undefined> {
    return (await this.manifest(this.tagOfKey(key)))?.digest;
  }

  /**
   * Removes the tag alone, leaving the manifest to the other tags that name it (`DELETE /v2/<name>/manifests/
   * <tag>`, which the OCI distribution spec allows and CNCF Distribution 3 implements). False when the
   * registry refuses it or the tag still resolves afterwards; the manifest is never touched.
   */
  async deleteTag(key: string): Promise<boolean> {
    const tag = this.tagOfKey(key);
    const response = await this.client.send("DELETE", this.client.url(`manifests/${tag}`), "delete");
    if (![200, 202, 400, 404, 405].includes(response.status)) {
      throw await this.client.refused(response, `deleting the tag ${pinned(this.reference, tag)}`);
    }
    await response.body?.cancel();
    return (await this.manifest(tag)) === undefined;
  }
}
