import type { WriteStream } from "node:fs";
import { redact, secretsOf } from "./credential-values.ts";
import { openLogFile } from "./decision-log-file.ts";
import type { DecisionEvent } from "./enforcer.ts";
import type { ShadowOutcome } from "./types.ts";

/** Where decision log lines go: an object with write(line) (a stream, a logger), or a file path. */
export type DecisionLogSink = { write: (line: string) => unknown } | string;

export interface DecisionLogOptions {
  sink: DecisionLogSink;
  /** JSON Pointers under /input or /result to erase, added to the defaults (credential headers). */
  mask?: string[];
  /** The share of decisions logged, from 0 to 1. Default 1. */
  sampleRate?: number;
  /** Lines held while the sink is busy; past this they are dropped and counted. Default 10,000. */
  maxPending?: number;
  /** labels of every event (OPA's decision-log `labels`). */
  labels?: Record<string, string>;
}

/** Headers that carry credentials, erased from every logged input as OPA's mask policy would. */
export const DEFAULT_MASK = [
  "/input/request/http/headers/authorization",
  "/input/request/http/headers/cookie",
  "/input/request/http/headers/proxy-authorization",
];

/** One line per decision in OPA's decision-log event shape (EventV1), so OPA's tooling and `impact` read it. */
interface LogEvent {
  labels: Record<string, string>;
  decision_id: string;
  bundles?: Record<string, { revision: string }>;
  path: string;
  input?: unknown;
  result?: unknown;
  erased?: string[];
  timestamp: string;
  metrics: { timer_server_handler_ns: number };
  custom: { policyship: Record<string, unknown> };
}

interface Mask {
  pointer: string;
  segments: string[];
}

/** Erases each JSON Pointer (under /input or /result) from {input, result}; returns what remains and what went. */
export function erasePointers(
  value: { input?: unknown; result?: unknown },
  pointers: readonly string[],
): { value: { input?: unknown; result?: unknown }; erased: string[] } {
  const { value: remaining, erased } = eraseMasks(value, pointers.map(maskOf));
  return { value: remaining, erased };
}

function maskOf(pointer: string): Mask {
  return { pointer, segments: parsePointer(pointer) };
}

function eraseMasks(
  value: { input?: unknown; result?: unknown },
  masks: readonly Mask[],
): { value: { input?: unknown; result?: unknown }; erased: string[]; values: unknown[] } {
  let current = value as Record<string, unknown>;
  const erased: string[] = [];
  const values: unknown[] = [];
  for (const mask of masks) {
    const next = erase(current, mask.segments, values);
    if (next) {
      current = next;
      erased.push(mask.pointer);
    }
  }
  return { value: current, erased, values };
}

function parsePointer(pointer: string): string[] {
  if (!/^\/(input|result)(\/|$)/.test(pointer)) {
    throw new TypeError(
      `decisionLog.mask entries must be JSON Pointers under /input or /result, got ${JSON.stringify(pointer)}`,
    );
  }
  return pointer
    .slice(1)
    .split("/")
    .map((segment) => segment.replaceAll("~1", "/").replaceAll("~0", "~"));
}

/**
 * Removes the value at `segments` from `root`, copying each object on the way so the original (the input
 * the app still holds) is never changed. Returns the new root, or undefined when nothing was there.
 */
function erase(
  root: Record<string, unknown>,
  segments: string[],
  values: unknown[],
): Record<string, unknown> | undefined {
  const [head, ...rest] = segments as [string, ...string[]];
  const value = root[head];
  if (value === undefined || !Object.hasOwn(root, head)) return undefined;
  const copy: Record<string, unknown> = Array.isArray(root) ? ([...root] as never) : { ...root };
  if (rest.length === 0) {
    delete copy[head];
    values.push(value);
    return copy;
  }
  if (typeof value !== "object" || value === null) return undefined;
  const inner = erase(value as Record<string, unknown>, rest, values);
  if (inner === undefined) return undefined;
  copy[head] = inner;
  return copy;
}

/**
 * Decision logs that never hold up a request: record() only queues the event; masking, serializing and
 * writing happen after the response's turn of the event loop. A sink that falls behind (a stream that
 * answers write() with false) leaves lines queued up to maxPending; past it they are dropped and counted.
 */
export class DecisionLog {
  private pending: DecisionEvent[] = [];
  private scheduled = false;
  private blocked = false;
  private droppedCount = 0;
  private writtenCount = 0;
  private readonly masks: Mask[];
  private readonly sampleRate: number;
  private readonly maxPending: number;
  private stream: WriteStream | undefined;
  /** Undefined while a log file is being opened: lines wait (bounded by maxPending) until it is. */
  private sink: { write: (line: string) => unknown } | undefined;
  private readonly opening: Promise<void> | undefined;

  constructor(
    private readonly options: DecisionLogOptions,
    private readonly path: string,
    log: (message: string) => void = () => {},
  ) {
    this.masks = [...DEFAULT_MASK, ...(options.mask ?? [])].map(maskOf);
    this.sampleRate = options.sampleRate ?? 1;
    this.maxPending = options.maxPending ?? 10_000;
    if (typeof options.sink === "string") {
      this.opening = openLogFile(options.sink).then(
        (stream) => {
          this.stream = stream;
          // A failing file must not crash the app: lines from then on are counted as dropped.
          stream.on("error", () => {
            this.blocked = true;
          });
          this.sink = stream;
          if (this.pending.length > 0) this.schedule();
        },
        (error: Error) => {
          // Refused (a symlink, another user's file) or unopenable: said once, and nothing is written.
          log(error.message);
          this.blocked = true;
          this.droppedCount += this.pending.length;
          this.pending = [];
        },
      );
    } else {
      this.sink = options.sink;
    }
  }

  private schedule() {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  /** Lines dropped because the sink fell behind or failed. */
  get dropped(): number {
    return this.droppedCount;
  }

  get written(): number {
    return this.writtenCount;
  }

  record(event: DecisionEvent) {
    if (this.sampleRate < 1 && Math.random() >= this.sampleRate) return;
    if (this.blocked && this.stream === undefined && this.opening) {
      this.droppedCount++;
      return;
    }
    if (this.pending.length >= this.maxPending) {
      this.droppedCount++;
      return;
    }
    this.pending.push(event);
    this.schedule();
  }

  private flush() {
    this.scheduled = false;
    const sink = this.sink;
    if (this.blocked || !sink) return;
    const events = this.pending;
    this.pending = [];
    for (const [index, event] of events.entries()) {
      let accepted: unknown;
      try {
        accepted = sink.write(`${JSON.stringify(this.toLogEvent(event))}\n`);
      } catch {
        accepted = true; // a sink that throws loses that line, never the request
      }
      this.writtenCount++;
      if (accepted === false) {
        // Backpressure: keep the rest (bounded) until the sink drains.
        this.blocked = true;
        this.pending = [...events.slice(index + 1), ...this.pending].slice(0, this.maxPending);
        const onDrain = () => {
          this.blocked = false;
          if (this.pending.length > 0) this.schedule();
        };
        const emitter = sink as { once?: (name: string, listener: () => void) => unknown };
        if (typeof emitter.once === "function") emitter.once("drain", onDrain);
        else setTimeout(onDrain, 10);
        return;
      }
    }
  }

  private toLogEvent(event: DecisionEvent): LogEvent {
    const { value, erased, values } = eraseMasks(
      { input: event.input, result: event.decision.result },
      this.masks,
    );
    const { decision } = event;
    // An erased credential may sit elsewhere too (a token in the path, a policy echoing it in a header or
    // message, the candidate's answer): every occurrence of it, and what it carries, is masked as written.
    const secrets = secretsOf(values);
    const masked = redact(value, secrets);
    const shadow = event.shadow ? redact(this.maskShadow(event.shadow), secrets) : undefined;
    const error = decision.error ? redact(decision.error, secrets) : undefined;
    return {
      labels: { engine: event.engine, ...this.options.labels },
      decision_id: event.decisionId,
      ...(event.revision ? { bundles: { [event.bundle ?? "authz"]: { revision: event.revision } } } : {}),
      path: this.path,
      ...(masked.input !== undefined ? { input: masked.input } : {}),
      ...(masked.result !== undefined ? { result: masked.result } : {}),
      ...(erased.length > 0 ? { erased } : {}),
      timestamp: new Date(event.decidedAt).toISOString(),
      metrics: { timer_server_handler_ns: Math.round(event.durationMs * 1e6) },
      custom: {
        policyship: {
          outcome: event.would,
          status: decision.status,
          audited: event.audited,
          would: event.would,
          cached: event.cached,
          fail_open: event.failOpen,
          ...(error ? { error } : {}),
          ...(shadow ? { shadow } : {}),
        },
      },
    };
  }

  /** The candidate's headers and message are policy output like `result`: the /result masks erase them too. */
  private maskShadow(shadow: ShadowOutcome): ShadowOutcome {
    const result = { headers: shadow.headers, ...("message" in shadow ? { message: shadow.message } : {}) };
    const { value } = eraseMasks({ result }, this.masks);
    const masked = (value.result ?? {}) as { headers?: Record<string, string>; message?: unknown };
    const { message: _, ...rest } = shadow;
    return {
      ...rest,
      headers: masked.headers ?? {},
      ...("message" in masked ? { message: masked.message } : {}),
    };
  }

  async close() {
    await this.opening;
    this.flush();
    if (this.stream) await new Promise<void>((resolve) => this.stream?.end(resolve));
  }
}
