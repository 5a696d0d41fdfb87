import { setTimeout as sleep } from "node:timers/promises";
import { FailureError, UserError } from "../../errors.ts";

/**
 * Writing a revision's tag once, when several publishers may race. Registries have no conditional tag write
 * (CNCF distribution v3 overwrites a tag on every PUT; the OCI spec's conditional requests are still a
 * proposal), so each publisher first tags its manifest under a claim tag of its own,
 * `<tag>.claim.<16 hex of its manifest digest>`, waits SETTLE_MS, then lists the claims and reads the tag:
 * - the tag exists: it is the answer (this publisher's manifest, or someone else's);
 * - another claim sorts first: that publisher writes the tag; this one waits for it and reports it;
 * - this claim sorts first: it writes the tag, and reads it back.
 * Two publishers can both decide to write only if one of them takes longer than SETTLE_MS from deciding to
 * the tag write landing; then the read-back still tells the later one it lost. A claim tag names a manifest
 * of its own (the claimant's, with one more annotation), deleted by digest at the end where the registry
 * allows deletes; list skips claim tags.
 */

const CLAIM_INFIX = ".claim.";
const CLAIM_TAG = /\.claim\.[0-9a-f]{16}$/;
const SETTLE_MS = 1_500;
const WINNER_TIMEOUT_MS = 30_000;
const POLL_MS = 250;

export function isClaimTag(tag: string): boolean {
  return CLAIM_TAG.test(tag);
}

/** OCI tags hold at most 128 characters; a claim adds 23 to the revision's. */
const MAX_TAG_LENGTH = 128;

export function claimTagOf(tag: string, manifestDigest: string): string {
  const claim = `${tag}${CLAIM_INFIX}${manifestDigest.slice("sha256:".length, "sha256:".length + 16)}`;
  if (claim.length > MAX_TAG_LENGTH) {
    throw new UserError(
      `revision ${tag} is too long to publish to an OCI registry (at most ${MAX_TAG_LENGTH - claim.length + tag.length} characters)`,
      "use a shorter revision, such as the commit SHA",
    );
  }
  return claim;
}

/** What the protocol needs of the registry. */
export interface TagAccess<T extends { digest: string }> {
  put(reference: string, manifest: Buffer): Promise<void>;
  /** The manifest a tag names now, or undefined. */
  read(reference: string): Promise<T | undefined>;
  tags(): Promise<string[]>;
  /** Deletes a manifest by digest (and the tags naming it); may fail where the registry forbids it. */
  remove(digest: string): Promise<void>;
  /** For messages: `<registry>/<repository>:<reference>`. */
  name(reference: string): string;
}

export type TagOutcome<T> = { created: true } | { created: false; existing: T };

export async function writeTagOnce<T extends { digest: string }>(
  access: TagAccess<T>,
  tag: string,
  manifest: Buffer,
  manifestDigest: string,
  claim: { manifest: Buffer; digest: string },
  timing: { settleMs?: number; winnerTimeoutMs?: number; signal?: AbortSignal } = {},
): Promise<TagOutcome<T>> {
  const { signal } = timing;
  const outcome = (found: T): TagOutcome<T> =>
    found.digest === manifestDigest ? { created: true } : { created: false, existing: found };
  const mine = claimTagOf(tag, manifestDigest);
  signal?.throwIfAborted();
  await access.put(mine, claim.manifest);
  // Interrupted from here on, the claim is removed on the way out (the finally below, never cut short by
  // the signal) and the tag is never written: the next publish of the revision finds neither.
  try {
    await sleep(timing.settleMs ?? SETTLE_MS, undefined, { signal });
    const claims = (await access.tags())
      .filter((name) => name.startsWith(`${tag}${CLAIM_INFIX}`) && isClaimTag(name))
      .sort();
    const current = await access.read(tag);
    if (current) return outcome(current);
    const first = claims[0] ?? mine;
    if (first < mine) return outcome(await waitForTag(access, tag, first, timing.winnerTimeoutMs, signal));
    signal?.throwIfAborted();
    await access.put(tag, manifest);
    const written = await access.read(tag);
    if (!written)
      throw new FailureError(`${access.name(tag)} is missing right after it was written`, "run again");
    return outcome(written);
  } catch (error) {
    // A sleep cut short says only "aborted"; the signal's reason says why.
    throw signal?.aborted ? signal.reason : error;
  } finally {
    await access.remove(claim.digest).catch(() => {});
  }
}

/** Another publisher's claim sorts first: its manifest is what the tag will name. */
async function waitForTag<T extends { digest: string }>(
  access: TagAccess<T>,
  tag: string,
  claim: string,
  timeoutMs = WINNER_TIMEOUT_MS,
  signal?: AbortSignal,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await access.read(tag);
    if (found) return found;
    if (Date.now() > deadline) {
      throw new FailureError(
        `another publish of ${access.name(tag)} claimed it (${access.name(claim)}) but has not written it in ${Math.round(timeoutMs / 1000)} s`,
        `if no publish is running, delete the tag ${claim} and run again`,
      );
    }
    await sleep(POLL_MS, undefined, { signal });
  }
}
