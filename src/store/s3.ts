import { createReadStream } from "node:fs";
import { readFile } from "node:fs/promises";
import type { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  S3Client,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { digestMismatch, digestVerifier, READ_CHUNK_BYTES, sha256Of } from "../bundle/read.ts";
import { FailureError, UserError } from "../errors.ts";
import { withNullPrototypes } from "../safe-json.ts";
import type { CreateOutcome, ObjectToCreate, Store, StoredObject } from "./store.ts";

export interface S3StoreOptions {
  bucket: string;
  region: string;
  endpoint?: string;
  forcePathStyle: boolean;
  profile?: string;
  /** Called with bytes sent so far during an upload. */
  onProgress?: (loaded: number, total: number) => void;
}

const CONNECT_TIMEOUT_MS = 5_000;
const REQUEST_TIMEOUT_MS = 60_000;
/** The SDK's standard retry (exponential backoff with jitter) covers throttling, 5xx and resets. */
const MAX_ATTEMPTS = 4;
/** Bodies up to this size go up in one PutObject with their SHA-256; larger ones in parallel parts. */
const PART_SIZE_BYTES = 16 * 1024 * 1024;
const UPLOAD_QUEUE_SIZE = 4;

const NETWORK_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "EPIPE"]);

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

  async createIfAbsent(object: ObjectToCreate): Promise<CreateOutcome> {
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
    const upload = new Upload({
      client: this.client,
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
    try {
      await upload.done();
      return { created: true };
    } catch (error) {
      if (isPreconditionFailed(error)) {
        const existing = await this.head(object.key);
        if (existing) return { created: false, existing };
      }
      throw this.describe(error, `upload to ${this.urlOf(object.key)}`);
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
      };
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw this.describe(error, `look up ${this.urlOf(key)}`);
    }
  }

  async get(key: string): Promise<Buffer> {
    try {
      const result = await this.client.send(new GetObjectCommand({ Bucket: this.options.bucket, Key: key }));
      const bytes = await result.Body?.transformToByteArray();
      if (!bytes) throw new FailureError(`${this.urlOf(key)} has no body`);
      return Buffer.from(bytes);
    } catch (error) {
      throw this.describe(error, `download ${this.urlOf(key)}`);
    }
  }

  async list(prefix: string): Promise<StoredObject[]> {
    const objects: StoredObject[] = [];
    let token: string | undefined;
    try {
      do {
        const page: ListObjectsV2CommandOutput = await this.client.send(
          new ListObjectsV2Command({ Bucket: this.options.bucket, Prefix: prefix, ContinuationToken: token }),
        );
        for (const item of page.Contents ?? []) {
          if (item.Key)
            objects.push({
              key: item.Key,
              size: item.Size ?? 0,
              lastModified: item.LastModified,
              metadata: {},
            });
        }
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
    } catch (error) {
      throw this.describe(error, `list ${this.location}${prefix}`);
    }
    return objects;
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

  /** One line for each failure a user can act on; credentials never appear in it. */
  private describe(error: unknown, what: string): Error {
    if (error instanceof UserError || error instanceof FailureError) return error;
    const name = (error as Error)?.name ?? "";
    const code = (error as NodeJS.ErrnoException)?.code ?? "";
    const status = statusOf(error);
    if (
      name === "CredentialsProviderError" ||
      /Could not load credentials/i.test((error as Error)?.message ?? "")
    ) {
      return new UserError(
        "no AWS credentials found",
        "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or a role (OIDC in GitHub Actions)",
      );
    }
    if (name === "NoSuchBucket") {
      return new UserError(
        `bucket ${this.options.bucket} does not exist`,
        "create it, or fix --bucket and --region",
      );
    }
    if (name === "InvalidAccessKeyId" || name === "SignatureDoesNotMatch") {
      return new UserError(
        `the AWS credentials were rejected (${name}) when trying to ${what}`,
        "check the access key and secret",
      );
    }
    if (name === "AccessDenied" || status === 403) {
      return new UserError(
        `access denied when trying to ${what}`,
        "grant the role s3:GetObject, s3:PutObject and s3:ListBucket on the bucket",
      );
    }
    if (name === "PermanentRedirect" || status === 301) {
      return new UserError(
        `bucket ${this.options.bucket} is in another region`,
        "pass the bucket's --region",
      );
    }
    if (
      NETWORK_CODES.has(code) ||
      name === "TimeoutError" ||
      /ECONNREFUSED|ENOTFOUND|socket hang up/.test(String(error))
    ) {
      return new FailureError(
        `cannot reach ${this.options.endpoint ?? "S3"} to ${what} after ${MAX_ATTEMPTS} attempts (${code || name})`,
        "check --endpoint and the network, then run again",
      );
    }
    if (error instanceof S3ServiceException || status) {
      return new FailureError(
        `S3 refused to ${what}: ${name || `HTTP ${status}`}`,
        "run again; if it persists check the bucket",
      );
    }
    return error instanceof Error ? error : new Error(String(error));
  }
}

function statusOf(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

function isPreconditionFailed(error: unknown): boolean {
  const name = (error as Error)?.name;
  // 412 when the key exists; 409 when another conditional write to the key is in flight.
  return name === "PreconditionFailed" || name === "ConditionalRequestConflict" || statusOf(error) === 412;
}
