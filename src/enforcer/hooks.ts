/**
 * Calls an app's hook (onDecision, onShadow) so that nothing it does reaches the decision: a synchronous
 * throw and a returned promise's rejection are both caught, logged through `log` and reported to `failed`.
 * Returns nothing: the hook's own result, fulfilled or not, is never awaited.
 */
export function callHook<T>(
  name: string,
  hook: ((event: T) => unknown) | undefined,
  event: T,
  log: (message: string) => void,
  failed?: () => void,
): void {
  if (!hook) return;
  const fail = (error: unknown) => {
    failed?.();
    log(`${name} threw: ${error instanceof Error ? error.message : String(error)}`);
  };
  let returned: unknown;
  try {
    returned = hook(event);
  } catch (error) {
    fail(error);
    return;
  }
  if (typeof (returned as { then?: unknown } | null)?.then === "function") {
    try {
      (returned as PromiseLike<unknown>).then(undefined, fail);
    } catch (error) {
      // A thenable whose then() itself throws.
      fail(error);
    }
  }
}
