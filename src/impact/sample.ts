/**
 * --sample: whether a recorded decision is among those replayed. Decided by a hash of its decision_id (or,
 * without one, of its position in the log), not by chance: the same logs give the same sample on every run,
 * so a pull request's checks can be compared, and a duplicate upload of a decision is kept or left alike.
 */
export function sampled(rate: number, decisionId: string | undefined, position: number): boolean {
  if (rate >= 1) return true;
  const text = decisionId ?? `#${position}`;
  // FNV-1a, 32 bits: fast and spread well enough for a share of ids.
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return (hash >>> 0) / 0x100000000 < rate;
}
