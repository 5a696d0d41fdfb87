import { Client, Pool } from "undici";
import { type Engine, EngineError, type Evaluation } from "./engine.ts";

export interface RemoteOptions {
  url: string;
  /** Slash-separated rule path: "authz/allow" → POST /v1/data/authz/allow. */
  path: string;
  /** Keep-alive connections to OPA. */
  connections?: number;
  /** Bundle whose revision is the decision's revision (default: the only one, else "authz"). */
  bundleName?: string;
  /** Calls to OPA allowed in flight at once; more fail at once, so an outage cannot grow memory. */
  maxInFlight?: number;
  /** OPA answers larger than this are refused. */
  maxResponseBytes?: number;
  /**
   * On a timeout or a connection dropped after the query was sent, ask OPA's /health whether it is there
   * (set with failOpen): if it answers, the failure is the query's own, which the input may have chosen
   * (an expensive query, a built-in that panics), and it is not "unreachable".
   */
  checkReachableOnTimeout?: boolean;
}

const DEFAULT_CONNECTIONS = 32;
const DEFAULT_MAX_IN_FLIGHT = 1_024;
const DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024;
/** How long /health may take to count as an answer; a sidecar answers in a millisecond or two. */
const HEALTH_CHECK_MS = 100;
/** One health answer serves the timeouts of the next second, so a flood of slow queries cannot starve it. */
const HEALTH_VALID_MS = 1_000;

/** Errors that mean OPA was not reached, or went away before it answered: the only ones failOpen covers. */
const UNREACHABLE_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "UND_ERR_SOCKET",
  "UND_ERR_CLOSED",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
]);

/** Of those, the ones where no connection was made: the query never reached OPA. */
const CONNECT_CODES = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "UND_ERR_CONNECT_TIMEOUT",
]);

interface DataResponse {
  result?: unknown;
  provenance?: { bundles?: Record<string, { revision?: unknown }> };
}

/**
 * Decisions from an OPA server over its REST API, on a keep-alive pool. Every query asks for provenance
 * (https://www.openpolicyagent.org/docs/rest-api#get-a-document-with-input), so each answer names the bundle
 * revision that made it: no status polling, and no window in which another revision's answers pass.
 */
export class RemoteEngine implements Engine {
  readonly kind = "remote";
  private readonly pool: Pool;
  private readonly dataPath: string;
  private inFlight = 0;
  private readonly maxInFlight: number;
  private readonly bundleName: string | undefined;
  private readonly origin: string;
  private readonly healthPath: string;
  private readonly checkReachable: boolean;
  /** Its own connection, so queries that fill the pool cannot hold the health check up. */
  private healthClient: Client | undefined;
  private health: Promise<boolean> | undefined;

  constructor(options: RemoteOptions) {
    // url and path were validated by createEnforcer.
    const origin = new URL(options.url);
    const rule = options.path.replace(/^\/+|\/+$/g, "");
    const base = origin.pathname.replace(/\/+$/, "");
    this.dataPath = `${base}/v1/data/${rule}?provenance=true`;
    this.origin = origin.origin;
    this.healthPath = `${base}/health`;
    this.checkReachable = options.checkReachableOnTimeout === true;
    this.maxInFlight = options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
    this.bundleName = options.bundleName;
    this.pool = new Pool(origin.origin, {
      connections: options.connections ?? DEFAULT_CONNECTIONS,
      keepAliveTimeout: 30_000,
      maxResponseSize: options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES,
    });
  }

  async ready(): Promise<void> {}

  /** The revision of the answering bundle: the named one, else the only one, else "authz". */
  private revisionOf(response: DataResponse): string | undefined {
    const bundles = response.provenance?.bundles;
    if (!bundles || typeof bundles !== "object") return undefined;
    const names = Object.keys(bundles);
    const name = this.bundleName ?? (names.length === 1 ? names[0] : "authz");
    const revision = name === undefined ? undefined : bundles[name]?.revision;
    return typeof revision === "string" && revision !== "" ? revision : undefined;
  }

  async evaluate(serialized: string, signal: AbortSignal): Promise<Evaluation> {
    if (this.inFlight >= this.maxInFlight) {
      throw new EngineError(
        `${this.inFlight} calls to OPA already in flight (limit ${this.maxInFlight})`,
        "overload",
      );
    }
    this.inFlight++;
    try {
      let text: string;
      let statusCode: number;
      try {
        const response = await this.pool.request({
          method: "POST",
          path: this.dataPath,
          headers: { "content-type": "application/json" },
          body: `{"input":${serialized}}`,
          signal,
        });
        statusCode = response.statusCode;
        text = await response.body.text();
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? "";
        if (signal.aborted) {
          if (this.checkReachable && (await this.answersHealth())) {
            throw new EngineError(
              "OPA request failed: timed out while OPA answered its health check (the query's own cost)",
              "answer",
            );
          }
          throw new EngineError("OPA request failed: timed out", "unreachable");
        }
        let unreachable = UNREACHABLE_CODES.has(code);
        // A connection that dropped once the query was sent may be OPA failing on this very input (a Go
        // panic in a built-in drops the connection unanswered): like a timeout, it counts as unreachable
        // only if OPA's /health is silent too. Failing to connect at all needs no such check.
        if (unreachable && !CONNECT_CODES.has(code) && this.checkReachable && (await this.answersHealth())) {
          unreachable = false;
        }
        throw new EngineError(
          `OPA request failed: ${code || (error as Error).message}`,
          unreachable ? "unreachable" : "answer",
          {
            cause: error,
          },
        );
      }
      // OPA answered: whatever it said, failOpen never applies from here on.
      if (statusCode !== 200) throw new EngineError(`OPA answered HTTP ${statusCode}`, "answer");
      let parsed: DataResponse;
      try {
        parsed = JSON.parse(text) as DataResponse;
      } catch {
        throw new EngineError("OPA answered with malformed JSON", "answer");
      }
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
        throw new EngineError("OPA answered with a non-object", "answer");
      }
      return {
        defined: Object.hasOwn(parsed, "result"),
        result: parsed.result,
        revision: this.revisionOf(parsed),
      };
    } finally {
      this.inFlight--;
    }
  }

  /**
   * Whether OPA answers GET /health (any status) within HEALTH_CHECK_MS. Timeouts at the same moment share
   * one check; an answer serves the next second, a silence only those waiting for it.
   */
  private answersHealth(): Promise<boolean> {
    if (this.health) return this.health;
    this.healthClient ??= new Client(this.origin);
    const asked = this.healthClient
      .request({ method: "GET", path: this.healthPath, signal: AbortSignal.timeout(HEALTH_CHECK_MS) })
      .then(async (response) => {
        await response.body.dump();
        return true;
      })
      .catch(() => false);
    this.health = asked;
    void asked.then((answered) => {
      const forget = () => {
        if (this.health === asked) this.health = undefined;
      };
      if (answered) setTimeout(forget, HEALTH_VALID_MS).unref();
      else forget();
    });
    return asked;
  }

  async close(): Promise<void> {
    await Promise.all([this.pool.close(), this.healthClient?.close()]);
  }
}
