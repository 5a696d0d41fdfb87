import type { ChildProcess } from "node:child_process";
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { FailureError, InterruptedError, type InterruptSignal } from "./errors.ts";

/**
 * Ctrl-C and SIGTERM as an AbortSignal. The first signal aborts `signal` (its reason an InterruptedError),
 * stops every child process started since (opa, git, a credential helper: a terminal's Ctrl-C reaches them
 * through the process group, a `kill -TERM <pid>` of policyship does not) and runs the registered cleanups
 * once. The command then unwinds through its own finally blocks (temp files, aborted uploads) and fails with
 * the InterruptedError, which bin/ turns into 130 or 143. If it has not unwound within GRACE_MS, or a second
 * signal comes, `exit` is called at once; children still alive then are killed outright.
 */

/** Longer than any bounded abort the commands make on the way out (ABORT_TIMEOUT_MS in the stores). */
export const INTERRUPT_GRACE_MS = 10_000;
const SIGNALS: InterruptSignal[] = ["SIGINT", "SIGTERM"];

export interface Interrupts {
  readonly signal: AbortSignal;
  /** Runs `cleanup` once at the first signal; the returned function unregisters it. */
  onInterrupt(cleanup: () => unknown): () => void;
  /** Removes the signal handlers (the command is over); children are no longer watched. */
  uninstall(): void;
}

export function installInterrupts(options: {
  /** Ends the process now, reporting `error` (the grace period ran out or a second signal came). */
  exit: (error: InterruptedError) => void;
  graceMs?: number;
  /** Where SIGINT and SIGTERM are heard: the process (tests pass an emitter of their own). */
  signals?: Pick<NodeJS.EventEmitter, "on" | "off">;
}): Interrupts {
  const signals = options.signals ?? process;
  const controller = new AbortController();
  const children = new Set<ChildProcess>();
  const cleanups = new Set<() => unknown>();
  let grace: NodeJS.Timeout | undefined;

  const watchChild = (message: unknown) => {
    const child = (message as { process?: ChildProcess }).process;
    if (!child) return;
    if (controller.signal.aborted) {
      // Started by a cleanup or a command not yet unwound: it gets the signal too.
      queueMicrotask(() => child.kill("SIGTERM"));
    }
    children.add(child);
    child.once("exit", () => children.delete(child));
    child.once("error", () => children.delete(child));
  };
  const killChildren = (signal: NodeJS.Signals) => {
    for (const child of children) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    }
  };
  const killSurvivors = () => killChildren("SIGKILL");
  const forceExit = (why: string) => {
    killSurvivors();
    const { signalName } = controller.signal.reason as InterruptedError;
    options.exit(
      new InterruptedError(
        signalName,
        `${why} cut its cleanup short: a temp file or an unfinished upload may be left behind`,
      ),
    );
  };
  const onSignal = (name: InterruptSignal) => {
    if (controller.signal.aborted) {
      forceExit("a second signal");
      return;
    }
    const error = new InterruptedError(name);
    controller.abort(error);
    killChildren("SIGTERM");
    for (const cleanup of cleanups) {
      try {
        Promise.resolve(cleanup()).catch(() => {});
      } catch {
        // A cleanup that fails leaves the others to run.
      }
    }
    cleanups.clear();
    const graceMs = options.graceMs ?? INTERRUPT_GRACE_MS;
    // Not unref'd: it keeps the process alive to exit with the right code even if nothing else is pending.
    grace = setTimeout(() => forceExit(`waiting ${graceMs / 1000} s`), graceMs);
  };
  const handlers = new Map(SIGNALS.map((name) => [name, () => onSignal(name)] as const));
  for (const [name, handler] of handlers) signals.on(name, handler);
  subscribe("child_process", watchChild);
  process.on("exit", killSurvivors);

  return {
    signal: controller.signal,
    onInterrupt(cleanup) {
      cleanups.add(cleanup);
      return () => cleanups.delete(cleanup);
    },
    uninstall() {
      clearTimeout(grace);
      for (const [name, handler] of handlers) signals.off(name, handler);
      unsubscribe("child_process", watchChild);
      process.off("exit", killSurvivors);
      if (controller.signal.aborted) killSurvivors();
      children.clear();
    },
  };
}

/**
 * The error a step stopped by `signal` ends with: the InterruptedError of the signal with `outcome` (what was
 * and was not done) as its hint, or for a library caller's own AbortSignal a failure saying the same.
 */
export function interruptedBy(signal: AbortSignal, outcome: string): Error {
  const reason = signal.reason;
  if (reason instanceof InterruptedError) return new InterruptedError(reason.signalName, outcome);
  return new FailureError("aborted", outcome, undefined, { cause: reason });
}
