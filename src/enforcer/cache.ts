import { createHash } from "node:crypto";
import { LRUCache } from "lru-cache";
import { stringify } from "safe-stable-stringify";
import type { Decision } from "./decision.ts";

export interface CacheOptions {
  /** Entries at most; the least recently used go first. */
  max: number;
  ttlMs: number;
  /**
   * What the decision depends on, e.g. `(input) => `${method} ${path} ${consumer}``. `undefined` skips the
   * cache for that request. Default: a hash of the whole input, with object keys sorted.
   */
  key?: (input: unknown) => string | undefined;
}

/** Freezes a decision and everything in it, so no reader of a cached entry can change what later ones get. */
function freezeDeep<T>(value: T): T {
  if (typeof value !== "object" || value === null || Object.isFrozen(value)) return value;
  for (const inner of Object.values(value)) freezeDeep(inner);
  return Object.freeze(value);
}

/**
 * A decision cache that cannot serve a stale or wrong answer: entries belong to the revision that made
 * them and all go when an answer names another revision; errors, timeouts and failOpen outcomes are never
 * stored, and an error that names no revision (OPA down, a 500) leaves the entries as they are; stored
 * decisions are frozen; concurrent misses on one key wait for one evaluation.
 */
export class DecisionCache {
  private readonly entries: LRUCache<string, Decision>;
  private readonly inFlight = new Map<string, Promise<Decision>>();
  private revision: string | undefined;

  constructor(private readonly options: CacheOptions) {
    // ttlResolution 0: every lookup reads the clock. The default (1 ms) caches the time and arms an unref'd
    // timer each millisecond to forget it, which costs more per hit than the clock read (docs/perf/P7.md),
    // and lets an entry outlive its TTL by up to that millisecond.
    this.entries = new LRUCache({ max: options.max, ttl: options.ttlMs, ttlResolution: 0 });
  }

  /** The key of an input, and its stable serialization when the default key made one (to reuse it). */
  keyOf(input: unknown): { key?: string; serialized?: string } {
    if (this.options.key) {
      try {
        return { key: this.options.key(input) };
      } catch {
        return {};
      }
    }
    const serialized = stringify(input);
    if (serialized === undefined) return {};
    return { key: createHash("sha256").update(serialized).digest("base64url"), serialized };
  }

  /** A stored decision of the revision `expected` requires (any, when there is none). */
  get(key: string, expected: string | undefined): Decision | undefined {
    const hit = this.entries.get(key);
    if (hit && expected !== undefined && hit.revision !== expected) return undefined;
    return hit;
  }

  /** Runs `evaluate` once per key at a time; everyone asking meanwhile gets that evaluation's decision. */
  async once(
    key: string,
    evaluate: () => Promise<Decision>,
  ): Promise<{ decision: Decision; shared: boolean }> {
    const pending = this.inFlight.get(key);
    if (pending) return { decision: await pending, shared: true };
    const started = evaluate();
    this.inFlight.set(key, started);
    try {
      return { decision: await started, shared: false };
    } finally {
      this.inFlight.delete(key);
    }
  }

  /** Keeps a decision only when it is the policy's own answer from the revision the app accepts. */
  store(key: string, decision: Decision, expected: string | undefined) {
    // An engine that failed to answer (unreachable, a 500, a timeout, overload) says nothing about which
    // revision is current: only an answer that names its revision may retire the entries.
    if (decision.error && decision.revision === undefined) return;
    if (decision.revision !== this.revision) {
      // Another revision answered: nothing made by the previous one may be served again.
      this.entries.clear();
      this.revision = decision.revision;
    }
    if (decision.error || decision.failOpen) return;
    if (expected !== undefined && decision.revision !== expected) return;
    this.entries.set(key, freezeDeep(decision));
  }

  get size(): number {
    return this.entries.size;
  }

  clear() {
    this.entries.clear();
  }
}
