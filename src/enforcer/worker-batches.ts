import type { Piscina } from "piscina";
import {
  allocateBatch,
  type BatchView,
  QUEUED,
  RETURNED,
  type ReturnedAnswers,
  RUNNING,
  readAnswer,
  viewOf,
  WITHDRAWN,
  type WorkerAnswer,
  type WorkerBatch,
  WRITTEN,
} from "./batch-protocol.ts";
import { EngineError } from "./engine.ts";
import { messageOf } from "./wasm.ts";

/** Inputs per message at most. */
const MAX_BATCH = 64;
/**
 * How long a batch runs before the main thread looks inside it: answers already written are handed out,
 * and inputs not yet started move to an idle worker. This bounds what one slow input costs the others.
 */
const SWEEP_MS = 5;

interface Item {
  serialized: string;
  signal: AbortSignal;
  resolve: (answer: WorkerAnswer) => void;
  reject: (error: Error) => void;
  onAbort: () => void;
  settled: boolean;
  batch: Batch | undefined;
  index: number;
}

interface Batch {
  items: Item[];
  view: BatchView;
  controller: AbortController;
  sentAt: number;
}

const timedOut = (recycled: boolean) =>
  new EngineError(
    recycled
      ? "policy evaluation timed out; its worker was recycled"
      : "policy evaluation timed out waiting for a worker",
    "answer",
  );

/**
 * Decisions for a piscina pool, several per message: the decisions that arrive in one turn of the event
 * loop go out together, at most one batch per worker, so a busy app pays one thread hop per batch instead
 * of one per decision. Every decision keeps its own timeout: one that times out before a worker started it
 * is taken back; one that times out while its worker evaluates it terminates that worker (piscina starts a
 * fresh one), and the rest of its batch is answered from what the worker wrote or sent to another worker.
 */
export class WorkerBatches {
  private queue: Item[] = [];
  private readonly inFlight = new Set<Batch>();
  private scheduled = false;
  private sweepTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly pool: Piscina,
    private readonly workers: number,
    private readonly maxQueue: number,
  ) {}

  evaluate(serialized: string, signal: AbortSignal): Promise<WorkerAnswer> {
    if (this.closed) return Promise.reject(new EngineError("the embedded engine is closed", "answer"));
    if (signal.aborted) return Promise.reject(timedOut(false));
    if (this.queue.length >= this.maxQueue) {
      return Promise.reject(
        new EngineError(
          `${this.queue.length} evaluations already queued (limit ${this.maxQueue})`,
          "overload",
        ),
      );
    }
    return new Promise((resolve, reject) => {
      const item: Item = {
        serialized,
        signal,
        resolve,
        reject,
        onAbort: () => this.abandon(item),
        settled: false,
        batch: undefined,
        index: 0,
      };
      signal.addEventListener("abort", item.onAbort, { once: true });
      this.queue.push(item);
      this.schedule();
    });
  }

  async close() {
    this.closed = true;
    clearTimeout(this.sweepTimer);
    const queued = this.queue;
    this.queue = [];
    for (const item of queued) this.settle(item, new EngineError("the embedded engine is closed", "answer"));
  }

  private schedule() {
    if (this.scheduled) return;
    this.scheduled = true;
    // After the current I/O phase: every decision its callbacks asked for goes in the same batch.
    setImmediate(() => {
      this.scheduled = false;
      this.dispatch();
    });
  }

  private dispatch() {
    while (this.queue.length > 0 && this.inFlight.size < this.workers && !this.closed) {
      const idle = this.workers - this.inFlight.size;
      const size = Math.min(MAX_BATCH, Math.ceil(this.queue.length / idle));
      this.send(this.queue.splice(0, size));
    }
  }

  private send(items: Item[]) {
    const shared = allocateBatch(items.length);
    const view = viewOf(shared, items.length);
    const batch: Batch = { items, view, controller: new AbortController(), sentAt: performance.now() };
    for (const [index, item] of items.entries()) {
      item.batch = batch;
      item.index = index;
    }
    this.inFlight.add(batch);
    const task: WorkerBatch = { inputs: items.map((item) => item.serialized), shared };
    this.pool.run(task, { signal: batch.controller.signal }).then(
      (returned) => this.finish(batch, returned as ReturnedAnswers),
      (error: unknown) => this.finish(batch, undefined, error),
    );
    this.armSweep();
  }

  /** The batch's worker returned (`returned`), or died or was terminated (`error`). */
  private finish(batch: Batch, returned: ReturnedAnswers | undefined, error?: unknown) {
    this.inFlight.delete(batch);
    for (const [index, answer] of returned ?? []) this.settleIn(batch, batch.items[index] as Item, answer);
    const retry: Item[] = [];
    for (const item of batch.items) {
      if (item.settled || item.batch !== batch) continue;
      const state = Atomics.load(batch.view.slots, item.index);
      if (state === WRITTEN) this.settle(item, readAnswer(batch.view, item.index));
      else if (state === RUNNING && error !== undefined) {
        // The worker died under this very input (out of memory, say): the input's doing, not the others'.
        this.settle(item, new EngineError(`policy evaluation failed: ${messageOf(error)}`, "answer"));
      } else if (this.closed) {
        this.settle(item, new EngineError("the embedded engine is closed", "answer"));
      } else {
        // Never started, or its answer went down with the worker: it runs again, on another worker.
        item.batch = undefined;
        retry.push(item);
      }
    }
    this.queue.unshift(...retry);
    this.dispatch();
  }

  /** The decision's own timeout fired. */
  private abandon(item: Item) {
    if (item.settled) return;
    const batch = item.batch;
    if (!batch) {
      this.queue.splice(this.queue.indexOf(item), 1);
      this.settle(item, timedOut(false));
      return;
    }
    const state = Atomics.compareExchange(batch.view.slots, item.index, QUEUED, WITHDRAWN);
    if (state === QUEUED) {
      this.settle(item, timedOut(false));
    } else if (state === WRITTEN) {
      // Answered in time; the answer had not been collected yet.
      this.settle(item, readAnswer(batch.view, item.index));
    } else if (state === RUNNING) {
      // This input is what the worker is stuck on: only terminating the thread stops a wasm evaluation.
      this.settle(item, timedOut(true));
      batch.controller.abort();
    } else if (state === RETURNED) {
      this.settle(item, timedOut(false));
    }
  }

  private armSweep() {
    if (this.sweepTimer || this.inFlight.size === 0) return;
    this.sweepTimer = setTimeout(() => {
      this.sweepTimer = undefined;
      this.sweep();
      this.armSweep();
    }, SWEEP_MS);
    this.sweepTimer.unref();
  }

  /** Batches running longer than SWEEP_MS: hand out what they wrote, and move what they have not started. */
  private sweep() {
    const now = performance.now();
    const moved: Item[] = [];
    for (const batch of this.inFlight) {
      if (now - batch.sentAt < SWEEP_MS) continue;
      for (const item of batch.items) {
        if (item.settled || item.batch !== batch) continue;
        const slots = batch.view.slots;
        if (Atomics.load(slots, item.index) === WRITTEN) {
          this.settle(item, readAnswer(batch.view, item.index));
        } else if (
          this.inFlight.size < this.workers &&
          Atomics.compareExchange(slots, item.index, QUEUED, WITHDRAWN) === QUEUED
        ) {
          item.batch = undefined;
          moved.push(item);
        }
      }
    }
    if (moved.length === 0) return;
    this.queue.unshift(...moved);
    this.dispatch();
  }

  private settleIn(batch: Batch, item: Item, answer: WorkerAnswer) {
    if (item.batch === batch) this.settle(item, answer);
  }

  private settle(item: Item, outcome: WorkerAnswer | Error) {
    if (item.settled) return;
    item.settled = true;
    item.signal.removeEventListener("abort", item.onAbort);
    if (outcome instanceof Error) item.reject(outcome);
    else item.resolve(outcome);
  }
}
