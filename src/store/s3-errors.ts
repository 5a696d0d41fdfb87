import { S3ServiceException } from "@aws-sdk/client-s3";
import { FailureError, UserError } from "../errors.ts";

/** How S3 failures read to a user: one line naming what to do, never a credential. */

const NETWORK_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "EPIPE"]);

export function statusOf(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

/** One line for each failure a user can act on; credentials never appear in it. */
export function describeS3Error(
  error: unknown,
  what: string,
  store: { bucket: string; endpoint?: string; attempts: number },
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
  if (name === "PermanentRedirect" || status === 301) {
    return new UserError(`bucket ${store.bucket} is in another region`, "pass the bucket's --region");
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
