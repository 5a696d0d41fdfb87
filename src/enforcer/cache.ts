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

/**
 * A decision cache that cannot serve a stale or wrong answer: entries belong to the revision that made
 * them and all go when an answer names another revision; errors, timeouts and failOpen outcomes are never
 * stored; concurrent misses on one key wait for one evaluation.
 */
export class DecisionCache {
  private readonly entries: LRUCache<string, Decision>;
  private readonly inFlight = new Map<string, Promise<Decision>>();
  private revision: string | undefined;

  constructor(private readonly options: CacheOptions) {
    this.entries = new LRUCache({ max: options.max, ttl: options.ttlMs });
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
    if (decision.revision !== this.revision) {
      // Another revision answered: nothing made by the previous one may be served again.
      this.entries.clear();
      this.revision = decision.revision;
    }
    if (decision.error || decision.failOpen) return;
    if (expected !== undefined && decision.revision !== expected) return;
    this.entries.set(key, decision);
  }

  get size(): number {
    return this.entries.size;
  }

  clear() {
    this.entries.clear();
  }
}
