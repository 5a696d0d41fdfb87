import { randomUUID } from "node:crypto";
import { type Authz, type Decision, outcomeOf } from "./decision.ts";
import type { DecisionLog } from "./decision-log.ts";
import { callHook } from "./hooks.ts";
import { emptyRecord } from "./input.ts";
import type { Shadow } from "./shadow.ts";
import type { Telemetry } from "./telemetry.ts";
import type { DecisionEvent, EnforcerOptions } from "./types.ts";

/** What finishing a decision needs from its enforcer. */
export interface FinishContext {
  engine: "remote" | "embedded";
  audit: boolean;
  failOpen: boolean;
  bundle: string;
  log: (message: string) => void;
  onDecision: EnforcerOptions["onDecision"];
  decisionLog: DecisionLog | undefined;
  telemetry: Telemetry;
  /** The candidate once loaded. */
  shadow: () => Shadow | undefined;
}

/**
 * A request's own copy of a decision's headers; a for-in copy costs less than Object.assign into it, and
 * emptyRecord's fast properties less than Object.create(null)'s dictionary (docs/perf/P7.md).
 */
function copyHeaders(source: Record<string, string>): Record<string, string> {
  const headers: Record<string, string> = emptyRecord();
  for (const name in source) if (Object.hasOwn(source, name)) headers[name] = source[name] as string;
  return headers;
}

/** A deep copy of a JSON value, frozen all the way down; iterative, so no nesting can overflow the stack. */
function frozenCopy(value: unknown): unknown {
  const copyOf = (source: object): object =>
    Array.isArray(source)
      ? new Array(source.length)
      : Object.setPrototypeOf({}, Object.getPrototypeOf(source));
  const root = copyOf(value as object);
  const stack: [object, object][] = [[value as object, root]];
  const copies: object[] = [root];
  while (stack.length > 0) {
    const [source, target] = stack.pop() as [object, object];
    for (const key of Object.keys(source)) {
      const child = (source as Record<string, unknown>)[key];
      let copied = child;
      if (typeof child === "object" && child !== null) {
        copied = copyOf(child);
        copies.push(copied as object);
        stack.push([child, copied as object]);
      }
      Object.defineProperty(target, key, {
        value: copied,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
  }
  for (const copied of copies) Object.freeze(copied);
  return root;
}

/**
 * What onDecision, the decision log and telemetry get: a frozen copy with frozen headers (and a frozen copy of
 * authz), so a listener can read the decision but never change what is enforced or what the handler sees.
 */
function eventDecision(decision: Decision): Decision {
  const copy: Decision = Object.assign({}, decision);
  // An object message is what a denial's response body carries; the raw result is what later events read.
  if (typeof decision.message === "object" && decision.message !== null) {
    copy.message = frozenCopy(decision.message);
  }
  if (typeof decision.result === "object" && decision.result !== null)
    copy.result = frozenCopy(decision.result);
  copy.headers = Object.freeze(copyHeaders(decision.headers));
  if (decision.authz) {
    const authz: Authz = Object.assign({}, decision.authz);
    authz.headers = Object.freeze(copyHeaders(decision.authz.headers));
    copy.authz = Object.freeze(authz);
  }
  return Object.freeze(copy);
}

/**
 * The last step of every decision, however it was reached (an evaluation, a cache hit, a refusal): logs an
 * error decision, opens it only for an unreachable engine with failOpen (or for anything in audit mode),
 * gives it an id, and reports it to onDecision, diagnostics_channel and OpenTelemetry.
 */
export function decisionFinisher(context: FinishContext) {
  const { decisionLog, telemetry } = context;
  return function finish(input: unknown, decision: Decision, started: number, cached = false): Decision {
    const decisionId = randomUUID();
    const would = outcomeOf(decision);
    // This request's own copy: a cached decision (or one shared by concurrent misses) is frozen and serves
    // other requests, so what a handler does with req.authz.headers stays with its request.
    const headers = copyHeaders(decision.headers);
    const authz: Authz = {
      allow: decision.allow,
      status: decision.status,
      headers,
      revision: decision.revision,
      decisionId,
      cached,
      engine: context.engine,
      audited: context.audit,
    };
    // A copy, then this request's fields: cheaper than Object.assign with a second literal (docs/perf/P7.md).
    let final: Decision = Object.assign({}, decision);
    final.headers = headers;
    final.decisionId = decisionId;
    final.cached = cached;
    final.authz = authz;
    let openedOnError = false;
    if (decision.error) context.log(decision.error);
    if (context.audit) {
      // Proceeds whatever the policy said; a denial's status and headers never reach the response.
      final = {
        ...final,
        allow: true,
        status: 200,
        headers: decision.allow ? headers : {},
        audited: true,
      };
    } else if (decision.error && context.failOpen && decision.errorKind === "unreachable") {
      final = { ...final, allow: true, status: 200, failOpen: true };
      openedOnError = true;
    }
    // A request with an input (not refused, not after close) may be a sample for the candidate.
    const shadow = context.shadow();
    const shadowed =
      shadow !== undefined && decision.errorKind !== "input" && decision.errorKind !== "closed"
        ? shadow.offer(decisionId, input, decision)
        : undefined;
    // Nobody listening (no onDecision, log, channel subscriber or OpenTelemetry SDK): no event to build.
    if (!context.onDecision && !decisionLog && !telemetry.listening()) return final;
    // Frozen too, so a hook cannot swap what the log and telemetry then record.
    const event: DecisionEvent = Object.freeze({
      input,
      decision: eventDecision(context.audit ? Object.assign({}, decision, { decisionId, cached }) : final),
      revision: final.revision,
      durationMs: performance.now() - started,
      failOpen: openedOnError,
      decisionId,
      cached,
      engine: context.engine,
      audited: context.audit,
      would,
      decidedAt: performance.timeOrigin + started,
      bundle: context.bundle,
    });
    // A throwing or rejecting onDecision is logged; the decision stands.
    callHook("onDecision", context.onDecision, event, context.log);
    // A sampled decision's line waits for its candidate (bounded by the candidate's timeout).
    if (shadowed && decisionLog) {
      void shadowed.then((outcome) => decisionLog.record(outcome ? { ...event, shadow: outcome } : event));
    } else decisionLog?.record(event);
    telemetry.record(event);
    return final;
  };
}
