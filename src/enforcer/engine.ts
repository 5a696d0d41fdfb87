/** What both engines offer the enforcer. */
export interface Evaluation {
  /** false when OPA returned no `result` (an undefined decision). */
  defined: boolean;
  result: unknown;
}

export interface Engine {
  readonly kind: "remote" | "embedded";
  ready(): Promise<void>;
  evaluate(input: unknown, signal: AbortSignal): Promise<Evaluation>;
  /** The revision OPA (or the bundle) currently serves, when known. */
  revision(): string | undefined;
  close(): Promise<void>;
}

/** An engine failure that is not the policy's fault: OPA down, slow, or answering garbage. */
export class EngineError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "EngineError";
  }
}
