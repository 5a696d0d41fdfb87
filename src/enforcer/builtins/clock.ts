/**
 * One wall-clock reading per evaluation, as OPA takes one per query: time.now_ns and io.jwt.decode_verify's
 * default time agree within an evaluation, however long it runs.
 */

let evaluationNs: bigint | undefined;

function wallClockNs(): bigint {
  // timeOrigin + now() carries microseconds, Date.now() only milliseconds.
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)) * 1000n;
}

/** Called before each evaluation: the next reading starts a new one. */
export function resetClock(): void {
  evaluationNs = undefined;
}

/** The evaluation's time in nanoseconds since the Unix epoch, read once. */
export function evaluationTimeNs(): bigint {
  evaluationNs ??= wallClockNs();
  return evaluationNs;
}
