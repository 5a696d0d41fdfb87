import { S3ServiceException } from "@aws-sdk/client-s3";
import { FailureError, UserError } from "../errors.ts";

/** How S3 failures read to a user: one line naming what to do, never a credential. */

const NETWORK_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "EPIPE"]);

export function statusOf(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

const REGION = /^[a-z]{2}(-[a-z]+)+-\d{1,2}$/;

/**
 * The bucket's real region, where S3's answer carries it: the x-amz-bucket-region header, the error's
 * Region field, or "expecting '<region>'" in its message. Only a well-formed region name is believed.
 */
function bucketRegionOf(error: unknown): string | undefined {
  const shaped = error as {
    $response?: { headers?: Record<string, string | undefined> };
    Region?: unknown;
    message?: unknown;
  };
  const candidates = [
    shaped?.$response?.headers?.["x-amz-bucket-region"],
    shaped?.Region,
    /expecting '([^']{1,40})'/.exec(typeof shaped?.message === "string" ? shaped.message : "")?.[1],
  ];
  return candidates.find((value): value is string => typeof value === "string" && REGION.test(value));
}

/** One line for each failure a user can act on; credentials never appear in it. */
export function describeS3Error(
  error: unknown,
  what: string,
  store: { bucket: string; region?: string; endpoint?: string; attempts: number },
): Error {
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
    return new UserError(`bucket ${store.bucket} does not exist`, "create it, or fix --bucket and --region");
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
      "grant the role s3:GetObject, s3:GetObjectVersion, s3:PutObject and s3:ListBucket on the bucket",
    );
  }
  const bucketRegion = bucketRegionOf(error);
  const wrongRegion =
    name === "PermanentRedirect" ||
    name === "AuthorizationHeaderMalformed" ||
    status === 301 ||
    (bucketRegion !== undefined && store.region !== undefined && bucketRegion !== store.region);
  if (wrongRegion) {
    return bucketRegion && bucketRegion !== store.region
      ? new UserError(
          `bucket ${store.bucket} is in ${bucketRegion}, not ${store.region ?? "the region given"}`,
          `pass --region ${bucketRegion} (or set region: ${bucketRegion} in policyship.yaml)`,
        )
      : new UserError(`bucket ${store.bucket} is in another region`, "pass the bucket's --region");
  }
  if (
    NETWORK_CODES.has(code) ||
    name === "TimeoutError" ||
    /ECONNREFUSED|ENOTFOUND|socket hang up/.test(String(error))
  ) {
    return new FailureError(
      `cannot reach ${store.endpoint ?? "S3"} to ${what} after ${store.attempts} attempts (${code || name})`,
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
