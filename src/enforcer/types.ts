import type { IncomingMessage } from "node:http";
import type { CacheOptions } from "./cache.ts";
import type { Decision } from "./decision.ts";
import type { Flip } from "./decision-compare.ts";
import type { DecisionLogOptions, DecisionLogSink } from "./decision-log.ts";
import type { InputExtras, InputOptions, KongInput } from "./input.ts";

/** The enforcer's public types: its options, the event every decision produces, and the enforcer itself. */

export interface DecisionEvent {
  input: unknown;
  /** What the policy decided (in audit mode too: the request proceeded anyway). */
  decision: Decision;
  revision?: string;
  durationMs: number;
  failOpen: boolean;
  /** The same id as on req.authz, the span and the decision log. */
  decisionId: string;
  cached: boolean;
  engine: "remote" | "embedded";
  /** True in audit mode. */
  audited: boolean;
  /** What enforce mode would do with this decision. */
  would: "allow" | "deny" | "error";
  /** When the decision was asked for, in ms since the epoch. */
  decidedAt: number;
  /** The bundle whose revision answered (opa.bundleName, else "authz"). */
  bundle: string;
  /** The candidate's outcome, on the event the decision log records for a shadowed decision. */
  shadow?: ShadowOutcome;
}

/** A candidate policy evaluated beside the enforced one, off the request path: a second OPA or wasm bundle. */
export interface ShadowOptions {
  opa?: { url: string; path: string; connections?: number; bundleName?: string };
  bundle?: string;
  entrypoint?: string;
  inThread?: boolean;
  workers?: number;
  /** The share of decisions the candidate evaluates, from 0 to 1. Default 1. */
  sampleRate?: number;
  /** Per candidate evaluation, readiness included. Default: the enforcer's timeoutMs. */
  timeoutMs?: number;
  /** Samples waiting for the candidate; past this they are dropped and counted. Default 1000. */
  maxQueue?: number;
  /**
   * Bytes of serialized input the queued and running samples may hold; past this a sample is dropped and
   * counted. Default 32 MiB.
   */
  maxQueueBytes?: number;
  /** Candidate evaluations at once. Default 8. */
  concurrency?: number;
}

/** What onShadow and the `policyship:shadow` channel receive for each evaluated sample. */
export interface ShadowEvent {
  decisionId: string;
  input: unknown;
  /** What the enforced policy decided (before audit mode or failOpen). */
  enforced: { allow: boolean; status: number; revision?: string };
  /** What the candidate decided; an error is allow false, status 500 and its error text. */
  shadow: { allow: boolean; status: number; revision?: string; error?: string };
  /** Outcome, status, headers or message differ, as `impact` compares a replay. */
  differs: boolean;
  flip: Flip;
}

/** A shadowed decision's candidate as its decision-log line carries it (custom.policyship.shadow). */
export interface ShadowOutcome {
  revision: string | null;
  /** null when the candidate failed (error says why). */
  allow: boolean | null;
  status: number | null;
  headers: Record<string, string>;
  message?: unknown;
  differs: boolean;
  flip: Flip;
  error?: string;
  engine: "remote" | "embedded";
}

export interface ShadowStats {
  /** Samples the candidate answered or failed on. */
  evaluated: number;
  /** Of those, the ones whose decision differs from the enforced one. */
  differed: number;
  /** Samples dropped because the queue was full or the enforcer closed first. */
  dropped: number;
  /** Candidate failures (load, timeout, outage, bad result) and onShadow hooks that threw. */
  errors: number;
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
  /**
   * Let a request through when OPA cannot be reached (connection refused or reset, or timeoutMs passed and
   * OPA's /health does not answer either). Never on a denial, an answer of any status, a policy error, a
   * query that timed out while OPA answers /health (its own cost), a revision mismatch, the in-flight
   * limit, or a request whose input cannot be built. Default false.
   */
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
  /** @deprecated Ignored: the revision now comes with every decision (OPA's provenance). */
  revisionRefreshMs?: number;
  /** Decisions in flight at once: calls to OPA (remote) or queued evaluations (embedded). Default 1024. */
  maxInFlight?: number;
  /**
   * Embedded only: evaluate on the event loop instead of worker threads. Saves the thread hop, but a slow
   * evaluation blocks every request and timeoutMs cannot interrupt it. Default false.
   */
  inThread?: boolean;
  /** Embedded only: worker threads (default: 2–4 by available cores). */
  workers?: number;
  /**
   * "audit": every request is evaluated and proceeds whatever the outcome (deny, error, mismatch); events
   * say what enforce mode would have done. Default "enforce".
   */
  mode?: "enforce" | "audit";
  /** A decision cache bound to the answering revision; off by default. */
  cache?: CacheOptions;
  /** OpenTelemetry spans and metrics when @opentelemetry/api is installed. Default true. */
  telemetry?: boolean;
  /**
   * One NDJSON line per decision in OPA's decision-log event shape: a file path, an object with
   * write(line), or {sink, mask, sampleRate, maxPending, labels}. Never blocks or throws into a request.
   */
  decisionLog?: DecisionLogSink | DecisionLogOptions;
  /** A candidate evaluated beside the enforced policy; its answer never reaches the request. Off by default. */
  shadow?: ShadowOptions;
  /** Each evaluated shadow sample; a hook that throws is counted as an error, never reaches the request. */
  onShadow?: (event: ShadowEvent) => void;
}

export interface Enforcer {
  readonly engine: "remote" | "embedded";
  readonly maxBodyBytes: number;
  readonly includeBody: boolean;
  readonly includeUriCaptures: boolean;
  ready(): Promise<void>;
  decide(input: unknown): Promise<Decision>;
  /** Throws InputError when the request has no single path (400) or its body cannot be known (500). */
  buildInput(req: IncomingMessage, extras?: InputExtras): KongInput;
  /** buildInput then decide; a request without an input is refused (400 or 500) and never let through. */
  authorize(req: IncomingMessage, extras?: InputExtras): Promise<Decision>;
  /** Decision log lines written and dropped so far (undefined without decisionLog). */
  logStats(): { written: number; dropped: number } | undefined;
  /** Shadow samples evaluated, differing, dropped and failed so far (undefined without shadow). */
  shadowStats(): ShadowStats | undefined;
  close(): Promise<void>;
}
