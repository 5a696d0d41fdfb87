import { availableParallelism } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { LoadedPolicy } from "@open-policy-agent/opa-wasm";
import type { Piscina } from "piscina";
import { readBundle } from "../bundle/read.ts";
import { parseJson } from "../safe-json.ts";
import { checkLoadedPolicy } from "./builtin-check.ts";
import { beginEvaluation, customBuiltins } from "./builtins/index.ts";
import type { WorkerSetup } from "./embedded-worker.ts";
import { type Engine, EngineError, type Evaluation } from "./engine.ts";
import { describeEvaluationError, firstResult, messageOf } from "./wasm.ts";
import { WorkerBatches } from "./worker-batches.ts";

export interface EmbeddedOptions {
  /** A bundle built with `policyship build --target wasm --entrypoint <entrypoint>`. */
  bundle: string;
  entrypoint: string;
  /** Evaluate on the event loop: no thread hop, but timeoutMs cannot interrupt a slow evaluation. */
  inThread?: boolean;
  /** Worker threads (default: between 2 and 4, by available cores). */
  workers?: number;
  /** Evaluations queued for a worker at most; more fail at once. */
  maxQueue?: number;
}

/** A compiled policy.wasm, as opa-wasm's loadPolicy takes it. */
type WasmModule = WorkerSetup["module"];

/** The global WebAssembly object; the "es2023" lib does not declare it. */
const wasmCompiler = (
  globalThis as unknown as { WebAssembly: { compile(bytes: Uint8Array): Promise<WasmModule> } }
).WebAssembly;

export function defaultWorkers(): number {
  return Math.min(4, Math.max(2, availableParallelism()));
}

/** The worker file beside this module: .ts when run from source (tests), .js when built. */
function workerFile(): string {
  const here = fileURLToPath(import.meta.url);
  return path.join(path.dirname(here), `embedded-worker${path.extname(here)}`);
}

/**
 * Decisions in-process from the bundle's policy.wasm and data.json. By default they run in a pool of worker
 * threads, so an expensive evaluation neither blocks the event loop nor outlives timeoutMs: a timed-out
 * evaluation terminates its worker, and the pool starts a fresh one.
 */
export class EmbeddedEngine implements Engine {
  readonly kind = "embedded";
  private policy: LoadedPolicy | undefined;
  private pool: Piscina | undefined;
  private batches: WorkerBatches | undefined;
  private bundleRevision: string | undefined;
  private loading: Promise<void> | undefined;
  private readonly entrypoint: string;
  private readonly encoder = new TextEncoder();
  private readonly options: EmbeddedOptions;

  constructor(options: EmbeddedOptions) {
    this.options = options;
    this.entrypoint = options.entrypoint.replace(/^\/+|\/+$/g, "");
  }

  ready(): Promise<void> {
    this.loading ??= this.load();
    return this.loading;
  }

  /** The revision in the manifest of the loaded bundle, once ready. */
  revision(): string | undefined {
    return this.bundleRevision;
  }

  private async load(): Promise<void> {
    const contents = await readBundle(this.options.bundle, ["policy.wasm", "data.json"]).catch(
      (error: NodeJS.ErrnoException) => {
        throw new EngineError(
          `cannot read bundle ${this.options.bundle}: ${error.code ?? error.message}`,
          "answer",
        );
      },
    );
    const wasm = contents.kept.get("policy.wasm");
    if (!wasm) {
      throw new EngineError(
        `${this.options.bundle} has no policy.wasm; build it with --target wasm --entrypoint ${this.entrypoint}`,
        "answer",
      );
    }
    const { loadPolicy } = await import("@open-policy-agent/opa-wasm");
    let module: WasmModule;
    let policy: LoadedPolicy;
    try {
      // Compiled once; workers instantiate the same module instead of compiling it again.
      module = await wasmCompiler.compile(wasm);
      policy = await loadPolicy(module, undefined, customBuiltins);
    } catch (error) {
      throw new EngineError(`cannot load policy.wasm: ${messageOf(error)}`, "answer");
    }
    // At start-up, not on the first request that reaches the built-in.
    const unimplemented = checkLoadedPolicy(policy);
    if (unimplemented) throw new EngineError(unimplemented, "answer");
    if (!Object.hasOwn(policy.entrypoints as object, this.entrypoint)) {
      const known = Object.keys(policy.entrypoints as object).join(", ");
      throw new EngineError(
        `entrypoint ${this.entrypoint} is not in the bundle (it has: ${known})`,
        "answer",
      );
    }
    const dataBytes = contents.kept.get("data.json");
    const data = dataBytes && dataBytes.length > 0 ? dataBytes : Buffer.from("{}");
    this.bundleRevision = contents.manifest.revision;
    if (this.options.inThread) {
      // The bundle's data is outside input: null-prototype objects (see safe-json.ts).
      policy.setData(parseJson(data.toString("utf8")) as object);
      this.policy = policy;
      return;
    }
    const { Piscina } = await import("piscina");
    const workers = this.options.workers ?? defaultWorkers();
    const setup: WorkerSetup = {
      module,
      data: new Uint8Array(data).buffer,
      entrypoint: this.entrypoint,
    };
    this.pool = new Piscina({
      filename: workerFile(),
      workerData: setup,
      minThreads: workers,
      maxThreads: workers,
      maxQueue: this.options.maxQueue ?? 1024,
      idleTimeout: Number.POSITIVE_INFINITY,
      // None of the app's Node flags: V8 flags (--expose-gc, --max-semi-space-size …) and main-thread flags
      // (--input-type) make a Worker throw, and the worker needs none of them.
      execArgv: [],
    });
    // ready() resolves once every worker has instantiated the policy, so no decision pays for a thread start.
    await Promise.all(Array.from({ length: workers }, () => this.pool?.run(null)));
    this.batches = new WorkerBatches(this.pool, workers, this.options.maxQueue ?? 1024);
  }

  async evaluate(serialized: string, signal: AbortSignal): Promise<Evaluation> {
    await this.ready();
    if (this.batches) return this.evaluateInWorker(this.batches, serialized, signal);
    const policy = this.policy as LoadedPolicy;
    let resultSet: unknown;
    try {
      beginEvaluation();
      resultSet = policy.evaluate(this.encoder.encode(serialized).buffer, this.entrypoint);
    } catch (error) {
      throw new EngineError(describeEvaluationError(messageOf(error)), "answer");
    }
    return { ...firstResult(resultSet), revision: this.bundleRevision };
  }

  private async evaluateInWorker(
    batches: WorkerBatches,
    serialized: string,
    signal: AbortSignal,
  ): Promise<Evaluation> {
    // Timeouts, overload and a worker that died come back as EngineErrors. A timed-out evaluation is the
    // policy's cost, not an unreachable OPA: failOpen does not apply ("answer").
    const answer = await batches.evaluate(serialized, signal);
    if (!answer.ok) throw new EngineError(describeEvaluationError(answer.message), "answer");
    return { defined: answer.defined, result: answer.result, revision: this.bundleRevision };
  }

  async close(): Promise<void> {
    this.policy = undefined;
    await this.batches?.close();
    await this.pool?.destroy();
    this.pool = undefined;
  }
}
