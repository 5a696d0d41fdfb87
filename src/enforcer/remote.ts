import { Pool } from "undici";
import { type Engine, EngineError, type Evaluation } from "./engine.ts";

export interface RemoteOptions {
  url: string;
  /** Slash-separated rule path: "authz/allow" → POST /v1/data/authz/allow. */
  path: string;
  /** Keep-alive connections to OPA. */
  connections?: number;
  /** Bundle whose active revision is compared with expectedRevision (default: the only one, or "authz"). */
  bundleName?: string;
  /** How often GET /v1/status refreshes the known revision. */
  revisionRefreshMs?: number;
  /** Calls to OPA allowed in flight at once; more fail at once, so an outage cannot grow memory. */
  maxInFlight?: number;
  /** OPA answers larger than this are refused. */
  maxResponseBytes?: number;
  onRevisionError?: (message: string) => void;
}

const DEFAULT_CONNECTIONS = 32;
const DEFAULT_REFRESH_MS = 5_000;
const DEFAULT_MAX_IN_FLIGHT = 1_024;
const DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024;
const STATUS_TIMEOUT_MS = 2_000;

interface StatusBody {
  result?: { bundles?: Record<string, { active_revision?: string }> };
}

/** Decisions from an OPA server over its REST API, on a keep-alive pool. */
export class RemoteEngine implements Engine {
  readonly kind = "remote";
  private readonly pool: Pool;
  private readonly dataPath: string;
  private inFlight = 0;
  private knownRevision: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly maxInFlight: number;

  constructor(
    private readonly options: RemoteOptions,
    private readonly watchRevision: boolean,
  ) {
    // url and path were validated by createEnforcer.
    const origin = new URL(options.url);
    this.dataPath = `${origin.pathname.replace(/\/+$/, "")}/v1/data/${options.path.replace(/^\/+|\/+$/g, "")}`;
    this.maxInFlight = options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
    this.pool = new Pool(origin.origin, {
      connections: options.connections ?? DEFAULT_CONNECTIONS,
      keepAliveTimeout: 30_000,
      maxResponseSize: options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES,
    });
  }

  async ready(): Promise<void> {
    if (!this.watchRevision) return;
    await this.refreshRevision();
    this.timer = setInterval(
      () => void this.refreshRevision(),
      this.options.revisionRefreshMs ?? DEFAULT_REFRESH_MS,
    );
    this.timer.unref();
  }

  revision(): string | undefined {
    return this.knownRevision;
  }

  /** Reads the active revision off the request path, so decisions never wait for it. */
  private async refreshRevision(): Promise<void> {
    try {
      const response = await this.pool.request({
        method: "GET",
        path: "/v1/status",
        signal: AbortSignal.timeout(STATUS_TIMEOUT_MS),
      });
      const body = (await response.body.json()) as StatusBody;
      if (response.statusCode !== 200) throw new Error(`GET /v1/status answered ${response.statusCode}`);
      const bundles = body.result?.bundles ?? {};
      const names = Object.keys(bundles);
      const name = this.options.bundleName ?? (names.length === 1 ? names[0] : "authz");
      this.knownRevision = name ? bundles[name]?.active_revision || undefined : undefined;
      if (!this.knownRevision)
        throw new Error(`OPA reports no active revision for bundle ${name ?? "(none)"}`);
    } catch (error) {
      this.knownRevision = undefined;
      this.options.onRevisionError?.(`cannot learn OPA's revision: ${(error as Error).message}`);
    }
  }

  async evaluate(input: unknown, signal: AbortSignal): Promise<Evaluation> {
    if (this.inFlight >= this.maxInFlight) {
      throw new EngineError(`${this.inFlight} calls to OPA already in flight (limit ${this.maxInFlight})`);
    }
    this.inFlight++;
    try {
      const response = await this.pool.request({
        method: "POST",
        path: this.dataPath,
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ input }),
        signal,
      });
      const text = await response.body.text();
      if (response.statusCode !== 200) {
        throw new EngineError(`OPA answered HTTP ${response.statusCode}`);
      }
      let parsed: { result?: unknown };
      try {
        parsed = JSON.parse(text) as { result?: unknown };
      } catch {
        throw new EngineError("OPA answered with malformed JSON");
      }
      if (typeof parsed !== "object" || parsed === null)
        throw new EngineError("OPA answered with a non-object");
      return { defined: Object.hasOwn(parsed, "result"), result: parsed.result };
    } catch (error) {
      if (error instanceof EngineError) throw error;
      const reason = signal.aborted
        ? "timed out"
        : ((error as NodeJS.ErrnoException).code ?? (error as Error).message);
      throw new EngineError(`OPA request failed: ${reason}`, { cause: error });
    } finally {
      this.inFlight--;
    }
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.pool.close();
  }
}
