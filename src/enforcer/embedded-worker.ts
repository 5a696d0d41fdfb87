/**
 * A worker thread of the embedded engine: one instance of the bundle's policy.wasm, evaluating one input at
 * a time. The enforcer terminates the thread when an evaluation outlives its timeout, and piscina starts a
 * fresh one. Only erasable TypeScript here, so Node can run the source file directly in tests.
 */
import { workerData } from "node:worker_threads";
import { loadPolicy } from "@open-policy-agent/opa-wasm";
import { beginEvaluation, customBuiltins } from "./builtins/index.ts";
import { firstResult, messageOf } from "./wasm.ts";

export interface WorkerSetup {
  /** The compiled policy.wasm (a WebAssembly.Module), shared by every worker. */
  module: Parameters<typeof loadPolicy>[0];
  data: ArrayBuffer;
  entrypoint: string;
}

export type WorkerAnswer = { ok: true; defined: boolean; result: unknown } | { ok: false; message: string };

const setup = workerData as WorkerSetup;
const policy = await loadPolicy(setup.module, undefined, customBuiltins);
policy.setData(setup.data);
const encoder = new TextEncoder();

/** `null` is the warm-up call of ready(): the policy above is loaded by then. */
export default function evaluate(serialized: string | null): WorkerAnswer | null {
  if (serialized === null) return null;
  try {
    beginEvaluation();
    return { ok: true, ...firstResult(policy.evaluate(encoder.encode(serialized).buffer, setup.entrypoint)) };
  } catch (error) {
    return { ok: false, message: messageOf(error) };
  }
}
