import { type Decision, errorDecision, interpretResult, PolicyResultError } from "./decision.ts";
import { classifyDecision, flipOf } from "./decision-compare.ts";
import { type Engine, EngineError } from "./engine.ts";
import { callHook } from "./hooks.ts";
import { shadowChannel, type Telemetry } from "./telemetry.ts";
import type { ShadowEvent, ShadowOptions, ShadowOutcome, ShadowStats } from "./types.ts";

const DEFAULT_MAX_QUEUE = 1000;
const DEFAULT_CONCURRENCY = 8;
export const DEFAULT_MAX_QUEUE_BYTES = 32 * 1024 * 1024;
/** The longest candidate revision a decision-log line carries; a longer one is cut and marked. */
export const MAX_LOGGED_REVISION = 256;
const TRUNCATED = "…(truncated)";
/** The most headers a candidate's answer may set (as many as impact --shadow reads), and its error's length. */
const MAX_CANDIDATE_HEADERS = 1_000;
const MAX_LOGGED_ERROR = 1_024;

interface Sample {
  decisionId: string;
  /** The input as it was when the decision was made: serialized at offer(), never the caller's object. */
  serialized: string;
  enforced: Decision;
  /** performance.now() past which the sample's line no longer waits for the candidate. */
  deadline: number;
  settle: (outcome: ShadowOutcome | undefined) => void;
}

/** A revision as the log carries it: a string of a sane length (a longer one is cut and marked), or null. */
function loggedRevision(revision: unknown): string | null {
  if (typeof revision !== "string") return null;
  return revision.length > MAX_LOGGED_REVISION
    ? `${revision.slice(0, MAX_LOGGED_REVISION)}${TRUNCATED}`
    : revision;
}

export interface ShadowSetup {
  options: ShadowOptions;
  engine: Promise<Engine>;
  /** The enforcer's timeoutMs, the default of the candidate's own. */
  timeoutMs: number;
  onShadow: ((event: ShadowEvent) => unknown) | undefined;
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
 * A candidate policy evaluated beside the enforced one. offer() only serializes and queues: the candidate
 * runs on a later turn of the event loop, bounded by its queue (in samples and in bytes), its concurrency
 * and its own timeout, counted from the decision; what it answers reaches nothing but onShadow, the
 * channel, the counters and the decision log.
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
  private readonly maxQueueBytes: number;
  /** The serialized inputs held by queued and running samples. */
  private heldBytes = 0;
  private expiry: NodeJS.Timeout | undefined;
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
    this.maxQueueBytes = options.maxQueueBytes ?? DEFAULT_MAX_QUEUE_BYTES;
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
   * settles, or undefined once the sample's deadline (the candidate's timeout, counted from now) passes
   * with it still queued; undefined at once when the decision is not sampled, or is dropped (queue full in
   * samples or bytes, enforcer closing). The input is serialized here, so a caller that changes its object
   * afterwards changes nothing the candidate sees.
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
    let serialized: string;
    try {
      serialized = JSON.stringify(input) ?? "null";
    } catch {
      // The enforced side refused this input already; there is nothing to compare.
      this.stats.dropped++;
      return undefined;
    }
    if (this.heldBytes + serialized.length > this.maxQueueBytes) {
      this.stats.dropped++;
      return undefined;
    }
    this.heldBytes += serialized.length;
    const deadline = performance.now() + this.timeoutMs;
    return new Promise((settle) => {
      this.queue.push({ decisionId, serialized, enforced, deadline, settle });
      this.schedule();
      this.watchExpiry();
    });
  }

  /**
   * Drops the queued samples whose deadline has passed, their lines written at once without a shadow
   * outcome. Deadlines are in queue order (one timeout for all), so one timer on the oldest suffices.
   */
  private watchExpiry() {
    if (this.expiry !== undefined) return;
    const oldest = this.queue[0];
    if (oldest === undefined) return;
    this.expiry = setTimeout(
      () => {
        this.expiry = undefined;
        this.expire();
        this.watchExpiry();
      },
      Math.max(0, oldest.deadline - performance.now()),
    );
    this.expiry.unref();
  }

  private expire() {
    const now = performance.now();
    while (this.queue.length > 0 && (this.queue[0] as Sample).deadline <= now) {
      const sample = this.queue.shift() as Sample;
      this.heldBytes -= sample.serialized.length;
      this.stats.dropped++;
      sample.settle(undefined);
    }
    if (this.active === 0 && this.queue.length === 0) this.idle?.();
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
    this.expire();
    while (this.active < this.concurrency && this.queue.length > 0) {
      const sample = this.queue.shift() as Sample;
      this.active++;
      this.run(sample)
        // A throwing meter must not become an unhandled rejection in the app. (A throwing
        // diagnostics_channel subscriber cannot be caught here: publish() rethrows it on process.nextTick,
        // by Node's design, as an uncaught exception.)
        .catch(() => {})
        .finally(() => {
          this.active--;
          this.heldBytes -= sample.serialized.length;
          this.pump();
        });
    }
    if (this.active === 0 && this.queue.length === 0) this.idle?.();
  }

  private async run(sample: Sample) {
    let outcome: ShadowOutcome | undefined;
    try {
      outcome = this.report(sample, await this.evaluateWithin(sample.serialized, sample.deadline));
    } finally {
      // Whatever happened, the decision's log line is written (without a shadow outcome if none).
      sample.settle(outcome);
    }
  }

  private async evaluateWithin(serialized: string, deadline: number): Promise<Decision> {
    const controller = new AbortController();
    // What is left of the sample's timeout: the time it waited in the queue counts.
    const timer = setTimeout(() => controller.abort(), Math.max(0, deadline - performance.now()));
    const stop = () => controller.abort();
    this.closed.signal.addEventListener("abort", stop, { once: true });
    try {
      return await this.evaluate(serialized, controller.signal);
    } finally {
      clearTimeout(timer);
      this.closed.signal.removeEventListener("abort", stop);
    }
  }

  private async evaluate(serialized: string, signal: AbortSignal): Promise<Decision> {
    let evaluation: Awaited<ReturnType<Engine["evaluate"]>>;
    try {
      const engine = await this.setup.engine;
      this.ready();
      await Promise.race([this.readyPromise, aborted(signal)]);
      evaluation = await engine.evaluate(serialized, signal);
    } catch (error) {
      return errorDecision((error as Error).message, error instanceof EngineError ? error.kind : "answer");
    }
    const { revision } = evaluation;
    try {
      const decision = interpretResult(evaluation.result, evaluation.defined);
      // More than impact --shadow reads: one such answer would block a whole report, so it is the candidate's error.
      if (Object.keys(decision.headers).length > MAX_CANDIDATE_HEADERS)
        throw new PolicyResultError(`more than ${MAX_CANDIDATE_HEADERS} headers`);
      return { ...decision, revision };
    } catch (error) {
      const prefix = error instanceof PolicyResultError ? "invalid policy result: " : "";
      const text = `${prefix}${(error as Error).message}`;
      const bounded =
        text.length > MAX_LOGGED_ERROR ? `${text.slice(0, MAX_LOGGED_ERROR)}${TRUNCATED}` : text;
      return errorDecision(bounded, "policy", revision);
    }
  }

  /** Counts, compares and reports one settled sample; returns what its decision-log line carries. */
  private report(sample: Sample, candidate: Decision): ShadowOutcome {
    const { enforced } = sample;
    // What the candidate said its revision is counts as its answer: bounded before anything carries it.
    const revision = loggedRevision(candidate.revision);
    const flip = flipOf(classifyDecision(enforced), classifyDecision(candidate));
    const differs = flip !== "none";
    this.stats.evaluated++;
    if (differs) this.stats.differed++;
    if (candidate.error !== undefined) this.stats.errors++;
    const listening = this.setup.onShadow !== undefined || shadowChannel.hasSubscribers;
    if (listening) this.publish(sample, candidate, revision, differs, flip);
    this.setup.telemetry.recordShadow(differs, flip);
    const failed = candidate.error !== undefined;
    return {
      revision,
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

  private publish(
    sample: Sample,
    candidate: Decision,
    revision: string | null,
    differs: boolean,
    flip: ShadowEvent["flip"],
  ) {
    const { enforced } = sample;
    const event: ShadowEvent = {
      decisionId: sample.decisionId,
      // The input as the decision saw it, each listener's own copy.
      input: JSON.parse(sample.serialized),
      enforced: { allow: enforced.allow, status: enforced.status, revision: enforced.revision },
      shadow: {
        allow: candidate.allow,
        status: candidate.status,
        revision: revision ?? undefined,
        ...(candidate.error !== undefined ? { error: candidate.error } : {}),
      },
      differs,
      flip,
    };
    // Sync throws and async rejections alike are counted errors, never the app's problem.
    callHook("onShadow", this.setup.onShadow, event, this.setup.log, () => {
      this.stats.errors++;
    });
    if (shadowChannel.hasSubscribers) shadowChannel.publish(event);
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
    clearTimeout(this.expiry);
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
        this.heldBytes -= sample.serialized.length;
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
