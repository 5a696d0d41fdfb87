import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { readFile } from "node:fs/promises";
import type { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import {
  DeleteObjectCommand,
  GetBucketVersioningCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  S3Client,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { digestMismatch, digestVerifier, READ_CHUNK_BYTES, sha256Of } from "../bundle/read.ts";
import { FailureError } from "../errors.ts";
import { interruptedBy } from "../interrupt.ts";
import { withNullPrototypes } from "../safe-json.ts";
import { ListingBound, type ListLimits } from "./list-bounds.ts";
import { describeS3Error, statusOf } from "./s3-errors.ts";
import { abandonUpload, stoppingClient } from "./s3-interrupt.ts";
import type { CreateOptions, CreateOutcome, ObjectToCreate, Store, StoredObject } from "./store.ts";

export interface S3StoreOptions {
  bucket: string;
  region: string;
  endpoint?: string;
  forcePathStyle: boolean;
  profile?: string;
  /** Called with bytes sent so far during an upload. */
  onProgress?: (loaded: number, total: number) => void;
  /** Where a listing is cut off (list-bounds.ts); tests set low ones. */
  listLimits?: ListLimits;
}

const CONNECT_TIMEOUT_MS = 5_000;
const REQUEST_TIMEOUT_MS = 60_000;
/** The SDK's standard retry (exponential backoff with jitter) covers throttling, 5xx and resets. */
const MAX_ATTEMPTS = 4;
/** Bodies up to this size go up in one PutObject with their SHA-256; larger ones in parallel parts. */
const PART_SIZE_BYTES = 16 * 1024 * 1024;
const UPLOAD_QUEUE_SIZE = 4;

export class S3Store implements Store {
  readonly location: string;
  private readonly client: S3Client;

  constructor(private readonly options: S3StoreOptions) {
    this.location = `s3://${options.bucket}/`;
    this.client = new S3Client({
      region: options.region,
      endpoint: options.endpoint,
      forcePathStyle: options.forcePathStyle,
      profile: options.profile,
      maxAttempts: MAX_ATTEMPTS,
      requestHandler: { connectionTimeout: CONNECT_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS },
    });
  }

  async createIfAbsent(object: ObjectToCreate, options: CreateOptions = {}): Promise<CreateOutcome> {
    const { signal } = options;
    if (signal?.aborted) throw interruptedBy(signal, "nothing was published");
    const small = object.size <= PART_SIZE_BYTES;
    let body: Buffer | Transform;
    if (small) {
      body = await readFile(object.file);
      const actual = sha256Of(body);
      if (actual !== object.sha256) throw digestMismatch(object.file, object.sha256, actual);
    } else {
      body = digestVerifier(object.sha256, object.file);
      pipeline(createReadStream(object.file, { highWaterMark: READ_CHUNK_BYTES }), body).catch(() => {});
    }
    const multipartUploads: Promise<string | undefined>[] = [];
    const upload = new Upload({
      client: signal ? stoppingClient(this.client, signal, multipartUploads) : this.client,
      partSize: PART_SIZE_BYTES,
      queueSize: UPLOAD_QUEUE_SIZE,
      // Aborted multipart uploads are cleaned up, so a failure never leaves parts behind.
      leavePartsOnError: false,
      params: {
        Bucket: this.options.bucket,
        Key: object.key,
        Body: body,
        ContentLength: object.size,
        ContentType: object.contentType,
        Metadata: object.metadata,
        // Conditional create: S3 answers 412 when the key exists, so a revision is never overwritten.
        IfNoneMatch: "*",
        ChecksumAlgorithm: "SHA256",
        ...(small ? { ChecksumSHA256: Buffer.from(object.sha256, "hex").toString("base64") } : {}),
      },
    });
    if (this.options.onProgress) {
      upload.on("httpUploadProgress", (progress) =>
        this.options.onProgress?.(progress.loaded ?? 0, progress.total ?? object.size),
      );
    }
    const stop = () => void upload.abort();
    signal?.addEventListener("abort", stop, { once: true });
    try {
      const done = await upload.done();
      return { created: true, pin: pinOf(done.VersionId) };
    } catch (error) {
      if (signal?.aborted) {
        if (!Buffer.isBuffer(body)) body.destroy();
        throw await abandonUpload(this.client, signal, {
          bucket: this.options.bucket,
          key: object.key,
          url: this.urlOf(object.key),
          uploads: multipartUploads,
          describe: (cause, what) => this.describe(cause, what),
        });
      }
      if (isPreconditionFailed(error)) {
        const existing = await this.head(object.key);
        if (existing) return { created: false, existing };
      }
      throw this.describe(error, `upload to ${this.urlOf(object.key)}`);
    } finally {
      signal?.removeEventListener("abort", stop);
    }
  }

  async head(key: string): Promise<StoredObject | undefined> {
    try {
      const result = await this.client.send(new HeadObjectCommand({ Bucket: this.options.bucket, Key: key }));
      return {
        key,
        size: result.ContentLength ?? 0,
        lastModified: result.LastModified,
        // The object's metadata is whatever its writer sent: null-prototype, like every outside answer.
        metadata: withNullPrototypes(result.Metadata ?? {}) as Record<string, string>,
        pin: pinOf(result.VersionId),
      };
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw this.describe(error, `look up ${this.urlOf(key)}`);
    }
  }

  async get(key: string, pin?: string): Promise<Buffer> {
    try {
      const result = await this.client.send(
        new GetObjectCommand({ Bucket: this.options.bucket, Key: key, VersionId: pin }),
      );
      const bytes = await result.Body?.transformToByteArray();
      if (!bytes) throw new FailureError(`${this.urlOf(key)} has no body`);
      return Buffer.from(bytes);
    } catch (error) {
      throw this.describe(error, `download ${this.urlOf(key)}`);
    }
  }

  async list(prefix: string): Promise<StoredObject[]> {
    const objects: StoredObject[] = [];
    const bound = new ListingBound(`${this.location}${prefix}`, this.options.listLimits);
    let token: string | undefined;
    do {
      let page: ListObjectsV2CommandOutput;
      try {
        page = await this.client.send(
          new ListObjectsV2Command({ Bucket: this.options.bucket, Prefix: prefix, ContinuationToken: token }),
        );
      } catch (error) {
        throw this.describe(error, `list ${this.location}${prefix}`);
      }
      const contents = page.Contents ?? [];
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
      bound.page(contents.length, token);
      for (const item of contents) {
        if (item.Key)
          objects.push({
            key: item.Key,
            size: item.Size ?? 0,
            lastModified: item.LastModified,
            metadata: {},
          });
      }
    } while (token);
    return objects;
  }

  /**
   * The server's full-object SHA-256 when it has one (a single PutObject with a SHA-256 checksum, as publish
   * sends up to PART_SIZE_BYTES); otherwise the object's bytes, hashed as they stream in. A multipart
   * object's checksum is a checksum of part checksums, not of the bytes, so it is never compared.
   */
  async storedSha256(object: StoredObject): Promise<string> {
    const where = { Bucket: this.options.bucket, Key: object.key, VersionId: object.pin };
    try {
      const head = await this.client.send(new HeadObjectCommand({ ...where, ChecksumMode: "ENABLED" }));
      if (head.ChecksumType === "FULL_OBJECT" && head.ChecksumSHA256) {
        const digest = Buffer.from(head.ChecksumSHA256, "base64");
        if (digest.length === 32) return digest.toString("hex");
      }
      const result = await this.client.send(new GetObjectCommand(where));
      const hash = createHash("sha256");
      for await (const chunk of result.Body as AsyncIterable<Uint8Array>) hash.update(chunk);
      return hash.digest("hex");
    } catch (error) {
      throw this.describe(error, `read ${this.urlOf(object.key)}`);
    }
  }

  /**
   * On a versioned bucket every object version is immutable, so a config naming `?versionId=` names exactly
   * the bytes verified. Without versioning an overwrite replaces the bytes under the key.
   */
  async pinning(): Promise<{ pinned: boolean; detail: string }> {
    let status: string | undefined;
    try {
      status = (await this.client.send(new GetBucketVersioningCommand({ Bucket: this.options.bucket })))
        .Status;
    } catch (error) {
      const described = this.describe(error, `read the versioning of ${this.location}`);
      return { pinned: false, detail: `${described.message}; ${UNPINNED_HINT}` };
    }
    return status === "Enabled"
      ? {
          pinned: true,
          detail: `${this.location} is versioned: rendered configs name the object version verified (?versionId=)`,
        }
      : { pinned: false, detail: unpinnedLine(this.location) };
  }

  urlOf(key: string): string {
    return `s3://${this.options.bucket}/${key}`;
  }

  /** On S3 the metadata is part of the object, so one DeleteObject removes both. */
  async delete(key: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.options.bucket, Key: key }));
    } catch (error) {
      throw this.describe(error, `delete ${this.urlOf(key)}`);
    }
  }

  private describe(error: unknown, what: string): Error {
    return describeS3Error(error, what, {
      bucket: this.options.bucket,
      region: this.options.region,
      endpoint: this.options.endpoint,
      attempts: MAX_ATTEMPTS,
    });
  }
}

const UNPINNED_HINT =
  "enable versioning on the bucket so configs name the verified object version (OPA then needs s3:GetObjectVersion)";

/** The one line doctor and release print when a config can name only the key. */
function unpinnedLine(location: string): string {
  return `${location} is not versioned, so a config names only the key and an overwrite changes what OPA loads — ${UNPINNED_HINT}`;
}

/**
 * A version id policyship will write into a resource URL: S3's are URL-safe by design, and anything else
 * (an absent version, or "null" on an unversioned or suspended bucket, which a later write replaces) is no pin.
 */
function pinOf(versionId: string | undefined): string | undefined {
  return versionId && versionId !== "null" && /^[A-Za-z0-9._-]{1,1024}$/.test(versionId)
    ? versionId
    : undefined;
}

function isPreconditionFailed(error: unknown): boolean {
  const name = (error as Error)?.name;
  // 412 when the key exists; 409 when another conditional write to the key is in flight.
  return name === "PreconditionFailed" || name === "ConditionalRequestConflict" || statusOf(error) === 412;
}
