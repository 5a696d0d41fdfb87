import {
  AbortMultipartUploadCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { interruptedBy } from "../interrupt.ts";
import { statusOf } from "./s3-errors.ts";

/** An S3 upload stopped by an interrupt: its requests cut off, its multipart upload aborted. */

/** How long an interrupted upload may take to abort its multipart upload before the process exits. */
const ABORT_TIMEOUT_MS = 5_000;

/**
 * The client an Upload sends through: every request stops at the signal (a part in flight is cut off rather
 * than finished), except CreateMultipartUpload, whose answer carries the upload id that the abort needs; those
 * answers are collected in `uploads`.
 */
export function stoppingClient(
  client: S3Client,
  signal: AbortSignal,
  uploads: Promise<string | undefined>[],
): S3Client {
  const stopping = Object.create(client) as S3Client;
  const send = (command: Parameters<S3Client["send"]>[0], options?: { abortSignal?: AbortSignal }) => {
    if (command instanceof CreateMultipartUploadCommand) {
      const created = client.send(command, options);
      uploads.push(created.then((output) => output.UploadId).catch(() => undefined));
      return created;
    }
    return client.send(command, { ...options, abortSignal: signal });
  };
  stopping.send = send as S3Client["send"];
  return stopping;
}

export interface StoppedUpload {
  bucket: string;
  key: string;
  /** s3://bucket/key, for messages. */
  url: string;
  /** The ids of the multipart uploads it created (see stoppingClient). */
  uploads: Promise<string | undefined>[];
  describe: (error: unknown, what: string) => Error;
}

/**
 * After an interrupt: aborts the multipart upload the publish created (AbortMultipartUpload), so that no parts
 * stay billed in the bucket, within ABORT_TIMEOUT_MS. A single PutObject stopped mid-way creates nothing. The
 * error it returns says which happened, or how to abort the upload by hand.
 */
export async function abandonUpload(client: S3Client, signal: AbortSignal, upload: StoppedUpload) {
  const { bucket, key, url } = upload;
  const deadline = AbortSignal.timeout(ABORT_TIMEOUT_MS);
  const ids = await Promise.race([
    Promise.all(upload.uploads),
    new Promise<undefined>((resolve) => deadline.addEventListener("abort", () => resolve(undefined))),
  ]);
  if (!ids) {
    return interruptedBy(
      signal,
      `the start of a multipart upload to ${url} did not answer in ${ABORT_TIMEOUT_MS / 1000} s; if it started, list it with aws s3api list-multipart-uploads --bucket ${bucket} --prefix ${key} and abort it`,
    );
  }
  for (const uploadId of ids) {
    if (!uploadId) continue;
    try {
      await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }), {
        abortSignal: deadline,
      });
    } catch (error) {
      if (statusOf(error) === 404) continue;
      const why = deadline.aborted
        ? `the abort of its multipart upload got no answer in ${ABORT_TIMEOUT_MS / 1000} s`
        : upload.describe(error, `abort the multipart upload of ${url}`).message;
      return interruptedBy(
        signal,
        `nothing was published, but ${why}; abort it with aws s3api abort-multipart-upload --bucket ${bucket} --key ${key} --upload-id ${uploadId}`,
      );
    }
  }
  // A request cut off on this side may still have completed on the server (CompleteMultipartUpload, PutObject).
  if (await exists(client, bucket, key, deadline)) {
    return interruptedBy(signal, `${url} exists: the upload completed before it could stop`);
  }
  return interruptedBy(
    signal,
    ids.some(Boolean) ? "nothing was published (the upload was aborted)" : "nothing was published",
  );
}

/** Whether the key holds an object; false when S3 does not say so before `deadline`. */
async function exists(
  client: S3Client,
  bucket: string,
  key: string,
  deadline: AbortSignal,
): Promise<boolean> {
  try {
    await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: deadline });
    return true;
  } catch {
    return false;
  }
}
