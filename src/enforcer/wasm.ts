/** What opa-wasm hands back — thrown values and result sets — read the same way by both embedded paths. */

/** Turns what opa-wasm throws (strings and plain objects too) into a message. */
export function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (typeof error === "string") return error;
  if (error && typeof error === "object" && "message" in error) {
    return String((error as { message: unknown }).message);
  }
  return String(error);
}

/** A built-in the wasm SDK lacks surfaces as a named error instead of crashing the app. */
export function describeEvaluationError(message: string): string {
  return message.startsWith("not implemented")
    ? `the policy uses a built-in the embedded engine does not implement (${message})`
    : `policy evaluation failed: ${message}`;
}

/** What opa-wasm's evaluate() returned, as the enforcer reads it: the first result, if there is one. */
export function firstResult(resultSet: unknown): { defined: boolean; result: unknown } {
  if (!Array.isArray(resultSet) || resultSet.length === 0) return { defined: false, result: undefined };
  const first = resultSet[0] as { result?: unknown };
  return { defined: Object.hasOwn(first, "result"), result: first.result };
}
