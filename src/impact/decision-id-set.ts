import { createHash } from "node:crypto";
import { DigestTable } from "./digest-table.ts";

/** Lower-case, as OPA and the enforcer write them: another spelling is another id (and is hashed). */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * The decision_ids seen so far, each kept as 128 bits (digest-table.ts): a UUID's own bits (exact), any other
 * id's sha256 truncated to 128 bits. A day of 10,000,000 ids takes 256 MiB, where a Set of strings takes
 * several times that in heap growth.
 */
export class DecisionIdSet {
  private readonly table = new DigestTable({ set: true });
  private readonly key = new Uint32Array(4);

  /** Adds the id; false when it was already there. */
  add(id: string): boolean {
    return this.table.add(this.keyOf(id), 0);
  }

  private keyOf(id: string): Uint32Array {
    const key = this.key;
    if (UUID.test(id)) {
      // The 32 hex digits, 8 to a word, without the dashes.
      key[0] = Number.parseInt(id.slice(0, 8), 16);
      key[1] = Number.parseInt(id.slice(9, 13) + id.slice(14, 18), 16);
      key[2] = Number.parseInt(id.slice(19, 23) + id.slice(24, 28), 16);
      key[3] = Number.parseInt(id.slice(28, 36), 16);
      return key;
    }
    const bytes = createHash("sha256").update(id).digest();
    for (let i = 0; i < 4; i++) key[i] = bytes.readUInt32LE(i * 4);
    return key;
  }
}
