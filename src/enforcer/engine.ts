/** What both engines offer the enforcer. */
export interface Evaluation {
  /** false when OPA returned no `result` (an undefined decision). */
  defined: boolean;
  result: unknown;
  /** The bundle revision that produced this very answer (OPA's provenance, or the wasm bundle's manifest). */
  revision?: string;
}

export interface Engine {
  readonly kind: "remote" | "embedded";
  ready(): Promise<void>;
  /** `serialized` is JSON.stringify(input), made once by the enforcer; engines send or load it as is. */
  evaluate(serialized: string, signal: AbortSignal): Promise<Evaluation>;
  /** The revision the engine loaded, when it knows one before any decision (embedded). */
  revision?(): string | undefined;
  close(): Promise<void>;
}

/**
 * An engine failure that is not the policy's fault. `unreachable` (refused, reset, timed out) is the only
 * kind failOpen may let through; an answer OPA gave, of any status, never is.
 */
export class EngineError extends Error {
  constructor(
    message: string,
    readonly kind: "unreachable" | "answer" | "overload",
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "EngineError";
  }
}
