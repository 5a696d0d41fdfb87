import { printable } from "./printable.ts";

/**
 * The error vocabulary. Only bin/ turns these into exit codes:
 * UserError → 2 (could not start), FailureError → 1 (ran and failed), InterruptedError → 130 (SIGINT) or
 * 143 (SIGTERM), anything else → 70 (a bug).
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

/** The exit codes of a command stopped by a signal, as shells report them (128 + the signal's number). */
export const INTERRUPT_EXIT_CODES = { SIGINT: 130, SIGTERM: 143 } as const;
export type InterruptSignal = keyof typeof INTERRUPT_EXIT_CODES;

/**
 * The command was stopped by Ctrl-C (SIGINT) or SIGTERM. The hint says what it left behind, which is
 * nothing half-done: `policyship: interrupted — nothing was published (the upload was aborted)`.
 */
export class InterruptedError extends Error {
  readonly exitCode: number;
  constructor(
    readonly signalName: InterruptSignal,
    readonly hint = "nothing was left half-done",
  ) {
    super(signalName === "SIGINT" ? "interrupted" : "interrupted (SIGTERM)");
    this.name = "InterruptedError";
    this.exitCode = INTERRUPT_EXIT_CODES[signalName];
  }
}

export function isKnownError(error: unknown): error is UserError | FailureError {
  return error instanceof UserError || error instanceof FailureError;
}

/** One line: `policyship: <what went wrong> — <how to fix it>`. */
export function formatError(error: unknown): string {
  if (isKnownError(error) || error instanceof InterruptedError) {
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
