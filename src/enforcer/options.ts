import type { EnforcerOptions } from "./enforcer.ts";
import { INCLUDE_KEYS } from "./input.ts";

// createEnforcer's checks: a wrong option is a TypeError that names it, at start-up, never at a request.

/** setTimeout's ceiling: a larger delay becomes 1 ms in Node. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Buffer's ceiling on 64-bit Node. */
const MAX_BODY_BYTES = 2 ** 32;
/** A slash-separated rule path such as authz/allow (opa.path, entrypoint). */
const RULE_PATH = /^\/*[\w-]+(\/[\w-]+)*\/*$/;

export function throttledStderr(): (message: string) => void {
  const last = new Map<string, number>();
  return (message) => {
    const kind = message.slice(0, 60);
    const now = Date.now();
    if (now - (last.get(kind) ?? 0) < 1000) return;
    last.set(kind, now);
    process.stderr.write(`policyship/enforcer: ${message}\n`);
  };
}

export function assertOptions(options: EnforcerOptions) {
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
  for (const [name, value, max, integer] of [
    ["timeoutMs", options.timeoutMs, MAX_TIMER_MS, false],
    ["revisionRefreshMs", options.revisionRefreshMs, MAX_TIMER_MS, false],
    ["maxBodyBytes", options.maxBodyBytes, MAX_BODY_BYTES, true],
    ["maxInFlight", options.maxInFlight, 1_000_000, true],
    ["workers", options.workers, 256, true],
    ["opa.connections", options.opa?.connections, 10_000, true],
  ] as const) {
    if (value === undefined) continue;
    if (typeof value !== "number" || !Number.isFinite(value) || value <= 0 || value > max) {
      throw new TypeError(
        `${name} must be a number above 0 and at most ${max}, got ${JSON.stringify(value)}`,
      );
    }
    if (integer && !Number.isInteger(value)) {
      throw new TypeError(`${name} must be a whole number, got ${value}`);
    }
  }
  if (options.mode !== undefined && options.mode !== "enforce" && options.mode !== "audit") {
    throw new TypeError(`mode must be "enforce" or "audit", got ${JSON.stringify(options.mode)}`);
  }
  if (options.cache !== undefined) assertCache(options.cache);
  if (options.decisionLog !== undefined) assertDecisionLog(options.decisionLog);
  for (const flag of ["failOpen", "inThread", "telemetry"] as const) {
    if (options[flag] !== undefined && typeof options[flag] !== "boolean") {
      throw new TypeError(`${flag} must be a boolean, got ${JSON.stringify(options[flag])}`);
    }
  }
  if (options.opa && (options.inThread !== undefined || options.workers !== undefined)) {
    throw new TypeError("inThread and workers apply to the embedded engine (bundle), not to opa");
  }
  if (
    options.expectedRevision !== undefined &&
    (typeof options.expectedRevision !== "string" || !options.expectedRevision)
  ) {
    throw new TypeError(
      `expectedRevision must be a non-empty string, got ${JSON.stringify(options.expectedRevision)}`,
    );
  }
  if (options.expectedRevision !== undefined) assertFullRevision(options.expectedRevision);
  if (options.onShadow !== undefined && options.shadow === undefined) {
    throw new TypeError(
      "onShadow needs a shadow candidate: shadow: {opa: {url, path}} or {bundle, entrypoint}",
    );
  }
  for (const hook of ["onDecision", "onShadow", "log", "service", "route", "consumer"] as const) {
    if (options[hook] !== undefined && typeof options[hook] !== "function") {
      throw new TypeError(`${hook} must be a function, got ${typeof options[hook]}`);
    }
  }
  for (const [key, value] of Object.entries(options.include ?? {})) {
    if (!(INCLUDE_KEYS as readonly string[]).includes(key)) {
      throw new TypeError(`include.${key} is not an option; use ${INCLUDE_KEYS.join(", ")}`);
    }
    if (typeof value !== "boolean")
      throw new TypeError(`include.${key} must be a boolean, got ${typeof value}`);
  }
}

/** Git's shortest abbreviation is 4 hex digits; a full object name is 40 (SHA-1) or 64 (SHA-256). */
const SHORT_SHA = /^[0-9a-f]{4,39}$/i;
const FULL_SHA = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/i;

/**
 * A bundle's revision is compared whole: an abbreviated or upper-case SHA never equals the full lower-case
 * one git names the bundle after, so it would turn every decision into a 503. Refused here instead.
 */
function assertFullRevision(revision: string) {
  if (SHORT_SHA.test(revision)) {
    throw new TypeError(
      `expectedRevision ${JSON.stringify(revision)} looks like a short commit SHA; bundle revisions are the full SHA, so every decision would be a 503 — pass the full SHA (git rev-parse ${revision})`,
    );
  }
  if (FULL_SHA.test(revision) && revision !== revision.toLowerCase()) {
    throw new TypeError(
      `expectedRevision ${JSON.stringify(revision)} is an upper-case SHA; bundle revisions are lower-case, as git prints them — pass ${revision.toLowerCase()}`,
    );
  }
}

export function assertRemote(opa: NonNullable<EnforcerOptions["opa"]>, name = "opa") {
  if (typeof opa !== "object" || opa === null)
    throw new TypeError(`${name} must be {url, path}, got ${typeof opa}`);
  let url: URL | undefined;
  try {
    url = new URL(opa.url);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== "http:" && url.protocol !== "https:")) {
    throw new TypeError(`${name}.url must be an http(s) URL, got ${JSON.stringify(opa.url)}`);
  }
  if (typeof opa.path !== "string" || !RULE_PATH.test(opa.path)) {
    throw new TypeError(
      `${name}.path must be a rule path such as "authz/allow", got ${JSON.stringify(opa.path)}`,
    );
  }
  if (opa.bundleName !== undefined && (typeof opa.bundleName !== "string" || opa.bundleName === "")) {
    throw new TypeError(
      `${name}.bundleName must be a non-empty string, got ${JSON.stringify(opa.bundleName)}`,
    );
  }
}

export function assertEmbedded(options: { bundle?: unknown; entrypoint?: unknown }, prefix = "") {
  if (typeof options.bundle !== "string" || options.bundle === "") {
    throw new TypeError(
      `${prefix}bundle must be the path of a wasm bundle, got ${JSON.stringify(options.bundle)}`,
    );
  }
  if (typeof options.entrypoint !== "string" || !RULE_PATH.test(options.entrypoint)) {
    throw new TypeError(
      `${prefix}entrypoint must be a rule path such as "authz/allow", got ${JSON.stringify(options.entrypoint)}`,
    );
  }
}

const SHADOW_KEYS = new Set([
  "opa",
  "bundle",
  "entrypoint",
  "inThread",
  "workers",
  "sampleRate",
  "timeoutMs",
  "maxQueue",
  "maxQueueBytes",
  "concurrency",
]);

/** The candidate: exactly one engine of its own, and bounds that keep it off the request path. */
export function assertShadow(shadow: NonNullable<EnforcerOptions["shadow"]>) {
  if (typeof shadow !== "object" || shadow === null || Array.isArray(shadow)) {
    throw new TypeError(
      `shadow must be {opa: {url, path}} or {bundle, entrypoint}, got ${shadow === null ? "null" : typeof shadow}`,
    );
  }
  for (const key of Object.keys(shadow)) {
    if (!SHADOW_KEYS.has(key)) {
      throw new TypeError(`shadow.${key} is not an option; use ${[...SHADOW_KEYS].join(", ")}`);
    }
  }
  if ((shadow.opa !== undefined) === (shadow.bundle !== undefined)) {
    throw new TypeError(
      "shadow needs exactly one engine: opa: {url, path} (remote) or bundle + entrypoint (embedded)",
    );
  }
  if (shadow.opa !== undefined) {
    assertRemote(shadow.opa, "shadow.opa");
    if (shadow.inThread !== undefined || shadow.workers !== undefined) {
      throw new TypeError(
        "shadow.inThread and shadow.workers apply to an embedded candidate (shadow.bundle), not to shadow.opa",
      );
    }
  } else assertEmbedded(shadow, "shadow.");
  for (const [name, value, max] of [
    ["shadow.timeoutMs", shadow.timeoutMs, MAX_TIMER_MS],
    ["shadow.maxQueue", shadow.maxQueue, 1_000_000],
    ["shadow.maxQueueBytes", shadow.maxQueueBytes, 2 ** 32],
    ["shadow.concurrency", shadow.concurrency, 10_000],
    ["shadow.workers", shadow.workers, 256],
    ["shadow.opa.connections", shadow.opa?.connections, 10_000],
  ] as const) {
    if (value === undefined) continue;
    if (typeof value !== "number" || !Number.isFinite(value) || value <= 0 || value > max) {
      throw new TypeError(
        `${name} must be a number above 0 and at most ${max}, got ${JSON.stringify(value)}`,
      );
    }
    if (name !== "shadow.timeoutMs" && !Number.isInteger(value)) {
      throw new TypeError(`${name} must be a whole number, got ${value}`);
    }
  }
  if (
    shadow.sampleRate !== undefined &&
    (typeof shadow.sampleRate !== "number" || !(shadow.sampleRate >= 0 && shadow.sampleRate <= 1))
  ) {
    throw new TypeError(
      `shadow.sampleRate must be a number from 0 to 1, got ${JSON.stringify(shadow.sampleRate)}`,
    );
  }
  if (shadow.inThread !== undefined && typeof shadow.inThread !== "boolean") {
    throw new TypeError(`shadow.inThread must be a boolean, got ${JSON.stringify(shadow.inThread)}`);
  }
  if (shadow.inThread === true) {
    // In-thread wasm evaluates on the event loop: a slow candidate would hold up every response.
    throw new TypeError(
      "shadow.inThread: true would evaluate the candidate on the event loop, where a slow candidate delays every response; leave shadow.inThread off (the candidate runs on its own worker threads)",
    );
  }
}

function assertCache(cache: NonNullable<EnforcerOptions["cache"]>) {
  if (typeof cache !== "object" || cache === null) {
    throw new TypeError(`cache must be {max, ttlMs, key?}, got ${cache === null ? "null" : typeof cache}`);
  }
  if (!Number.isInteger(cache.max) || cache.max < 1 || cache.max > 10_000_000) {
    throw new TypeError(
      `cache.max must be a whole number from 1 to 10000000, got ${JSON.stringify(cache.max)}`,
    );
  }
  if (
    typeof cache.ttlMs !== "number" ||
    !Number.isFinite(cache.ttlMs) ||
    cache.ttlMs <= 0 ||
    cache.ttlMs > MAX_TIMER_MS
  ) {
    throw new TypeError(
      `cache.ttlMs must be a number above 0 and at most ${MAX_TIMER_MS}, got ${JSON.stringify(cache.ttlMs)}`,
    );
  }
  if (cache.key !== undefined && typeof cache.key !== "function") {
    throw new TypeError(`cache.key must be a function, got ${typeof cache.key}`);
  }
}

function assertDecisionLog(value: NonNullable<EnforcerOptions["decisionLog"]>) {
  if (typeof value === "string") {
    if (value === "")
      throw new TypeError('decisionLog must be a file path, a {write} sink or {sink, …}, got ""');
    return;
  }
  if (typeof value !== "object" || value === null) {
    throw new TypeError(`decisionLog must be a file path, a {write} sink or {sink, …}, got ${typeof value}`);
  }
  if (typeof (value as { write?: unknown }).write === "function") return;
  const options = value as { sink?: unknown; sampleRate?: unknown; mask?: unknown; maxPending?: unknown };
  if (
    typeof options.sink !== "string" &&
    typeof (options.sink as { write?: unknown })?.write !== "function"
  ) {
    throw new TypeError("decisionLog.sink must be a file path or an object with write(line)");
  }
  if (
    options.sampleRate !== undefined &&
    (typeof options.sampleRate !== "number" || !(options.sampleRate >= 0 && options.sampleRate <= 1))
  ) {
    throw new TypeError(
      `decisionLog.sampleRate must be a number from 0 to 1, got ${JSON.stringify(options.sampleRate)}`,
    );
  }
  if (
    options.mask !== undefined &&
    !(Array.isArray(options.mask) && options.mask.every((m) => typeof m === "string"))
  ) {
    throw new TypeError("decisionLog.mask must be an array of JSON Pointers");
  }
  if (
    options.maxPending !== undefined &&
    !(Number.isInteger(options.maxPending) && (options.maxPending as number) >= 1)
  ) {
    throw new TypeError(
      `decisionLog.maxPending must be a whole number above 0, got ${JSON.stringify(options.maxPending)}`,
    );
  }
}
