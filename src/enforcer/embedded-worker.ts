/**
 * A worker thread of the embedded engine: one instance of the bundle's policy.wasm, evaluating the inputs
 * of a batch one after another (batch-protocol.ts). The main thread terminates the thread when an
 * evaluation outlives its timeout, and piscina starts a fresh one. Only erasable TypeScript here, so Node
 * can run the source file directly in tests.
 */
import { workerData } from "node:worker_threads";
import { loadPolicy } from "@open-policy-agent/opa-wasm";
import {
  QUEUED,
  RETURNED,
  type ReturnedAnswers,
  RUNNING,
  viewOf,
  type WorkerAnswer,
  type WorkerBatch,
  writeAnswer,
} from "./batch-protocol.ts";
import { beginEvaluation, customBuiltins } from "./builtins/index.ts";
import { firstResult, messageOf } from "./wasm.ts";

export type { WorkerAnswer } from "./batch-protocol.ts";

export interface WorkerSetup {
  /** The compiled policy.wasm (a WebAssembly.Module), shared by every worker. */
  module: Parameters<typeof loadPolicy>[0];
  data: ArrayBuffer;
  entrypoint: string;
}

const setup = workerData as WorkerSetup;
const policy = await loadPolicy(setup.module, undefined, customBuiltins);
policy.setData(setup.data);
const encoder = new TextEncoder();

function evaluateOne(serialized: string): WorkerAnswer {
  try {
    beginEvaluation();
    return { ok: true, ...firstResult(policy.evaluate(encoder.encode(serialized).buffer, setup.entrypoint)) };
  } catch (error) {
    return { ok: false, message: messageOf(error) };
  }
}

/** `null` is the warm-up call of ready(): the policy above is loaded by then. */
export default function evaluate(batch: WorkerBatch | null): ReturnedAnswers | null {
  if (batch === null) return null;
  const view = viewOf(batch.shared, batch.inputs.length);
  const returned: ReturnedAnswers = [];
  let cursor = 0;
  for (const [index, serialized] of batch.inputs.entries()) {
    // An input the main thread took back (timed out, or moved to an idle worker) is not evaluated here.
    if (Atomics.compareExchange(view.slots, index, QUEUED, RUNNING) !== QUEUED) continue;
    const answer = evaluateOne(serialized);
    const next = writeAnswer(view, index, cursor, answer);
    if (next === -1) {
      returned.push([index, answer]);
      Atomics.store(view.slots, index, RETURNED);
    } else {
      cursor = next;
    }
  }
  return returned;
}
