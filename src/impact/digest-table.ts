/**
 * 128-bit keys (a UUID's own bits, or a sha256 truncated to 128 bits) mapped to uint32 values, in typed
 * arrays with open addressing and linear probing: millions of keys take tens of MB and no garbage-collected
 * objects, where a Map of strings takes several times that in heap. Used for the decision_ids seen and for
 * the distinct inputs replayed. The keys are spread over 64 shards that each double on their own, so a
 * growing table never holds its old and new arrays whole at once (10,000,000 ids: 256 MiB, not 384 at the
 * step).
 */
const WORDS = 4;
const SHARD_BITS = 6;
/** A shard is filled up to three quarters before it doubles. */
const LOAD_NUMERATOR = 3;
const LOAD_DENOMINATOR = 4;

interface Shard {
  keys: Uint32Array;
  /** Empty when the table is a set. */
  values: Uint32Array;
  count: number;
}

export class DigestTable {
  private readonly shards: Shard[] = [];
  private readonly set: boolean;
  /** The all-zero key, which marks a free slot, is kept apart. */
  private zero: number | undefined;

  /** `set`: keep no values (a set of keys, 16 bytes a slot instead of 20); a key held then reads as 0. */
  constructor(options: { set?: boolean } = {}) {
    this.set = options.set === true;
    for (let i = 0; i < 1 << SHARD_BITS; i++) {
      this.shards.push({ keys: new Uint32Array(16 * WORDS), values: this.valuesFor(16), count: 0 });
    }
  }

  get size(): number {
    let size = this.zero === undefined ? 0 : 1;
    for (const shard of this.shards) size += shard.count;
    return size;
  }

  /** The value kept for `key`, or undefined. */
  get(key: Uint32Array): number | undefined {
    if (isZero(key, 0)) return this.zero;
    const hash = hashOf(key);
    const shard = this.shards[hash >>> (32 - SHARD_BITS)] as Shard;
    const slot = find(shard.keys, key, hash);
    return isZero(shard.keys, slot * WORDS) ? undefined : (shard.values[slot] ?? 0);
  }

  /** Keeps `value` for `key` unless it has one: true when it was added, false when a value was there. */
  add(key: Uint32Array, value: number): boolean {
    if (isZero(key, 0)) {
      if (this.zero !== undefined) return false;
      this.zero = value;
      return true;
    }
    const hash = hashOf(key);
    const shard = this.shards[hash >>> (32 - SHARD_BITS)] as Shard;
    if ((shard.count + 1) * LOAD_DENOMINATOR > (shard.keys.length / WORDS) * LOAD_NUMERATOR) {
      this.grow(shard);
    }
    const slot = find(shard.keys, key, hash);
    if (!isZero(shard.keys, slot * WORDS)) return false;
    const at = slot * WORDS;
    shard.keys[at] = key[0] as number;
    shard.keys[at + 1] = key[1] as number;
    shard.keys[at + 2] = key[2] as number;
    shard.keys[at + 3] = key[3] as number;
    if (!this.set) shard.values[slot] = value;
    shard.count++;
    return true;
  }

  private valuesFor(slots: number): Uint32Array {
    return new Uint32Array(this.set ? 0 : slots);
  }

  private grow(shard: Shard) {
    const { keys, values } = shard;
    const slots = keys.length / WORDS;
    shard.keys = new Uint32Array(keys.length * 2);
    shard.values = this.valuesFor(slots * 2);
    for (let slot = 0; slot < slots; slot++) {
      const at = slot * WORDS;
      if (isZero(keys, at)) continue;
      const key = keys.subarray(at, at + WORDS);
      const into = find(shard.keys, key, hashOf(key));
      shard.keys.set(key, into * WORDS);
      if (!this.set) shard.values[into] = values[slot] as number;
    }
  }
}

/** 32 bits from the key: its top bits pick the shard, its low bits the first slot. */
function hashOf(key: Uint32Array): number {
  return Math.imul((key[0] as number) ^ (key[3] as number), 0x9e3779b1) >>> 0;
}

/** The slot holding `key`, or the free slot where it belongs (the slot count is a power of two). */
function find(keys: Uint32Array, key: Uint32Array, hash: number): number {
  const mask = keys.length / WORDS - 1;
  let slot = hash & mask;
  for (;;) {
    const at = slot * WORDS;
    if (isZero(keys, at)) return slot;
    if (
      keys[at] === key[0] &&
      keys[at + 1] === key[1] &&
      keys[at + 2] === key[2] &&
      keys[at + 3] === key[3]
    ) {
      return slot;
    }
    slot = (slot + 1) & mask;
  }
}

/** Whether the four words at `at` are all zero. */
function isZero(words: Uint32Array, at: number): boolean {
  return (
    ((words[at] as number) |
      (words[at + 1] as number) |
      (words[at + 2] as number) |
      (words[at + 3] as number)) ===
    0
  );
}
