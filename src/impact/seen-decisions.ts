import { hash, randomBytes } from "node:crypto";
import type { RecordedDecision } from "./decisions.ts";
import { DigestTable } from "./digest-table.ts";

/**
 * The recorded decisions seen so far, to skip one read again (OPA uploads a batch again until it is
 * acknowledged; an instance's console log and its uploads hold the same events). A decision is the same only
 * when all it says is the same: its decision_id, rule path, input, result and bundle revisions. Another event
 * that carries the same id (a bare `{"decision_id": …}` line, a second request logged under it) is not a
 * copy, and is replayed, not dropped: an id alone would let one line hide another. Each decision is kept as
 * 128 bits of sha256 over a secret drawn for the run and those fields (digest-table.ts): no line logged before
 * the run can be crafted to collide. A day of 10,000,000 decisions takes 256 MiB.
 */
export class SeenDecisions {
  private readonly table = new DigestTable({ set: true });
  private readonly key = new Uint32Array(4);
  private readonly salt = randomBytes(16).toString("base64");

  /** Adds the decision; false when the same decision was already there. */
  add(record: RecordedDecision): boolean {
    const text = JSON.stringify([
      record.decisionId ?? null,
      record.path ?? null,
      record.input ?? null,
      record.hasResult ? [record.result ?? null] : [],
      record.revisions,
    ]);
    const bytes = hash("sha256", `${this.salt}${text}`, "buffer");
    for (let i = 0; i < 4; i++) this.key[i] = bytes.readUInt32LE(i * 4);
    return this.table.add(this.key, 0);
  }
}
