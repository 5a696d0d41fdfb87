import { type Decision, errorDecision, interpretResult, PolicyResultError } from "./decision.ts";
import { classifyDecision, flipOf } from "./decision-compare.ts";
import { type Engine, EngineError } from "./engine.ts";
import { shadowChannel, type Telemetry } from "./telemetry.ts";
import type { ShadowEvent, ShadowOptions, ShadowOutcome, ShadowStats } from "./types.ts";

const DEFAULT_MAX_QUEUE = 1000;
const DEFAULT_CONCURRENCY = 8;

interface Sample {
  decisionId: string;
  input: unknown;
  enforced: Decision;
  settle: (outcome: ShadowOutcome | undefined) => void;
}

export interface ShadowSetup {
  options: ShadowOptions;
  engine: Promise<Engine>;
  /** The enforcer's timeoutMs, the default of the candidate's own. */
  timeoutMs: number;
  onShadow: ((event: ShadowEvent) => void) | undefined;
  telemetry: Telemetry;
  log: (message: string) => void;
}

function aborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    const fail = () => reject(new EngineError("the candidate timed out", "unreachable"));
    if (signal.aborted) fail();
    else signal.addEventListener("abort", fail, { once: true });
  });
}

/**
 * A candidate policy evaluated beside the enforced one. offer() only queues: the candidate runs on a later
 * turn of the event loop, bounded by its queue, its concurrency and its own timeout, and what it answers
 * reaches nothing but onShadow, the channel, the counters and the decision log.
 */
export class Shadow {
  private readonly stats: ShadowStats = { evaluated: 0, differed: 0, dropped: 0, errors: 0 };
  private readonly queue: Sample[] = [];
  private active = 0;
  private scheduled = false;
  private closing = false;
  private readonly closed = new AbortController();
  private readonly sampleRate: number;
  private readonly timeoutMs: number;
  private readonly maxQueue: number;
  private readonly concurrency: number;
  private readonly kind: "remote" | "embedded";
  private readyPromise: Promise<void> | undefined;
  private idle: (() => void) | undefined;
  private closePromise: Promise<void> | undefined;

  constructor(private readonly setup: ShadowSetup) {
    const { options } = setup;
    this.sampleRate = options.sampleRate ?? 1;
    this.timeoutMs = options.timeoutMs ?? setup.timeoutMs;
    this.maxQueue = options.maxQueue ?? DEFAULT_MAX_QUEUE;
    this.concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
    this.kind = options.opa ? "remote" : "embedded";
  }

  /** Readies the candidate; a candidate that fails to load counts one error and never rejects. */
  ready(): Promise<void> {
    this.readyPromise ??= this.setup.engine
      .then((engine) => engine.ready())
      .catch((error: Error) => {
        this.stats.errors++;
        this.setup.log(`shadow candidate failed to load: ${error.message}`);
        throw error;
      });
    return this.readyPromise.catch(() => undefined);
  }

  snapshot(): ShadowStats {
    return { ...this.stats };
  }

  /**
   * Queues a sample of this decision for the candidate. Resolves with the candidate's outcome once it
   * settles; undefined when the decision is not sampled, or is dropped (queue full, enforcer closing).
   */
  offer(
    decisionId: string,
    input: unknown,
    enforced: Decision,
  ): Promise<ShadowOutcome | undefined> | undefined {
    if (this.sampleRate < 1 && !(Math.random() < this.sampleRate)) return undefined;
    if (this.closing || this.queue.length >= this.maxQueue) {
      this.stats.dropped++;
      return undefined;
    }
    return new Promise((settle) => {
      this.queue.push({ decisionId, input, enforced, settle });
      this.schedule();
    });
  }

  private schedule() {
    if (this.scheduled) return;
    this.scheduled = true;
    // Never on the request's own turn: the response goes first.
    setImmediate(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  private pump() {
    while (this.active < this.concurrency && this.queue.length > 0) {
      const sample = this.queue.shift() as Sample;
      this.active++;
      this.run(sample)
        // A throwing channel subscriber or meter must not become an unhandled rejection in the app.
        .catch(() => {})
        .finally(() => {
          this.active--;
          this.pump();
        });
    }
    if (this.active === 0 && this.queue.length === 0) this.idle?.();
  }

  private async run(sample: Sample) {
    let outcome: ShadowOutcome | undefined;
    try {
      outcome = this.report(sample, await this.evaluateWithin(sample.input));
    } finally {
      // Whatever happened, the decision's log line is written (without a shadow outcome if none).
      sample.settle(outcome);
    }
  }

  private async evaluateWithin(input: unknown): Promise<Decision> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.timeoutMs);
    const stop = () => controller.abort();
    this.closed.signal.addEventListener("abort", stop, { once: true });
    try {
      return await this.evaluate(input, controller.signal);
    } finally {
      clearTimeout(timer);
      this.closed.signal.removeEventListener("abort", stop);
    }
  }

  private async evaluate(input: unknown, signal: AbortSignal): Promise<Decision> {
    let evaluation: Awaited<ReturnType<Engine["evaluate"]>>;
    try {
      const serialized = JSON.stringify(input) ?? "null";
      const engine = await this.setup.engine;
      this.ready();
      await Promise.race([this.readyPromise, aborted(signal)]);
      evaluation = await engine.evaluate(serialized, signal);
    } catch (error) {
      return errorDecision((error as Error).message, error instanceof EngineError ? error.kind : "answer");
    }
    const { revision } = evaluation;
    try {
      return { ...interpretResult(evaluation.result, evaluation.defined), revision };
    } catch (error) {
      const prefix = error instanceof PolicyResultError ? "invalid policy result: " : "";
      return errorDecision(`${prefix}${(error as Error).message}`, "policy", revision);
    }
  }

  /** Counts, compares and reports one settled sample; returns what its decision-log line carries. */
  private report(sample: Sample, candidate: Decision): ShadowOutcome {
    const { enforced } = sample;
    const flip = flipOf(classifyDecision(enforced), classifyDecision(candidate));
    const differs = flip !== "none";
    this.stats.evaluated++;
    if (differs) this.stats.differed++;
    if (candidate.error !== undefined) this.stats.errors++;
    const event: ShadowEvent = {
      decisionId: sample.decisionId,
      input: sample.input,
      enforced: { allow: enforced.allow, status: enforced.status, revision: enforced.revision },
      shadow: {
        allow: candidate.allow,
        status: candidate.status,
        revision: candidate.revision,
        ...(candidate.error !== undefined ? { error: candidate.error } : {}),
      },
      differs,
      flip,
    };
    if (this.setup.onShadow) {
      try {
        this.setup.onShadow(event);
      } catch (error) {
        this.stats.errors++;
        this.setup.log(`onShadow threw: ${(error as Error).message}`);
      }
    }
    if (shadowChannel.hasSubscribers) shadowChannel.publish(event);
    this.setup.telemetry.recordShadow(differs, flip);
    const failed = candidate.error !== undefined;
    return {
      revision: candidate.revision ?? null,
      allow: failed ? null : candidate.allow,
      status: failed ? null : candidate.status,
      headers: failed ? {} : { ...candidate.headers },
      ...(!failed && !candidate.allow ? { message: candidate.message } : {}),
      differs,
      flip,
      ...(failed ? { error: candidate.error } : {}),
      engine: this.kind,
    };
  }

  /**
   * Stops taking samples, lets queued and running ones finish within the candidate's timeout, then aborts
   * what is left (their lines are logged without a shadow outcome) and closes the candidate's engine.
   */
  close(): Promise<void> {
    this.closePromise ??= this.stop();
    return this.closePromise;
  }

  private async stop(): Promise<void> {
    this.closing = true;
    if (this.active > 0 || this.queue.length > 0) {
      const drained = new Promise<void>((resolve) => {
        this.idle = resolve;
      });
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, this.timeoutMs);
      });
      await Promise.race([drained, deadline]);
      clearTimeout(timer);
      for (const sample of this.queue.splice(0)) {
        this.stats.dropped++;
        sample.settle(undefined);
      }
      this.closed.abort();
      if (this.active > 0) await drained;
    }
    const engine = await this.setup.engine.catch(() => undefined);
    await engine?.close();
  }
}
