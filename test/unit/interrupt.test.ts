import { spawn } from "node:child_process";
import { EventEmitter } from "node:events";
import { describe, expect, it } from "vitest";
import { InterruptedError } from "../../src/errors.ts";
import { installInterrupts, interruptedBy } from "../../src/interrupt.ts";

/** SIGINT and SIGTERM as an AbortSignal, heard on an emitter of the test's own rather than the process. */
function install(graceMs = 60_000) {
  const signals = new EventEmitter();
  const exits: InterruptedError[] = [];
  const interrupts = installInterrupts({ exit: (error) => exits.push(error), graceMs, signals });
  return { signals, exits, interrupts };
}

function sleeper() {
  const child = spawn("sleep", ["30"], { env: Object.create(null) });
  const stopped = new Promise<NodeJS.Signals | null>((resolve) =>
    child.on("close", (_code, signal) => resolve(signal)),
  );
  return { child, stopped };
}

describe("interrupts", () => {
  it("the first signal aborts with an InterruptedError, stops the children, runs each cleanup once", async () => {
    const { signals, exits, interrupts } = install();
    try {
      const { stopped } = sleeper();
      let cleaned = 0;
      interrupts.onInterrupt(() => cleaned++);
      signals.emit("SIGTERM");
      signals.emit("SIGTERM");
      expect(interrupts.signal.reason).toBeInstanceOf(InterruptedError);
      expect(interrupts.signal.reason).toMatchObject({ exitCode: 143, message: "interrupted (SIGTERM)" });
      expect(await stopped).toBe("SIGTERM");
      expect(cleaned).toBe(1);
      // The second one exits at once, with the first one's code, saying the cleanup was cut short.
      expect(exits.map((error) => [error.exitCode, error.hint])).toEqual([
        [
          143,
          "a second signal cut its cleanup short: a temp file or an unfinished upload may be left behind",
        ],
      ]);
    } finally {
      interrupts.uninstall();
    }
  });

  it("a child started after the signal is stopped too, and the grace period ends in exit", async () => {
    const { signals, exits, interrupts } = install(50);
    try {
      signals.emit("SIGINT");
      const { stopped } = sleeper();
      expect(await stopped).toBe("SIGTERM");
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(exits.map((error) => [error.exitCode, error.hint])).toEqual([
        [130, "waiting 0.05 s cut its cleanup short: a temp file or an unfinished upload may be left behind"],
      ]);
    } finally {
      interrupts.uninstall();
    }
  });

  it("without a signal, children run on and uninstall leaves them alone", async () => {
    const { interrupts } = install();
    const { child, stopped } = sleeper();
    interrupts.uninstall();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(child.exitCode === null && child.signalCode === null).toBe(true);
    child.kill("SIGKILL");
    expect(await stopped).toBe("SIGKILL");
  });

  it("a library caller's own AbortSignal ends in a failure that says what was not done", () => {
    const error = interruptedBy(AbortSignal.abort(), "nothing was published");
    expect(error).not.toBeInstanceOf(InterruptedError);
    expect(error).toMatchObject({ exitCode: 1, message: "aborted", hint: "nothing was published" });
  });
});
