import { randomBytes } from "node:crypto";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { inject } from "vitest";

/** The MinIO that the global setup started. */
export function minio() {
  return inject("minio");
}

export function s3Client(): S3Client {
  const { endpoint, accessKeyId, secretAccessKey, region } = minio();
  return new S3Client({
    endpoint,
    region,
    forcePathStyle: true,
    credentials: { accessKeyId, secretAccessKey },
  });
}

/** A new, empty bucket with a unique name. */
export async function createBucket(client = s3Client()): Promise<string> {
  const bucket = `test-${randomBytes(6).toString("hex")}`;
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  return bucket;
}

/** AWS_* environment that points the default credential chain and opa at MinIO. */
export function awsEnv(): Record<string, string> {
  const { accessKeyId, secretAccessKey, region } = minio();
  return {
    AWS_ACCESS_KEY_ID: accessKeyId,
    AWS_SECRET_ACCESS_KEY: secretAccessKey,
    AWS_REGION: region,
    AWS_DEFAULT_REGION: region,
  };
}
