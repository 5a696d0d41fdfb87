import { createHash } from "node:crypto";

/** Lower-case, as OPA and the enforcer write them: another spelling is another id (and is hashed). */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const WORDS = 4;

/**
 * The decision_ids seen so far, each kept as 128 bits in one typed array (open addressing, linear probing):
 * a UUID's own bits (exact), any other id's sha256 truncated to 128 bits. A million ids take 16–32 MB and no
 * garbage-collected objects, where a Set of strings takes several times that in heap growth.
 */
export class DecisionIdSet {
  private slots = new Uint32Array(1024 * WORDS);
  private size = 0;
  private hasZero = false;
  private readonly key = new Uint32Array(WORDS);

  /** Adds the id; false when it was already there. */
  add(id: string): boolean {
    const key = this.keyOf(id);
    if (isEmpty(key, 0)) {
      const added = !this.hasZero;
      this.hasZero = true;
      return added;
    }
    // Filled up to three quarters: a day of 10,000,000 ids takes 256 MiB, not the 512 MiB half-full takes.
    if ((this.size + 1) * 4 > (this.slots.length / WORDS) * 3) this.grow();
    const added = insert(this.slots, key);
    if (added) this.size++;
    return added;
  }

  private keyOf(id: string): Uint32Array {
    const bytes = UUID.test(id)
      ? Buffer.from(id.replaceAll("-", ""), "hex")
      : createHash("sha256").update(id).digest().subarray(0, 16);
    for (let i = 0; i < WORDS; i++) this.key[i] = bytes.readUInt32LE(i * 4);
    return this.key;
  }

  private grow() {
    const old = this.slots;
    this.slots = new Uint32Array(old.length * 2);
    for (let i = 0; i < old.length; i += WORDS) {
      if (!isEmpty(old, i)) insert(this.slots, old.subarray(i, i + WORDS));
    }
  }
}

/** Puts a non-zero key in the first free slot from its hash; false when an equal key is met first. */
function insert(slots: Uint32Array, key: Uint32Array): boolean {
  const count = slots.length / WORDS;
  let slot = (Math.imul((key[0] as number) ^ (key[3] as number), 0x9e3779b1) >>> 0) % count;
  for (;;) {
    const at = slot * WORDS;
    if (isEmpty(slots, at)) {
      slots.set(key, at);
      return true;
    }
    if (
      slots[at] === key[0] &&
      slots[at + 1] === key[1] &&
      slots[at + 2] === key[2] &&
      slots[at + 3] === key[3]
    ) {
      return false;
    }
    slot = (slot + 1) % count;
  }
}

/** Whether the four words at `at` are all zero: a free slot (the zero key itself is kept apart). */
function isEmpty(words: Uint32Array, at: number): boolean {
  return (
    ((words[at] as number) |
      (words[at + 1] as number) |
      (words[at + 2] as number) |
      (words[at + 3] as number)) ===
    0
  );
}
