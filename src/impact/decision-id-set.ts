import { hash, randomBytes } from "node:crypto";
import { DigestTable } from "./digest-table.ts";

/** Where a UUID's dashes stand. */
const DASHES = [8, 13, 18, 23];

/**
 * The decision_ids seen so far, each kept as 128 bits (digest-table.ts): a UUID's own bits (exact), any other
 * id's sha256 (behind a secret of the run) truncated to 128 bits. A day of 10,000,000 ids takes 256 MiB, where a Set of strings takes
 * several times that in heap growth.
 */
export class DecisionIdSet {
  private readonly table = new DigestTable({ set: true });
  private readonly key = new Uint32Array(4);
  /** A secret of this run before each hashed id: no id logged before it can be crafted to collide. */
  private readonly salt = randomBytes(16).toString("base64");

  /** Adds the id; false when it was already there. */
  add(id: string): boolean {
    return this.table.add(this.keyOf(id), 0);
  }

  private keyOf(id: string): Uint32Array {
    const key = this.key;
    if (uuidBits(id, key)) return key;
    const bytes = hash("sha256", this.salt + id, "buffer");
    for (let i = 0; i < 4; i++) key[i] = bytes.readUInt32LE(i * 4);
    return key;
  }
}

/**
 * A UUID as OPA and the enforcer write them (lower-case hex, 8-4-4-4-12) into its 128 bits, 8 digits to a
 * word; false for anything else: another spelling is another id, and is hashed. A day of logs reads ten
 * million of them, so one pass over the characters rather than a pattern and four parses.
 */
function uuidBits(id: string, key: Uint32Array): boolean {
  if (id.length !== 36) return false;
  for (const dash of DASHES) if (id.charCodeAt(dash) !== 0x2d) return false;
  let word = 0;
  let digits = 0;
  for (let i = 0; i < 36; i++) {
    if (i === 8 || i === 13 || i === 18 || i === 23) continue;
    const code = id.charCodeAt(i);
    const nibble =
      code >= 0x30 && code <= 0x39 ? code - 0x30 : code >= 0x61 && code <= 0x66 ? code - 0x57 : -1;
    if (nibble < 0) return false;
    word = word * 16 + nibble;
    if (++digits % 8 === 0) {
      key[digits / 8 - 1] = word;
      word = 0;
    }
  }
  return true;
}
