/**
 * How the embedded engine hands a worker thread several decisions in one message. A batch is the inputs
 * plus a SharedArrayBuffer that both threads see at once:
 *
 *   Int32 state[n] | Int32 offset[n] | Int32 length[n] | answer bytes …
 *
 * The worker claims input i (QUEUED → RUNNING) before evaluating it, and writes its answer's JSON into the
 * shared bytes (WRITTEN) as soon as it has it, or returns it with the batch when it does not fit
 * (RETURNED). The main thread can take an input back that no worker has started (QUEUED → WITHDRAWN), and
 * read any WRITTEN answer while the worker is still busy with a later input, or after the worker was
 * terminated. So one slow input holds up neither the answers before it nor the inputs after it.
 * Only erasable TypeScript here: the worker imports it from source in tests.
 */

export const QUEUED = 0;
export const RUNNING = 1;
export const WRITTEN = 2;
export const RETURNED = 3;
export const WITHDRAWN = 4;

/** What a worker answers for one input. */
export type WorkerAnswer = { ok: true; defined: boolean; result: unknown } | { ok: false; message: string };

export interface WorkerBatch {
  inputs: string[];
  shared: SharedArrayBuffer;
}

/** The answers that did not fit in the shared bytes, by index. */
export type ReturnedAnswers = [number, WorkerAnswer][];

/** Answer bytes per input; a larger answer travels with the batch's return instead. */
const ANSWER_BYTES_PER_INPUT = 512;

export interface BatchView {
  slots: Int32Array;
  bytes: Buffer;
  size: number;
}

export function allocateBatch(size: number): SharedArrayBuffer {
  return new SharedArrayBuffer(12 * size + ANSWER_BYTES_PER_INPUT * size);
}

export function viewOf(shared: SharedArrayBuffer, size: number): BatchView {
  return { slots: new Int32Array(shared, 0, 3 * size), bytes: Buffer.from(shared, 12 * size), size };
}

/** Worker side: stores the answer of input `index` at `cursor`; returns the next cursor, or -1 when it does not fit. */
export function writeAnswer(view: BatchView, index: number, cursor: number, answer: WorkerAnswer): number {
  const json = JSON.stringify(answer);
  const room = view.bytes.length - cursor;
  // Three bytes per UTF-16 unit at most: only a long answer needs its exact length measured.
  if (json.length * 3 > room && Buffer.byteLength(json) > room) return -1;
  const length = view.bytes.write(json, cursor);
  view.slots[view.size + index] = cursor;
  view.slots[2 * view.size + index] = length;
  // The bytes above are visible to the main thread once it reads WRITTEN (Atomics order them).
  Atomics.store(view.slots, index, WRITTEN);
  return cursor + length;
}

/** Main side: the answer a worker WROTE for input `index`. */
export function readAnswer(view: BatchView, index: number): WorkerAnswer {
  const offset = view.slots[view.size + index] as number;
  const length = view.slots[2 * view.size + index] as number;
  return JSON.parse(view.bytes.toString("utf8", offset, offset + length)) as WorkerAnswer;
}
