import type { IncomingMessage } from "node:http";
import {
  type Decision,
  errorDecision,
  interpretResult,
  mismatchDecision,
  PolicyResultError,
} from "./decision.ts";
import type { Engine } from "./engine.ts";
import {
  buildKongInput,
  INCLUDE_KEYS,
  type InputExtras,
  type InputOptions,
  type KongInput,
  NO_INCLUDES,
} from "./input.ts";

export interface DecisionEvent {
  input: unknown;
  decision: Decision;
  revision?: string;
  durationMs: number;
  failOpen: boolean;
}

export interface EnforcerOptions {
  /** Remote engine: an OPA server. `path` is the rule, e.g. "authz/allow" → POST /v1/data/authz/allow. */
  opa?: { url: string; path: string; connections?: number; bundleName?: string };
  /** Embedded engine: a bundle built with --target wasm, evaluated in-process. */
  bundle?: string;
  entrypoint?: string;
  /** The app's own revision; decisions from another policy revision are refused with 503. */
  expectedRevision?: string;
  /** Per decision; an OPA slower than this is an error. Default 500. */
  timeoutMs?: number;
  /** Let requests through when the decision is an error (never on a denial). Default false. */
  failOpen?: boolean;
  include?: Partial<InputOptions["include"]>;
  service?: InputOptions["service"];
  route?: InputOptions["route"];
  consumer?: InputOptions["consumer"];
  /** Larger request bodies get 413 when the body is included. Default 1 MiB. */
  maxBodyBytes?: number;
  onDecision?: (event: DecisionEvent) => void;
  /** Where problems are logged; default: one line on stderr, at most once per second per kind. */
  log?: (message: string) => void;
  /** How often the remote engine refreshes OPA's revision from GET /v1/status. Default 5000. */
  revisionRefreshMs?: number;
  /** Calls to OPA in flight at once (remote). Default 1024. */
  maxInFlight?: number;
}

export interface Enforcer {
  readonly engine: "remote" | "embedded";
  readonly maxBodyBytes: number;
  readonly includeBody: boolean;
  readonly includeUriCaptures: boolean;
  ready(): Promise<void>;
  decide(input: unknown): Promise<Decision>;
  buildInput(req: IncomingMessage, extras?: InputExtras): KongInput;
  close(): Promise<void>;
}

const DEFAULT_TIMEOUT_MS = 500;
const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

function throttledStderr(): (message: string) => void {
  const last = new Map<string, number>();
  return (message) => {
    const kind = message.slice(0, 60);
    const now = Date.now();
    if (now - (last.get(kind) ?? 0) < 1000) return;
    last.set(kind, now);
    process.stderr.write(`policyship/enforcer: ${message}\n`);
  };
}

function assertOptions(options: EnforcerOptions) {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      `createEnforcer expects an options object, got ${options === null ? "null" : typeof options}`,
    );
  }
  const remote = options.opa !== undefined;
  const embedded = options.bundle !== undefined;
  if (remote === embedded) {
    throw new TypeError(
      "createEnforcer needs exactly one engine: opa: {url, path} (remote) or bundle + entrypoint (embedded)",
    );
  }
  for (const [name, value] of [
    ["timeoutMs", options.timeoutMs],
    ["maxBodyBytes", options.maxBodyBytes],
    ["revisionRefreshMs", options.revisionRefreshMs],
    ["maxInFlight", options.maxInFlight],
  ] as const) {
    if (value !== undefined && (typeof value !== "number" || !Number.isFinite(value) || value <= 0)) {
      throw new TypeError(`${name} must be a positive number, got ${JSON.stringify(value)}`);
    }
  }
  if (
    options.expectedRevision !== undefined &&
    (typeof options.expectedRevision !== "string" || !options.expectedRevision)
  ) {
    throw new TypeError(
      `expectedRevision must be a non-empty string, got ${JSON.stringify(options.expectedRevision)}`,
    );
  }
  for (const hook of ["onDecision", "log", "service", "route", "consumer"] as const) {
    if (options[hook] !== undefined && typeof options[hook] !== "function") {
      throw new TypeError(`${hook} must be a function, got ${typeof options[hook]}`);
    }
  }
  for (const key of Object.keys(options.include ?? {})) {
    if (!(INCLUDE_KEYS as readonly string[]).includes(key)) {
      throw new TypeError(`include.${key} is not an option; use ${INCLUDE_KEYS.join(", ")}`);
    }
  }
}

function assertRemote(opa: NonNullable<EnforcerOptions["opa"]>) {
  if (typeof opa !== "object" || opa === null)
    throw new TypeError(`opa must be {url, path}, got ${typeof opa}`);
  let url: URL | undefined;
  try {
    url = new URL(opa.url);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== "http:" && url.protocol !== "https:")) {
    throw new TypeError(`opa.url must be an http(s) URL, got ${JSON.stringify(opa.url)}`);
  }
  if (typeof opa.path !== "string" || !/^\/*[\w-]+(\/[\w-]+)*\/*$/.test(opa.path)) {
    throw new TypeError(
      `opa.path must be a rule path such as "authz/allow", got ${JSON.stringify(opa.path)}`,
    );
  }
}

async function createEngine(options: EnforcerOptions, log: (message: string) => void): Promise<Engine> {
  if (options.opa) {
    const { RemoteEngine } = await import("./remote.ts");
    return new RemoteEngine(
      {
        ...options.opa,
        revisionRefreshMs: options.revisionRefreshMs,
        maxInFlight: options.maxInFlight,
        onRevisionError: log,
      },
      options.expectedRevision !== undefined,
    );
  }
  const { EmbeddedEngine } = await import("./embedded.ts");
  return new EmbeddedEngine({ bundle: options.bundle as string, entrypoint: options.entrypoint as string });
}

/**
 * An enforcer applies Kong's OPA plugin contract to Node requests. Errors are decisions too (500, or 503
 * for a revision mismatch): decide() never throws, and nothing but an allow lets a request through,
 * unless failOpen was chosen.
 */
export function createEnforcer(options: EnforcerOptions): Enforcer {
  assertOptions(options);
  if (options.opa) {
    // Checked now, so a typo fails at start-up rather than on the first request.
    assertRemote(options.opa);
  } else if (typeof options.entrypoint !== "string" || options.entrypoint === "") {
    throw new TypeError(
      `entrypoint must be a rule path such as "authz/allow", got ${JSON.stringify(options.entrypoint)}`,
    );
  }
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
  const enginePromise = createEngine(options, log);
  // Surfaced by ready() and decide(); this only keeps an early rejection from being reported as unhandled.
  enginePromise.catch(() => {});
  let readyPromise: Promise<void> | undefined;
  let closed = false;

  const ready = () => {
    readyPromise ??= enginePromise.then(async (engine) => {
      await engine.ready();
      const revision = engine.revision();
      if (options.expectedRevision && engine.kind === "embedded" && revision !== options.expectedRevision) {
        throw new Error(
          `bundle revision ${revision ?? "(none)"} is not the expected ${options.expectedRevision}`,
        );
      }
    });
    return readyPromise;
  };

  async function evaluate(input: unknown, signal: AbortSignal): Promise<Decision> {
    let engine: Engine;
    try {
      engine = await enginePromise;
      await ready();
    } catch (error) {
      const message = (error as Error).message;
      return message.includes("is not the expected") ? mismatchDecision(message) : errorDecision(message);
    }
    const revision = engine.revision();
    if (options.expectedRevision && revision !== options.expectedRevision) {
      return mismatchDecision(
        `OPA serves revision ${revision ?? "(unknown)"}, the app expects ${options.expectedRevision}`,
        revision,
      );
    }
    try {
      const evaluation = await engine.evaluate(input, signal);
      return { ...interpretResult(evaluation.result, evaluation.defined), revision };
    } catch (error) {
      const prefix = error instanceof PolicyResultError ? "invalid policy result: " : "";
      return errorDecision(`${prefix}${(error as Error).message}`, revision);
    }
  }

  return {
    engine: engineKind,
    maxBodyBytes: options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    includeBody: inputOptions.include.body || inputOptions.include.parsedJsonBody,
    includeUriCaptures: inputOptions.include.uriCaptures,
    ready,
    async decide(input: unknown): Promise<Decision> {
      const started = performance.now();
      // The time budget covers the whole decision, readiness included. A timer cleared on completion rather
      // than AbortSignal.timeout(), whose timer fires after every decision and builds a DOMException each time.
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), timeoutMs);
      let decision: Decision;
      try {
        decision = closed
          ? errorDecision("the enforcer is closed")
          : await evaluate(input, controller.signal);
      } finally {
        clearTimeout(timer);
      }
      let openedOnError = false;
      if (decision.error) {
        log(decision.error);
        if (failOpen && decision.status >= 500) {
          decision = { ...decision, allow: true, status: 200, failOpen: true };
          openedOnError = true;
        }
      }
      options.onDecision?.({
        input,
        decision,
        revision: decision.revision,
        durationMs: performance.now() - started,
        failOpen: openedOnError,
      });
      return decision;
    },
    buildInput: (req, extras) => buildKongInput(req, inputOptions, extras),
    async close() {
      closed = true;
      const engine = await enginePromise.catch(() => undefined);
      await engine?.close();
    },
  };
}
