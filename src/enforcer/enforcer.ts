import type { IncomingMessage } from "node:http";
import { AUTHORIZE_NOW, type AuthorizeNow } from "./authorize-now.ts";
import type { DecisionCache } from "./cache.ts";
import {
  badRequestDecision,
  type Decision,
  errorDecision,
  interpretResult,
  mismatchDecision,
  PolicyResultError,
} from "./decision.ts";
import { DecisionLog, type DecisionLogOptions, type DecisionLogSink } from "./decision-log.ts";
import { type Engine, EngineError } from "./engine.ts";
import { decisionFinisher } from "./finish.ts";
import {
  buildKongInput,
  InputError,
  type InputExtras,
  type InputOptions,
  type KongInput,
  NO_INCLUDES,
} from "./input.ts";
import { assertEmbedded, assertOptions, assertRemote, assertShadow, throttledStderr } from "./options.ts";
import type { Shadow } from "./shadow.ts";
import { loadShadow, NO_SHADOW_STATS } from "./shadow-load.ts";
import { Telemetry } from "./telemetry.ts";
import type { Enforcer, EnforcerOptions } from "./types.ts";

export type { DecisionEvent, Enforcer, EnforcerOptions } from "./types.ts";

const DEFAULT_TIMEOUT_MS = 500;

/** ready()'s refusal of an embedded bundle whose revision is not expectedRevision; decisions answer 503. */
class UnexpectedRevisionError extends Error {}
const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

function logOptions(value: DecisionLogSink | DecisionLogOptions): DecisionLogOptions {
  if (typeof value === "string" || typeof (value as { write?: unknown }).write === "function") {
    return { sink: value as DecisionLogSink };
  }
  return value as DecisionLogOptions;
}

async function createEngine(options: EnforcerOptions): Promise<Engine> {
  if (options.opa) {
    const { RemoteEngine } = await import("./remote.ts");
    return new RemoteEngine({
      ...options.opa,
      maxInFlight: options.maxInFlight,
      checkReachableOnTimeout: options.failOpen === true,
    });
  }
  const { EmbeddedEngine } = await import("./embedded.ts");
  return new EmbeddedEngine({
    bundle: options.bundle as string,
    entrypoint: options.entrypoint as string,
    inThread: options.inThread,
    workers: options.workers,
    maxQueue: options.maxInFlight,
  });
}

/**
 * An enforcer applies Kong's OPA plugin contract to Node requests. Errors are decisions too (500, or 503
 * for a revision mismatch): decide() never throws, and nothing but an allow lets a request through, except
 * an unreachable OPA when failOpen was chosen.
 */
export function createEnforcer(options: EnforcerOptions): Enforcer {
  assertOptions(options);
  // Checked now, so a typo fails at start-up rather than on the first request.
  if (options.opa) assertRemote(options.opa);
  else assertEmbedded(options);
  if (options.shadow !== undefined) assertShadow(options.shadow);
  const log = options.log ?? throttledStderr();
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const failOpen = options.failOpen === true;
  const inputOptions: InputOptions = {
    include: { ...NO_INCLUDES, ...options.include },
    service: options.service,
    route: options.route,
    consumer: options.consumer,
  };
  const engineKind = options.opa ? "remote" : "embedded";
  const audit = options.mode === "audit";
  // lru-cache and the stable serializer load only for an app that asked for a cache.
  let cache: DecisionCache | undefined;
  const cacheLoaded = options.cache
    ? import("./cache.ts").then(({ DecisionCache }) => {
        cache = new DecisionCache(options.cache as NonNullable<EnforcerOptions["cache"]>);
      })
    : undefined;
  const telemetry = new Telemetry(options.telemetry !== false);
  const rulePath = (options.opa?.path ?? options.entrypoint ?? "").replace(/^\/+|\/+$/g, "");
  const bundleName = options.opa?.bundleName ?? "authz";
  const decisionLog = options.decisionLog
    ? new DecisionLog(logOptions(options.decisionLog), rulePath, log)
    : undefined;
  const enginePromise = createEngine(options);
  // Surfaced by ready() and decide(); this only keeps an early rejection from being reported as unhandled.
  enginePromise.catch(() => {});
  let shadow: Shadow | undefined;
  const shadowLoaded = options.shadow
    ? loadShadow(
        { timeoutMs, onShadow: options.onShadow, telemetry, log },
        options.shadow,
        createEngine,
      ).then((loaded) => {
        shadow = loaded;
      })
    : undefined;
  let readyPromise: Promise<void> | undefined;
  let closed = false;

  const ready = () => {
    readyPromise ??= enginePromise.then(async (engine) => {
      await Promise.all([engine.ready(), telemetry.loaded, cacheLoaded]);
      const revision = engine.revision?.();
      if (options.expectedRevision && engine.kind === "embedded" && revision !== options.expectedRevision) {
        throw new UnexpectedRevisionError(
          `bundle revision ${revision ?? "(none)"} is not the expected ${options.expectedRevision}`,
        );
      }
    });
    return readyPromise;
  };

  async function evaluate(serialized: string, signal: AbortSignal): Promise<Decision> {
    let engine: Engine;
    try {
      engine = await enginePromise;
      await ready();
    } catch (error) {
      const message = (error as Error).message;
      return error instanceof UnexpectedRevisionError
        ? mismatchDecision(message)
        : errorDecision(message, "answer");
    }
    let evaluation: Awaited<ReturnType<Engine["evaluate"]>>;
    try {
      evaluation = await engine.evaluate(serialized, signal);
    } catch (error) {
      const kind = error instanceof EngineError ? error.kind : "answer";
      return errorDecision((error as Error).message, kind);
    }
    // The revision that produced this very answer: a decision from another revision is never served.
    const { revision } = evaluation;
    if (options.expectedRevision && revision !== options.expectedRevision) {
      return mismatchDecision(
        `the answer came from policy revision ${revision ?? "(unknown)"}, the app expects ${options.expectedRevision}`,
        revision,
      );
    }
    const result = evaluation.defined ? { result: evaluation.result } : {};
    // Decisions are copied with Object.assign, not object spread: V8 (Node 24) builds `{ ...a, b }` through a
    // slow path that costs microseconds per request (docs/perf/P7.md). Every key is the enforcer's own.
    try {
      return Object.assign(interpretResult(evaluation.result, evaluation.defined), { revision }, result);
    } catch (error) {
      const prefix = error instanceof PolicyResultError ? "invalid policy result: " : "";
      return Object.assign(errorDecision(`${prefix}${(error as Error).message}`, "policy", revision), result);
    }
  }

  const finish = decisionFinisher({
    engine: engineKind,
    audit,
    failOpen,
    bundle: bundleName,
    log,
    onDecision: options.onDecision,
    decisionLog,
    telemetry,
    shadow: () => shadow,
  });

  async function evaluateWithin(serialized: string): Promise<Decision> {
    // The time budget covers the whole decision, readiness included. A timer cleared on completion rather
    // than AbortSignal.timeout(), whose timer fires after every decision and builds a DOMException each time.
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    try {
      return await evaluate(serialized, controller.signal);
    } finally {
      clearTimeout(timer);
    }
  }

  function serialize(input: unknown): string | Decision {
    try {
      // Serialized once, here: an input that cannot be (a cycle, or nesting deeper than V8 can walk) is the
      // request's fault, refused before any engine sees it.
      return JSON.stringify(input) ?? "null";
    } catch (error) {
      return errorDecision(`the input cannot be serialized: ${(error as Error).message}`, "input");
    }
  }

  /**
   * decide() without a promise when the answer is at hand: a cache hit, a refused input, after close. Only
   * a miss, an uncached decision or a cache still loading returns one.
   */
  function decideNow(input: unknown, started: number): Decision | Promise<Decision> {
    if (closed) return finish(input, errorDecision("the enforcer is closed", "closed"), started);
    // ready() reports a failed load; a decision then simply goes without the cache.
    if ((cacheLoaded && !cache) || (shadowLoaded && !shadow)) return decideLoaded(input, started);
    return decideCached(input, started);
  }

  async function decideLoaded(input: unknown, started: number): Promise<Decision> {
    if (cacheLoaded && !cache) await cacheLoaded.catch(() => undefined);
    if (shadowLoaded && !shadow) await shadowLoaded.catch(() => undefined);
    return decideCached(input, started);
  }

  function decideCached(input: unknown, started: number): Decision | Promise<Decision> {
    const decisions = cache;
    if (decisions) {
      const { key, serialized } = decisions.keyOf(input);
      if (key !== undefined) {
        const hit = decisions.get(key, options.expectedRevision);
        if (hit) return finish(input, hit, started, true);
        return decideMiss(decisions, key, serialized, input, started);
      }
    }
    const serialized = serialize(input);
    if (typeof serialized !== "string") return finish(input, serialized, started);
    return evaluateThenFinish(serialized, input, started);
  }

  async function decideMiss(
    decisions: DecisionCache,
    key: string,
    serialized: string | undefined,
    input: unknown,
    started: number,
  ): Promise<Decision> {
    const { decision, shared } = await decisions.once(key, async () => {
      const text = serialized ?? serialize(input);
      const made = typeof text === "string" ? await evaluateWithin(text) : text;
      decisions.store(key, made, options.expectedRevision);
      return made;
    });
    return finish(input, decision, started, shared && !decision.error);
  }

  async function evaluateThenFinish(serialized: string, input: unknown, started: number) {
    return finish(input, await evaluateWithin(serialized), started);
  }

  async function decide(input: unknown): Promise<Decision> {
    return decideNow(input, performance.now());
  }

  /** authorize(), answering at once when it can (see authorize-now.ts); a sync throw is the caller's. */
  function authorizeSoon(req: IncomingMessage, extras?: InputExtras): Decision | Promise<Decision> {
    let input: KongInput;
    try {
      input = buildInput(req, extras);
    } catch (error) {
      const started = performance.now();
      const message = (error as Error).message;
      const decision =
        error instanceof InputError && error.status === 400
          ? badRequestDecision(message)
          : errorDecision(`cannot build the input: ${message}`, "input");
      return finish({ request: { http: { method: req.method, target: req.url } } }, decision, started);
    }
    return decideNow(input, performance.now());
  }

  const buildInput = (req: IncomingMessage, extras?: InputExtras) =>
    buildKongInput(req, inputOptions, extras);

  const enforcer: Enforcer & { [AUTHORIZE_NOW]: AuthorizeNow } = {
    engine: engineKind,
    maxBodyBytes: options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    includeBody: inputOptions.include.body || inputOptions.include.parsedJsonBody,
    includeUriCaptures: inputOptions.include.uriCaptures,
    // ready() readies the candidate too; a decision waits only for the enforced engine (evaluate's ready()).
    ready: shadowLoaded
      ? () => Promise.all([ready(), shadowLoaded.then(() => shadow?.ready())]).then(() => undefined)
      : ready,
    decide,
    buildInput,
    async authorize(req, extras) {
      return authorizeSoon(req, extras);
    },
    [AUTHORIZE_NOW]: authorizeSoon,
    logStats: () =>
      decisionLog ? { written: decisionLog.written, dropped: decisionLog.dropped } : undefined,
    shadowStats: () => (options.shadow ? (shadow?.snapshot() ?? { ...NO_SHADOW_STATS }) : undefined),
    async close() {
      closed = true;
      cache?.clear();
      // Queued and running samples settle (bounded) first, so their log lines are written before it closes.
      await shadowLoaded?.catch(() => undefined);
      await shadow?.close();
      await decisionLog?.close();
      const engine = await enginePromise.catch(() => undefined);
      await engine?.close();
    },
  };
  return enforcer;
}
