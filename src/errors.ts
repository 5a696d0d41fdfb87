import { printable } from "./printable.ts";

/**
 * The error vocabulary. Only bin/ turns these into exit codes:
 * UserError → 2 (could not start), FailureError → 1 (ran and failed), anything else → 70 (a bug).
 */

/** The command could not start: bad flag, bad config, missing tool or credentials. Exit 2. */
export class UserError extends Error {
  readonly exitCode = 2;
  constructor(
    message: string,
    readonly hint?: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "UserError";
  }
}

/** The work ran and failed: a policy test failed, a publish was refused, a digest mismatched. Exit 1. */
export class FailureError extends Error {
  readonly exitCode = 1;
  constructor(
    message: string,
    readonly hint?: string,
    /** Structured details for --json output. */
    readonly details?: unknown,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "FailureError";
  }
}

export function isKnownError(error: unknown): error is UserError | FailureError {
  return error instanceof UserError || error instanceof FailureError;
}

/** One line: `policyship: <what went wrong> — <how to fix it>`. */
export function formatError(error: unknown): string {
  if (isKnownError(error)) {
    const message = oneLine(error.message);
    return error.hint ? `policyship: ${message} — ${oneLine(error.hint)}` : `policyship: ${message}`;
  }
  const message = error instanceof Error ? error.message : String(error);
  return `policyship: internal error: ${oneLine(message)} — please report it with the output of --verbose`;
}

/** One line, whatever the message quotes: a bad input's control characters are shown, not obeyed. */
function oneLine(text: string): string {
  return printable(text.replace(/\s*\n\s*/g, "; ").trim(), 4_000);
}
